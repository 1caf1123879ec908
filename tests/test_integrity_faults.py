"""Issue 14, second half: workers that die with their parent, full disks as one message, every input
accounted for, duplicate content flagged, and tracebacks turned into messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings

import pytest

psutil = pytest.importorskip("psutil", reason="psutil lists a process's workers")


def _fer_process(*args, cwd):
    """``fer ARGS`` in its own process group (so the test can only ever signal what it started)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "fer_utils.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _living(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_for_workers(process, count, timeout=120.0) -> list[int]:
    """Pids of ``process``'s descendants once at least ``count`` exist (pool workers)."""
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"fer ended (rc {process.returncode}) before its workers were seen")
        children = parent.children(recursive=True)
        if len(children) >= count:
            time.sleep(1.0)  # let them start working
            return [child.pid for child in parent.children(recursive=True)]
        time.sleep(0.2)
    pytest.fail(f"fer did not start {count} workers in {timeout} s")


def _assert_gone_within(pids, seconds=5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _living(pids):
        time.sleep(0.1)
    left = _living(pids)
    for pid in left:  # clean up after a failure: only the processes this test started
        os.kill(pid, signal.SIGKILL)
    assert not left, f"orphaned workers still alive {seconds} s after their parent ended: {left}"


@pytest.fixture()
def ravdess_tree(pyfeat_media, tmp_path):
    from fer_utils.data.datasets import pyfeat_ravdess_tree

    return pyfeat_ravdess_tree(tmp_path / "ravdess", pyfeat_media)


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_preprocess_workers_die_with_their_parent(ravdess_tree, tmp_path, signal_number):
    """kill -9 (or Ctrl-C) of `fer preprocess` leaves no worker process alive after 5 s."""
    process = _fer_process(
        "preprocess", "--dataset", "ravdess", "--root", str(ravdess_tree), "--cache-root",
        str(tmp_path / "cache"), "--workers", "2", "--no-progress", "--candidates", "6", cwd=tmp_path,
    )  # fmt: skip
    try:
        workers = _wait_for_workers(process, 2)
        os.kill(process.pid, signal_number)
        process.wait(timeout=30)
        _assert_gone_within(workers)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
def test_fer_train_seeds_workers_die_with_their_parent(tmp_path):
    """kill -9 of `fer train --seeds` (a spawn pool of TensorFlow workers) leaves no worker after 5 s."""
    from test_integrity import tiny_cache

    cache = tiny_cache(tmp_path / "cache", n=200)
    process = _fer_process(
        "train", "--cache", str(cache.cache_dir), "--out", str(tmp_path / "seeds"), "--seeds", "0", "1",
        "--workers", "2", "--epochs", "500", "--batch-size", "4", cwd=tmp_path,
    )  # fmt: skip
    try:
        workers = _wait_for_workers(process, 3, timeout=300)  # the resource tracker and two runs
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        _assert_gone_within(workers)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _sleep_item(seconds):
    time.sleep(seconds)
    return seconds


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_pool_workers_end_with_their_parent_even_mid_item(tmp_path, signal_number):
    """parallel_map's workers die with a kill -9'd parent; Ctrl-C ends parent and workers at once
    (no waiting for the items they run)."""
    # A shell starts background jobs with SIGINT ignored and Python keeps that; a terminal's Ctrl-C reaches a
    # foreground process, whose Python turns it into KeyboardInterrupt: the script starts as that one would.
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from fer_utils.parallel import parallel_map\n"
        "from test_integrity_faults import _sleep_item\n"
        "for method in ('fork', 'spawn'):\n"
        "    list(parallel_map(_sleep_item, [0.0, 0.0], workers=2, start_method=method))\n"
        "print('ready', flush=True)\n"
        "list(parallel_map(_sleep_item, [600.0] * 2, workers=2, start_method='spawn'))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), *sys.path])}
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        workers = _wait_for_workers(process, 2)
        os.kill(process.pid, signal_number)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("the parent was still waiting for its workers' items 10 s after the signal")
        _assert_gone_within(workers)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --------------------------------------------------------------------------------------- full disks


@pytest.fixture()
def small_image_folder(fer2013_root, tmp_path):
    """A class-folder dataset of 12 real FER2013 faces (two classes)."""
    import shutil

    root = tmp_path / "faces"
    for label in ("happy", "sad"):
        (root / label).mkdir(parents=True)
        for image in sorted((fer2013_root / "test" / label).glob("*.jpg"))[:6]:
            shutil.copy(image, root / label / image.name)
    return root


def _preprocess_args(root, cache_root):
    return ["preprocess", "--root", str(root), "--cache-root", str(cache_root), "--detector", "none",
            "--face-size", "48", "--workers", "1", "--no-progress"]  # fmt: skip


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_a_full_disk_during_preprocess_is_one_message_and_the_cache_resumes(
    small_image_folder, tmp_path, monkeypatch, capsys
):
    """ENOSPC while a shard is saved: one line (what, where, free space), exit ≠ 0; a rerun finishes."""
    import errno

    import numpy as np

    from fer_utils.cli import main as fer_main
    from fer_utils.faces.cache import FaceCache

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(np, "save", no_space)
        code = fer_main(_preprocess_args(small_image_folder, tmp_path / "cache"))
    error = capsys.readouterr().err.strip()
    assert code != 0
    assert len(error.splitlines()) == 1, error
    assert "disk full" in error and "face shard" in error and str(tmp_path / "cache") in error
    assert "free of" in error and "needed" in error
    assert fer_main(_preprocess_args(small_image_folder, tmp_path / "cache")) == 0
    (cache_dir,) = (tmp_path / "cache").iterdir()
    assert len(FaceCache(cache_dir)) == 12
    assert not list(cache_dir.rglob(".*.tmp*")), "a failed write left its temporary file"


def _in_small_tmpfs(script: str, size: str, mount_point) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace with a tmpfs of ``size`` at ``mount_point``."""
    import shutil

    if not shutil.which("unshare"):
        pytest.skip("no `unshare` to mount a private tmpfs")
    mount_point.mkdir()
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {mount_point}"],
        capture_output=True, text=True,
    )  # fmt: skip
    if probe.returncode:
        pytest.skip(f"mounting a tmpfs is not permitted here: {probe.stderr.strip()}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    full = f"set -u; mount -t tmpfs -o size={size} tmpfs {mount_point}\n{script}"
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", full], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.slow
def test_a_full_tmpfs_during_preprocess_then_more_space_resumes(small_image_folder, tmp_path):
    """On a real 8 KiB tmpfs `fer preprocess` fails with one message; remounted larger, it finishes."""
    fer = f"{sys.executable} -m fer_utils.cli"
    disk = tmp_path / "disk"
    args = " ".join(_preprocess_args(small_image_folder, disk / "cache"))
    script = (
        f"{fer} {args} 2> {tmp_path}/first.err; echo first=$?\n"
        f"mount -o remount,size=4m {disk}\n"
        f"{fer} {args}; echo second=$?\n"
    )
    result = _in_small_tmpfs(script, "8k", disk)
    first_error = (tmp_path / "first.err").read_text().strip()
    assert "first=1" in result.stdout, result.stdout + result.stderr
    assert len(first_error.splitlines()) == 1 and "disk full" in first_error, first_error
    assert "Traceback" not in first_error
    assert "second=0" in result.stdout and "faces: 12" in result.stdout, result.stdout + result.stderr


@pytest.mark.slow
def test_a_full_tmpfs_during_fer_train_is_one_message_and_leaves_no_run(tmp_path):
    """`fer train --out` on a full tmpfs: one message, exit ≠ 0, no run folder and no partial left."""
    from test_integrity import tiny_cache

    cache = tiny_cache(tmp_path / "cache")
    disk = tmp_path / "disk"
    script = (
        f"{sys.executable} -m fer_utils.cli train --cache {cache.cache_dir} --out {disk}/run "
        f"--epochs 1 --batch-size 8 2> {tmp_path}/train.err; echo rc=$?; ls -A {disk}\n"
    )
    result = _in_small_tmpfs(script, "64k", disk)
    stderr = (tmp_path / "train.err").read_text()  # also TensorFlow's start-up lines and the bar
    error = [line[line.index("fer train:") :] for line in stderr.splitlines() if "fer train:" in line]
    assert "rc=1" in result.stdout, result.stdout + result.stderr
    assert len(error) == 1 and "disk full" in error[0] and "model checkpoint" in error[0], stderr
    assert "Traceback" not in stderr
    assert "partial" not in result.stdout and "\nrun\n" not in result.stdout, result.stdout


# --------------------------------------------------------------------------------- clear messages


@pytest.mark.parametrize("flag", ["--cache-root", "--out"])
@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_a_folder_flag_naming_a_regular_file_is_a_one_line_error(flag, small_image_folder, tmp_path, capsys):
    """--cache-root / --out naming an existing file: a one-line CLI error, no traceback."""
    from test_integrity import tiny_cache

    from fer_utils.cli import main as fer_main

    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    if flag == "--cache-root":
        code = fer_main(_preprocess_args(small_image_folder, a_file))
    else:
        cache = tiny_cache(tmp_path / "cache")
        code = fer_main(
            ["train", "--cache", str(cache.cache_dir), "--out", str(a_file / "run"), "--seeds", "0", "1"]
        )
    error = capsys.readouterr().err.strip()
    assert code != 0 and len(error.splitlines()) == 1, error
    assert str(a_file) in error and "file" in error


@pytest.fixture(scope="module")
def bad_keras_files(tmp_path_factory):
    """A Lambda-of-a-builtin model, a truncated model and garbage bytes, all named .keras."""
    import keras

    folder = tmp_path_factory.mktemp("bad_keras")
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Lambda(abs)(inputs)).save(folder / "lambda.keras")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(folder / "good.keras")
    data = (folder / "good.keras").read_bytes()
    (folder / "truncated.keras").write_bytes(data[: len(data) // 2])
    (folder / "garbage.keras").write_bytes(b"\x00garbage" * 100)
    return folder


@pytest.mark.parametrize("name", ["truncated", "garbage"])
def test_a_damaged_keras_file_is_not_a_valid_model_not_file_not_found(bad_keras_files, name):
    from fer_utils.deploy.predictors import load_predictor

    with pytest.raises(ValueError, match="is not a valid Keras model file") as caught:
        load_predictor(bad_keras_files / f"{name}.keras")
    assert "File not found" not in str(caught.value)


def test_a_keras_lambda_naming_a_builtin_is_a_clear_refusal(bad_keras_files):
    from fer_utils.deploy.predictors import load_predictor

    with pytest.raises(ValueError, match="Lambda layer"):
        load_predictor(bad_keras_files / "lambda.keras")


# ------------------------------------------------------------------------------ inputs and duplicates


def _preprocess_ravdess(root, cache_root, capsys):
    """`fer preprocess` of a RAVDESS tree (2 frames per clip, quick); returns (cache, stdout)."""
    from fer_utils.cli import main as fer_main
    from fer_utils.faces.cache import FaceCache

    args = ["preprocess", "--dataset", "ravdess", "--root", str(root), "--cache-root", str(cache_root),
            "--frames", "2", "--candidates", "1", "--workers", "1", "--no-progress"]  # fmt: skip
    assert fer_main(args) == 0
    out = capsys.readouterr().out
    (cache_dir,) = cache_root.iterdir()
    return FaceCache(cache_dir), out


@pytest.mark.slow
def test_every_file_under_a_ravdess_tree_ends_in_the_index_or_skipped(ravdess_tree, tmp_path, capsys):
    """Dangling symlink, symlink self-loop, folder loop and an animated GIF are skipped with a reason,
    and `fer preprocess` prints found = kept + skipped."""
    from PIL import Image

    actor = ravdess_tree / "Actor_01"
    dangling = actor / "01-01-03-01-01-02-01.mp4"
    dangling.symlink_to(tmp_path / "missing.mp4")
    self_loop = actor / "01-01-03-01-02-01-01.mp4"
    self_loop.symlink_to(self_loop)
    folder_loop = actor / "again"
    folder_loop.symlink_to(ravdess_tree)
    gif = actor / "animated.gif"
    frames = [Image.new("L", (32, 32), shade) for shade in (0, 255)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)

    cache, out = _preprocess_ravdess(ravdess_tree, tmp_path / "cache", capsys)
    reasons = dict(zip(cache.skipped["media_path"], cache.skipped["reason"], strict=True))
    assert "dangling symlink" in reasons[str(dangling)]
    assert "symlink loop" in reasons[str(self_loop)]
    assert "folder loop" in reasons[str(folder_loop)]
    assert reasons[str(gif)].startswith("name does not match the layout")
    media = [p for p in ravdess_tree.rglob("*") if not p.is_dir() or p.is_symlink()]
    accounted = set(cache.index["media_path"]) | set(cache.skipped["media_path"])
    assert {str(p) for p in media} == accounted
    kept, skipped = cache.index["media_path"].nunique(), len(cache.skipped)
    assert f"inputs: {kept + skipped} found = {kept} kept + {skipped} skipped" in out


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_a_folder_layout_accounts_for_gifs_and_broken_links(small_image_folder, tmp_path):
    from fer_utils.data.class_folders import folder_samples

    happy = small_image_folder / "happy"
    (happy / "animated.gif").write_bytes(b"GIF89a")
    (happy / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    samples, skipped = folder_samples(small_image_folder)
    reasons = {item.media_path: item.reason for item in skipped}
    assert reasons[str(happy / "animated.gif")].startswith("not a media file: .gif")
    assert "dangling symlink" in reasons[str(happy / "gone.jpg")]
    assert len(samples) == 12


@pytest.mark.slow
def test_the_same_clip_under_two_actors_is_flagged_and_refused_across_a_split(ravdess_tree, tmp_path, capsys):
    """Identical faces carry one hash: duplicates.csv lists them, and a split with them on both sides is
    refused (naming the files) unless allow_duplicate_leakage, which warns."""
    import numpy as np
    import pandas as pd

    from fer_utils.training.splits import Split, check_leakage

    first = ravdess_tree / "Actor_01" / "01-01-03-01-01-01-01.mp4"
    copy = ravdess_tree / "Actor_07" / "01-01-03-01-01-01-07.mp4"
    copy.parent.mkdir()
    copy.symlink_to(first.resolve())
    cache, out = _preprocess_ravdess(ravdess_tree, tmp_path / "cache", capsys)
    assert "duplicate content" in out
    duplicates = pd.read_csv(cache.cache_dir / "duplicates.csv")
    assert set(duplicates["media_path"]) == {str(first), str(copy)}
    assert duplicates.groupby("face_hash")["video_id"].nunique().min() == 2

    index = cache.index
    test = index.loc[index["media_path"] == str(copy), "face_id"].to_numpy()
    rest = index.loc[index["media_path"] != str(copy), "face_id"].to_numpy()
    split = Split("subject", rest, np.array([], dtype=int), test)
    with pytest.raises(ValueError, match="duplicate-content leakage") as caught:
        check_leakage(index, split)
    assert str(first) in str(caught.value) and str(copy) in str(caught.value)
    paper = Split("paper", rest, np.array([], dtype=int), test)  # knowingly optimistic: a loud warning
    for allowed, part in ((True, split), (False, paper)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no UserWarning repeating the line
            check_leakage(index, part, allow_duplicate_leakage=allowed)
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("WARNING: duplicate-content leakage"), lines


def test_older_caches_without_face_hashes_get_them_on_read(tmp_path):
    """A cache written before faces carried a hash gets the same hashes computed from its pixels."""
    import json

    from test_integrity import tiny_cache

    from fer_utils.faces.cache import FaceCache

    cache = tiny_cache(tmp_path / "cache")
    expected = cache.index.set_index("face_id")["face_hash"]
    for meta_path in (cache.cache_dir / "shards").glob("shard-*.json"):
        meta = json.loads(meta_path.read_text())
        for row in meta["index"]:
            row.pop("face_hash")
        meta_path.write_text(json.dumps(meta))
    old = FaceCache(cache.cache_dir, check_index=False)
    assert "face_hash" not in old.index.columns
    hashes = old.ensure_face_hashes().set_index("face_id")["face_hash"]
    assert hashes.equals(expected)


def test_allow_duplicate_leakage_is_a_train_flag():
    from fer_utils.cli import build_parser

    args = build_parser(["train"]).parse_args(
        ["train", "--cache", "c", "--out", "o", "--allow-duplicate-leakage"]
    )
    assert args.allow_duplicate_leakage is True
