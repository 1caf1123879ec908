"""`fer ensemble-model`: several trained models as one model file that predict, export and --teacher take."""

from __future__ import annotations

import json

import numpy as np
import pytest

LABELS = ["happy", "sad", "angry"]


def _member(folder, seed: int, labels=LABELS, size: int = 24, equalize: str = "none"):
    """A run-like folder with an untrained paper CNN (a different seed each) and its config."""
    import keras

    from fer_utils.training.model import build_paper_cnn

    folder.mkdir(parents=True)
    keras.utils.set_random_seed(seed)
    build_paper_cnn(len(labels), size).save(folder / "model.keras")
    config = {"labels": list(labels), "image_size": size, "preprocessing": {"equalize": equalize}}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    return [_member(root / f"seed-{seed}", seed) for seed in (0, 1, 2)]


@pytest.fixture(scope="module")
def ensemble_path(members, tmp_path_factory):
    from fer_utils.training.ensemble import write_ensemble

    return write_ensemble(members, tmp_path_factory.mktemp("ensemble") / "ensemble.keras")


@pytest.fixture(scope="module")
def faces():
    return np.random.default_rng(0).integers(0, 256, (12, 24, 24), dtype=np.uint8)


def test_the_ensemble_file_answers_the_softmax_of_its_members_mean_logits(members, ensemble_path, faces):
    from fer_utils import deploy
    from fer_utils.training.model import load_keras_model

    path = ensemble_path
    member_probabilities = [
        deploy.load_predictor(run).predict_proba(faces, calibrated=False) for run in members
    ]
    mean_log = np.mean([np.log(p) for p in member_probabilities], axis=0)
    expected = deploy.softmax(mean_log)  # a row's log-probabilities are its logits less one constant
    served = deploy.load_predictor(path).predict_proba(faces)
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert not np.allclose(served, member_probabilities[0], atol=1e-3)  # the members really differ

    spec = json.loads((path.parent / "ensemble.keras.json").read_text())
    member_parameters = load_keras_model(members[0] / "model.keras").count_params()
    assert spec["architecture"] == "ensemble" and spec["labels"] == LABELS and spec["image_size"] == 24
    assert spec["preprocessing"]["equalize"] == "none"
    assert [member["model"] for member in spec["members"]] == [str(run / "model.keras") for run in members]
    assert spec["cost"]["parameters"] == spec["num_params"] == 3 * member_parameters


def test_the_ensemble_exports_and_its_int8_file_ends_at_the_mean_logits(ensemble_path, faces, tmp_path):
    from fer_utils import deploy
    from fer_utils.training.model import load_keras_model, logits_model

    path = ensemble_path
    ensemble = load_keras_model(path)
    pixels = faces[..., None].astype(np.float32)
    logits = np.asarray(logits_model(ensemble)(pixels))
    np.testing.assert_allclose(deploy.softmax(logits), np.asarray(ensemble(pixels)), atol=1e-5)

    onnx = deploy.export_run(path, "onnx", tmp_path / "ensemble.onnx")
    spec = json.loads((tmp_path / "ensemble.onnx.json").read_text())
    assert spec["architecture"] == "ensemble" and len(spec["members"]) == 3
    np.testing.assert_allclose(
        deploy.load_predictor(onnx).predict_proba(faces),
        deploy.load_predictor(path).predict_proba(faces),
        atol=1e-4,
    )
    with pytest.raises(ValueError, match="int8 needs calibration faces; give --calibration-cache"):
        deploy.export_run(_spec_without_members(path, tmp_path), "tflite-int8")


def _spec_without_members(path, tmp_path):
    """A copy of the ensemble whose spec names no member runs (no faces to calibrate int8 on)."""
    import shutil

    copy = tmp_path / "alone" / "ensemble.keras"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    spec = json.loads((path.parent / "ensemble.keras.json").read_text())
    spec.pop("members")
    (copy.parent / "ensemble.keras.json").write_text(json.dumps(spec))
    return copy


def test_members_that_disagree_are_refused_in_one_line(members, tmp_path):
    from fer_utils.training.ensemble import write_ensemble

    reordered = _member(tmp_path / "reordered", 3, labels=["sad", "happy", "angry"])
    larger = _member(tmp_path / "larger", 4, size=32)
    equalized = _member(tmp_path / "equalized", 5, equalize="hist")
    with pytest.raises(
        ValueError, match=r"reordered has labels \['sad', 'happy', 'angry'\], the first member"
    ):
        write_ensemble([members[0], reordered], tmp_path / "e.keras")
    with pytest.raises(ValueError, match="larger has image_size 32, the first member .* 24"):
        write_ensemble([members[0], larger], tmp_path / "e.keras")
    with pytest.raises(ValueError, match="equalized has pixel step hist, the first member .* none"):
        write_ensemble([members[0], equalized], tmp_path / "e.keras")
    with pytest.raises(ValueError, match="needs at least two models, got 1"):
        write_ensemble([members[0]], tmp_path / "e.keras")
    assert not (tmp_path / "e.keras").exists()


def test_an_ensemble_is_a_teacher(ensemble_path, faces):
    from fer_utils.training.distill import load_teacher

    teacher, order, _ = load_teacher(ensemble_path, ["angry", "happy", "sad"], 24)
    assert order.tolist() == [2, 0, 1]
    probabilities = np.asarray(teacher(faces[..., None].astype(np.float32), training=False))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
