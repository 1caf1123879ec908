"""Keyframe detection + tracking, and detection on a downscaled frame, on the real clips and photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_utils.deploy.tracking import box_iou
from fer_utils.faces.detection import detect_faces, detect_width_for, extract_faces
from fer_utils.faces.keyframes import KeyframeDetector


def gray_frames(path, limit=None):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while limit is None or len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    capture.release()
    return frames


@pytest.fixture(scope="module")
def one_face_clip(pyfeat_media):
    frames = gray_frames(pyfeat_media / "single_face.mp4")
    return frames, [detect_faces(frame) for frame in frames]


def as_tuple(box):
    return (box.x, box.y, box.w, box.h)


@pytest.mark.parametrize("tracker", ["correlation", "window"])
@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_the_tracker_keeps_the_face_box_between_keyframes_on_the_real_clip(one_face_clip, tracker):
    frames, detected = one_face_clip
    keyframes = KeyframeDetector(detect_every=10, tracker=tracker)
    followed = [keyframes.boxes(frame) for frame in frames]
    assert all(len(boxes) == 1 for boxes in followed)  # the one face, on every frame
    ious = [box_iou(as_tuple(a[0]), as_tuple(b[0])) for a, b in zip(followed, detected, strict=True)]
    assert np.mean(ious) >= 0.8 and min(ious) >= 0.5
    assert keyframes.keyframes <= len(frames) // 10 + 2  # detection ran on keyframes only


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_detecting_every_frame_gives_the_detector_boxes(one_face_clip):
    frames, detected = one_face_clip
    keyframes = KeyframeDetector(detect_every=1)
    assert [keyframes.boxes(frame) for frame in frames[:10]] == detected[:10]
    assert keyframes.keyframes == 10


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_a_lost_face_makes_the_next_frame_a_keyframe(one_face_clip):
    frames, _ = one_face_clip
    keyframes = KeyframeDetector(detect_every=10, tracker="window")
    assert len(keyframes.boxes(frames[0])) == 1 and keyframes.keyframes == 1
    assert keyframes.boxes(np.zeros_like(frames[1])) == []  # the face is gone: detected again, not found
    assert keyframes.keyframes == 2


def test_keyframe_spacing_must_be_positive():
    with pytest.raises(ValueError, match="detect_every"):
        KeyframeDetector(detect_every=0)
    with pytest.raises(ValueError, match="tracker"):
        KeyframeDetector(tracker="optical")


def test_the_detect_width_follows_the_minimum_face_size():
    assert detect_width_for(640, 0) is None  # no minimum: full resolution
    assert detect_width_for(640, 160) == 320  # faces ≥ 160 px are ≥ 80 px at half size
    assert detect_width_for(640, 160, detect_width=200) == 200
    assert detect_width_for(640, 80) is None  # already the detector's window
    assert detect_width_for(640, 160, upsample=1) == 160


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_a_downscaled_detection_finds_the_faces_above_the_minimum(pyfeat_media):
    photo = cv2.imread(str(pyfeat_media / "multi_face.jpg"), cv2.IMREAD_GRAYSCALE)
    large = [box for box in detect_faces(photo) if min(box.w, box.h) >= 100]
    found = extract_faces(photo, 48, min_face_size=100)  # detects at 800 of 1000 px
    assert len(found) == len(large) >= 3
    for crop in found:
        assert max(box_iou(as_tuple(crop.box), as_tuple(box)) for box in large) >= 0.6
