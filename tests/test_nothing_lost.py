"""Issue 20, nothing lost round 3: one bad run never sinks a report, every output folder has one writer,
paths are data (never templates), predict names never collide, a full disk names its folder, and the
low items (shard checksums on first read, unreadable folders, bad model files, symlinked runs, progress
bars named after the run)."""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_dashboard import make_cache, make_run, toy_probabilities

from fer_utils.faces.cache import FaceCache
from fer_utils.training import run_listing, rundir

# ----------------------------------------------------------------------------------------------------
# 1. Per-run isolation in every reader
# ----------------------------------------------------------------------------------------------------


def _strip_shard_records(cache_dir: Path) -> None:
    """Make every shard json look like one written before sizes and checksums were recorded."""
    for meta_path in (cache_dir / "shards").glob("shard-*.json"):
        meta = json.loads(meta_path.read_text())
        meta.pop("npy_bytes", None)
        meta.pop("npy_sha256", None)
        meta_path.write_text(json.dumps(meta))


def _first_shard(cache_dir: Path) -> Path:
    return sorted((cache_dir / "shards").glob("shard-*.npy"))[0]


def _edit_predictions(run: Path, edit) -> None:
    table = pd.read_csv(run / rundir.PREDICTIONS_FILE)
    edit(table).to_csv(run / rundir.PREDICTIONS_FILE, index=False)


#: Every malformed kind of the fault campaign: run folder name → what makes it bad.
MALFORMED = (
    "pickled-shard",
    "linked-shard",
    "ids-outside",
    "negative-ids",
    "matrix-shape",
    "predictions-columns",
    "unrelated-history",
)


@pytest.fixture()
def mixed_runs(tmp_path):
    """Two good runs and one run of each malformed kind (each with its own cache where the cache is bad)."""
    runs = tmp_path / "runs"
    good_cache = make_cache(tmp_path / "cache", 12)
    make_run(runs / "good-a", good_cache, toy_probabilities(12, 0))
    make_run(runs / "good-b", good_cache, toy_probabilities(12, 1), seed=1)
    for kind in ("pickled-shard", "linked-shard"):
        cache = make_cache(tmp_path / f"cache-{kind}", 12)
        make_run(runs / kind, cache, toy_probabilities(12, 2))
        _strip_shard_records(cache.cache_dir)
        shard = _first_shard(cache.cache_dir)
        shard.unlink()
        if kind == "pickled-shard":
            np.save(shard, np.array([{"not": "faces"}] * 7, dtype=object), allow_pickle=True)
        else:
            shard.symlink_to("/etc/passwd")
    for kind, face_id in (("ids-outside", 10000027), ("negative-ids", -1)):
        make_run(runs / kind, good_cache, toy_probabilities(12, 3))
        _edit_predictions(runs / kind, lambda t, face_id=face_id: t.assign(face_id=t["face_id"] + face_id))
    make_run(runs / "matrix-shape", good_cache, toy_probabilities(12, 4))
    metrics = json.loads((runs / "matrix-shape" / rundir.METRICS_FILE).read_text())
    metrics["frame"]["confusion_matrix"] = [[1, 2], [3, 4]]
    (runs / "matrix-shape" / rundir.METRICS_FILE).write_text(json.dumps(metrics))
    make_run(runs / "predictions-columns", good_cache, toy_probabilities(12, 5))
    _edit_predictions(runs / "predictions-columns", lambda t: t[["face_id"]])
    make_run(runs / "unrelated-history", good_cache, toy_probabilities(12, 6))
    pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(runs / "unrelated-history" / rundir.HISTORY_FILE)
    return runs


def test_validate_run_names_each_malformed_kind_and_passes_good_runs(mixed_runs):
    for name in ("good-a", "good-b"):
        assert run_listing.validate_run(rundir.load_run(mixed_runs / name)) == []
    reasons = {name: run_listing.validate_run(rundir.load_run(mixed_runs / name)) for name in MALFORMED}
    assert all(reasons.values()), reasons
    assert "not a face cache shard" in " ".join(reasons["pickled-shard"] + reasons["linked-shard"])
    assert "outside its face cache" in reasons["ids-outside"][0]
    assert "outside its face cache" in reasons["negative-ids"][0]
    assert "confusion matrix" in reasons["matrix-shape"][0] and "2 × 2" in reasons["matrix-shape"][0]
    assert "predictions.csv lacks" in reasons["predictions-columns"][0]
    assert "history.csv" in reasons["unrelated-history"][0]


def test_list_runs_keeps_every_good_run_and_lists_each_bad_one(mixed_runs):
    runs, problems = run_listing.list_runs(mixed_runs)
    assert sorted(run.name for run in runs) == ["good-a", "good-b"]
    assert sorted(problems) == sorted(MALFORMED)


def test_negative_face_ids_never_wrap_to_other_faces(tmp_path):
    cache = make_cache(tmp_path / "cache", 12)
    with pytest.raises(IndexError, match="outside"):
        cache.faces([-1])
    with pytest.raises(IndexError, match="outside"):
        cache.faces([12])
    assert cache.faces([11])[0, 0, 0] == 11


def test_a_pickled_shard_is_refused_as_damage_not_loaded(tmp_path):
    from fer_utils.faces.shards import CacheDamaged

    cache = make_cache(tmp_path / "cache", 12)
    _strip_shard_records(cache.cache_dir)
    shard = _first_shard(cache.cache_dir)
    shard.unlink()
    np.save(shard, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CacheDamaged, match="not a face cache shard"):
        FaceCache(cache.cache_dir).faces(np.arange(12))  # every shard, whichever holds face 0


def _report_html(runs_dir, monkeypatch) -> str:
    """What ``display_report`` shows, as one HTML string (no kernel: ``display`` is collected)."""
    import IPython.display

    from fer_utils.viz.dashboard import static

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objects: shown.extend(objects))
    static.display_report(runs_dir)
    return "".join(getattr(item, "data", "") for item in shown)


def test_the_report_draws_every_good_run_and_lists_every_bad_one(mixed_runs, monkeypatch):
    page = _report_html(mixed_runs, monkeypatch)
    assert page.count('<details class="fer-run"') == 2
    assert f"{len(MALFORMED)} run folder(s) could not be opened" in page
    for name in MALFORMED:
        assert f"<code>{name}</code>" in page


def test_dashboard_lists_the_same_bad_runs(mixed_runs):
    from test_dashboard import html_of

    from fer_utils.viz import dashboard

    page = html_of(dashboard.build_dashboard(mixed_runs))
    assert f"{len(MALFORMED)} run folder(s) could not be opened" in page


def test_a_run_that_fails_while_drawn_is_a_problem_not_a_lost_report(mixed_runs, monkeypatch):
    """Whatever validation misses, one run's drawing error is caught and listed; the others are drawn."""
    from fer_utils.viz.dashboard import static

    real = static.run_detail_html

    def fragile(choice):
        if choice.name == "good-b":
            raise IndexError("index 2 is out of bounds for axis 1 with size 2")
        return real(choice)

    monkeypatch.setattr(static, "run_detail_html", fragile)
    page = _report_html(mixed_runs, monkeypatch)
    assert page.count('<details class="fer-run"') == 1
    assert "good-b" in page and "index 2 is out of bounds" in page


def test_a_symlinked_run_folder_is_listed_with_its_reason_not_dropped(tmp_path):
    cache = make_cache(tmp_path / "cache", 12)
    outside = make_run(tmp_path / "elsewhere" / "far-run", cache, toy_probabilities(12, 0))
    runs = tmp_path / "runs"
    make_run(runs / "real-run", cache, toy_probabilities(12, 1))
    (runs / "linked-far").symlink_to(outside, target_is_directory=True)
    (runs / "linked-near").symlink_to(runs / "real-run", target_is_directory=True)
    found, problems = run_listing.list_runs(runs)
    assert [run.name for run in found] == ["real-run"]
    assert "outside" in problems["linked-far"] and str(outside) in problems["linked-far"]
    assert "real-run" in problems["linked-near"]


def _break_run(run: Path, kind: str) -> None:
    """Make the copied real run ``run`` malformed in the way ``kind`` of :data:`MALFORMED` names."""
    if kind in ("pickled-shard", "linked-shard"):  # the run gets its own copy of the cache, then breaks it
        config = json.loads((run / rundir.CONFIG_FILE).read_text())
        cache_dir = run.parent.parent / f"cache-{kind}"
        shutil.copytree(config["cache_dir"], cache_dir)
        (run / rundir.CONFIG_FILE).write_text(json.dumps({**config, "cache_dir": str(cache_dir)}))
        _strip_shard_records(cache_dir)
        shard = _first_shard(cache_dir)
        shard.unlink()
        if kind == "pickled-shard":
            np.save(shard, np.array([{"not": "faces"}] * 7, dtype=object), allow_pickle=True)
        else:
            shard.symlink_to("/etc/passwd")
    elif kind in ("ids-outside", "negative-ids"):
        shift = (
            10000027
            if kind == "ids-outside"
            else -int(pd.read_csv(run / rundir.PREDICTIONS_FILE)["face_id"].max()) - 1
        )
        _edit_predictions(run, lambda t: t.assign(face_id=t["face_id"] + shift))
    elif kind == "matrix-shape":
        metrics = json.loads((run / rundir.METRICS_FILE).read_text())
        metrics["frame"]["confusion_matrix"] = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
        (run / rundir.METRICS_FILE).write_text(json.dumps(metrics))
    elif kind == "predictions-columns":
        _edit_predictions(run, lambda t: t[["face_id"]])
    else:
        pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(run / rundir.HISTORY_FILE)


#: What each malformed kind's reason says (a real run broken that way).
REASON_PHRASES = {
    "pickled-shard": "not a face cache shard",
    "linked-shard": "not a face cache shard",
    "ids-outside": "outside its face cache",
    "negative-ids": "outside its face cache",
    "matrix-shape": "confusion matrix",
    "predictions-columns": "predictions.csv lacks",
    "unrelated-history": "history.csv",
}


@pytest.mark.slow
def test_fer_report_of_real_runs_mixed_with_every_malformed_kind(tmp_path, capsys):
    """The real command (papermill kernel, nbconvert) on one real 1-epoch run, a copy of it, and a copy
    broken in each malformed way: the HTML is written, both good runs drawn, each bad one listed."""
    from test_integrity import quick_run, tiny_cache

    from fer_utils.cli import main as fer_main

    runs = tmp_path / "runs"
    good = runs / "good"
    quick_run(tiny_cache(tmp_path / "cache"), good)
    shutil.copytree(good, runs / "good-copy")
    for kind in MALFORMED:
        shutil.copytree(good, runs / kind)
        _break_run(runs / kind, kind)
    code = fer_main(["report", str(runs), "--out", str(tmp_path / "report")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    page = next((tmp_path / "report").glob("*.html")).read_text()
    assert "Traceback" not in page
    assert page.count('<details class="fer-run"') == 2
    assert "<code>good</code>" not in page and "<code>good-copy</code>" not in page  # neither is a problem
    assert f"{len(MALFORMED)} run folder(s) could not be opened" in page
    _, problems = run_listing.list_runs(runs)
    assert sorted(problems) == sorted(MALFORMED)
    for kind, phrase in REASON_PHRASES.items():
        assert phrase in problems[kind], (kind, problems[kind])
        assert f"<li><code>{kind}</code>: {html.escape(problems[kind], quote=False)}</li>" in page, kind


# ----------------------------------------------------------------------------------------------------
# 2. One writer per output folder
# ----------------------------------------------------------------------------------------------------


def _holding_output_lock(folder: Path, command: str):
    from test_integrity import Holder

    return Holder(
        f"from fer_utils.locks import output_lock\nlock = output_lock({str(folder)!r}, {command!r}).acquire()"
    )


def _would_write(*args, **kwargs):
    raise AssertionError("went on to write while another writer holds the folder")


def _refusal(call, folder: Path, command: str):
    from fer_utils.locks import FolderBusy

    with _holding_output_lock(folder, command) as holder:
        with pytest.raises(FolderBusy) as refused:
            call()
    message = str(refused.value)
    assert f"another {command} is writing" in message and f"pid {holder.process.pid}" in message
    return message


def test_a_second_ablation_on_one_folder_is_refused_before_any_cell(tmp_path, monkeypatch):
    from fer_utils.experiments.ablation import execute

    cache = make_cache(tmp_path / "cache", 12)
    monkeypatch.setattr(execute, "execute_tasks", _would_write)
    out = tmp_path / "abl"
    _refusal(lambda: execute.run_grid(cache.cache_dir, out, n_seeds=1, epochs=1), out, "fer ablate")
    assert not (out / "grid.json").exists()


def test_an_ablation_cell_is_cleaned_only_under_its_run_lock(tmp_path):
    from test_integrity import Holder

    from fer_utils.experiments.ablation.execute import execute_run
    from fer_utils.experiments.ablation.grid import ERROR_FILE

    cell = tmp_path / "abl" / "runs" / "cell-seed0"
    cell.mkdir(parents=True)
    (cell / rundir.METRICS_FILE).write_text("{}")  # another writer's finished run
    setup = (
        f"from fer_utils.training.rundir import RunWriter\nwriter = RunWriter({str(cell)!r}, overwrite=True)"
    )
    with Holder(setup):
        outcome = execute_run({"name": cell.name, "run_dir": str(cell), "notebook": "none", "parameters": {}})
    assert outcome["status"] == "failed" and "another fer train is writing" in outcome["error"]
    assert (cell / rundir.METRICS_FILE).exists() and not (cell / ERROR_FILE).exists()


def test_a_second_recipe_study_or_seeds_folder_writer_is_refused(tmp_path, monkeypatch):
    from fer_utils.experiments import recipe_study
    from fer_utils.training import seeds
    from fer_utils.training.train import TrainConfig

    cache = make_cache(tmp_path / "cache", 12)
    monkeypatch.setattr(seeds, "parallel_map", _would_write)
    study = tmp_path / "study"
    _refusal(
        lambda: recipe_study.run_recipe_study(cache.cache_dir, study, TrainConfig(epochs=1), [0], ["paper"]),
        study,
        "fer study-recipes",
    )
    assert not (study / recipe_study.STUDY_FILE).exists()
    folder = tmp_path / "seeds"
    _refusal(
        lambda: seeds.train_seeds(cache.cache_dir, folder, TrainConfig(epochs=1), [0]), folder, "fer train"
    )


def test_a_second_report_into_one_folder_is_refused(tmp_path, monkeypatch):
    from fer_utils.viz import html_report

    monkeypatch.setattr(html_report, "execute_results_notebook", _would_write)
    (tmp_path / "runs").mkdir()
    out = tmp_path / "reports"
    _refusal(lambda: html_report.write_report(tmp_path / "runs", out / "results.html"), out, "fer report")


def test_a_second_predict_into_one_folder_is_refused(tmp_path, monkeypatch, capsys):
    import cv2

    from fer_utils.cli import main
    from fer_utils.deploy import predict

    monkeypatch.setattr(predict, "load_predictor", _would_write)
    image = tmp_path / "photo.jpg"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    out = tmp_path / "predictions"
    with _holding_output_lock(out, "fer predict") as holder:
        assert main(["predict", str(image), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "another fer predict is writing" in error and f"pid {holder.process.pid}" in error


# ----------------------------------------------------------------------------------------------------
# 3. Paths are data, never templates
# ----------------------------------------------------------------------------------------------------

#: Output folder names that papermill, a shell or Python source would read as something else.
AWKWARD_NAMES = ("abl_{seed}", "rep {x}", "odd %s %(x)s", "quote ' and \"", "new\nline")


@pytest.mark.parametrize(
    "name", AWKWARD_NAMES, ids=["braces-param", "braces-unknown", "percent", "quotes", "newline"]
)
def test_papermill_is_given_paths_it_opens_as_they_are(name, tmp_path, monkeypatch):
    """The paths execute_notebook hands papermill come back unchanged through papermill's own path
    formatting, whatever the folder is called."""
    import papermill
    from papermill.parameterize import parameterize_path

    from fer_utils import notebook_execution

    opened = {}

    def fake_execute(input_path, output_path, parameters, **options):
        opened["input"] = parameterize_path(input_path, parameters)
        opened["output"] = parameterize_path(output_path, parameters)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    folder = tmp_path / name
    notebook_execution.execute_notebook(folder / "in.ipynb", folder / "out.ipynb", {"seed": 0}, cwd=tmp_path)
    assert opened == {"input": str(folder / "in.ipynb"), "output": str(folder / "out.ipynb")}


@pytest.mark.slow
def test_fer_ablate_and_report_write_into_folders_named_like_templates(tmp_path, capsys):
    """One real cell (1 epoch) and a report, into folders whose names hold ``{}``, ``%s``, quotes and a
    newline: everything lands where it was asked, nothing lands in ``abl_0``."""
    from test_integrity import tiny_cache

    from fer_utils.cli import main
    from fer_utils.experiments.ablation.grid import EXECUTED_NOTEBOOK, RUNS_FOLDER

    cache = tiny_cache(tmp_path / "cache")
    awkward = "abl_{seed} {x} %s 'q\" \nline"
    out = tmp_path / awkward
    command = [
        "ablate",
        "--cache",
        str(cache.cache_dir),
        "--out",
        str(out),
        "--dropouts",
        "0.5",
        "--l1s",
        "0",
    ]
    assert main([*command, "--seeds", "1", "--epochs", "1"]) == 0, capsys.readouterr()
    cells = [cell for cell in (out / RUNS_FOLDER).iterdir() if not cell.name.startswith(".")]  # not locks
    assert len(cells) == 1 and rundir.is_finished(cells[0]) and (cells[0] / EXECUTED_NOTEBOOK).exists()
    assert not (tmp_path / "abl_0").exists()
    report = tmp_path / "rep {x} %s 'q\" \nline"
    assert main(["report", str(out), "--out", str(report), "--keep-notebook"]) == 0, capsys.readouterr()
    assert (report / "results.html").exists() and (report / "results.ipynb").exists()
    assert "1 finished run(s)" in (report / "results.html").read_text()


# ----------------------------------------------------------------------------------------------------
# 4. Predict output names that never collide
# ----------------------------------------------------------------------------------------------------


def test_predict_of_two_folders_holding_the_same_file_name_keeps_both(tmp_path, monkeypatch):
    from test_integrity import fake_predict

    from fer_utils.cli import main

    fake_predict(monkeypatch)
    for folder in ("dirA", "dirB"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "photo.jpg").write_bytes(folder.encode())  # different photos, one name
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "dirA"), str(tmp_path / "dirB"), "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert summary["summary_file"].is_unique and len(summary) == 2
    for row in summary.itertuples():
        assert json.loads(Path(row.summary_file).read_text())["media_path"] == row.media_path
        assert Path(row.summary_file).name == f"{row.output_name}_summary.json"
    assert sorted(summary["output_name"]) == ["dirA__photo.jpg", "dirB__photo.jpg"]


def test_output_names_are_relative_to_the_common_root_and_unique():
    from fer_utils.deploy.prediction_outputs import output_names

    assert output_names([Path("/m/a/clip.mp4")]) == ["clip.mp4"]
    assert output_names([Path("/m/a/x.jpg"), Path("/m/a/y.jpg")]) == ["x.jpg", "y.jpg"]
    assert output_names([Path("/m/a/x.jpg"), Path("/m/b/c/x.jpg")]) == ["a__x.jpg", "b__c__x.jpg"]
    tricky = output_names(
        [Path("/m/a__b/x.jpg"), Path("/m/a/b__x.jpg"), Path("/m/A/X.JPG"), Path("/m/a/x.jpg")]
    )
    assert len({name.lower() for name in tricky}) == 4  # even on a case-insensitive disk


def test_fer_train_into_a_folder_named_like_a_keras_template(tmp_path):
    """Keras formats its checkpoint path: ``run_{epoch}`` once failed (KeyError) or wrote elsewhere."""
    from test_integrity import quick_run, tiny_cache

    cache = tiny_cache(tmp_path / "cache")
    run = quick_run(cache, tmp_path / "run_{epoch} {seed} %s")
    assert run.path.name == "run_{epoch} {seed} %s" and run.model_path.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "cache",
        run.path.name,
    ]


# ----------------------------------------------------------------------------------------------------
# 5. Disk full in predict: the output folder named, plotly.js written atomically and checked on reuse
# ----------------------------------------------------------------------------------------------------


def _image_prediction(path: str):
    from fer_utils.deploy.media_prediction import MediaPrediction

    faces = pd.DataFrame(
        {"frame_index": [0], "timestamp": [0.0], "status": ["face"], "track_id": [0], "face_index": [0],
         "bbox_x": [0], "bbox_y": [0], "bbox_w": [8], "bbox_h": [8], "predicted_label": ["happy"],
         "confidence": [0.9], "prob_happy": [0.9], "prob_sad": [0.1]}
    )  # fmt: skip
    tracks = pd.DataFrame({"track_id": [0], "faces": [1], "label": ["happy"], "confidence": [0.9]})
    return MediaPrediction(path, ["happy", "sad"], faces, tracks, frames_sampled=1, is_image=True)


def test_a_full_disk_during_predict_names_the_output_folder(tmp_path, monkeypatch, capsys):
    import errno

    from test_integrity import fake_predict

    from fer_utils.cli import main
    from fer_utils.deploy import predict, prediction_outputs

    fake_predict(monkeypatch)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as cv2 / plotly raise it: no file name

    for module in (predict, prediction_outputs):  # summary.csv, and each media file's tables
        monkeypatch.setattr(module, "atomic_write_csv", full_disk)
    (tmp_path / "clip.mp4").write_bytes(b"")
    out = tmp_path / "deep" / "out"
    monkeypatch.chdir(tmp_path)
    assert main(["predict", str(tmp_path / "clip.mp4"), "--out", str(out)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "disk full" in error
    assert f"{out}/clip.mp4_" in error and f"disk holding {out}" in error


def test_a_truncated_plotly_js_is_rewritten_and_a_failed_write_leaves_none(tmp_path, monkeypatch):
    import errno

    from plotly.offline import get_plotlyjs

    from fer_utils import files
    from fer_utils.deploy.prediction_outputs import write_prediction

    image = tmp_path / "photo.jpg"
    import cv2

    cv2.imwrite(str(image), np.zeros((16, 16, 3), np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / "plotly.min.js").write_text(get_plotlyjs()[:1000])  # what a full disk left behind
    write_prediction(_image_prediction(str(image)), out)
    assert (out / "plotly.min.js").read_text() == get_plotlyjs()
    assert 'src="plotly.min.js"' in (out / "photo.jpg_faces.html").read_text()

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    real_replace = os.replace

    def full_disk(source, target):
        if str(target).endswith("plotly.min.js"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(files.os, "replace", full_disk)
    with pytest.raises(files.DiskFull, match="plotly"):
        write_prediction(_image_prediction(str(image)), fresh)
    assert not (fresh / "plotly.min.js").exists() and not list(fresh.glob(".plotly*"))


# ----------------------------------------------------------------------------------------------------
# 6. Low items
# ----------------------------------------------------------------------------------------------------


def test_flipped_bytes_in_a_shard_are_caught_when_training_first_reads_it(tmp_path):
    from fer_utils.faces.shards import CacheDamaged
    from fer_utils.training.train import open_training_cache

    cache = make_cache(tmp_path / "cache", 12)
    shard = _first_shard(cache.cache_dir)
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF  # same size, one pixel changed
    shard.write_bytes(bytes(data))
    assert len(FaceCache(cache.cache_dir).faces(np.arange(12))) == 12  # the size check passes
    with pytest.raises(CacheDamaged, match="sha256"):
        open_training_cache(cache.cache_dir).faces(np.arange(12))


def test_the_progress_bar_is_named_after_the_run_and_an_error_starts_its_own_line(
    tmp_path, monkeypatch, capsys
):
    from test_integrity import quick_run, tiny_cache

    from fer_utils.training import callbacks

    assert callbacks.run_display_name(".fer2013-base.partial-1a2b3c4d") == "fer2013-base"
    assert callbacks.run_display_name("seed-0") == "seed-0"
    cache = tiny_cache(tmp_path / "cache")

    def failing_scores(*args, **kwargs):
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(callbacks, "epoch_scores", failing_scores)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        quick_run(cache, tmp_path / "my-run", verbose=1)
    err = capsys.readouterr().err
    assert "my-run" in err and "partial" not in err
    assert err.endswith("\n")  # the bar is closed: what is printed next starts on its own line


def test_a_report_of_a_folder_holding_only_an_ablation_has_no_leakage_gaps():
    from fer_utils.viz.dashboard.tables import leakage_gaps, protocol_comparison

    assert leakage_gaps(protocol_comparison([])) == {}


def _unreadable(monkeypatch, path: Path) -> None:
    """Make ``path`` unreadable: chmod 000, and (root reads through any mode) listing or opening it
    raises PermissionError as it does for an ordinary user."""
    path.chmod(0)
    if os.geteuid() != 0:
        return
    denied = PermissionError(13, "Permission denied", str(path))
    real_iterdir, real_scandir, real_open = Path.iterdir, os.scandir, open

    def iterdir(self):
        if self == path:
            raise denied
        return real_iterdir(self)

    def scandir(target="."):
        if Path(target) == path:
            raise denied
        return real_scandir(target)

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, str | os.PathLike) and Path(file) == path:
            raise denied
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr("builtins.open", guarded_open)


def test_an_unreadable_class_folder_or_image_is_skipped_as_permission_denied(tmp_path, monkeypatch, capsys):
    import cv2
    from fixture_media import face_frame

    from fer_utils.cli import main as fer_main

    root = tmp_path / "faces"
    for name in ("happy/a.png", "happy/locked.png", "sad/b.png", "angry/c.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), cv2.cvtColor(face_frame(), cv2.COLOR_BGR2GRAY))
    _unreadable(monkeypatch, root / "angry")
    _unreadable(monkeypatch, root / "happy" / "locked.png")
    try:
        code = fer_main(
            ["preprocess", "--root", str(root), "--cache-root", str(tmp_path / "cache"), "--detector", "none"]
            + ["--workers", "1", "--no-progress"]
        )
    finally:
        (root / "angry").chmod(0o755)
        (root / "happy" / "locked.png").chmod(0o644)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    cache = FaceCache(next((tmp_path / "cache").iterdir()))
    reasons = dict(zip(cache.skipped["media_path"], cache.skipped["reason"], strict=True))
    assert set(reasons) == {str(root / "angry"), str(root / "happy" / "locked.png")}
    assert all("permission denied" in reason for reason in reasons.values()), reasons
    assert not any("decodable" in reason for reason in reasons.values())
    assert set(cache.index["media_path"]) == {str(root / "happy" / "a.png"), str(root / "sad" / "b.png")}


def test_an_unreadable_folder_in_a_video_layout_is_recorded_not_silently_left_out(tmp_path, monkeypatch):
    from fixture_media import face_video

    from fer_utils.data.datasets import dataset_samples

    root = tmp_path / "ravdess"
    face_video(root / "Actor_01/01-01-03-01-01-01-01.mp4", frames=2)
    face_video(root / "Actor_02/01-01-04-02-01-01-02.mp4", frames=2)
    _unreadable(monkeypatch, root / "Actor_02")
    try:
        samples, skipped = dataset_samples("ravdess", root)
    finally:
        (root / "Actor_02").chmod(0o755)
    assert [Path(s.media_path).parent.name for s in samples] == ["Actor_01"]
    assert [(item.media_path, item.reason) for item in skipped] == [
        (str(root / "Actor_02"), "unreadable: permission denied (the folder cannot be listed)")
    ]


def _one_line_error(code: int, err: str, command: str) -> str:
    """The error of a failed command: exit status non-zero, one line on stderr, no traceback."""
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and "Traceback" not in err, (code, err)
    assert lines[0].startswith(f"fer {command}: error: ")
    return lines[0]


def test_fer_export_of_a_model_holding_a_module_function_lambda_is_one_line(tmp_path, capsys):
    import operator

    import keras

    from fer_utils.cli import main as fer_main

    run = tmp_path / "run"
    run.mkdir()
    inputs = keras.Input((48, 48, 1))
    hidden = keras.layers.Flatten()(keras.layers.Lambda(operator.neg)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model.save(run / rundir.MODEL_FILE)
    (run / rundir.CONFIG_FILE).write_text(json.dumps({"labels": ["a", "b", "c"], "image_size": 48}))
    code = fer_main(["export", str(run), "--format", "tflite"])
    line = _one_line_error(code, capsys.readouterr().err, "export")
    assert "Lambda layer" in line and str(run / rundir.MODEL_FILE) in line
    assert not (run / "model.tflite").exists()


@pytest.mark.parametrize("suffix", [".onnx", ".tflite", ".keras"])
def test_fer_predict_of_a_garbage_model_file_is_one_line(suffix, tmp_path, capsys):
    from fer_utils.cli import main as fer_main

    model = tmp_path / f"model{suffix}"
    model.write_bytes(np.random.default_rng(0).bytes(4096))
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"")  # never read: the model is loaded first
    code = fer_main(["predict", str(photo), "--model", str(model), "--out", str(tmp_path / "out")])
    line = _one_line_error(code, capsys.readouterr().err, "predict")
    assert str(model) in line and "not a valid" in line


def test_an_unreadable_split_folder_is_skipped_and_the_other_splits_kept(tmp_path, monkeypatch):
    from fer_utils.data.class_folders import folder_samples
    from fer_utils.data.samples import PERMISSION_DENIED_FOLDER

    root = tmp_path / "fer2013"
    for name in ("train/happy/a.png", "test/sad/b.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"png")
    _unreadable(monkeypatch, root / "test")
    try:
        samples, skipped = folder_samples(root, "fer2013", split_dirs=True)
    finally:
        (root / "test").chmod(0o755)
    assert [sample.media_path for sample in samples] == [str(root / "train/happy/a.png")]
    assert [(item.media_path, item.reason) for item in skipped] == [
        (str(root / "test"), PERMISSION_DENIED_FOLDER)
    ]
