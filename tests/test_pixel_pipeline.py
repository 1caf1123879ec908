"""One pixel pipeline from training to prediction: the pixel step a model declares (``preprocessing.equalize``)
is applied by every path that feeds it faces, and a model that declares none is refused."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from fixture_media import face_frame

from fer_utils.faces.detection import equalize_face, faces_for_model, to_gray_face


def _faces_folder(root, count: int = 4):
    """Two classes of real (astronaut) faces, each a slightly shifted gray crop with a dull contrast (so
    equalisation changes it)."""
    for label, flip in (("happy", False), ("sad", True)):
        (root / label).mkdir(parents=True)
        for number in range(count):
            face = cv2.cvtColor(face_frame(shift=3 * number, size=(64, 64)), cv2.COLOR_BGR2GRAY)
            face = (60 + face.astype(np.float32) * 0.4).astype(np.uint8)
            cv2.imwrite(str(root / label / f"{number}.png"), face[:, ::-1] if flip else face)
    return root


def _untrained_model(path, labels, step: str | None):
    """An untrained paper CNN at 48 px saved with a spec that declares ``step`` (None: declares none)."""
    from fer_utils.training.model import build_paper_cnn

    model = build_paper_cnn(len(labels), image_size=48)
    model.save(path)
    preprocessing = {"detector": "none"} | ({"equalize": step} if step else {})
    spec = {"format": "keras", "labels": labels, "image_size": 48, "preprocessing": preprocessing}
    path.with_name(path.name + ".json").write_text(json.dumps(spec))
    return path


def _fed_batches(predictor):
    """Record the uint8 batches the predictor's runtime is given."""
    batches = []
    run = predictor._run

    def recording(batch):
        batches.append(np.array(batch))
        return run(batch)

    predictor._run = recording
    return batches


def test_a_face_reaches_the_model_as_the_same_tensor_through_the_training_feed_and_predict(tmp_path):
    import fer_utils
    from fer_utils.deploy.predictors import load_predictor
    from fer_utils.faces.preprocess import image_folder_cache
    from fer_utils.training.feed import class_targets, make_dataset

    root = _faces_folder(tmp_path / "faces")
    cache = image_folder_cache(root, tmp_path / "cache", face_size=48, equalize="hist", progress=False)
    assert cache.config["equalize"] == "hist"
    first = cache.index.iloc[0]
    batch = next(iter(make_dataset(cache, [int(first.face_id)], class_targets(cache)[[0]], 1)))
    fed_in_training = batch[0].numpy()[0, ..., 0]

    predictor = load_predictor(_untrained_model(tmp_path / "model.keras", cache.labels, "hist"))
    batches = _fed_batches(predictor)
    raw = cv2.imread(first.media_path, cv2.IMREAD_GRAYSCALE)
    fer_utils.predict(raw, model=predictor, detector="none")
    np.testing.assert_array_equal(batches[0][0, ..., 0], fed_in_training)
    # and the step really ran: the raw crop is not what either path fed
    assert not np.array_equal(to_gray_face(raw, 48), fed_in_training)


def test_models_trained_on_equalized_and_on_raw_faces_each_get_the_step_they_declare(tmp_path):
    import fer_utils
    from fer_utils.deploy.predictors import load_predictor

    raw = cv2.cvtColor(face_frame(size=(96, 96)), cv2.COLOR_BGR2GRAY)
    raw = (50 + raw.astype(np.float32) * 0.5).astype(np.uint8)
    crop = to_gray_face(raw, 48)
    for step, expected in (
        ("hist", cv2.equalizeHist(crop)),
        ("none", crop),
        ("clahe", equalize_face(crop, "clahe")),
    ):
        predictor = load_predictor(_untrained_model(tmp_path / f"{step}.keras", ["happy", "sad"], step))
        assert predictor.pixel_step == step
        batches = _fed_batches(predictor)
        fer_utils.predict(raw, model=predictor, detector="none")
        np.testing.assert_array_equal(batches[0][0, ..., 0], expected)


def test_a_model_whose_spec_lacks_the_pixel_step_is_refused_naming_the_spec(tmp_path):
    from fer_utils.deploy.predictors import load_predictor

    path = _untrained_model(tmp_path / "old.keras", ["happy", "sad"], None)
    with pytest.raises(ValueError, match="pixel step") as error:
        load_predictor(path)
    message = str(error.value)
    assert "\n" not in message and str(tmp_path / "old.keras.json") in message


def test_the_shipped_files_declare_the_equalisation_their_faces_had():
    """FER2013's JPEG export was equalized at source (its candidates say hist); FER+ and raw FER2013 are
    FER2013's raw pixels (their candidates say none). Every shipped file of a candidate declares its data's
    step."""
    from fer_utils.deploy.bundled import BUNDLED_DIR
    from fer_utils.deploy.predictors import model_spec, pixel_step

    expected = {"fer2013_": "hist", "fer2013raw_": "none", "ferplus_": "none"}
    files = [path for path in sorted(BUNDLED_DIR.iterdir()) if path.suffix in (".keras", ".tflite", ".onnx")]
    assert {prefix for prefix in expected if any(path.name.startswith(prefix) for path in files)} == set(
        expected
    )
    for path in files:
        step = next(step for prefix, step in expected.items() if path.name.startswith(prefix))
        assert pixel_step(model_spec(path), path) == step, path.name


def test_cache_faces_get_the_models_step_unless_they_already_carry_another():
    faces = np.stack([np.linspace(60, 120, 48 * 48).reshape(48, 48).astype(np.uint8)] * 2)
    np.testing.assert_array_equal(faces_for_model(faces, "hist", "hist"), faces)
    np.testing.assert_array_equal(faces_for_model(faces, "hist", "none")[0], cv2.equalizeHist(faces[0]))
    with pytest.raises(ValueError, match="stored with the pixel step 'clahe'"):
        faces_for_model(faces, "none", "clahe")


def test_equalized_fer2013_folders_record_hist_in_their_cache(tmp_path, capsys):
    """A cache of the FER2013 JPEG export records that its faces are equalized (the exporter did it)."""
    from fer_utils.faces.preprocess import image_folder_cache

    root = _faces_folder(tmp_path / "fer2013" / "train", count=2).parent
    for split in ("validation", "test"):
        _faces_folder(tmp_path / "fer2013" / split, count=2)
    cache = image_folder_cache(root, tmp_path / "cache", face_size=48, split_dirs=True, progress=False)
    assert cache.config["dataset"] == "fer2013" and cache.config["equalize"] == "hist"
    assert cache.config["equalized_at_source"] is True
    assert "equalized by whoever exported them" in capsys.readouterr().out
    first = cache.index.iloc[0]  # stored as exported: the step is not applied a second time
    exported = cv2.imread(first.media_path, cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(cache.faces([0])[0], to_gray_face(exported, 48))


def test_fer_evaluate_feeds_cache_faces_through_the_models_step(tmp_path):
    """A cache of raw faces scored by a model trained on equalized ones: the evaluation's probabilities
    are those of the equalized faces."""
    from fer_utils.deploy.predictors import load_predictor
    from fer_utils.experiments.cross_dataset import evaluate_on_cache
    from fer_utils.faces.preprocess import image_folder_cache

    cache = image_folder_cache(
        _faces_folder(tmp_path / "faces"), tmp_path / "cache", face_size=48, progress=False
    )
    assert cache.config["equalize"] == "none"
    model = _untrained_model(tmp_path / "model.keras", cache.labels, "hist")
    run = evaluate_on_cache(model, cache.cache_dir, tmp_path / "eval")
    assert run.setup.evaluation.pixel_step == "hist"
    ids = run.predictions["face_id"].to_numpy()
    expected = load_predictor(model).predict_proba(np.stack([cv2.equalizeHist(f) for f in cache.faces(ids)]))
    got = run.predictions[[f"prob_{label}" for label in cache.labels]].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_test_time_augmentation_averages_the_mirror_and_the_ten_crops():
    from fer_utils.deploy.predictors import predict_with_tta, tta_views

    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    flip = tta_views(faces, "flip")
    np.testing.assert_array_equal(flip[1][:, :, 0], faces[:, :, -1])
    crops = tta_views(faces, "tencrop")
    assert len(crops) == 10 and all(view.shape == (3, 43, 43) for view in crops)
    np.testing.assert_array_equal(crops[3], faces[:, 5:, 5:])  # bottom-right corner
    np.testing.assert_array_equal(crops[9], crops[4][:, :, ::-1])  # the centre's mirror

    class Brightness:
        """A stand-in whose 'probability' of class 0 is each view's mean brightness / 255."""

        def predict_proba(self, views):
            bright = views.reshape(len(views), -1).mean(axis=1) / 255.0
            return np.stack([bright, 1 - bright], axis=1)

    asymmetric = np.zeros((1, 48, 48), np.uint8)
    asymmetric[:, :, :24] = 255
    np.testing.assert_allclose(predict_with_tta(Brightness(), asymmetric, "flip")[0], [0.5, 0.5])
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        tta_views(faces, "rotate")
