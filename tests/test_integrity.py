"""Issue 14, "nothing lost, nothing mixed": exclusive writers, runs replaced only when finished, reports
that survive bad runs, predict outputs that never collide, and refused nonsense flags."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_dashboard import html_of, toy_runs  # noqa: F401  (fixture: two good runs, two broken)

from fer_utils.cli import main as fer_main
from fer_utils.faces.cache import FaceCache, verify_cache
from fer_utils.faces.cache_writer import FaceCacheWriter, write_array_cache
from fer_utils.faces.shards import CacheDamaged
from fer_utils.locks import FolderBusy
from fer_utils.training import run_listing, rundir
from fer_utils.training.train import train_run
from fer_utils.viz import dashboard

HOLD = """
import sys
{setup}
print("holding", flush=True)
sys.stdin.readline()
"""


class Holder:
    """Another process that opens a writer on a folder and holds it until told to finish."""

    def __init__(self, setup: str):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(HOLD).format(setup=setup)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout.readline().strip() == "holding"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.communicate("done\n", timeout=60)


def tiny_cache(folder, n=40, size=16):
    """Two separable classes of small faces (trains in seconds)."""
    rng = np.random.default_rng(0)
    faces, labels = [], []
    for i in range(n):
        label = ("happy", "sad")[i % 2]
        face = rng.integers(0, 60, (size, size)).astype(np.uint8)
        face[: size // 2] += 150 if label == "happy" else 0
        faces.append(face)
        labels.append(label)
    return write_array_cache(folder, np.stack(faces), labels)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tiny_cache(tmp_path_factory.mktemp("tiny") / "cache")


def quick_run(cache, run_dir, **overrides):
    settings = {"epochs": 1, "batch_size": 16, "seed": 0, "verbose": 0, **overrides}
    return train_run(cache.cache_dir, run_dir, **settings)


# ------------------------------------------------------------------------------ 1. exclusive writers


def test_a_second_cache_writer_is_refused_while_another_process_writes(tmp_path):
    folder = tmp_path / "cache"
    setup = (
        "from fer_utils.faces.cache_writer import FaceCacheWriter\n"
        f"writer = FaceCacheWriter({str(folder)!r}, {{'image_size': 4}})"
    )
    with Holder(setup) as holder:
        with pytest.raises(FolderBusy) as refused:
            FaceCacheWriter(folder, {"image_size": 4})
        message = str(refused.value)
        assert "another fer preprocess is writing" in message and str(folder) in message
        assert f"pid {holder.process.pid}" in message and "wait for it or choose another folder" in message
    writer = FaceCacheWriter(folder, {"image_size": 4})  # free again once the holder is gone
    writer.add("a.mp4", np.zeros((1, 4, 4), np.uint8), [{"media_path": "a.mp4", "frame_index": 0}])
    assert len(writer.close()) == 1


def test_a_second_fer_train_on_one_run_folder_is_refused(cache, tmp_path, capsys):
    out = tmp_path / "run"
    setup = f"from fer_utils.training.rundir import RunWriter\nwriter = RunWriter({str(out)!r})"
    with Holder(setup) as holder:
        code = fer_main(["train", "--cache", str(cache.cache_dir), "--out", str(out), "--epochs", "1"])
        error = capsys.readouterr().err
        assert code == 2
        assert f"another fer train is writing {out}" in error and f"pid {holder.process.pid}" in error
        assert not rundir.is_finished(out)
    assert quick_run(cache, out).outcome.status == "complete"


@pytest.mark.slow  # two real 40-epoch trainings in subprocesses (the lock itself: the test above)
def test_two_fer_train_racing_on_one_folder_leave_one_whole_run(cache, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    racers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fer_utils.cli",
                "train",
                "--cache",
                str(cache.cache_dir),
                "--out",
                str(out),
            ]
            + ["--epochs", "40", "--batch-size", "8", "--seed", str(seed), "--threads", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for seed in (1, 2)
    ]
    results = [(racer.wait(timeout=300), racer.stderr.read()) for racer in racers]
    assert sorted(code for code, _ in results) == [0, 2], results
    refusal = next(error for code, error in results if code == 2)
    assert "another fer train is writing" in refusal or "already holds a complete run" in refusal
    run = rundir.load_run(out)  # one run's files only: the predictions are its own test part
    split = rundir.read_split(out)
    assert sorted(run.predictions["face_id"]) == sorted(split.loc[split["part"] == "test", "face_id"])
    assert run.setup.split.test == len(run.predictions)


def test_the_same_thread_may_reopen_a_writer_it_abandoned(tmp_path):
    abandoned = FaceCacheWriter(tmp_path / "c", {"image_size": 4})  # e.g. a notebook cell that failed
    again = FaceCacheWriter(tmp_path / "c", {"image_size": 4})
    assert len(again.close()) == 0
    abandoned.release()


# ------------------------------------------------------------------------------ 2. replace, don't destroy


@pytest.fixture(scope="module")
def trained_run(cache, tmp_path_factory):
    """One 1-epoch run, trained once for the module; each test gets its own copy (cheaper than a training
    per test, and the same files)."""
    return quick_run(cache, tmp_path_factory.mktemp("trained") / "paper")


@pytest.fixture()
def finished_run(trained_run, tmp_path):
    path = tmp_path / "runs" / "paper"
    shutil.copytree(trained_run.path, path)
    (path / "02_training.ipynb").write_text("{}")  # a file of someone else (papermill)
    return rundir.load_run(path)


def assert_untouched(run):
    again = rundir.load_run(run.path)
    assert again.outcome == run.outcome
    assert sorted(
        p.name for p in run.path.parent.iterdir() if not p.name.endswith((".lock", ".lock.json"))
    ) == ["paper"]  # no half-written sibling left behind


def test_a_failed_overwrite_leaves_the_finished_run_untouched(finished_run, cache, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="dropout"):
        quick_run(cache, finished_run.path, overwrite=True, dropout=(0.3, 1.5, 0.3))
    assert_untouched(finished_run)
    with pytest.raises(ValueError, match="not a face cache"):
        train_run(tmp_path / "mistyped", finished_run.path, overwrite=True, epochs=1)
    assert_untouched(finished_run)
    assert (
        fer_main(["train", "--cache", str(tmp_path / "nope"), "--out", str(finished_run.path), "--overwrite"])
        == 2
    )
    assert_untouched(finished_run)

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-training")

    monkeypatch.setattr("fer_utils.training.train.fit_model", crash)
    with pytest.raises(RuntimeError, match="mid-training"):
        quick_run(cache, finished_run.path, overwrite=True)
    assert_untouched(finished_run)


def test_an_overwrite_swaps_the_new_run_in_and_keeps_other_files(finished_run, cache):
    new = quick_run(cache, finished_run.path, overwrite=True, seed=1)
    assert new.path == finished_run.path and new.setup.seed == 1
    assert (new.path / "02_training.ipynb").read_text() == "{}"
    assert_untouched(new)


def test_a_run_being_written_is_not_listed_and_a_killed_ones_leftovers_are_removed(finished_run, cache):
    partial = finished_run.path.with_name(".paper.partial-deadbeef")  # what kill -9 leaves
    shutil.copytree(finished_run.path, partial)
    (partial / rundir.METRICS_FILE).unlink()
    runs, problems = run_listing.list_runs(finished_run.path.parent)
    assert [run.name for run in runs] == ["paper"] and not problems
    quick_run(cache, finished_run.path, overwrite=True)
    assert not partial.exists()


def test_a_run_folder_that_is_a_file_is_a_clear_error(cache, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        quick_run(cache, tmp_path / "file")


# ------------------------------------------------------------------------------ 3. reports survive bad runs


@pytest.fixture()
def runs_with_bad_metrics(toy_runs):  # noqa: F811
    runs, _ = toy_runs
    good = json.loads((runs / "a-run" / rundir.METRICS_FILE).read_text())
    texts = {
        "null": "null",
        "array": "[1, 2]",
        "empty-frame": json.dumps({**good, "frame": {}}),
        "no-labels": json.dumps({key: value for key, value in good.items() if key != "labels"}),
    }
    for name, text in texts.items():
        shutil.copytree(runs / "a-run", runs / name)
        (runs / name / rundir.METRICS_FILE).write_text(text)
    return runs


def test_any_malformed_metrics_is_a_listed_problem_with_its_reason(runs_with_bad_metrics):
    runs, problems = run_listing.list_runs(runs_with_bad_metrics)
    assert [run.name for run in runs] == ["a-run", "b-run"]
    assert "the JSON value is null, not an object" in problems["null"]
    assert "the JSON value is array, not an object" in problems["array"]
    assert "'frame' lacks 'accuracy'" in problems["empty-frame"]
    assert "lacks 'labels'" in problems["no-labels"]
    with pytest.raises(ValueError, match="null"):
        rundir.load_run(runs_with_bad_metrics / "null")


def test_dashboard_and_report_show_the_good_runs_beside_the_bad(runs_with_bad_metrics, monkeypatch):
    page = html_of(dashboard.build_dashboard(runs_with_bad_metrics))
    assert "6 run folder(s) could not be opened" in page and "not an object" in page
    assert "Cannot open" not in page
    choices, _ = dashboard.run_choices(runs_with_bad_metrics)
    assert [choice.name for choice in choices] == ["a-run", "b-run"]
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects, **_: shown.extend(objects))
    dashboard.display_report(runs_with_bad_metrics)  # what `fer report` executes in notebook 04
    report = "".join(
        getattr(item, "data", "") or "" for item in shown if isinstance(getattr(item, "data", ""), str)
    )
    assert "All finished runs" in report and "empty-frame" in report and "6 run folder(s)" in report


@pytest.mark.slow
def test_fer_report_survives_malformed_metrics(runs_with_bad_metrics, tmp_path):
    out = tmp_path / "report"
    assert fer_main(["report", str(runs_with_bad_metrics), "--out", str(out)]) == 0
    page = (out / "results.html").read_text()
    assert "All finished runs" in page and "not an object" in page and "Traceback" not in page


# ------------------------------------------------------------------------------ 4. predict outputs never collide


def fake_predict(monkeypatch):
    """`fer predict` without a model: every media gets a no-face result naming its own path."""
    import pandas as pd

    from fer_utils.deploy import predict
    from fer_utils.deploy.media_prediction import MediaPrediction

    def predict_media(path, *args):
        return MediaPrediction(
            str(path), ["happy", "sad"], pd.DataFrame(columns=["status"]), frames_sampled=3
        )

    monkeypatch.setattr(predict, "load_predictor", lambda *args: None)
    monkeypatch.setattr(predict, "predict_media", predict_media)


def test_predict_outputs_of_same_stem_media_do_not_collide(tmp_path, monkeypatch):
    import pandas as pd

    fake_predict(monkeypatch)
    media = tmp_path / "media"
    media.mkdir()
    long_names = ["x" * 240 + "-first.mp4", "x" * 240 + "-second.mp4"]  # 250 bytes each
    for name in ["clip.mp4", "clip.jpg", *long_names]:
        (media / name).write_bytes(b"")
    out = tmp_path / "out"
    assert fer_main(["predict", str(media), "--model", "m.keras", "--out", str(out)]) == 0  # no face anywhere
    summary = pd.read_csv(out / "summary.csv")
    assert summary["summary_file"].is_unique and len(summary) == 4
    for row in summary.itertuples():
        written = json.loads(open(row.summary_file).read())
        assert written["media_path"] == row.media_path  # each row's file is its own media's
        assert len(os.path.basename(row.summary_file).encode()) <= 200
    assert (out / "clip.mp4_summary.json").exists() and (out / "clip.jpg_summary.json").exists()


def test_output_names_keep_whole_short_names_and_shorten_long_ones_safely():
    from fer_utils.deploy.prediction_outputs import MAX_OUTPUT_NAME_BYTES, OUTPUT_SUFFIXES, output_stem

    assert output_stem("/videos/clip.mp4") == "clip.mp4"
    long = "é" * 150 + ".mp4"  # 304 bytes; multi-byte characters must not be cut in half
    stem = output_stem(long)
    assert stem.endswith(".mp4") and "~" in stem and stem != output_stem("é" * 151 + ".mp4")
    for suffix in OUTPUT_SUFFIXES:
        assert len((stem + suffix).encode()) <= MAX_OUTPUT_NAME_BYTES
    stem.encode().decode()  # valid UTF-8


# ------------------------------------------------------------------------------ 5. nonsense --limit refused


@pytest.mark.parametrize("limit", ["0", "-1", "two"])
def test_preprocess_refuses_a_limit_below_one(limit, tmp_path, capsys):
    (tmp_path / "media" / "happy").mkdir(parents=True)
    command = ["preprocess", "--root", str(tmp_path / "media"), "--cache-root", str(tmp_path / "c")]
    with pytest.raises(SystemExit) as refused:
        fer_main([*command, f"--limit={limit}"])
    assert refused.value.code == 2
    assert "argument --limit" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


# ------------------------------------------------------------------------------ 6. verifiable caches


def shard_cache(folder, items=9, shard_size=3):
    """A cache of ``items`` one-face items in shards of ``shard_size`` faces (index.csv written)."""
    writer = FaceCacheWriter(folder, {"image_size": 8}, shard_size=shard_size)
    for i in range(items):
        face = np.full((1, 8, 8), i, np.uint8)
        writer.add(f"m{i}.mp4", face, [{"media_path": f"m{i}.mp4", "frame_index": 0, "label": "happy"}])
    return writer.close()


def shards(cache):
    return sorted((cache.cache_dir / "shards").glob("shard-*.npy"))


def resume_and_redo(folder):
    """What a rerun of `fer preprocess` does: open the writer, redo the items no sound shard holds."""
    writer = FaceCacheWriter(folder, {"image_size": 8}, shard_size=3)
    redo = sorted({f"m{i}.mp4" for i in range(9)} - writer.done_items())
    for item in redo:
        i = int(item[1:-4])
        writer.add(
            item, np.full((1, 8, 8), i, np.uint8), [{"media_path": item, "frame_index": 0, "label": "happy"}]
        )
    return writer, redo, writer.close()


def assert_whole(cache):
    assert len(cache) == 9
    np.testing.assert_array_equal(cache.faces(range(9))[:, 0, 0], np.arange(9))
    assert verify_cache(cache.cache_dir)[0] == []


def test_shard_json_records_size_and_checksum(tmp_path):
    cache = shard_cache(tmp_path / "c")
    meta = json.loads(shards(cache)[0].with_suffix(".json").read_text())
    assert meta["npy_bytes"] == shards(cache)[0].stat().st_size and len(meta["npy_sha256"]) == 64
    problems, counts = verify_cache(cache.cache_dir)
    assert problems == [] and counts == {"shards": 3, "faces": 9, "unchecked": 0}


def test_a_deleted_shard_json_is_an_error_naming_the_file_and_preprocess_repairs_it(tmp_path):
    cache = shard_cache(tmp_path / "c")
    lost = shards(cache)[1]
    lost.with_suffix(".json").unlink()
    with pytest.raises(CacheDamaged, match=r"lists 9 faces but the shards hold 6") as error:
        FaceCache(cache.cache_dir)
    assert str(lost) in str(error.value) and "fer preprocess" in str(error.value)
    writer, redo, repaired = resume_and_redo(cache.cache_dir)
    assert len(redo) == 3  # only the lost shard's items
    assert_whole(repaired)


def test_a_truncated_shard_is_an_error_naming_the_file_and_preprocess_repairs_it(tmp_path):
    cache = shard_cache(tmp_path / "c")
    broken = shards(cache)[0]
    broken.write_bytes(broken.read_bytes()[:-20])
    with pytest.raises(CacheDamaged, match="truncated") as error:
        FaceCache(cache.cache_dir)
    assert str(broken) in str(error.value) and "re-run `fer preprocess`" in str(error.value)
    writer, redo, repaired = resume_and_redo(cache.cache_dir)
    assert len(redo) == 3 and len(writer.repaired) == 1 and str(broken) in writer.repaired[0]
    assert_whole(repaired)


def test_a_truncated_shard_json_is_an_error_naming_the_file(tmp_path):
    cache = shard_cache(tmp_path / "c")
    meta = shards(cache)[2].with_suffix(".json")
    meta.write_text(meta.read_text()[:40])
    with pytest.raises(CacheDamaged, match="unreadable") as error:
        FaceCache(cache.cache_dir)
    assert str(meta) in str(error.value)
    assert_whole(resume_and_redo(cache.cache_dir)[2])


def test_a_flipped_byte_is_found_by_fer_cache_verify_and_repaired_by_a_rerun(tmp_path, capsys):
    cache = shard_cache(tmp_path / "c")
    flipped = shards(cache)[1]
    data = bytearray(flipped.read_bytes())
    data[-1] ^= 0xFF
    flipped.write_bytes(bytes(data))
    assert fer_main(["cache", "verify", str(cache.cache_dir)]) == 1
    out = capsys.readouterr().out
    assert f"DAMAGED: {flipped} fails its sha256 checksum" in out and "1 problem(s)" in out
    writer, redo, repaired = resume_and_redo(cache.cache_dir)
    assert len(redo) == 3
    assert_whole(repaired)
    assert fer_main(["cache", "verify", str(cache.cache_dir)]) == 0
    assert "ok — 3 shard(s), 9 face(s)" in capsys.readouterr().out


def test_run_folders_named_with_glob_characters_or_holding_the_cwd_work(
    cache, finished_run, tmp_path, monkeypatch
):
    odd = tmp_path / "run[1]"
    quick_run(cache, odd)
    assert quick_run(cache, odd, overwrite=True).outcome.status == "complete"
    monkeypatch.chdir(finished_run.path)  # the ablation's papermill kernels run inside their run folder
    with pytest.raises(ValueError, match="dropout"):
        quick_run(cache, ".", overwrite=True, dropout=(2, 0, 0))
    assert_untouched(finished_run)
    new = quick_run(cache, ".", overwrite=True, seed=3)
    assert os.getcwd() == str(finished_run.path) and new.setup.seed == 3
    assert rundir.load_run(finished_run.path).setup.seed == 3
    assert_untouched(new.__class__(finished_run.path, new.setup, new.history, new.outcome, new.predictions))


def test_the_lock_holder_names_the_command_once(tmp_path, monkeypatch):
    import json

    from fer_utils import locks

    monkeypatch.setattr("sys.argv", ["/venv/bin/fer", "train", "--epochs", "2"])
    lock = locks.WriterLock(tmp_path / "run", tmp_path / ".run.lock", "fer train").acquire()
    try:
        holder = json.loads((tmp_path / ".run.lock.json").read_text())
        assert holder["command"] == "fer train" and holder["argv"] == "/venv/bin/fer train --epochs 2"
        assert locks._holder_text(tmp_path / ".run.lock").endswith("(fer train)")  # not "fer train train"
    finally:
        lock.release()
