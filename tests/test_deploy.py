"""Export (TFLite float / int8, ONNX) and prediction on real faces and clips."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fer_utils import deploy


@pytest.fixture(scope="module")
def tiny_model():
    """An untrained paper CNN at 24×24 (fast to export; enough to check numerics, not accuracy)."""
    import keras

    from fer_utils.training.model import build_paper_cnn

    keras.utils.set_random_seed(0)
    return build_paper_cnn(3, image_size=24)


def test_fold_rescaling_gives_the_same_outputs_without_the_rescaling_layer(tiny_model):
    from keras import layers

    folded = deploy.fold_rescaling(tiny_model)
    assert not any(isinstance(layer, layers.Rescaling) for layer in folded.layers)
    pixels = np.random.default_rng(0).integers(0, 256, (8, 24, 24, 1)).astype(np.float32)
    np.testing.assert_allclose(folded(pixels), tiny_model(pixels), rtol=1e-4, atol=1e-6)


def test_logits_model_drops_only_the_softmax(tiny_model):
    logits = deploy.logits_model(tiny_model)
    pixels = np.random.default_rng(1).integers(0, 256, (4, 24, 24, 1)).astype(np.float32)
    np.testing.assert_allclose(deploy.softmax(np.asarray(logits(pixels))), tiny_model(pixels), atol=1e-5)


def test_float_exports_load_with_spec_and_match_keras(tiny_model, tmp_path):
    faces = np.random.default_rng(2).integers(0, 256, (16, 24, 24), dtype=np.uint8)
    reference = np.asarray(tiny_model(faces[..., None].astype(np.float32)))
    labels = ["happy", "sad", "angry"]
    for fmt, name in (("tflite", "m.tflite"), ("onnx", "m.onnx")):
        path = deploy.export_model(tiny_model, fmt, tmp_path / name, labels, extra={"protocol": "paper"})
        spec = json.loads((tmp_path / f"{name}.json").read_text())
        assert spec["labels"] == labels and spec["image_size"] == 24 and spec["rescale_folded"] is True
        assert spec["input"]["shape"] == [None, 24, 24, 1] and spec["protocol"] == "paper"
        predictor = deploy.load_predictor(path, num_threads=1)
        assert predictor.labels == labels and predictor.image_size == 24
        np.testing.assert_allclose(predictor.predict_proba(faces), reference, atol=1e-5)


@pytest.mark.parametrize("model", ["fer2013_robust_48_int8.tflite", "fer2013_robust_48.tflite"])
def test_a_tflite_interpreter_starts_without_its_info_line(model):
    """Issue 31, finding 14: TFLite printed "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." when
    the benchmarks (and notebook 05's frontier) opened a model; a fresh process, since TFLite may print it
    once per process."""
    import subprocess
    import sys

    from fer_utils.deploy.bundled import BUNDLED_DIR

    code = "import sys; from fer_utils.bench.inference import tflite_ops; print(len(tflite_ops(sys.argv[1])))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(BUNDLED_DIR / model)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0 and "TensorFlow Lite" not in done.stderr, done.stderr


def test_bad_arguments_are_clear_value_errors(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="unknown export format"):
        deploy.export_model(tiny_model, "coreml", tmp_path / "m", ["a", "b", "c"])
    with pytest.raises(ValueError, match="calibration faces"):
        deploy.export_model(tiny_model, "tflite-int8", tmp_path / "m.tflite", ["a", "b", "c"])
    with pytest.raises(ValueError, match="outputs but 2 labels"):
        deploy.export_model(tiny_model, "tflite", tmp_path / "m.tflite", ["a", "b"])
    with pytest.raises(ValueError, match="does not exist"):
        deploy.load_predictor(tmp_path / "missing.tflite")
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="unsupported model file"):
        deploy.load_predictor(tmp_path / "model.pt")
    with pytest.raises(ValueError, match="not a run folder"):
        deploy.export_run(tmp_path, "tflite")
    with pytest.raises(ValueError, match="does not exist"):
        deploy.media_in(tmp_path / "nothing_here")


# ------------------------------------------------------------------ real faces: a briefly trained run


@pytest.fixture(scope="module")
def trained_run(fer2013_root, tmp_path_factory):
    """A paper CNN trained a few epochs on ~2,000 real FER2013 faces at 48×48 (learns above chance)."""
    from fer_utils.faces.preprocess import image_folder_cache
    from fer_utils.training.train import train_run

    root = tmp_path_factory.mktemp("deploy")
    cache = image_folder_cache(
        fer2013_root, root / "cache", face_size=48, split_dirs=True, max_per_class=100, progress=False
    )
    run = train_run(cache.cache_dir, root / "run", epochs=5, batch_size=32, verbose=0)
    return run


def _test_faces(run):
    from fer_utils.faces.cache import FaceCache

    split = pd.read_csv(run.path / "split.csv")
    ids = split.loc[split["part"] == "test", "face_id"].to_numpy()
    return np.asarray(FaceCache(run.setup.cache_dir).faces(ids))


@pytest.mark.slow
def test_exported_models_agree_with_keras_on_real_test_faces(trained_run):
    from fer_utils.cli import main
    from fer_utils.faces.cache import face_size_of

    faces = _test_faces(trained_run)
    reference = deploy.load_predictor(trained_run.path).predict_proba(faces).argmax(axis=1)
    required = {"tflite": 0.99, "onnx": 0.99, "tflite-int8": 0.95}
    for fmt, minimum in required.items():
        assert main(["export", str(trained_run.path), "--format", fmt]) == 0
        path = trained_run.path / deploy.EXPORT_FILE_NAMES[fmt]
        spec = json.loads(path.with_name(path.name + ".json").read_text())
        assert spec["labels"] == trained_run.setup.labels
        assert face_size_of(spec["preprocessing"]) == 48  # the cache's crop, under either stored name
        predictor = deploy.load_predictor(path, num_threads=1)
        agreement = (predictor.predict_proba(faces).argmax(axis=1) == reference).mean()
        assert agreement >= minimum, f"{fmt}: agreement {agreement:.3f} < {minimum}"
    assert json.loads((trained_run.path / "model_int8.tflite.json").read_text())["input"]["dtype"] == "uint8"


@pytest.mark.slow
def test_predict_single_face_video_writes_a_normalized_timeline(trained_run, pyfeat_media, tmp_path, capsys):
    from fer_utils.cli import main

    out = tmp_path / "pred"
    args = ["predict", str(pyfeat_media / "single_face.mp4"), "--model", str(trained_run.path)]
    assert main([*args, "--fps", "5", "--out", str(out)]) == 0
    faces = pd.read_csv(out / "single_face.mp4_faces.csv")
    timeline = faces[faces["status"] == "face"]
    labels = trained_run.setup.labels
    probabilities = timeline[[f"prob_{label}" for label in labels]].to_numpy()
    assert len(timeline) >= 10  # 72 frames at 24 fps = 3 s → ~15 frames at 5 fps, the face in most
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert timeline["frame_index"].is_monotonic_increasing
    summary = json.loads((out / "single_face.mp4_summary.json").read_text())
    assert summary["status"] == "ok" and summary["label"] in labels
    assert (out / "single_face.mp4_timeline.html").stat().st_size > 10_000
    assert "single_face.mp4:" in capsys.readouterr().out


@pytest.mark.slow
def test_predict_no_face_video_says_so(trained_run, pyfeat_media, tmp_path, capsys):
    from fer_utils.cli import main

    out = tmp_path / "pred"
    code = main(
        ["predict", str(pyfeat_media / "no_face.mp4"), "--model", str(trained_run.path), "--out", str(out)]
    )
    assert code == 0  # no face is a result, not an error
    assert "no face found" in capsys.readouterr().out
    summary = json.loads((out / "no_face.mp4_summary.json").read_text())
    assert summary["status"] == "no_face" and summary["faces"] == 0 and summary["label"] is None
    rows = pd.read_csv(out / "no_face.mp4_faces.csv")
    assert len(rows) == summary["frames_sampled"] and (rows["status"] == "no_face").all()
    assert not (out / "no_face.mp4_tracks.csv").exists()


@pytest.mark.slow
def test_exported_int8_model_predicts_a_video_like_keras(trained_run, pyfeat_media):
    path = trained_run.path / "model_int8.tflite"
    if not path.exists():
        deploy.export_run(trained_run.path, "tflite-int8")
    video = pyfeat_media / "single_face.mp4"
    from_keras = deploy.predict_media(video, deploy.load_predictor(trained_run.path), frames=6)
    from_int8 = deploy.predict_media(video, deploy.load_predictor(path, num_threads=1), frames=6)
    assert list(from_keras.face_rows["frame_index"]) == list(from_int8.face_rows["frame_index"])
    keras_probs = from_keras.face_rows.filter(like="prob_").to_numpy()
    int8_probs = from_int8.face_rows.filter(like="prob_").to_numpy()
    assert np.abs(keras_probs - int8_probs).max() < 0.05
