"""The bundled model on real media: every face predicted, tracks, the Python API, and `fer evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import fer_utils
from fer_utils.cli import main
from fer_utils.deploy import bundled
from fer_utils.deploy.predictors import load_predictor
from fer_utils.deploy.tracking import FaceTracker, box_iou
from fer_utils.experiments import bundle_model, model_card
from fer_utils.experiments.cross_dataset import UNMAPPED, evaluate_on_cache, label_mapping
from fer_utils.experiments.served_scores import served_scores
from fer_utils.faces.detection import detect_faces
from fer_utils.faces.frames import evenly_spaced, stream_frames
from fer_utils.paths import shared_data_root


def dlib_faces(path, spec_width=bundled.DETECT_WIDTH) -> int:
    """How many faces dlib's HOG detector finds in an image, as the bundled model's settings run it."""
    return len(detect_faces(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), "hog", 0, spec_width))


def test_every_bundled_candidate_ships_with_its_spec_and_card():
    """The paper CNN's FER2013 model (7 classes) and every other candidate, e.g. FER+ (8, with contempt)."""
    from fer_utils.experiments.bundle_data import bundle_dataset

    candidates = bundled.shipped_candidates()
    assert bundled.BUNDLED_NAME in candidates and bundled.default_model() in candidates
    for stem in candidates:
        card = bundled.read_model_card(model=stem)
        classes = list(bundle_dataset(card.get("dataset", "fer2013")).classes)
        for name in bundled.bundled_files(stem).values():
            path = bundled.BUNDLED_DIR / name
            spec = json.loads(path.with_name(path.name + ".json").read_text())
            assert sorted(spec["labels"]) == sorted(classes), path.name
            # ≤ 1 M parameters (an ensemble's summed): at most 4 MB of float32 weights plus the format's
            assert spec["image_size"] == 48 and path.stat().st_size < 4_500_000, path.name
        assert card["seeds"]["runs"] >= 2 and card["training"]["recipe"] == "robust"
        assert 0 < card["training"]["num_params"] <= 1_000_000
        assert set(card["test"]) == set(bundled.BUNDLED_FILES)
        assert not [text for text in _strings(card) if Path(text).is_absolute()], stem  # no machine's path


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [value] if isinstance(value, str) else []


def test_a_card_names_the_shared_data_copy_it_was_scored_on_without_this_machines_path(tmp_path, monkeypatch):
    from fer_utils.experiments.served_scores import data_label

    monkeypatch.setenv("FER_DATA_ROOT", str(tmp_path / "shared" / "data"))
    (tmp_path / "shared" / "data" / "fer2013plus").mkdir(parents=True)
    assert data_label(tmp_path / "shared" / "data" / "fer2013plus") == "shared/data/fer2013plus"
    assert data_label(tmp_path / "elsewhere" / "fer2013plus") == str(tmp_path / "elsewhere" / "fer2013plus")


def test_flip_test_time_augmentation_averages_the_face_and_its_mirror(tmp_path):
    """``tta="flip"`` feeds the model each face and its mirror and reports the mean of the two."""
    from fixture_media import face_frame

    face = face_frame(size=(96, 96))  # a real face filling the image: 96 → 48 px is an exact 2× shrink
    predictor = load_predictor(bundled.bundled_model_path(model=bundled.default_model(), fmt="keras"))
    fed = []
    run = predictor._run
    predictor._run = lambda batch: (fed.append(np.array(batch)), run(batch))[1]
    one_crop = fer_utils.predict(face, predictor, detector="none").filter(like="prob_").to_numpy()
    mirrored = fer_utils.predict(face[:, ::-1].copy(), predictor, detector="none").filter(like="prob_")
    fed.clear()
    flipped = fer_utils.predict(face, predictor, detector="none", tta="flip")
    assert len(fed) == 2 and np.array_equal(fed[1], fed[0][:, :, ::-1])
    expected = (one_crop + mirrored.to_numpy()) / 2
    np.testing.assert_allclose(flipped.filter(like="prob_").to_numpy(), expected, atol=1e-5)
    # the mirror is another view: its answer differs from the face's by ten times the tolerance above
    assert np.abs(one_crop - mirrored.to_numpy()).max() > 1e-4
    with pytest.raises(ValueError, match="unknown test-time augmentation 'mirror'; choose one of none, flip"):
        fer_utils.predict(face, predictor, detector="none", tta="mirror")
    cv2.imwrite(str(tmp_path / "face.png"), face)
    out = tmp_path / "out"
    assert (
        main(
            ["predict", str(tmp_path / "face.png"), "--detector", "none", "--tta", "flip", "--out", str(out)]
        )
        == 0
    )
    assert json.loads((out / "face.png_summary.json").read_text())["tta"] == "flip"


def test_a_missing_bundled_model_names_the_command_that_builds_it(tmp_path):
    with pytest.raises(ValueError, match="fer bundle-model"):
        bundled.bundled_model_path(models_dir=tmp_path)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_predict_without_a_model_reports_every_face_of_a_group_photo(pyfeat_media, tmp_path, capsys):
    photo = pyfeat_media / "multi_face.jpg"  # 5 people, one in sunglasses: dlib's HOG finds 4
    out = tmp_path / "out"
    assert main(["predict", str(photo), "--out", str(out)]) == 0
    faces = pd.read_csv(out / "multi_face.jpg_faces.csv")
    expected = 5
    assert dlib_faces(photo) == 4 and len(faces) == expected and (faces["status"] == "face").all()
    assert faces["face_index"].tolist() == list(range(expected))
    assert (faces[["bbox_w", "bbox_h"]] > 0).all().all() and faces["predicted_label"].notna().all()
    probabilities = faces.filter(like="prob_").to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    annotated = cv2.imread(str(out / "multi_face.jpg_annotated.png"))
    assert annotated.shape == cv2.imread(str(photo)).shape
    assert np.abs(annotated.astype(int) - cv2.imread(str(photo)).astype(int)).sum() > 0  # boxes drawn
    assert (out / "multi_face.jpg_faces.html").exists()
    summary = json.loads((out / "multi_face.jpg_summary.json").read_text())
    assert summary["faces"] == expected and len(summary["tracks"]) == expected
    assert summary["detector"] == "centerface"
    assert f"{expected} face(s)" in capsys.readouterr().out


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_the_papers_hog_detector_stays_selectable(pyfeat_media, tmp_path):
    photo = pyfeat_media / "multi_face.jpg"
    assert main(["predict", str(photo), "--detector", "hog", "--out", str(tmp_path)]) == 0
    assert len(pd.read_csv(tmp_path / "multi_face.jpg_faces.csv")) == dlib_faces(photo) == 4
    assert json.loads((tmp_path / "multi_face.jpg_summary.json").read_text())["detector"] == "hog"


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_a_one_person_clip_gives_one_track_with_a_timeline(pyfeat_media, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", str(pyfeat_media / "single_face.mp4"), "--fps", "10", "--out", str(out)]) == 0
    faces = pd.read_csv(out / "single_face.mp4_faces.csv")
    found = faces[faces["status"] == "face"]
    assert len(found) >= 20 and found["track_id"].nunique() == 1  # 2.4 s at 10 fps, the face in every frame
    assert faces["timestamp_s"].is_monotonic_increasing
    tracks = pd.read_csv(out / "single_face.mp4_tracks.csv")
    assert len(tracks) == 1 and tracks.loc[0, "faces"] == len(found)
    assert tracks.loc[0, "label"] in bundled.read_model_card()["test"]["keras"]["labels"]
    assert (out / "single_face.mp4_timeline.html").stat().st_size > 10_000


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_no_face_is_a_row_saying_so_and_an_unreadable_file_does_not_stop_the_batch(pyfeat_media, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "broken.mp4").write_bytes(b"not a video at all" * 100)
    (media / "no_face.mp4").symlink_to(pyfeat_media / "no_face.mp4")
    (media / "single_face.jpg").symlink_to(pyfeat_media / "single_face.jpg")
    out = tmp_path / "out"
    assert main(["predict", str(media), "--out", str(out)]) == 1  # one file could not be read
    summary = pd.read_csv(out / "summary.csv").set_index(
        pd.read_csv(out / "summary.csv")["media_path"].map(lambda p: p.rsplit("/", 1)[-1])
    )
    assert summary.loc["broken.mp4", "status"] == "unreadable"
    assert summary.loc["no_face.mp4", "status"] == "no_face"
    assert summary.loc["single_face.jpg", "status"] == "ok"
    no_face = pd.read_csv(out / "no_face.mp4_faces.csv")
    assert len(no_face) == 41 and (no_face["status"] == "no_face").all()  # 4.1 s at 10 frames per second
    assert json.loads((out / "broken.mp4_summary.json").read_text())["message"].startswith(
        "broken.mp4: unreadable"
    )


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_max_faces_and_min_face_size_limit_what_is_reported(pyfeat_media, tmp_path):
    photo = str(pyfeat_media / "multi_face.jpg")
    assert len(fer_utils.predict(photo, max_faces=2)) == 2
    largest = fer_utils.predict(photo)["bbox_w"].max()
    none = fer_utils.predict(photo, min_face_size=int(largest) + 1)
    assert len(none) == 1 and none.loc[0, "status"] == "no_face"


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_the_python_api_reads_paths_and_numpy_images_alike(pyfeat_media):
    photo = pyfeat_media / "multi_face.jpg"
    from_path = fer_utils.predict(photo)
    from_gray = fer_utils.predict(cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE))  # the file's own pixels
    from_bgr = fer_utils.predict(cv2.imread(str(photo)))
    assert from_gray["media_path"].eq("<array>").all() and from_bgr["media_path"].eq("<array>").all()
    boxes = ["face_index", "bbox_x", "bbox_y", "bbox_w", "bbox_h"]
    pd.testing.assert_frame_equal(
        from_path[[*boxes, "predicted_label"]], from_gray[[*boxes, "predicted_label"]]
    )
    np.testing.assert_allclose(from_path.filter(like="prob_"), from_gray.filter(like="prob_"), atol=1e-6)
    # A file is decoded straight to gray by libjpeg, a BGR array converted by OpenCV: pixels differ by ±1,
    # which moves an uncertain face's probabilities by a few points, never its box.
    pd.testing.assert_frame_equal(from_path[boxes], from_bgr[boxes])
    np.testing.assert_allclose(from_path.filter(like="prob_"), from_bgr.filter(like="prob_"), atol=0.05)
    with pytest.raises(ValueError, match="uint8"):
        fer_utils.predict(np.zeros((10, 10), np.float32))


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_a_video_gets_a_timeline_by_default_and_the_papers_six_frames_on_request(pyfeat_media, tmp_path):
    clip = pyfeat_media / "single_face.mp4"  # 2.4 s, 72 frames at 30 fps
    assert main(["predict", str(clip), "--out", str(tmp_path / "default")]) == 0
    summary = json.loads((tmp_path / "default" / "single_face.mp4_summary.json").read_text())
    assert summary["frames_sampled"] == 24 and summary["faces"] == 24  # 10 per second, the face in each
    assert summary["detect_every"] == 10  # dense enough for keyframes + tracking
    times = pd.read_csv(tmp_path / "default" / "single_face.mp4_faces.csv")["timestamp_s"]
    assert times.diff().dropna().between(0.09, 0.14).all()  # every 3rd or 4th frame of 30
    assert main(["predict", str(clip), "--frames", "6", "--out", str(tmp_path / "six")]) == 0
    assert json.loads((tmp_path / "six" / "single_face.mp4_summary.json").read_text())["frames_sampled"] == 6
    ravdess = shared_data_root() / "ravdess_actor05" / "crops" / "Actor_05"
    if ravdess.is_dir():  # 15 frames at 5 fps: 10 per second cannot sample more than the clip holds
        short = sorted(ravdess.glob("*.avi"))[0]
        assert len(fer_utils.predict(short, detector="none")) == 15


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_annotate_writes_the_clip_with_each_face_boxed_and_labelled_by_track(pyfeat_media, tmp_path):
    clip = pyfeat_media / "face_noface.mov"  # a face for part of the clip only
    assert main(["predict", str(clip), "--annotate", "--out", str(tmp_path)]) == 0
    faces = pd.read_csv(tmp_path / "face_noface.mov_faces.csv")
    video = cv2.VideoCapture(str(tmp_path / "face_noface.mov_annotated.mp4"))
    original = cv2.VideoCapture(str(clip))
    assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(original.get(cv2.CAP_PROP_FPS), rel=0.01)
    drawn, plain, index = [], [], 0
    while True:
        ok, frame = video.read()
        ok_original, source = original.read()
        if not ok:
            break
        assert ok_original
        rows = faces[(faces["frame_index"] == index) & (faces["status"] == "face")]
        difference = np.abs(frame.astype(int) - source.astype(int)).mean(axis=2)
        if len(rows):
            row = rows.iloc[0]  # the box's top edge is drawn in the label colour
            x, y, w = int(row.bbox_x), int(row.bbox_y), int(row.bbox_w)
            drawn.append(difference[max(0, y - 1) : y + 2, x + w // 4 : x + 3 * w // 4].mean())
        elif index in set(faces["frame_index"]):
            plain.append(difference.mean())  # a sampled frame without a face: nothing drawn
        index += 1
    assert index >= len(faces) and len(drawn) >= 5 and len(plain) >= 5
    assert min(drawn) > 40 and max(plain) < 5  # mp4v re-encoding alone changes pixels by a few levels


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_dense_sampling_streams_the_frames_it_was_asked_for(pyfeat_media):
    clip = pyfeat_media / "single_face.mp4"  # 72 frames
    frames = stream_frames(clip, 70)  # above STREAM_ABOVE: one decoded frame at a time
    assert iter(frames) is frames
    assert [frame.index for frame in frames] == evenly_spaced(72, 70)


def test_tracks_follow_overlapping_boxes_and_new_faces_get_new_ids():
    tracker = FaceTracker(min_iou=0.3, max_gap=1)
    assert tracker.assign([(0, 0, 100, 100), (300, 0, 100, 100)]) == [0, 1]
    assert tracker.assign([(310, 5, 100, 100), (10, 5, 100, 100)]) == [1, 0]  # order does not matter
    assert tracker.assign([(600, 0, 100, 100)]) == [2]
    assert tracker.assign([]) == []
    assert tracker.assign([]) == []
    assert tracker.assign([(12, 5, 100, 100)]) == [3]  # unseen for more than max_gap frames: a new track
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


# -------------------------------------------------------------------------------------------- evaluate


def test_label_maps_naming_unknown_classes_fail_before_any_work():
    model = ["neutral", "happy", "sad"]
    assert label_mapping(model, ["neutral", "calm", "happy"]) == {
        "neutral": "neutral",
        "happy": "happy",
        "sad": None,
    }
    with pytest.raises(ValueError, match=r"model classes \['joy'\]"):
        label_mapping(model, ["happy"], {"joy": "happy"})
    with pytest.raises(ValueError, match=r"cache labels \['bliss'\]"):
        label_mapping(model, ["happy"], {"happy": "bliss"})


@pytest.fixture(scope="module")
def ravdess_like_cache(fer2013_root, tmp_path_factory):
    """Real FER2013 test faces stored under RAVDESS's 8 labels: calm has no FER2013 class."""
    from fer_utils.faces.cache_writer import write_array_cache

    faces, labels, _ = bundle_model.fer2013_test_faces(fer2013_root)
    rng = np.random.default_rng(0)
    chosen = np.sort(rng.choice(len(faces), 400, replace=False))
    labels = np.asarray(labels)[chosen]
    labels[:25] = "calm"
    subjects = [f"{i % 4 + 1:02d}" for i in range(len(chosen))]
    path = tmp_path_factory.mktemp("ravdess_like") / "cache"
    write_array_cache(path, faces[chosen], labels.tolist(), subjects, dataset="ravdess-like")
    return path


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_evaluate_scores_the_bundled_model_and_reports_the_unmappable_class(
    ravdess_like_cache, tmp_path, capsys
):
    from fer_utils.training.run_listing import list_runs
    from fer_utils.viz.dashboard import run_choices

    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps({"disgust": None}))  # count disgust predictions as unmapped
    out = tmp_path / "runs" / "bundled-on-ravdess"
    assert (
        main(
            [
                "evaluate",
                "--model",
                "paper",  # the FER2013 candidate: its 7 classes are what this mapping is about
                "--cache",
                str(ravdess_like_cache),
                "--label-map",
                str(label_map),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "25 calm face(s) not scored" in printed
    runs, problems = list_runs(tmp_path / "runs")
    assert not problems and len(runs) == 1
    run = runs[0]
    evaluation = run.outcome.evaluation
    # calm has no FER2013 class; disgust lost its only source through the map: both unscored, not merged
    disgust = evaluation.unscored_faces["disgust"]
    assert evaluation.unscored_faces == {"calm": 25, "disgust": disgust} and disgust > 0
    assert evaluation.label_map["disgust"] is None
    assert {"calm", "disgust"}.isdisjoint(run.labels) and run.labels[-1] == UNMAPPED
    scored = 400 - 25 - disgust
    assert run.outcome.frame.support == scored and len(run.predictions) == scored
    assert run.outcome.frame.accuracy > 0.4  # real faces, a real model: well above chance (1/7)
    assert evaluation.resized is None  # 48 px faces, 48 px model
    choices, _ = run_choices(tmp_path / "runs")
    assert len(choices) == 1  # the dashboard lists it like a run, marked as an evaluation of the model
    assert choices[0].label.startswith(
        "ravdess-like · evaluation of fer2013_robust_48_int8.tflite (trained on FER2013) · full "
    )


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_evaluate_scores_the_scored_classes_and_reports_restricted_scores_and_unmapped_answers(
    ravdess_like_cache, tmp_path, capsys
):
    """Macro F1 averages over the scored labels only; beside the full output the answer restricted to the
    mapped classes is scored, and the answers on unmapped model classes are counted per true label."""
    from fer_utils.viz.dashboard import run_choices

    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps({"neutral": None}))  # a target set without neutral
    out = tmp_path / "runs" / "no-neutral"
    args = ["evaluate", "--model", "paper", "--cache", str(ravdess_like_cache), "--label-map", str(label_map)]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    run = run_choices(tmp_path / "runs")[0][0].run
    metrics, predictions = run.outcome, run.predictions
    scored = [label for label in run.labels if label != UNMAPPED]
    assert len(scored) == 6 and "neutral" not in scored
    per_class = metrics.frame.per_class
    assert metrics.frame.macro_f1 == pytest.approx(np.mean([per_class[label]["f1"] for label in scored]))
    answered_unmapped = predictions["predicted_label"] == UNMAPPED
    assert answered_unmapped.sum() > 0 and set(predictions.loc[answered_unmapped, "model_label"]) == {
        "neutral"
    }
    unmapped = metrics.unmapped_answers
    assert unmapped["count"] == answered_unmapped.sum() and unmapped["model_classes"] == {
        "neutral": unmapped["count"]
    }
    assert unmapped["share"] == pytest.approx(answered_unmapped.mean())
    assert sum(part["count"] for part in unmapped["per_label"].values()) == unmapped["count"]
    # restricted: argmax over the mapped classes' probabilities, computed here independently
    restricted = np.asarray(scored)[
        predictions[[f"prob_{label}" for label in scored]].to_numpy().argmax(axis=1)
    ]
    assert (predictions["restricted_label"] == restricted).all()
    restricted_accuracy = float((restricted == predictions["true_label"]).mean())
    assert metrics.restricted["frame"]["accuracy"] == pytest.approx(restricted_accuracy)
    assert restricted_accuracy > metrics.frame.accuracy  # the unmapped answers get a second chance
    assert "full output: accuracy" in printed and "restricted to the mapped classes: accuracy" in printed
    assert (
        f"answers on unmapped model classes (neutral): {unmapped['count']} of {len(predictions)}" in printed
    )
    from fer_utils.viz.dashboard.fragments import header_html

    choice = run_choices(tmp_path / "runs")[0][0]
    assert " · restricted " in choice.label and " unmapped" in choice.label
    assert "restricted to the mapped classes" in header_html(choice)  # dashboard and report header


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_evaluate_says_when_it_resizes_the_cache_faces(fer2013_root, tmp_path, capsys):
    import cv2

    from fer_utils.faces.cache_writer import write_array_cache

    faces, labels, _ = bundle_model.fer2013_test_faces(fer2013_root)
    chosen = np.random.default_rng(0).choice(len(faces), 60, replace=False)
    big = np.stack([cv2.resize(faces[i], (96, 96), interpolation=cv2.INTER_LINEAR) for i in chosen])
    cache = write_array_cache(tmp_path / "big", big, list(np.asarray(labels)[chosen]), dataset="big")
    run = evaluate_on_cache(bundled.bundled_model_path(), cache.cache_dir, tmp_path / "eval")
    assert run.outcome.evaluation.resized == {"from": 96, "to": 48}
    printed = capsys.readouterr().out
    assert printed.count("faces resized from the cache's 96 px to the model's 48 px input") == 1


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_evaluate_refuses_a_bad_label_map_in_one_line(ravdess_like_cache, tmp_path, capsys):
    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps({"joy": "happy"}))
    args = [
        "evaluate",
        "--cache",
        str(ravdess_like_cache),
        "--label-map",
        str(label_map),
        "--out",
        str(tmp_path / "e"),
    ]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "unknown model classes ['joy']" in error
    assert not (tmp_path / "e").exists()


@pytest.mark.slow
def test_evaluate_on_the_fer2013_test_split_matches_the_model_card(fer2013_root, tmp_path):
    """The paper CNN's FER2013 model on a FER2013 folder cache's test split scores what its card says."""
    from fer_utils.faces.preprocess import image_folder_cache

    cache = image_folder_cache(
        fer2013_root, tmp_path / "cache", face_size=48, split_dirs=True, progress=False
    )
    model = bundled.bundled_model_path(model="paper")
    run = evaluate_on_cache(model, cache.cache_dir, tmp_path / "eval", split="test")
    card = bundled.read_model_card(model="paper")
    assert run.outcome.frame.support == 3589
    assert run.outcome.frame.accuracy == pytest.approx(
        card["test"][bundled.DEFAULT_FORMAT]["accuracy"], abs=1e-9
    )


@pytest.mark.slow
def test_model_card_numbers_are_reproduced_from_the_shipped_files(fer2013_root):
    """Every candidate's card: its own test set per shipped file, and the served raw-face scores."""
    from fer_utils.experiments.bundle_data import default_root

    markdown = bundled.CARD_MARKDOWN.read_text()
    for stem in bundled.shipped_candidates():
        card = bundled.read_model_card(model=stem)
        dataset = card.get("dataset", "fer2013")
        root = fer2013_root if dataset == "fer2013" else default_root(dataset)
        for fmt, name in bundled.bundled_files(stem).items():
            scores = model_card.score_test(bundled.BUNDLED_DIR / name, root, dataset)
            recorded = card["test"][fmt]
            assert scores["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-9), (stem, fmt)
            assert scores["confusion_matrix"] == recorded["confusion_matrix"]
            assert f"{100 * scores['accuracy']:.1f} %" in markdown
        assert model_card.card_tables(card) in markdown
        served = served_scores(bundled.bundled_model_path(model=stem))  # raw faces, the model's pixel step
        for name in ("fer2013_privatetest", "ferplus_test"):
            for tta in ("none", "flip"):
                for key in ("accuracy", "balanced_accuracy"):
                    assert served[name][tta][key] == pytest.approx(
                        card["served"][name][tta][key], abs=1e-9
                    ), (stem, name, tta, key)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_a_model_whose_spec_disagrees_with_its_outputs_is_refused_before_any_work(
    pyfeat_media, tmp_path, capsys
):
    shipped = bundled.bundled_model_path()
    model = tmp_path / shipped.name
    model.write_bytes(shipped.read_bytes())
    spec = json.loads(shipped.with_name(shipped.name + ".json").read_text())
    spec["labels"] = ["happy", "sad", "angry"]
    model.with_name(model.name + ".json").write_text(json.dumps(spec))
    out = tmp_path / "out"
    assert (
        main(["predict", str(pyfeat_media / "single_face.jpg"), "--model", str(model), "--out", str(out)])
        == 2
    )
    error = capsys.readouterr().err.strip()
    outputs = len(spec_labels := bundled.read_model_card()["test"][bundled.DEFAULT_FORMAT]["labels"])
    assert spec_labels and error.count("\n") == 0
    assert f"has {outputs} outputs but its spec names 3 labels" in error
    assert not out.exists()


# ------------------------------------------------------------------- what a researcher sees (issue 21)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_the_timeline_shows_the_frames_without_a_face(pyfeat_media, tmp_path):
    """face_noface.mov: the face leaves at ~2.5 s; the axis runs to the last sampled frame (~6.4 s), the
    lines break there and the span is shaded "no face"."""
    from fer_utils.deploy.media_prediction import predict_media
    from fer_utils.deploy.prediction_figures import no_face_spans, timeline_figure

    prediction = predict_media(
        pyfeat_media / "face_noface.mov", load_predictor(bundled.bundled_model_path()), fps=5
    )
    last = prediction.faces["timestamp_s"].max()
    assert last > 6 and prediction.face_rows["timestamp_s"].max() < 2.6
    spans = no_face_spans(prediction)
    assert len(spans) == 1 and 2.3 < spans[0][0] < 2.6 and spans[0][1] == last
    figure = timeline_figure(prediction)
    assert figure.layout.xaxis.range[1] >= last
    assert any(getattr(a, "text", "") == "no face" for a in figure.layout.annotations)
    shaded = [shape for shape in figure.layout.shapes if shape.type == "rect"]
    assert len(shaded) == 1 and shaded[0].x0 < 2.6 and shaded[0].x1 >= last
    trace = figure.data[0]
    assert max(trace.x) == last and np.isnan(np.asarray(trace.y, float)[-1])  # no line past the face


def test_a_face_cut_by_the_frame_gets_its_whole_label_inside_the_image():
    from fer_utils.deploy.prediction_figures import label_origin

    assert label_origin((-77, 40), (120, 20), (300, 400, 3)) == (0, 20)  # left edge: moved in
    assert label_origin((350, 5), (120, 20), (300, 400, 3)) == (280, 5)  # top and right: inside the box
    assert label_origin((10, 295), (120, 20), (300, 400, 3)) == (10, 275)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_summary_columns_are_counts_in_a_fixed_order_and_a_missing_path_is_a_reported_skip(
    pyfeat_media, tmp_path, capsys
):
    from fer_utils.deploy.prediction_outputs import OUTPUT_KINDS, SUMMARY_COLUMNS

    out = tmp_path / "out"
    photo, missing = pyfeat_media / "multi_face.jpg", tmp_path / "not-there.mp4"
    assert (
        main(["predict", str(missing), str(photo), str(pyfeat_media / "no_face.mp4"), "--out", str(out)]) == 1
    )
    printed = capsys.readouterr().out
    assert f"{missing}: skipped" in printed and "multi_face.jpg: " in printed  # the batch went on
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == [*SUMMARY_COLUMNS, *(f"{kind}_file" for kind in OUTPUT_KINDS)]
    rows = summary.set_index(summary["media_path"].map(lambda p: p.rsplit("/", 1)[-1]))
    assert rows.loc["not-there.mp4", "status"] == "missing"
    assert rows.loc["multi_face.jpg", "faces"] == 5 == rows.loc["multi_face.jpg", "tracks"]
    assert (
        json.loads((out / "multi_face.jpg_summary.json").read_text())["faces"]
        == rows.loc["multi_face.jpg", "faces"]
    )
    assert rows.loc["no_face.mp4", "faces"] == 0
    text = pd.read_csv(out / "summary.csv", dtype=str, keep_default_na=False)
    for column in ("faces", "tracks", "frames_sampled", "frames_without_face"):  # "6", never "6.0"
        assert text[column].map(lambda v: v == "" or v.isdigit()).all(), text[column]


@pytest.mark.slow
def test_recalibrating_a_shipped_model_stores_one_temperature_and_keeps_its_answers(fer2013_root, tmp_path):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(bundled.BUNDLED_DIR, models)
    before = bundled.read_model_card(models, "paper")
    card = bundle_model.recalibrate_shipped(fer2013_root, "paper", models)
    temperatures = set()
    for fmt, name in bundled.BUNDLED_FILES.items():
        spec = json.loads((models / f"{name}.json").read_text())
        temperatures.add(spec["calibration"]["temperature"])
        assert card["test"][fmt]["confusion_matrix"] == before["test"][fmt]["confusion_matrix"]
        calibration = card["test"][fmt]["calibration"]
        assert (
            0 <= calibration["ece_after"] <= 1
            and calibration["temperature"] == spec["calibration"]["temperature"]
        )
    assert len(temperatures) == 1 and 0.05 < temperatures.pop() < 20
    assert bundled.read_model_card(models, "paper")["training"]["calibration"]["fitted_on"].startswith(
        "FER2013 PublicTest"
    )


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_predict_into_a_folder_of_earlier_predictions_is_refused_unless_appended(
    pyfeat_media, tmp_path, capsys
):
    """Issue 31, finding 10: a second `fer predict --out` into the same folder replaced `summary.csv`
    silently; the earlier batch's files stayed but were no longer listed."""
    out = tmp_path / "out"
    first = [str(pyfeat_media / "single_face.jpg"), str(pyfeat_media / "no_face.mp4")]
    assert main(["predict", *first, "--out", str(out)]) == 0
    before = (out / "summary.csv").read_bytes()
    capsys.readouterr()

    assert main(["predict", str(pyfeat_media / "multi_face.jpg"), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert (
        error.count("\n") == 1
        and "already holds the predictions of 2 file(s)" in error
        and "--append" in error
    )
    assert (out / "summary.csv").read_bytes() == before and not (out / "multi_face.jpg_summary.json").exists()

    again = [str(pyfeat_media / "multi_face.jpg"), str(pyfeat_media / "no_face.mp4")]
    assert main(["predict", *again, "--out", str(out), "--append"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    names = summary["media_path"].map(lambda path: path.rsplit("/", 1)[-1]).tolist()
    assert sorted(names) == ["multi_face.jpg", "no_face.mp4", "single_face.jpg"]  # no_face: this batch's row
    assert summary.set_index(pd.Index(names)).loc["multi_face.jpg", "faces"] == 5  # every person
    assert summary["faces"].dtype.kind == "i"  # counts stay integers after the merge


def test_every_output_folder_loads_plotly_js_beside_it_from_one_copy_on_disk(tmp_path):
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

    from fer_utils.deploy.prediction_outputs import PLOTLY_FILE, write_figure

    folders = [tmp_path / "predictions" / name for name in ("clip-a", "clip-b", "batch/clip-c")]
    for folder in folders:
        folder.mkdir(parents=True)
        write_figure(go.Figure(go.Bar(y=[1, 2])), folder / "figure.html")
        assert f'src="{PLOTLY_FILE}"' in (folder / "figure.html").read_text()  # beside it: offline, movable
        assert (folder / PLOTLY_FILE).read_text() == get_plotlyjs()
    inodes = {(folder / PLOTLY_FILE).stat().st_ino for folder in folders}
    assert len(inodes) == 1  # 4.8 MB stored once, not once per folder
    assert (folders[0] / PLOTLY_FILE).stat().st_nlink >= len(folders)
