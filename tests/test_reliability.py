"""The pieces that make training reliable: recipes, augmentation, diagnostics, unit recycling, health
flags and transfer (fast tier; the real-data convergence check is in test_train_real.py)."""

import cv2
import numpy as np
import pytest

from fer_utils.training.augment import AugmentConfig, augment_batch
from fer_utils.training.callbacks import ProbeHealth, bottleneck_diagnostics, dead_units, recycle_callback
from fer_utils.training.health import health_flags, majority_baselines, stall_reason, underfit_reason
from fer_utils.training.model import build_paper_cnn
from fer_utils.training.recipes import RECIPES
from fer_utils.training.transfer import transfer_weights


@pytest.fixture(scope="module")
def faces():
    """32 real 48×48 grayscale crops of the astronaut photo, shifted a little each."""
    from skimage.data import astronaut

    face = cv2.cvtColor(astronaut()[20:220, 150:330], cv2.COLOR_RGB2GRAY)
    crops = [cv2.resize(face[i % 8 : 180 + i % 8, i % 5 : 170 + i % 5], (48, 48)) for i in range(32)]
    return np.stack(crops)[..., None]


def test_the_paper_recipe_is_the_published_setting():
    paper = RECIPES["paper"]
    assert (paper.learning_rate, paper.lr_schedule, paper.warmup_epochs) == (1e-3, "constant", 0.0)
    assert (paper.input_scaling, paper.augment, paper.label_smoothing) == ("unit", False, 0.0)
    assert not paper.recycle_dead_units and paper.class_weighting == "none"
    assert paper.selection_metric == "val_accuracy"


def test_augmentation_keeps_shape_range_and_changes_faces(faces):
    import tensorflow as tf

    tf.random.set_seed(0)
    augmented, labels = augment_batch(tf.constant(faces), tf.range(32))
    augmented = augmented.numpy()
    assert augmented.shape == faces.shape and augmented.dtype == np.float32
    assert augmented.min() >= 0 and augmented.max() <= 255
    assert np.abs(augmented - faces).mean() > 5  # really changed
    assert list(labels.numpy()) == list(range(32))


def test_augmentation_without_changes_is_the_identity_and_flip_mirrors(faces):
    import tensorflow as tf

    still = AugmentConfig(
        flip=False, max_rotation_degrees=0, max_scale=0, max_shift=0, max_brightness=0, max_contrast=0
    )
    same, _ = augment_batch(tf.constant(faces), tf.zeros(32), still)
    np.testing.assert_allclose(same.numpy(), faces, atol=1e-3)
    tf.random.set_seed(3)
    flipped, _ = augment_batch(
        tf.constant(faces), tf.zeros(32), AugmentConfig(**{**still.__dict__, "flip": True})
    )
    mirrored = [
        np.allclose(out, face[:, ::-1], atol=1e-3) for out, face in zip(flipped.numpy(), faces, strict=True)
    ]
    unchanged = [np.allclose(out, face, atol=1e-3) for out, face in zip(flipped.numpy(), faces, strict=True)]
    assert all(m or u for m, u in zip(mirrored, unchanged, strict=True))
    assert 4 <= sum(mirrored) <= 28  # about half


def _model_with_dead_units(units):
    model = build_paper_cnn(2, image_size=48)
    kernel, bias = model.get_layer("dense").get_weights()
    bias[list(units)] = -1e3  # these ReLUs output 0 for any face
    model.get_layer("dense").set_weights([kernel, bias])
    return model


def test_dead_units_and_diagnostics(faces):
    model = _model_with_dead_units(range(5))
    assert dead_units(model, faces)[:5].all()
    diagnostics = bottleneck_diagnostics(model, faces.astype("float32"), np.arange(32) % 2)
    assert diagnostics["dead_units"] >= 5 / 16
    assert diagnostics["grad_norm"] > 0


def test_recycling_revives_dead_units_without_changing_predictions(faces):
    model = _model_with_dead_units(range(16))  # every unit dead: the model answers from the bias alone
    before = model.predict(faces, verbose=0)
    log = []
    health = ProbeHealth(faces, np.arange(32) % 2)
    assert health.measure(model, epoch=0)[1].all()  # the epoch's evaluation measured it first
    recycle = recycle_callback(health, seed=0, log=log)
    recycle.set_model(model)
    recycle.on_epoch_end(0)
    assert log == [(1, 16)]
    assert not dead_units(model, faces).all()
    assert not health.dead_mask(model, 0).all()  # the revival dropped the epoch's measurement
    np.testing.assert_allclose(model.predict(faces, verbose=0), before, atol=1e-6)


def _eager_gradient_norm(model, faces, targets) -> float:
    import keras
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(targets, model(faces, training=False))
        )
    gradients = tape.gradient(loss, model.trainable_variables)
    return float(tf.linalg.global_norm([g for g in gradients if g is not None]))


def test_probe_health_in_one_compiled_pass_matches_the_eager_measures(faces):
    """The compiled pass gives the eager dead-unit mask and gradient norm, and follows the trainable
    weights when the convolutions are frozen (transfer) and unfrozen again."""
    model = _model_with_dead_units(range(3))
    probe, targets = faces.astype("float32"), np.arange(32) % 2
    health = ProbeHealth(probe, targets)
    for frozen in (False, True, False):
        for layer in model.layers:
            if layer.name.startswith("conv"):
                layer.trainable = not frozen
        diagnostics, dead = health.measure(model)
        np.testing.assert_array_equal(dead, dead_units(model, probe))
        assert diagnostics["dead_units"] == pytest.approx(dead.mean())
        assert diagnostics["grad_norm"] == pytest.approx(
            _eager_gradient_norm(model, probe, targets), rel=1e-5
        )
    all_trainable_norm = _eager_gradient_norm(model, probe, targets)
    for layer in model.layers:
        if layer.name.startswith("conv"):
            layer.trainable = False
    assert health.measure(model)[0]["grad_norm"] < all_trainable_norm  # the convolutions add gradient


def test_health_flags():
    labels = ["happy", "sad", "angry"]
    baselines = majority_baselines(["happy"] * 6 + ["sad"] * 3 + ["angry"], labels)
    assert baselines["majority_label"] == "happy" and baselines["majority_rate"] == pytest.approx(0.6)
    assert baselines["majority_macro_f1"] == pytest.approx((0.75 + 0 + 0) / 3)
    assert "not 5 points above always answering 'happy'" in stall_reason(0.62, baselines)
    assert stall_reason(0.7, baselines) is None
    assert "never predicts angry" in underfit_reason(0.9, 0.85, labels, labels, ["happy", "sad"])
    assert "macro F1" in underfit_reason(0.8, 0.4, labels, labels, labels)
    assert underfit_reason(0.8, 0.7, labels, labels, labels) is None
    flags = health_flags({"accuracy": 0.8, "macro_f1": 0.7}, baselines, labels, labels, labels)
    assert flags == {
        "stalled": False,
        "stalled_reason": None,
        "underfit": False,
        "underfit_reason": None,
        "converged": True,
    }
    stalled = health_flags({"accuracy": 0.6, "macro_f1": 0.25}, baselines, labels, labels, ["happy"])
    assert stalled["stalled"] and not stalled["underfit"] and not stalled["converged"]


def test_transfer_copies_shared_layers_and_head_rows():
    source = build_paper_cnn(3, image_size=48)
    target = build_paper_cnn(4, image_size=48)
    report = transfer_weights(source, target, ["happy", "sad", "angry"], ["neutral", "sad", "happy", "calm"])
    assert report["copied"] == ["conv1", "conv2", "conv3", "dense"]
    assert report["head_classes_copied"] == ["sad", "happy"] and report["head_classes_new"] == [
        "neutral",
        "calm",
    ]
    np.testing.assert_array_equal(
        target.get_layer("conv2").get_weights()[0], source.get_layer("conv2").get_weights()[0]
    )
    source_kernel = source.get_layer("emotion").get_weights()[0]
    target_kernel = target.get_layer("emotion").get_weights()[0]
    np.testing.assert_array_equal(target_kernel[:, 2], source_kernel[:, 0])  # happy
    np.testing.assert_array_equal(target_kernel[:, 1], source_kernel[:, 1])  # sad
    with pytest.raises(ValueError, match="image size"):
        transfer_weights(build_paper_cnn(3, image_size=64), target, ["a", "b", "c"], ["a", "b", "c", "d"])


def test_init_from_the_bundled_keras_model_finds_its_spec_and_keeps_the_head_rows(tmp_path, capsys):
    """The paper CNN's bundled spec is ``fer2013_robust_48.keras.json``: transfer reads it by the rule
    ``fer predict`` uses, so the head rows of shared classes are carried over (not silently fresh)."""
    from fer_utils.deploy.bundled import bundled_model_path
    from fer_utils.deploy.predictors import model_spec
    from fer_utils.training.model import load_keras_model
    from fer_utils.training.transfer import initialise_from, resolve_source

    bundled = bundled_model_path("keras", model="paper")
    path, labels = resolve_source(bundled)
    assert labels == model_spec(bundled)["labels"] and len(labels) == 7
    target_labels = ["neutral", "calm", "happy", "sad"]
    target = build_paper_cnn(4, image_size=48, input_scaling="centered")  # the bundled model's recipe
    record = initialise_from(bundled, target, target_labels)
    assert record["source_labels"] == labels
    assert record["head_classes_copied"] == ["neutral", "happy", "sad"]
    assert record["head_classes_new"] == ["calm"] and "input_range_differs" not in record
    printed = capsys.readouterr().out
    assert "head rows kept for neutral, happy, sad; starting fresh: calm" in printed
    source_kernel = load_keras_model(path).get_layer("emotion").get_weights()[0]
    target_kernel = target.get_layer("emotion").get_weights()[0]
    np.testing.assert_array_equal(target_kernel[:, 2], source_kernel[:, labels.index("happy")])
    np.testing.assert_array_equal(target_kernel[:, 3], source_kernel[:, labels.index("sad")])

    # The paper recipe scales pixels to [0, 1], the bundled model to [-1, 1]: said, and recorded.
    record = initialise_from(bundled, build_paper_cnn(4, image_size=48), target_labels)
    assert record["input_range_differs"] == {"source": [-1.0, 1.0], "run": [0.0, 1.0]}
    assert "WARNING" in capsys.readouterr().out

    # Without any spec the head cannot be carried over: a one-line error, never a silent fresh head.
    lone = tmp_path / "lone.keras"
    lone.write_bytes(bundled.read_bytes())
    with pytest.raises(ValueError, match="no class names for its outputs") as error:
        initialise_from(lone, build_paper_cnn(4, image_size=48), target_labels)
    assert "\n" not in str(error.value) and "lone.keras.json" in str(error.value)


def test_a_validation_score_that_saturates_early_makes_selection_arbitrary():
    from fer_utils.training.health import selection_saturation

    saturated = selection_saturation([0.6, 0.9, 1.0, 1.0, 0.98, 1.0], "val_accuracy")
    assert saturated["selection_saturated"]
    assert "epoch 3 of 6 (3 epochs at 1.0)" in saturated["selection_saturated_reason"]
    assert selection_saturation([0.6, 0.9, 0.95], "val_macro_f1") == {
        "selection_saturated": False,
        "selection_saturated_reason": None,
    }
    assert not selection_saturation([0.6, 0.9, 1.0], "val_macro_f1")["selection_saturated"]  # last epoch


def test_a_saturated_run_says_so_in_metrics_and_summary(tmp_path):
    """The flag reaches metrics.json (``run_metrics``) and the run's warnings (summary, dashboard)."""
    import pandas as pd

    from fer_utils.training.results import RunConfig
    from fer_utils.training.rundir import Run
    from fer_utils.training.train import FitResult, run_metrics

    history = pd.DataFrame(
        {
            "accuracy": [0.5, 0.8, 0.9, 0.95],
            "val_accuracy": [0.6, 1.0, 1.0, 1.0],
            "val_macro_f1": [0.55, 1.0, 1.0, 1.0],
            "dead_units": [0.0] * 4,
        }
    )
    fitted = FitResult(history, 1.0, {"dead_units": 0.0, "grad_norm": 1.0}, [], "val_macro_f1")
    labels = ["happy", "sad"]
    predictions = pd.DataFrame({"true_label": ["happy", "sad"] * 5, "predicted_label": ["happy", "sad"] * 5})
    run_config = RunConfig(
        settings={"protocol": "paper", "recipe": "robust"}, labels=labels, dataset="d", recipe_label="robust"
    )
    metrics = run_metrics(run_config, fitted, predictions, 10, {"present": labels, "predicted": labels})
    assert metrics.selection_saturated and metrics.best_epoch == 2
    assert "epoch 2 of 4" in metrics.selection_saturated_reason
    run = Run(tmp_path, RunConfig(), history, metrics, predictions)
    assert any(warning.startswith("selection_saturated: ") for warning in run.health_warnings)
    assert "WARNING: selection_saturated" in run.summary()


def test_the_weights_average_is_evaluated_and_kept_while_training_goes_on_from_its_own(faces, tmp_path):
    """With ``ema_momentum`` the epoch's evaluation and the best-epoch file get the moving average of the
    weights; the callbacks after them (recycling, the resume checkpoint) and the next step get the
    training weights back."""
    import keras

    from fer_utils.training.architectures import architecture
    from fer_utils.training.config import TrainConfig
    from fer_utils.training.fit import compile_model, training_callbacks
    from fer_utils.training.plan import RunPlan

    config = TrainConfig(recipe="robust", ema_momentum=0.5, learning_rate=0.01)
    plan = RunPlan(
        config, config.applied_recipe(), architecture("paper"), 48, 48, ("a", "b"), "none", "k", tmp_path, 1
    )
    model = build_paper_cnn(2, image_size=48)
    compile_model(model, plan, steps_per_epoch=4, epochs=1)
    assert model.optimizer.use_ema and model.optimizer.ema_momentum == 0.5
    targets = np.arange(32) % 2
    health = ProbeHealth(faces.astype("float32"), targets)
    parts = {"validation": faces.astype("float32"), "test": faces.astype("float32")}
    callbacks = training_callbacks(
        parts, {"validation": targets, "test": targets}, health, plan, tmp_path / "m.keras", 0, []
    )
    seen = {}

    class Weights(keras.callbacks.Callback):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def on_epoch_end(self, epoch, logs=None):
            seen[self.name] = [np.array(w) for w in self.model.get_weights()]

    evaluated_at = next(i for i, c in enumerate(callbacks) if type(c).__name__ == "EpochEvaluation")
    callbacks.insert(evaluated_at, Weights("evaluated"))
    callbacks.append(Weights("after"))
    model.fit(faces.astype("float32"), targets, batch_size=8, epochs=1, callbacks=callbacks, verbose=0)

    kept = keras.models.load_model(tmp_path / "m.keras").get_weights()
    averaged = [np.array(a) for a in model.optimizer._model_variables_moving_average]
    for evaluated, stored in zip(seen["evaluated"], kept, strict=True):
        np.testing.assert_array_equal(evaluated, stored)  # the file holds what was evaluated
    assert len(averaged) == len(seen["evaluated"])  # the paper CNN's weights are all trainable
    for average, evaluated in zip(averaged, seen["evaluated"], strict=True):
        np.testing.assert_array_equal(evaluated, average)  # the average, as Keras keeps it
    changed = [
        not np.allclose(evaluated, after)
        for evaluated, after in zip(seen["evaluated"], seen["after"], strict=True)
    ]
    assert sum(changed) >= 6  # the training weights came back, not the average (kernels and biases)
