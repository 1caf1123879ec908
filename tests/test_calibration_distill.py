"""Temperature scaling and ECE; distillation loss and teacher checks; the frontier's Pareto front."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_utils.training.calibration import (
    apply_temperature,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    reliability_figure,
)


def _overconfident(n: int, seed: int, sharpen: float = 3.0):
    """Labels drawn from calibrated probabilities, and those probabilities sharpened (overconfident)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.0, (n, 5))
    calibrated = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in calibrated])
    return apply_temperature(calibrated, 1.0 / sharpen), labels


def test_temperature_scaling_undoes_overconfidence_and_lowers_ece():
    validation, validation_labels = _overconfident(3000, 0)
    test, test_labels = _overconfident(3000, 1)
    temperature = fit_temperature(validation, validation_labels)
    assert temperature == pytest.approx(3.0, rel=0.15)
    record = calibrate(validation, validation_labels, test, test_labels)
    assert (
        record["test_ece_before"] > 0.15 > 0.05 > record["test_ece_after"]
    )  # 0.05: sampling noise of 3000 faces
    assert record["test_nll_after"] < record["test_nll_before"]
    scaled = apply_temperature(test, temperature)
    assert (scaled.argmax(axis=1) == test.argmax(axis=1)).all()  # scaling never changes the class
    figure = reliability_figure(record)
    assert len(figure.data) == 3 and "ECE" in figure.data[1].name


def test_a_temperature_that_does_not_lower_the_ece_of_the_faces_that_fitted_it_is_not_applied():
    """Issue 31, finding 3: fitted on a tiny validation part, the temperature made every demo run's test
    ECE worse (0.090 → 0.133), silently. 19 faces right at 0.95 and one confident mistake: the likelihood
    asks for a softer softmax, which moves every right face away from its (right) confidence."""
    from fer_utils.training.calibration import temperature_decision

    validation = np.array([[0.95, 0.05]] * 19 + [[0.001, 0.999]])
    targets = np.zeros(20, dtype=int)
    fitted = fit_temperature(validation, targets)
    assert fitted > 1.2  # softened
    worse = expected_calibration_error(apply_temperature(validation, fitted), targets)
    assert worse > expected_calibration_error(validation, targets)
    record = calibrate(validation, targets, validation, targets)
    assert record["kept"] is False and record["temperature"] == 1.0
    assert record["fitted_temperature"] == pytest.approx(fitted)
    assert record["test_ece_after"] == record["test_ece_before"]  # the raw softmax, as fer predict reports
    assert "no temperature applied (1)" in record["decision"] and f"{fitted:.3f}" in record["decision"]

    overconfident, labels = _overconfident(3000, 0)
    helped = temperature_decision(overconfident, labels, "validation part")
    assert helped["kept"] and helped["temperature"] == helped["fitted_temperature"] > 2
    assert helped["fit_ece_after"] < helped["fit_ece_before"]


def test_the_model_card_says_when_no_temperature_is_applied():
    from fer_utils.experiments.model_card import calibration_lines

    bins = [{"low": 0.9, "high": 1.0, "faces": 3, "confidence": 0.95, "accuracy": 1.0}]
    text = "\n".join(
        calibration_lines(
            {"temperature": 1.0, "ece_before": 0.05, "ece_after": 0.05, "reliability_after": bins}
        )
    )
    assert "no temperature applied" in text and "raw softmax" in text and "**" not in text
    text = "\n".join(
        calibration_lines(
            {"temperature": 2.0, "ece_before": 0.05, "ece_after": 0.08, "reliability_after": bins}
        )
    )
    assert "0.050 before scaling, 0.080 after (worse;" in text


def test_ece_counts_equal_width_bins_weighted_by_faces():
    probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    bins = [row for row in reliability_bins(probabilities, labels, bins=10) if row["faces"]]
    assert [(row["faces"], row["accuracy"]) for row in bins] == [(2, 1.0), (2, 0.5)]
    expected = (2 * abs(1.0 - 0.6) + 2 * abs(0.5 - 0.95)) / 4
    assert expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(expected)


def test_distillation_loss_blends_labels_and_the_softened_teacher():
    from fer_utils.training.distill import distillation_loss

    student = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], np.float32)
    teacher = np.array([[0.5, 0.4, 0.1], [0.2, 0.2, 0.6]], np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 2]]
    targets = np.concatenate([labels, teacher], axis=1)
    cross_entropy = -np.log([0.7, 0.6])
    only_labels = np.asarray(distillation_loss(3, 4.0, 0.0)(targets, student))
    assert only_labels == pytest.approx(cross_entropy.mean(), rel=1e-5)
    same = np.concatenate([labels, student], axis=1)
    assert float(distillation_loss(3, 4.0, 1.0)(same, student)) == pytest.approx(0.0, abs=1e-6)

    def soft(p, t):
        return apply_temperature(p, t)

    kl = (soft(teacher, 2.0) * (np.log(soft(teacher, 2.0)) - np.log(soft(student, 2.0)))).sum(axis=1)
    blended = float(distillation_loss(3, 2.0, 0.25)(targets, student))
    assert blended == pytest.approx((0.75 * cross_entropy + 0.25 * 4 * kl).mean(), rel=1e-4)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A run-like folder with an (untrained) 3-class teacher at 24 px and its labels."""
    import keras

    from fer_utils.training.model import build_paper_cnn

    folder = tmp_path_factory.mktemp("teacher")
    keras.utils.set_random_seed(0)
    build_paper_cnn(3, 24).save(folder / "model.keras")
    (folder / "config.json").write_text(json.dumps({"labels": ["happy", "sad", "angry"], "image_size": 24}))
    return folder


def test_a_teacher_with_other_classes_or_size_is_one_clear_error(teacher_run):
    from fer_utils.training.distill import load_teacher

    with pytest.raises(ValueError, match=r"has other classes: missing \['fearful'\], extra \['angry'\]"):
        load_teacher(teacher_run, ["happy", "sad", "fearful"], 24)
    with pytest.raises(ValueError, match="takes 24 px faces, the student 48 px"):
        load_teacher(teacher_run, ["angry", "happy", "sad"], 48)
    with pytest.raises(ValueError, match="no model there"):
        load_teacher(teacher_run / "missing", ["happy"], 24)
    model, order, _ = load_teacher(teacher_run, ["angry", "happy", "sad"], 24)
    assert order.tolist() == [2, 0, 1]  # the teacher's outputs in the student's label order


def test_train_config_refuses_bad_architecture_and_distillation_settings():
    from fer_utils.training.config import TrainConfig

    with pytest.raises(ValueError, match="unknown architecture 'vgg'; choose one of paper, paper_bn"):
        TrainConfig(architecture="vgg")
    with pytest.raises(ValueError, match="distill_weight in \\[0, 1\\]"):
        TrainConfig(distill_weight=1.5)


def test_pareto_front_keeps_only_unbeaten_points():
    from fer_utils.experiments.model_study import pareto_front

    cost = [100, 200, 300, 150, 300]
    accuracy = [0.5, 0.6, 0.7, 0.55, 0.65]
    assert pareto_front(cost, accuracy) == [True, True, True, True, False]
    assert pareto_front([1, 1], [0.5, 0.4]) == [True, False]


def test_bundled_models_are_named_by_architecture():
    from fer_utils.deploy import bundled
    from fer_utils.experiments import bundle_model

    assert bundled.bundled_files("paper") == bundled.BUNDLED_FILES
    assert bundled.bundled_files("mini_xception")["tflite-int8"] == "fer2013_mini_xception_int8.tflite"
    assert bundled.is_bundled_name("paper") and not bundled.is_bundled_name("runs/paper")
    config = bundle_model.bundled_train_config(5, "mobilenet_v3_small")
    assert config.architecture == "mobilenet_v3_small" and config.input_size == 64
    assert bundle_model.bundled_train_config(5).input_size == 48


def test_predictors_report_calibrated_probabilities_from_the_run_and_its_exports(teacher_run, tmp_path):
    import shutil

    from fer_utils import deploy

    run = tmp_path / "run"
    shutil.copytree(teacher_run, run)
    labels = ["happy", "sad", "angry"]
    config = {"labels": labels, "image_size": 24, "preprocessing": {"equalize": "none"}}
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text(json.dumps({"labels": labels, "calibration": {"temperature": 2.5}}))
    faces = np.random.default_rng(0).integers(0, 256, (6, 24, 24), dtype=np.uint8)
    predictor = deploy.load_predictor(run)
    raw = predictor.predict_proba(faces, calibrated=False)
    assert predictor.temperature == 2.5
    np.testing.assert_allclose(predictor.predict_proba(faces), apply_temperature(raw, 2.5), atol=1e-6)
    exported = deploy.export_model(
        run / "model.keras", "onnx", tmp_path / "m.onnx", labels, extra={"calibration": {"temperature": 2.5}}
    )
    np.testing.assert_allclose(
        deploy.load_predictor(exported).predict_proba(faces), apply_temperature(raw, 2.5), atol=1e-5
    )


def test_the_paper_cnn_stays_selectable_by_name():
    from fer_utils.deploy.bundled import bundled_model_path, default_model

    assert bundled_model_path(model="paper").name == "fer2013_robust_48_int8.tflite"
    assert bundled_model_path() == bundled_model_path(model=default_model())
    with pytest.raises(ValueError, match="fer bundle-model --architecture mini_xception"):
        bundled_model_path(model="mini_xception")


def test_shipping_from_a_study_refuses_what_would_not_be_an_honest_bundled_model(tmp_path):
    from fer_utils.experiments.bundle_model import study_seeds_folder
    from fer_utils.experiments.model_study import STUDY_FILE

    with pytest.raises(ValueError, match="is not a model study folder"):
        study_seeds_folder(tmp_path, "mini_xception")
    study = {"seeds": [0, 1], "architectures": {"paper": {}}, "shared": {"protocol": "paper"}}
    (tmp_path / STUDY_FILE).write_text(json.dumps(study))
    with pytest.raises(ValueError, match="has no 'mini_xception' runs; it has paper"):
        study_seeds_folder(tmp_path, "mini_xception")
    with pytest.raises(ValueError, match="protocol 'paper'.*PrivateTest stays unseen"):
        study_seeds_folder(tmp_path, "paper")
    (tmp_path / STUDY_FILE).write_text(json.dumps(study | {"shared": {"protocol": "fixed"}}))
    (tmp_path / "paper").mkdir()
    with pytest.raises(ValueError, match="seed\\(s\\) 0, 1 not finished"):
        study_seeds_folder(tmp_path, "paper")


def test_a_finished_distilled_run_counts_as_made_with_the_teacher_a_rerun_names():
    """config.json records the teacher as ``{"model": path}``; extending its study with a seed (same flag) or
    shipping it from the study compares that record with the flag's path and finds them equal."""
    from fer_utils.training.config import effective_settings, setting_mismatches

    requested = {"teacher": "fer_utils/models/ferplus_vgg_bn_x3_48.keras", "targets": "distribution"}
    recorded = requested | {"teacher": {"model": requested["teacher"]}, "image_size": 48}
    assert setting_mismatches(effective_settings(recorded), effective_settings(requested, 48)) == []
    other = requested | {"teacher": "runs/study/vgg_bn/seed-1"}
    assert setting_mismatches(effective_settings(recorded), effective_settings(other, 48)) == [
        "teacher 'fer_utils/models/ferplus_vgg_bn_x3_48.keras' ≠ 'runs/study/vgg_bn/seed-1'"
    ]
