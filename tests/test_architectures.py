"""Architecture families: size, cost, save/load and export to TFLite (float, int8) and ONNX."""

from __future__ import annotations

import numpy as np
import pytest

from fer_utils.training.architectures import (
    ARCHITECTURES,
    BATCHNORM_MOMENTUM,
    architecture,
    build_model,
    model_cost,
)


def _paper_parameters(num_classes: int, image_size: int) -> int:
    """The paper CNN's parameters from its layout: three 3×3 convs (16, 64, 64), three 2×2 pools, Dense(16)."""
    convolutions = (9 * 1 + 1) * 16 + (9 * 16 + 1) * 64 + (9 * 64 + 1) * 64
    side = image_size // 2 // 2 // 2
    return convolutions + (side * side * 64 + 1) * 16 + (16 + 1) * num_classes


def test_paper_family_is_the_published_cnn():
    model = build_model("paper", 8, 180)
    assert _paper_parameters(8, 180) == 542_136 == model_cost(model)["parameters"]
    assert model_cost(build_model("paper", 7, 48))["parameters"] == _paper_parameters(7, 48) == 83_367


def test_paper_multiply_adds_are_counted_from_the_layers():
    cost = model_cost(build_model("paper", 8, 180))
    expected = 180 * 180 * 9 * 16 + 90 * 90 * 9 * 16 * 64 + 45 * 45 * 9 * 64 * 64 + 22 * 22 * 64 * 16 + 16 * 8
    assert cost["multiply_adds"] == expected


@pytest.mark.parametrize("name", [name for name in ARCHITECTURES if name != "paper"])
def test_light_families_stay_under_a_million_parameters_and_keep_the_named_layers(name):
    family = architecture(name)
    model = build_model(name, 7, family.input_size)
    cost = model_cost(model)
    assert 10_000 < cost["parameters"] < 1_000_000
    assert cost["multiply_adds"] > cost["parameters"]  # convolutions reuse their weights over the face
    names = {layer.name for layer in model.layers}
    assert {"rescale", "dense", "emotion"} <= names
    assert model.output_shape == (None, 7)
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)
    assert family.why
    momenta = {layer.momentum for layer in model.layers if type(layer).__name__ == "BatchNormalization"}
    assert momenta == {BATCHNORM_MOMENTUM}  # MobileNetV3's shipped 0.999 froze inference on one class


def test_depthwise_and_separable_convolutions_are_counted():
    import keras
    from keras import layers

    inputs = keras.Input((8, 8, 4))
    x = layers.DepthwiseConv2D(3, padding="same", name="depthwise")(inputs)
    x = layers.SeparableConv2D(6, 3, padding="same", name="separable")(x)
    from fer_utils.training.architectures import count_multiply_adds

    counted = {row["layer"]: row["multiply_adds"] for row in count_multiply_adds(keras.Model(inputs, x))}
    assert counted == {"depthwise": 8 * 8 * 9 * 4, "separable": 8 * 8 * (9 * 4 + 4 * 6)}


def test_unknown_architecture_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown architecture 'resnet'; choose one of paper, "):
        architecture("resnet")
    with pytest.raises(ValueError, match="mobilenet_v3_small needs faces of at least 32 px"):
        build_model("mobilenet_v3_small", 7, 24)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_each_family_saves_loads_and_exports_with_matching_outputs(name, tmp_path):
    import keras

    from fer_utils import deploy
    from fer_utils.training.model import load_keras_model

    keras.utils.set_random_seed(0)
    size = 32
    model = build_model(name, 3, size, input_scaling="centered" if name == "mini_xception" else "unit")
    faces = np.random.default_rng(0).integers(0, 256, (12, size, size), dtype=np.uint8)
    model.predict(faces[..., None].astype(np.float32), verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = load_keras_model(tmp_path / "model.keras")
    reference = np.asarray(loaded(faces[..., None].astype(np.float32), training=False))
    np.testing.assert_allclose(reference, model(faces[..., None].astype(np.float32)), atol=1e-6)
    labels = ["a", "b", "c"]
    for fmt, tolerance in (("tflite", 1e-4), ("onnx", 1e-4)):
        path = deploy.export_model(loaded, fmt, tmp_path / f"m.{fmt}", labels)
        predicted = deploy.load_predictor(path, num_threads=1).predict_proba(faces)
        np.testing.assert_allclose(predicted, reference, atol=tolerance)
    int8 = deploy.export_model(loaded, "tflite-int8", tmp_path / "m_int8.tflite", labels, faces)
    predicted = deploy.load_predictor(int8, num_threads=1).predict_proba(faces)
    assert predicted.shape == reference.shape
    assert np.abs(predicted - reference).max() < 0.25  # int8 of an untrained net: close, not equal


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_each_family_takes_training_steps(name):
    """One small fit per family (TensorFlow 2.21's oneDNN aborted the process on a strided 1×1 conv)."""
    import keras

    keras.utils.set_random_seed(0)
    model = build_model(name, 3, 32)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    faces = np.random.default_rng(1).integers(0, 256, (16, 32, 32, 1)).astype(np.float32)
    history = model.fit(faces, np.arange(16) % 3, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
