"""Synthetic demo dataset: RAVDESS layout, determinism, decodable clips, faces dlib finds, expressions that
dlib's landmarks see, and classes a simple classifier separates across actors."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest

from fer_utils.cli import main
from fer_utils.data.synthetic import MANIFEST_NAME
from fer_utils.data.video_layouts import RAVDESS_EMOTIONS, ravdess_samples
from fer_utils.demo.actors import make_actor
from fer_utils.demo.clips import expression_profile, render_clip
from fer_utils.demo.dataset import clip_variants, ensure_demo_dataset, make_demo_dataset, ravdess_name
from fer_utils.faces.detection import detect_faces, extract_face, get_landmark_predictor
from fer_utils.faces.frames import evenly_spaced, sample_frames

RAVDESS_PATH = re.compile(r"Actor_(\d\d)/02-01-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)\.mp4$")

#: A reduced set for the fast tier: 4 actors × 8 emotions × 1 clip, 6 frames per clip.
SMALL = {"actors": 4, "clips_per_emotion": 1, "seconds": 0.6, "fps": 10.0}


def decode_all(path) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return np.array(frames)


def detection_rate(samples, frames_per_clip: int = 6) -> tuple[int, int]:
    """(frames with a face, frames looked at) over evenly spaced frames, dlib HOG at the pipeline
    defaults (upsample 0, full 320-px frame)."""
    hits = total = 0
    for sample in samples:
        sampled = sample_frames(sample.media_path, frames_per_clip)
        assert sampled.error is None, (sample.media_path, sampled.error)
        for frame in sampled.frames:
            total += 1
            hits += bool(detect_faces(frame.image, "hog", upsample=0))
    return hits, total


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("demo_small"), **SMALL)


def test_layout_is_ravdess_and_the_spec_reads_every_clip(small_demo):
    paths = sorted(small_demo.rglob("*.mp4"))
    assert len(paths) == 4 * 8
    for path in paths:
        match = RAVDESS_PATH.search(path.relative_to(small_demo).as_posix())
        assert match, path
        folder_actor, emotion, *_, actor = match.groups()
        assert folder_actor == actor
    samples, skipped = ravdess_samples(small_demo, modalities=("video-only",))
    assert skipped == []  # the manifest is hidden; nothing else lies beside the clips
    assert len(samples) == 32
    assert {s.label for s in samples} == set(RAVDESS_EMOTIONS.values())
    assert {s.subject for s in samples} == {"actor_01", "actor_02", "actor_03", "actor_04"}
    assert {s.extras["modality"] for s in samples} == {"video-only"}
    manifest = json.loads((small_demo / MANIFEST_NAME).read_text())
    assert manifest["synthetic"] is True and manifest["clips"] == 32


def test_clip_variants_follow_ravdess():
    # Neutral has no strong intensity in RAVDESS; the others alternate intensity first.
    assert clip_variants("neutral", 2) == [(1, 1, 1), (1, 1, 2)]
    assert clip_variants("happy", 2) == [(1, 1, 1), (2, 1, 1)]
    assert len(clip_variants("neutral", 8)) == 4
    assert len(set(clip_variants("angry", 8))) == 8
    assert ravdess_name("surprised", 2, 1, 2, 7) == "02-01-08-02-01-02-07.mp4"
    with pytest.raises(ValueError, match="clips_per_emotion"):
        clip_variants("happy", 0)


def test_clips_decode_with_expected_frame_count_and_size(small_demo):
    for path in sorted(small_demo.rglob("*.mp4")):
        frames = decode_all(path)
        assert frames.shape == (6, 240, 320, 3), path


def test_same_seed_gives_identical_frames_and_other_seeds_differ(tmp_path):
    actor = make_actor(2, seed=5)
    assert actor == make_actor(2, seed=5)
    first = render_clip(actor, "fearful", 2, (5, 2, 6, 2, 1, 1), frame_count=8, seed=5)
    again = render_clip(make_actor(2, seed=5), "fearful", 2, (5, 2, 6, 2, 1, 1), frame_count=8, seed=5)
    assert first.dtype == np.uint8 and first.shape == (8, 240, 320, 3)
    assert np.array_equal(first, again)
    other = render_clip(make_actor(2, seed=6), "fearful", 2, (6, 2, 6, 2, 1, 1), frame_count=8, seed=6)
    assert np.abs(first.astype(int) - other.astype(int)).mean() > 5

    # Through the encoder too: two builds with one seed decode to the same pixels.
    options = {"actors": 4, "clips_per_emotion": 1, "emotions": ["happy"], "seconds": 0.6, "fps": 10.0}
    one = make_demo_dataset(tmp_path / "one", seed=1, **options)
    two = make_demo_dataset(tmp_path / "two", seed=1, **options)
    names = sorted(p.relative_to(one) for p in one.rglob("*.mp4"))
    assert names == sorted(p.relative_to(two) for p in two.rglob("*.mp4")) and len(names) == 4
    for name in names:
        assert np.array_equal(decode_all(one / name), decode_all(two / name))


#: Clips of three emotions and intensities, each as (emotion, intensity, clip seed).
RENDERED_CLIPS = [
    ("fearful", 2, (5, 2, 6, 2, 1, 1)),
    ("happy", 1, (0, 1, 3, 1, 1, 1)),
    ("neutral", 1, (1, 4, 1, 1, 2, 2)),
]


def test_every_rendered_frame_shows_one_face_that_dlib_finds():
    """Behaviour, not pixels: in every frame of each clip dlib finds exactly one face, large enough to
    crop (a library upgrade may change pixels; it must not lose the face)."""
    for emotion, intensity, clip_seed in RENDERED_CLIPS:
        seed, actor = clip_seed[0], make_actor(clip_seed[1], seed=clip_seed[0])
        frames = render_clip(actor, emotion, intensity, clip_seed, frame_count=8, seed=seed)
        for number, frame in enumerate(frames):
            boxes = detect_faces(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
            assert len(boxes) == 1, (emotion, number)
            assert min(boxes[0].w, boxes[0].h) >= frame.shape[0] // 4, (emotion, number)


def test_expression_rises_from_neutral_to_apex():
    profile = expression_profile(24)
    assert profile[0] == 0 and profile[-1] == 1
    assert np.all(np.diff(profile) >= 0)
    actor = make_actor(1)
    clip_seed = (0, 1, 9, 1, 1, 1)  # same head motion and noise for both clips
    surprised = render_clip(actor, "surprised", 2, clip_seed, frame_count=12)
    neutral = render_clip(actor, "neutral", 1, clip_seed, frame_count=12)
    assert np.array_equal(surprised[0], neutral[0])  # both start from the neutral face
    assert np.abs(surprised[-1].astype(int) - neutral[-1].astype(int)).max() > 100


def test_expressions_are_visible_to_dlib_landmarks():
    """Measured on dlib's 68 landmarks of the apex frame (in inter-ocular units): the drawn-on
    expressions move the features the recipes say, for two different actors."""
    import dlib

    predictor = get_landmark_predictor()

    def measures(actor, emotion):
        frame = render_clip(actor, emotion, 2, (0, actor.number, 1), frame_count=6)[-1]
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        box = detect_faces(gray)[0]
        shape = predictor(gray, dlib.rectangle(box.x, box.y, box.x + box.w, box.y + box.h))
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=float)
        eye_distance = np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0))
        y = points[:, 1] / eye_distance
        return {
            "mouth_open": y[66] - y[62],
            "corner_lift": (y[51] + y[57]) / 2 - (y[48] + y[54]) / 2,
            "brow_height": y[36:48].mean() - y[17:27].mean(),
            "eye_open": y[[40, 41, 46, 47]].mean() - y[[37, 38, 43, 44]].mean(),
        }

    for number in (1, 2):
        actor = make_actor(number)
        neutral, happy = measures(actor, "neutral"), measures(actor, "happy")
        surprised, calm = measures(actor, "surprised"), measures(actor, "calm")
        assert surprised["mouth_open"] > neutral["mouth_open"] + 0.15
        assert surprised["brow_height"] > neutral["brow_height"] + 0.04
        assert surprised["eye_open"] > neutral["eye_open"] + 0.025
        assert happy["corner_lift"] > neutral["corner_lift"] + 0.08
        assert calm["eye_open"] < neutral["eye_open"] - 0.02


def test_dlib_finds_faces_in_the_small_demo(small_demo):
    samples, _ = ravdess_samples(small_demo, modalities=("video-only",))
    hits, total = detection_rate(samples)
    assert total == 32 * 6
    assert hits / total >= 0.95, f"dlib HOG found faces in {hits}/{total} frames"


def test_classes_separate_across_actors(small_demo):
    """HOG features + a linear SVM, leave-one-actor-out, on the evenly spaced frames from the apex on (the
    first frames are still near neutral): far above chance (1/8), as the CNN under the subject protocol
    needs. Trained on 3 actors with one clip per emotion, so this is a floor for the full set."""
    from skimage.feature import hog
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    samples, _ = ravdess_samples(small_demo, modalities=("video-only",))
    features, labels, actors = [], [], []
    for sample in samples:
        for position, frame in enumerate(sample_frames(sample.media_path, 6).frames):
            crop = extract_face(frame.image, 64)
            if crop is not None and position >= 2:  # frame 2 of 6 sits at 40 % of the clip, past the apex
                features.append(hog(crop.face, pixels_per_cell=(8, 8), cells_per_block=(2, 2)))
                labels.append(sample.label)
                actors.append(sample.subject)
    classifier = make_pipeline(StandardScaler(), LinearSVC(C=0.03))
    predicted = cross_val_predict(
        classifier, np.array(features), labels, groups=actors, cv=LeaveOneGroupOut()
    )
    accuracy = float(np.mean(predicted == np.array(labels)))
    assert len(labels) >= 0.95 * 32 * 4
    assert accuracy >= 3 / 8, f"leave-one-actor-out accuracy {accuracy:.2f} (chance 0.125)"


def test_bad_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="actors must be between 4"):
        make_demo_dataset(tmp_path, actors=3)
    with pytest.raises(ValueError, match="unknown or no demo emotions"):
        make_demo_dataset(tmp_path, emotions=["bored"])
    with pytest.raises(ValueError, match="at least 6 frames"):
        make_demo_dataset(tmp_path, seconds=0.2)
    with pytest.raises(ValueError, match="unknown demo emotion"):
        render_clip(make_actor(1), "bored", 1, (0,))
    assert not any(tmp_path.iterdir())


def test_generating_the_demo_set_shows_a_progress_bar_over_its_clips(tmp_path, capsys):
    """Issue 31, finding 14: `fer run` sat 22 s without a line while it generated the demo data."""
    small = {"clips_per_emotion": 1, "emotions": ["happy", "sad"], "seconds": 0.6, "fps": 10}
    root, made = ensure_demo_dataset(tmp_path / "demo", actors=4, **small)
    printed = capsys.readouterr().err
    assert made and len(list(root.rglob("*.mp4"))) == 8
    assert "demo clips" in printed and "8/8" in printed
    assert ensure_demo_dataset(root, actors=4, **small) == (root, False)
    assert capsys.readouterr().err == ""  # nothing generated, nothing shown


def test_cli_writes_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo-data", str(out), "--actors", "4", "--clips-per-emotion", "1", "--emotions", "happy,sad"]
    assert main([*argv, "--seconds", "0.6", "--fps", "10", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 8 clips" in printed and "4 actors" in printed and "SYNTHETIC" in printed
    assert len(list(out.rglob("*.mp4"))) == 8
    assert main(["demo-data", str(out), "--size", "big"]) == 2
    assert "--size must look like 320x240" in capsys.readouterr().err


@pytest.mark.slow
def test_dlib_finds_faces_in_the_default_demo(tmp_path):
    """The full default set, as the main job builds it."""
    root = make_demo_dataset(tmp_path / "demo")
    samples, skipped = ravdess_samples(root, modalities=("video-only",))
    assert skipped == [] and len(samples) == 6 * 8 * 2
    hits, total = detection_rate(samples)
    assert total == len(samples) * 6
    assert hits / total >= 0.95, f"dlib HOG found faces in {hits}/{total} frames"
    frame_count = int(cv2.VideoCapture(samples[0].media_path).get(cv2.CAP_PROP_FRAME_COUNT))
    assert evenly_spaced(frame_count, 6)[0] == 0 and frame_count == 24
