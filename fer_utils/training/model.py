"""The paper's light-weight 2D CNN (Ding, Tang, Lu)."""

from __future__ import annotations

from collections.abc import Sequence

from fer_utils.faces.detection import PAPER_FACE_SIZE

#: Layer names other modules rely on: the 16-unit bottleneck and the classifier head.
BOTTLENECK_LAYER = "dense"
HEAD_LAYER = "emotion"
#: How pixels 0–255 enter the network: ``unit`` → [0, 1] (the paper), ``centered`` → [−1, 1].
INPUT_SCALINGS = ("unit", "centered")


def check_regularisation(dropout: Sequence[float], l1: float) -> tuple[float, float, float]:
    """The three dropout rates as floats; ValueError unless each is in [0, 1) and ``l1`` ≥ 0."""
    dropout = tuple(float(rate) for rate in dropout)
    if len(dropout) != 3:
        raise ValueError(f"dropout needs three rates (one per convolution block), got {dropout}")
    for rate in dropout:
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rates must be in [0, 1), got {rate}")
    if l1 < 0:
        raise ValueError(f"l1 must be ≥ 0, got {l1}")
    return dropout


def build_paper_cnn(
    num_classes: int,
    image_size: int = PAPER_FACE_SIZE,
    dropout: Sequence[float] = (0.3, 0.3, 0.3),
    l1: float = 0.0,
    input_scaling: str = "unit",
):
    """Build the paper's CNN.

    Input ``image_size × image_size × 1`` grayscale (uint8 0–255 or float), rescaled to [0, 1] (the
    paper; ``input_scaling="centered"``: to [−1, 1], same layer and parameter count); three
    3×3 ReLU ``same`` convolutions (16, 64, 64 filters), each followed by 2×2 max pooling and a
    dropout layer; flatten; ``Dense(16, relu)`` with an L1 kernel regularizer of factor ``l1`` (none
    when 0); ``Dense(num_classes, softmax)``. At 180×180 and 8 classes: 542,136 parameters.

    Args:
        num_classes: number of emotion classes (≥ 2).
        image_size: side of the square face crops.
        dropout: the three dropout rates, one after each pooling layer.
        l1: L1 factor on the 16-unit dense layer's kernel.
        input_scaling: ``"unit"`` ([0, 1]) or ``"centered"`` ([−1, 1]).

    Returns:
        An uncompiled ``keras.Model``.
    """
    import keras
    from keras import layers, regularizers

    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8, got {image_size}")
    dropout = check_regularisation(dropout, l1)
    if input_scaling not in INPUT_SCALINGS:
        raise ValueError(f"input_scaling must be one of {', '.join(INPUT_SCALINGS)}, got {input_scaling!r}")

    inputs = keras.Input(shape=(image_size, image_size, 1), name="face")
    if input_scaling == "centered":
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    else:
        x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for block, (filters, rate) in enumerate(zip((16, 64, 64), dropout, strict=True), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{block}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
        x = layers.Dropout(rate, name=f"dropout{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(
        16,
        activation="relu",
        kernel_regularizer=regularizers.L1(l1) if l1 > 0 else None,
        name=BOTTLENECK_LAYER,
    )(x)
    outputs = layers.Dense(num_classes, activation="softmax", name=HEAD_LAYER)(x)
    return keras.Model(inputs, outputs, name="paper_cnn")


def load_keras_model(path, compile: bool = False):
    """``keras.saving.load_model`` in safe mode, with errors people can act on (ValueError naming the file).

    A file that is not a ``.keras`` zip (truncated, garbage bytes) is "not a valid Keras model file"
    rather than Keras's "File not found"; a model whose Lambda layer holds code (e.g. a builtin) is
    refused by safe mode with a message saying so, rather than a raw TypeError.
    """
    import zipfile
    from pathlib import Path

    import keras

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model {path} does not exist")
    if not zipfile.is_zipfile(path):
        size = path.stat().st_size
        raise ValueError(
            f"{path} is not a valid Keras model file: not a .keras zip archive ({size} bytes; "
            "truncated or damaged?); train or export it again"
        )
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except (TypeError, ValueError, zipfile.BadZipFile, OSError, KeyError) as error:
        detail = " ".join(str(error).split())[:300]
        if "lambda" in detail.lower() or "Lambda" in _layer_classes(path):
            raise ValueError(
                f"{path} holds a Lambda layer (Python code), which safe loading refuses; only models "
                f"made by `fer train` (no Lambda layers) can be loaded ({type(error).__name__}: {detail})"
            ) from None
        raise ValueError(
            f"{path} is not a valid Keras model file: {type(error).__name__}: {detail}"
        ) from None


def logits_model(model):
    """The same network with its final softmax removed (outputs logits): a last ``Dense`` layer's softmax
    activation becomes linear, a last ``Softmax`` layer (an ensemble's, :mod:`fer_utils.training.ensemble`)
    is dropped; any other model is returned unchanged.

    int8 exports end at the logits: a quantized softmax outputs multiples of 1/256, which ties the
    classes of a low-confidence face; the predictor applies the softmax in float instead.
    """
    import keras

    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return keras.Model(model.input, last.input, name=f"{model.name}_logits")
    if not isinstance(last, keras.layers.Dense) or keras.activations.serialize(last.activation) != "softmax":
        return model

    def clone(layer):
        config = layer.get_config()
        if layer is last:
            config["activation"] = "linear"
        return layer.__class__.from_config(config)

    logits = keras.models.clone_model(model, clone_function=clone)
    logits.set_weights(model.get_weights())
    return logits


def _layer_classes(path) -> set[str]:
    """Class names of the layers listed in a ``.keras`` file's config (empty when unreadable)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return set()
    layers = config.get("config", {}).get("layers", []) if isinstance(config, dict) else []
    return {layer.get("class_name") for layer in layers if isinstance(layer, dict)}
