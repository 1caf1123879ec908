"""Samples → face cache: real clips, faulty files, resume after kill -9, parallel backends, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixture_media import face_video, noface_video, touch

from fer_utils.bench.preprocessing import DEFAULT_SETTINGS, benchmark_preprocessing, format_benchmark
from fer_utils.cli import main as fer_main
from fer_utils.data.datasets import PYFEAT_RAVDESS_NAMES, dataset_samples, pyfeat_ravdess_tree
from fer_utils.data.samples import Sample
from fer_utils.faces.cache import FaceCache
from fer_utils.faces.cache_overview import detection_rates, face_grid
from fer_utils.faces.detection import detect_faces
from fer_utils.faces.preprocess import preprocess
from fer_utils.faces.preprocess_config import PreprocessConfig
from fer_utils.faces.sample_faces import process_sample
from fer_utils.parallel import parallel_map

TESTS_DIR = Path(__file__).resolve().parent


def _frame_at(path: str, index: int) -> np.ndarray:
    capture = cv2.VideoCapture(path)
    for _ in range(index):
        capture.grab()
    ok, image = capture.read()
    capture.release()
    assert ok, f"frame {index} of {path} does not decode"
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_real_clips_in_a_ravdess_tree(pyfeat_media, tmp_path):
    root = pyfeat_ravdess_tree(tmp_path / "ravdess", pyfeat_media)
    samples, skipped = dataset_samples("ravdess", root)
    assert len(samples) == 5 and not skipped
    cache = preprocess(samples, tmp_path / "cache", PreprocessConfig(), workers=2, progress=False)

    by_source = {source: str(root / target) for source, target in PYFEAT_RAVDESS_NAMES.items()}
    counts = cache.index.groupby("media_path").size()
    assert counts[by_source["single_face.mp4"]] == 6
    assert counts[by_source["WolfgangLanger_Pexels.mp4"]] == 6
    reasons = dict(zip(cache.skipped["media_path"], cache.skipped["reason"], strict=True))
    assert list(reasons) == [by_source["no_face.mp4"]] and reasons[by_source["no_face.mp4"]].startswith(
        "no face"
    )
    assert cache.faces(cache.index["face_id"]).shape == (len(cache), 180, 180)

    # Partly face-less clips: processed, and every kept frame really shows a face.
    for source in ("face_noface.mov", "noface_face.mov"):
        rows = cache.index[cache.index["media_path"] == by_source[source]]
        assert 1 <= len(rows) <= 6 and rows["frame_index"].is_unique
        for row in rows.itertuples():
            assert detect_faces(_frame_at(by_source[source], row.frame_index), detect_width=640), (
                source,
                row,
            )
    stats = cache.stats.set_index("media_path")
    assert (stats["face_frames"] <= stats["sampled_frames"]).all()
    assert stats.loc[by_source["no_face.mp4"], "face_frames"] == 0
    assert stats.loc[by_source["single_face.mp4"], "faces"] == 6
    assert set(cache.index["label"]) == {"happy", "neutral", "angry", "fearful"}
    assert 1 < cache.index["timestamp_s"].max() < 60 and (cache.index["detector"] == "hog").all()

    # Notebook tables: the per-clip detection rate (worst first) and a face grid per class.
    rates = detection_rates(cache)
    assert len(rates) == 5 and rates["media_path"][0] == by_source["no_face.mp4"] and rates["rate"][0] == 0
    assert rates["reason"][0].startswith("no face") and (rates["rate"].iloc[-1] == 1.0)
    assert set(rates.loc[rates["faces"] > 0, "label"]) == set(cache.labels)
    grid, labels = face_grid(cache, per_class=3)
    assert grid.shape == (len(labels) * 3, 180, 180) and labels == cache.labels


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_group_photo_yields_its_largest_face(pyfeat_media):
    sample = Sample("folder", str(pyfeat_media / "multi_face.jpg"), "happy", None, "multi")
    result = process_sample(sample, PreprocessConfig())
    assert result.reason is None and len(result.rows) == 1
    gray = cv2.imread(sample.media_path, cv2.IMREAD_GRAYSCALE)
    largest = max(detect_faces(gray, detect_width=640), key=lambda box: box.area)
    row = result.rows[0]
    assert (row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"]) == (
        largest.x,
        largest.y,
        largest.w,
        largest.h,
    )


def test_faulty_files_are_recorded_and_nothing_else_is_lost(tmp_path):
    root = tmp_path / "ravdess"
    good = [
        face_video(root / "Actor_01/01-01-03-01-01-01-01.mp4"),
        face_video(root / "Actor_02/01-01-04-02-01-01-02.mp4"),
        face_video(root / "Actor_02/01-01-05-02-02-02-02.mp4", face_every=2),
    ]
    data = good[0].read_bytes()
    faulty = {
        touch(root / "Actor_03/01-01-03-01-01-01-03.mp4", data[: len(data) // 3]): (
            "unreadable",
            "no decodable",
        ),
        touch(root / "Actor_03/01-01-04-01-01-01-03.mp4", np.random.default_rng(1).bytes(4096)): (
            "unreadable",
        ),
        touch(root / "Actor_03/01-01-05-01-01-01-03.mp4"): ("unreadable",),
        touch(root / "Actor_03/01-01-06-01-01-01-03.mp4", b"hello, I am a text file\n"): ("unreadable",),
        root / "Actor_03/01-01-07-01-01-01-03.mp4": ("unreadable",),  # a directory named like a video
        touch(root / "Actor_03/01-01-12-01-01-01-03.mp4", data): ("unknown emotion code",),
        noface_video(root / "Actor_03/01-01-08-01-01-01-03.mp4"): ("no face",),
    }
    (root / "Actor_03/01-01-07-01-01-01-03.mp4").mkdir(parents=True)
    samples, skipped = dataset_samples("ravdess", root)
    cache = preprocess(
        samples, tmp_path / "cache", PreprocessConfig(), skipped=skipped, workers=2, progress=False
    )
    reasons = dict(zip(cache.skipped["media_path"], cache.skipped["reason"], strict=True))
    assert set(reasons) == {str(path) for path in faulty}
    for path, expected in faulty.items():
        assert reasons[str(path)].startswith(expected), (path.name, reasons[str(path)])
    counts = cache.index.groupby("media_path").size().to_dict()
    assert counts == {str(path): 6 for path in good}
    # The clip with a face on every other frame still gives 6 face frames out of its 12.
    assert set(cache.index.loc[cache.index["media_path"] == str(good[2]), "frame_index"] % 2) == {0}


def test_min_faces_and_config_key(tmp_path):
    clip = face_video(tmp_path / "happy" / "sparse.mp4", frames=12, face_every=4)  # 3 face frames
    samples, _ = dataset_samples("folder", tmp_path)
    strict = PreprocessConfig(min_faces=6)
    cache = preprocess(samples, tmp_path / "cache", strict, progress=False, workers=1)
    assert len(cache) == 0 and cache.skipped["reason"][0].startswith("fewer faces than 6: found 3")
    loose = preprocess(samples, tmp_path / "cache", PreprocessConfig(), progress=False, workers=1)
    assert len(loose) == 3 and loose.cache_dir != cache.cache_dir
    paper = preprocess(
        samples, tmp_path / "cache", PreprocessConfig(candidates_per_frame=1), progress=False, workers=1
    )
    assert len(paper) == 2  # frames 0, 2, 4, 7, 9, 11: faces on 0 and 4 only
    assert len({cache.cache_dir, loose.cache_dir, paper.cache_dir}) == 3
    again = preprocess(samples, tmp_path / "cache", PreprocessConfig(), progress=False, workers=1)
    assert again.report.resumed == 1 and again.report.processed == 0 and len(again) == 3
    assert json.loads((again.cache_dir / "config.json").read_text())["config"]["detector"] == "hog"
    with pytest.raises(ValueError, match="min_faces"):
        PreprocessConfig(min_faces=7)
    with pytest.raises(ValueError, match="detector"):
        PreprocessConfig(detector="viola-jones")
    assert clip.exists()


KILL_SCRIPT = """
import sys
from fer_utils.data.datasets import dataset_samples
from fer_utils.faces.preprocess import preprocess
from fer_utils.faces.preprocess_config import PreprocessConfig
samples, skipped = dataset_samples("ravdess", sys.argv[1])
config = PreprocessConfig(upsample=1, detect_width=None)
preprocess(samples, sys.argv[2], config, skipped=skipped, workers=2, shard_size=1, progress=False)
"""


def _kill_tree(root: Path, clips: int) -> None:
    for number in range(clips):
        actor = 1 + number % 4
        name = f"Actor_{actor:02d}/01-01-0{1 + number % 8}-01-0{1 + number % 2}-0{1 + number // 16}-{actor:02d}.mp4"
        face_video(root / name, frames=24, size=(320, 240))
    touch(root / "Actor_01" / "01-01-09-01-01-01-01.mp4")  # unknown emotion: in the skipped table


@pytest.mark.slow
def test_kill_minus_9_then_resume_gives_the_same_cache(tmp_path):
    root = tmp_path / "ravdess"
    _kill_tree(root, clips=24)
    samples, skipped = dataset_samples("ravdess", root)
    config = PreprocessConfig(upsample=1, detect_width=None)
    reference = preprocess(
        samples, tmp_path / "reference", config, skipped=skipped, workers=1, progress=False
    )

    killed_root = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR.parent)}
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(root), str(killed_root)], env=env, start_new_session=True
    )
    shard_dir = reference.cache_dir.parent.parent / "killed" / reference.cache_dir.name / "shards"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(shard_dir.glob("shard-*.json"))) < 4:
        assert process.poll() is None, "the run finished before it could be killed; make it longer"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    _wait_until_the_group_is_gone(process.pid)  # its workers held the cache's lock until they died
    done = set()
    for meta in shard_dir.glob("shard-*.json"):
        done.update(json.loads(meta.read_text())["items"])
    assert 0 < len(done) < len(samples) + len(skipped), "the kill did not land in the middle"

    resumed = preprocess(samples, killed_root, config, skipped=skipped, workers=2, progress=False)
    assert resumed.report.resumed == len(done & {sample.media_path for sample in samples}) > 0
    assert resumed.cache_dir.name == reference.cache_dir.name
    columns = [c for c in reference.index.columns if c not in ("shard", "offset")]
    assert resumed.index[columns].equals(reference.index[columns])
    assert resumed.skipped.equals(reference.skipped)
    np.testing.assert_array_equal(
        resumed.faces(resumed.index["face_id"]), reference.faces(reference.index["face_id"])
    )


def _wait_until_the_group_is_gone(group: int, seconds: float = 30.0) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"processes of group {group} still alive {seconds} s after SIGKILL")


def _square(value):
    return value * value


def _fail_on_three(value):
    if value == 3:
        raise RuntimeError("three is bad")
    return value


def test_parallel_map_local_processes_is_bounded_and_complete():
    consumed = []

    def items():
        for value in range(40):
            consumed.append(value)
            yield value

    results = parallel_map(_square, items(), workers=2, window=4)
    first = next(results)
    assert len(consumed) <= 5 and first in {v * v for v in range(5)}
    assert sorted([first, *results]) == [v * v for v in range(40)]
    assert list(parallel_map(_square, range(5), workers=1)) == [0, 1, 4, 9, 16]
    with pytest.raises(RuntimeError, match="three is bad"):
        list(parallel_map(_fail_on_three, range(6), workers=2))
    with pytest.raises(ValueError, match="workers"):
        parallel_map(_square, range(3), workers=0)


def test_dask_local_cluster_backend(tmp_path):
    from distributed import LocalCluster

    for name in ("01-01-03-01-01-01-01.mp4", "01-01-04-01-01-01-01.mp4"):
        face_video(tmp_path / "ravdess" / "Actor_01" / name)
    samples, _ = dataset_samples("ravdess", tmp_path / "ravdess")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        assert sorted(parallel_map(_square, range(10), scheduler=cluster.scheduler_address, window=3)) == [
            v * v for v in range(10)
        ]
        cache = preprocess(
            samples,
            tmp_path / "cache",
            PreprocessConfig(),
            scheduler=cluster.scheduler_address,
            progress=False,
        )
    assert len(cache) == 12 and sorted(cache.index["label"].unique()) == ["happy", "sad"]


def test_cli_preprocess_prints_folder_counts_and_skips(tmp_path, capsys):
    root = tmp_path / "savee" / "AudioVisualClip"
    face_video(root / "DC" / "h01.avi")
    face_video(root / "JE" / "sa02.avi")
    noface_video(root / "JE" / "a03.avi")
    touch(root / "KL" / "q01.avi")
    code = fer_main(
        [
            "preprocess",
            "--dataset",
            "savee",
            "--root",
            str(tmp_path / "savee"),
            "--cache-root",
            str(tmp_path / "cache"),
            "--workers",
            "1",
            "--face-size",
            "64",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    cache_dir = next((tmp_path / "cache").iterdir())
    assert f"cache: {cache_dir}" in out and "faces: 12 from 2 videos; skipped: 2" in out
    assert "skipped (no face): 1" in out and "skipped (unknown emotion code): 1" in out
    assert FaceCache(cache_dir).image_size == 64


def test_benchmark_reports_every_setting(tmp_path):
    face_video(tmp_path / "face.mp4")
    noface_video(tmp_path / "empty_room.mp4")
    result = benchmark_preprocessing(tmp_path, repeats=1)
    assert set(result["settings"]) == set(DEFAULT_SETTINGS) and result["speedup_vs_naive"]["naive"] == 1.0
    for row in result["settings"].values():
        assert row["faces"] == 6 and row["clips_with_faces"] == 1 and row["clips_per_second_per_core"] > 0
    assert result["settings"]["default"]["per_clip"]["empty_room.mp4"]["reason"].startswith("no face")
    assert "| default |" in format_benchmark(result)
    assert set(result["stages"]) == {"naive", "default"}
    for stages in result["stages"].values():
        assert set(stages) == {
            "decode_ms_per_clip",
            "detect_ms_per_clip",
            "crop_resize_ms_per_clip",
            "write_ms_per_clip",
        }
        assert all(ms > 0 for ms in stages.values())
    assert "detect ms/clip" in format_benchmark(result)
    assert set(benchmark_preprocessing(tmp_path, quick=True)["settings"]) == {"naive", "default"}
    (tmp_path / "no_clips").mkdir()
    with pytest.raises(ValueError, match="no video files"):
        benchmark_preprocessing(tmp_path / "no_clips")


@pytest.mark.slow
def test_notebook_01_runs_on_the_real_clips(pyfeat_media, tmp_path):
    """As ``fer run`` executes it (the suite's quiet kernel): faces found, figures drawn, and no progress
    bar saved at its first state (a widget whose text read "0/96")."""
    import nbformat

    from fer_utils.notebook_execution import execute_notebook
    from fer_utils.paths import NOTEBOOKS_DIR

    source = NOTEBOOKS_DIR / "01_preprocessing.ipynb"
    committed = nbformat.read(source, as_version=4)
    assert all(not cell.get("outputs") for cell in committed.cells if cell.cell_type == "code")
    output = tmp_path / "01.ipynb"
    parameters = {"root": "pyfeat", "cache_root": str(tmp_path / "cache"), "workers": 2}
    execute_notebook(source, output, parameters, tmp_path)
    executed = nbformat.read(output, as_version=4)
    outputs = [out for cell in executed.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if "application/vnd.jupyter.widget-view+json" in out.get("data", {})]
    assert not [out for out in outputs if "it/s]" in str(out) or "clip/s]" in str(out)]
    text = "\n".join(
        out.get("text", "") for cell in executed.cells if cell.cell_type == "code" for out in cell.outputs
    )
    assert "faces: 24 from 4 videos; skipped: 1" in text and "{'no face': 1}" in text
    figures = [
        out
        for cell in executed.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "application/vnd.plotly.v1+json" in out.get("data", {})
    ]
    assert len(figures) >= 4


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_class_folders_renamed_at_ingestion_are_said_once_and_recorded(fer2013_root, tmp_path, capsys):
    """``anger/ sadness/`` become the labels ``angry``/``sad``: printed, kept in the cache's config.json,
    and named when a label map uses the folder name."""
    from fer_utils.experiments.cross_dataset import label_mapping
    from fer_utils.faces.preprocess import image_folder_cache

    folders = {"angry": "anger", "sad": "sadness", "happy": "happy"}
    for source, name in folders.items():
        (tmp_path / "posed" / name).mkdir(parents=True)
        for image in sorted((fer2013_root / "test" / source).iterdir())[:4]:
            (tmp_path / "posed" / name / image.name).symlink_to(image)
    cache = image_folder_cache(tmp_path / "posed", tmp_path / "cache", face_size=48, progress=False)
    printed = capsys.readouterr().out
    assert printed.count("class folders renamed") == 1
    assert "anger/ → angry, sadness/ → sad" in printed and "happy/" not in printed
    renaming = {"anger": "angry", "sadness": "sad"}
    assert cache.ingestion["label_renaming"] == renaming
    assert FaceCache(cache.cache_dir).ingestion["label_renaming"] == renaming
    again = image_folder_cache(tmp_path / "posed", tmp_path / "cache", face_size=48, progress=False)
    assert again.cache_dir == cache.cache_dir and again.ingestion["label_renaming"] == renaming
    with pytest.raises(ValueError, match="folders renamed at ingestion: anger/ became angry"):
        label_mapping(["angry", "sad", "happy"], cache.labels, {"angry": "anger"})
