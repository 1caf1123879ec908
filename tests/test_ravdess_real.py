"""Real RAVDESS files end to end (Actor 05, ``../shared/data/ravdess_actor05``): the layout finds every
clip, the detector finds a face in every sampled frame of the face crops and of the 1280×720 originals
(H.264, one with an audio track), short ``paper`` / ``video`` runs train on the crops, and ``fer predict``
follows the one face of an original as one track. One actor: no accuracy claim (the scores are printed)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fer_utils.cli import main
from fer_utils.faces.cache import FaceCache

pytestmark = pytest.mark.slow

#: Faces kept per clip (the paper's 6 evenly spaced frames); 48 px keeps the short runs fast.
FRAMES, FACE_SIZE = 6, 48


def _preprocess(root, cache_root, capsys) -> tuple[FaceCache, str]:
    code = main(
        [
            "preprocess",
            "--dataset",
            "ravdess",
            "--root",
            str(root),
            "--cache-root",
            str(cache_root),
            "--face-size",
            str(FACE_SIZE),
            "--frames",
            str(FRAMES),
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    (cache_dir,) = [path for path in cache_root.iterdir() if path.is_dir()]
    return FaceCache(cache_dir), out


@pytest.fixture(scope="module")
def crops_cache(ravdess_actor05, tmp_path_factory):
    cache_root = tmp_path_factory.mktemp("ravdess_crops")
    code = main(
        [
            "preprocess",
            "--dataset",
            "ravdess",
            "--root",
            str(ravdess_actor05 / "crops"),
            "--cache-root",
            str(cache_root),
            "--face-size",
            str(FACE_SIZE),
            "--frames",
            str(FRAMES),
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    (cache_dir,) = [path for path in cache_root.iterdir() if path.is_dir()]
    return FaceCache(cache_dir)


def test_every_real_crop_clip_is_found_and_has_a_face_in_every_sampled_frame(crops_cache, ravdess_actor05):
    clips = sorted((ravdess_actor05 / "crops" / "Actor_05").glob("*.avi"))
    assert len(clips) == 120
    index, skipped = crops_cache.index, crops_cache.skipped
    # every clip accounted for: the 60 audio-video ones kept, each video-only copy recorded as such
    assert index["video_id"].nunique() + len(skipped) == 120
    assert index["video_id"].nunique() == 60
    assert set(skipped["reason"]) == {"not selected: video-only copy of a full-AV recording"}
    assert all(name.startswith("02-") for name in skipped["media_path"].map(lambda p: p.rsplit("/", 1)[-1]))
    stats = pd.read_csv(crops_cache.cache_dir / "stats.csv")
    assert (stats["reported_frames"] == 15).all()  # 15 frames at 5 fps, as the container says
    assert (stats["sampled_frames"] == FRAMES).all() and (stats["face_frames"] == FRAMES).all()
    faces = index.groupby("label").size()
    assert len(faces) == 8 and faces["neutral"] == 4 * FRAMES and (faces.drop("neutral") == 8 * FRAMES).all()
    print(
        f"crops: 120 clips, 60 kept, {len(index)} faces, {stats['face_frames'].sum()}/{stats['sampled_frames'].sum()} frames with a face"
    )


def test_every_real_original_is_found_and_has_a_face_in_every_sampled_frame(
    ravdess_actor05, tmp_path, capsys
):
    cache, out = _preprocess(ravdess_actor05 / "original", tmp_path / "cache", capsys)
    assert "inputs: 6 found = 6 kept + 0 skipped" in out
    stats = pd.read_csv(cache.cache_dir / "stats.csv")
    assert (
        len(stats) == 6
        and (stats["sampled_frames"] == FRAMES).all()
        and (stats["face_frames"] == FRAMES).all()
    )
    assert (stats["reported_frames"] > 80).all()  # 29.97 fps, about three seconds each
    names = cache.index.drop_duplicates("media_path")["media_path"].map(lambda path: Path(path).name)
    modality = names.str[:2].value_counts()
    assert modality.to_dict() == {"02": 5, "01": 1}  # video-only and the audio-video one (H.264 + audio)
    assert (
        cache.index["bbox_w"] > 150
    ).all()  # a 1280×720 frame's face, mapped back from the detection width
    print(
        f"originals: 6 clips, {len(cache.index)} faces, detection {stats['face_frames'].sum()}/{stats['sampled_frames'].sum()}"
    )


@pytest.mark.parametrize("protocol", ["paper", "video"])
def test_a_short_run_trains_on_the_real_crops(protocol, crops_cache, tmp_path, capsys):
    run = tmp_path / protocol
    argv = ["train", "--cache", str(crops_cache.cache_dir), "--out", str(run), "--protocol", protocol]
    assert main([*argv, "--epochs", "2", "--threads", "1"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["protocol"] == protocol and len(metrics["labels"]) == 8
    split = pd.read_csv(run / "split.csv").merge(crops_cache.index[["face_id", "video_id"]], on="face_id")
    videos = split.groupby("part")["video_id"].apply(set)
    if protocol == "video":  # no clip on both sides
        assert not videos["train"] & videos["test"]
    capsys.readouterr()
    with capsys.disabled():
        print(
            f"{protocol}: test accuracy {metrics['frame']['accuracy']:.3f}, macro F1 {metrics['frame']['macro_f1']:.3f} "
            f"({metrics['split']['test']} test faces; one actor, 2 epochs: not an accuracy claim)"
        )


def test_predict_follows_the_one_face_of_a_real_original_as_one_track(ravdess_actor05, tmp_path, capsys):
    clip = ravdess_actor05 / "original" / "Actor_05" / "01-01-04-02-01-02-05.mp4"  # audio-video, sad
    out = tmp_path / "out"
    assert main(["predict", str(clip), "--out", str(out), "--threads", "1"]) == 0
    tracks = pd.read_csv(next(out.glob("*_tracks.csv")))
    faces = pd.read_csv(next(out.glob("*_faces.csv")))
    assert len(tracks) == 1 and len(faces) == tracks["faces"].iloc[0] and len(faces) >= 6
    capsys.readouterr()
