"""`fer predict`'s engine: chosen by a cached measurement (or the CPU's features), recorded, forced by --engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_utils.cli import main
from fer_utils.deploy import engines


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "fer_utils" / "engine.json"


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_every_engine_of_the_bundled_model_is_shipped_and_they_agree(pyfeat_media):
    import cv2

    from fer_utils.faces.detection import extract_faces

    assert engines.available_engines() == list(engines.ENGINES)
    photo = cv2.imread(str(pyfeat_media / "multi_face.jpg"), cv2.IMREAD_GRAYSCALE)
    faces = np.stack([crop.face for crop in extract_faces(photo, 48, margin=0.15)])
    probabilities = {
        engine: engines.bundled_predictor(engine, threads=1).predict_proba(faces)
        for engine in engines.ENGINES
    }
    np.testing.assert_allclose(probabilities["tflite-fp32"], probabilities["onnx-fp32"], atol=1e-4)
    fp32_labels = probabilities["tflite-fp32"].argmax(axis=1)
    assert (probabilities["tflite-int8"].argmax(axis=1) == fp32_labels).mean() >= 0.5


def test_the_choice_is_measured_once_then_cached(own_cache):
    first = engines.choose_engine(threads=1)
    assert first["how"] == "measured on this machine" and first["engine"] in engines.ENGINES
    assert set(first["ms_per_face"]) == set(engines.ENGINES)
    assert min(first["ms_per_face"], key=first["ms_per_face"].get) == first["engine"]
    assert json.loads(own_cache.read_text())["engine"] == first["engine"]
    again = engines.choose_engine(threads=1)
    assert again["how"] == "measured on this machine (cached)" and again["engine"] == first["engine"]


def test_without_a_measurement_the_cpu_features_decide(own_cache, monkeypatch):
    from fer_utils.bench.timing import cpu_info

    monkeypatch.setenv("FER_ENGINE_MEASURE", "0")
    choice = engines.choose_engine(threads=1)
    dot_product = cpu_info()["features"]["int8_dot_product"]
    assert choice["engine"] == ("tflite-int8" if dot_product else "tflite-fp32")
    assert "CPU features" in choice["how"] and not own_cache.exists()


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_predict_records_the_engine_and_engine_forces_one(pyfeat_media, tmp_path, own_cache):
    clip = pyfeat_media / "single_face.mp4"
    assert main(["predict", str(clip), "--fps", "25", "--out", str(tmp_path / "auto")]) == 0
    summary = json.loads((tmp_path / "auto" / "single_face.mp4_summary.json").read_text())
    assert summary["engine"] in engines.ENGINES and summary["engine_choice"]["how"].startswith("measured")
    assert summary["detect_every"] == 10 and summary["tracker"] == "correlation"
    assert summary["frames_without_face"] == 0  # the face followed on every frame between keyframes
    forced = tmp_path / "forced"
    assert (
        main(["predict", str(clip), "--engine", "onnx-fp32", "--detect-every", "1", "--out", str(forced)])
        == 0
    )
    summary = json.loads((forced / "single_face.mp4_summary.json").read_text())
    assert summary["engine"] == "onnx-fp32" and summary["engine_choice"]["how"] == "forced (--engine)"
    assert summary["detect_every"] == 1 and summary["tracker"] is None


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_sparse_frames_are_detected_every_time(pyfeat_media, tmp_path, own_cache, monkeypatch):
    monkeypatch.setenv("FER_ENGINE_MEASURE", "0")
    out = tmp_path / "out"
    assert main(["predict", str(pyfeat_media / "single_face.mp4"), "--frames", "6", "--out", str(out)]) == 0
    summary = json.loads((out / "single_face.mp4_summary.json").read_text())
    assert summary["detect_every"] == 1  # 0.4 s apart: too far for a tracker


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_engine_with_a_model_file_is_refused(pyfeat_media, tmp_path, capsys):
    from fer_utils.deploy.bundled import bundled_model_path

    code = main(
        [
            "predict",
            str(pyfeat_media / "single_face.jpg"),
            "--model",
            str(bundled_model_path()),
            "--engine",
            "tflite-fp32",
            "--out",
            str(tmp_path),
        ]
    )
    assert code != 0 and "--engine chooses among the bundled model's files" in capsys.readouterr().err
