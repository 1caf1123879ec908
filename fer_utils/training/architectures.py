"""Network families a run can train (``TrainConfig.architecture``): the paper's CNN and light nets under
1 M parameters. Every family takes ``(s, s, 1)`` gray pixels 0–255, scales them with one ``Rescaling``
layer as the recipe asks (``unit`` [0, 1] or ``centered`` [−1, 1]), and ends in a ReLU bottleneck named
:data:`~fer_utils.training.model.BOTTLENECK_LAYER` and a softmax head named
:data:`~fer_utils.training.model.HEAD_LAYER`, so the diagnostics, dead-unit recycling, ``--init-from``
and the exports work for each. No Lambda layers (safe loading), nothing downloaded (``weights=None``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fer_utils.faces.detection import PAPER_FACE_SIZE
from fer_utils.training.model import (
    BOTTLENECK_LAYER,
    HEAD_LAYER,
    INPUT_SCALINGS,
    build_paper_cnn,
    check_regularisation,
)

#: The family of a run that names none (``TrainConfig.architecture``'s default; runs recorded before families).
DEFAULT_ARCHITECTURE = "paper"
#: BatchNorm momentum of every family (Keras' default; the MobileNetV3 backbone is set to it).
BATCHNORM_MOMENTUM = 0.99


@dataclass(frozen=True)
class Architecture:
    """A family: its builder ``(num_classes, image_size, dropout, l1, input_scaling) → keras.Model``, the
    input size it is meant for and why."""

    name: str
    build: Callable
    input_size: int
    why: str
    description: str


def _scaled_input(image_size: int, input_scaling: str):
    import keras
    from keras import layers

    if input_scaling not in INPUT_SCALINGS:
        raise ValueError(f"input_scaling must be one of {', '.join(INPUT_SCALINGS)}, got {input_scaling!r}")
    inputs = keras.Input(shape=(image_size, image_size, 1), name="face")
    if input_scaling == "centered":
        return inputs, layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    return inputs, layers.Rescaling(1.0 / 255, name="rescale")(inputs)


def _head(x, num_classes: int, width: int, dropout: float, l1: float):
    """Dense(width, relu) bottleneck (L1 on its kernel when ``l1``) → dropout → Dense(num_classes, softmax)."""
    from keras import layers, regularizers

    x = layers.Dense(
        width,
        activation="relu",
        kernel_regularizer=regularizers.L1(l1) if l1 > 0 else None,
        name=BOTTLENECK_LAYER,
    )(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name=HEAD_LAYER)(x)


def _checked(num_classes: int, image_size: int, minimum: int, name: str) -> None:
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if image_size < minimum:
        raise ValueError(f"architecture {name} needs faces of at least {minimum} px, got {image_size}")


def build_paper_bn(
    num_classes: int,
    image_size: int = 64,
    dropout: Sequence[float] = (0.3, 0.3, 0.3),
    l1: float = 0.0,
    input_scaling: str = "unit",
):
    """The paper's layout (3×3 convolutions of 16, 64, 64 filters, each pooled 2×2 and dropped out,
    flatten) with BatchNorm after each convolution and a 64-unit bottleneck instead of 16."""
    import keras
    from keras import layers

    _checked(num_classes, image_size, 8, "paper_bn")
    dropout = check_regularisation(dropout, l1)
    inputs, x = _scaled_input(image_size, input_scaling)
    for block, (filters, rate) in enumerate(zip((16, 64, 64), dropout, strict=True), start=1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{block}")(x)
        x = layers.BatchNormalization(name=f"bn{block}")(x)
        x = layers.ReLU(name=f"relu{block}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
        x = layers.Dropout(rate, name=f"dropout{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, _head(x, num_classes, 64, 0.0, l1), name="paper_bn")


def build_mini_xception(
    num_classes: int,
    image_size: int = 64,
    dropout: Sequence[float] = (0.3, 0.3, 0.3),
    l1: float = 0.0,
    input_scaling: str = "unit",
    filters: Sequence[int] = (16, 32, 64, 128),
):
    """Mini-Xception (Arriaga et al. 2017): two 3×3 convolutions of 8 filters, then one residual module
    per entry of ``filters`` (two depthwise-separable 3×3 convolutions with BatchNorm, a 3×3 stride-2 max
    pool, added to a 1×1 stride-2 convolution of the input), global average pooling, a 64-unit
    bottleneck and the head (dropout: the last rate, before the head)."""
    import keras
    from keras import layers

    _checked(num_classes, image_size, 16, "mini_xception")
    dropout = check_regularisation(dropout, l1)
    inputs, x = _scaled_input(image_size, input_scaling)
    for index in (1, 2):
        x = layers.Conv2D(8, 3, padding="same", use_bias=False, name=f"conv{index}")(x)
        x = layers.BatchNormalization(name=f"conv{index}_bn")(x)
        x = layers.ReLU(name=f"conv{index}_relu")(x)
    for module, width in enumerate(filters, start=1):
        name = f"module{module}"
        # The 1×1 stride-2 projection as subsampling + a 1×1 convolution (the same numbers): TensorFlow 2.21's
        # oneDNN kernels abort ("double free") when training a strided 1×1 convolution.
        shortcut = layers.MaxPooling2D(1, strides=2, name=f"{name}_subsample")(x)
        shortcut = layers.Conv2D(width, 1, use_bias=False, name=f"{name}_shortcut")(shortcut)
        shortcut = layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
        x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False, name=f"{name}_sep1")(x)
        x = layers.BatchNormalization(name=f"{name}_sep1_bn")(x)
        x = layers.ReLU(name=f"{name}_sep1_relu")(x)
        x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False, name=f"{name}_sep2")(x)
        x = layers.BatchNormalization(name=f"{name}_sep2_bn")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
        x = layers.Add(name=f"{name}_add")([x, shortcut])
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    return keras.Model(inputs, _head(x, num_classes, 64, dropout[-1], l1), name="mini_xception")


def build_vgg_bn(
    num_classes: int,
    image_size: int = 48,
    dropout: Sequence[float] = (0.3, 0.3, 0.3),
    l1: float = 0.0,
    input_scaling: str = "unit",
    widths: Sequence[int] = (16, 32, 64, 128),
):
    """A CPU-efficient VGG-style net: per entry of ``widths`` a block of plain 3×3 convolutions with
    BatchNorm and ReLU (two per block, one in the last) and a 2×2 max pool, the block dropped out
    (``dropout``'s rates, the first shared by the first two blocks), global average pooling, a 128-unit
    bottleneck and the head. Plain convolutions run several times faster per multiply-add than
    depthwise-separable ones in TensorFlow on a CPU, which is what makes a seed fit one CPU thread."""
    import keras
    from keras import layers

    _checked(num_classes, image_size, 2 ** len(widths), "vgg_bn")
    dropout = check_regularisation(dropout, l1)
    inputs, x = _scaled_input(image_size, input_scaling)
    block_dropout = [dropout[0]] * (len(widths) - 2) + list(dropout[1:])
    for block, (width, rate) in enumerate(zip(widths, block_dropout, strict=True), start=1):
        for conv in range(1 if block == len(widths) else 2):
            name = f"block{block}_conv{conv + 1}"
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=name)(x)
            x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name=f"{name}_bn")(x)
            x = layers.ReLU(name=f"{name}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
        x = layers.Dropout(rate, name=f"block{block}_dropout")(x)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    return keras.Model(inputs, _head(x, num_classes, 128, 0.0, l1), name="vgg_bn")


def build_mobilenet_v3_small(
    num_classes: int,
    image_size: int = 64,
    dropout: Sequence[float] = (0.3, 0.3, 0.3),
    l1: float = 0.0,
    input_scaling: str = "unit",
    alpha: float = 0.75,
):
    """Keras' MobileNetV3-Small backbone (width ``alpha``, untrained: ``weights=None``, its own
    preprocessing off, BatchNorm momentum :data:`BATCHNORM_MOMENTUM`) on the scaled gray face, global average pooling, a 128-unit bottleneck and the
    head (dropout: the last rate, before the head)."""
    import keras

    _checked(num_classes, image_size, 32, "mobilenet_v3_small")
    dropout = check_regularisation(dropout, l1)
    inputs, x = _scaled_input(image_size, input_scaling)
    backbone = keras.applications.MobileNetV3Small(
        input_tensor=x,
        alpha=alpha,
        include_top=False,
        weights=None,
        pooling="avg",
        include_preprocessing=False,
    )
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # Keras ships ImageNet's 0.999: on ~100 steps an epoch the moving statistics lag the weights so
            # far that inference predicted one class for 30 epochs (FER2013 subset); 0.99 as in the others.
            layer.momentum = BATCHNORM_MOMENTUM
    return keras.Model(
        inputs, _head(backbone.output, num_classes, 128, dropout[-1], l1), name="mobilenet_v3_small"
    )


ARCHITECTURES: dict[str, Architecture] = {
    architecture.name: architecture
    for architecture in (
        Architecture(
            "paper",
            build_paper_cnn,
            PAPER_FACE_SIZE,
            "the paper's own input: its 542,136 parameters are counted at 180 px; on FER2013 it runs at the "
            "faces' native 48 px (83,367 parameters)",
            "the paper's CNN, exactly as published",
        ),
        Architecture(
            "paper_bn",
            build_paper_bn,
            64,
            "64 px is the light FER models' common input; the flattened 8×8×64 map into 64 units keeps it "
            "near 0.3 M parameters (at 180 px the flatten alone would pass 1 M)",
            "the paper's layout with BatchNorm and a 64-unit bottleneck (its future work)",
        ),
        Architecture(
            "mini_xception",
            build_mini_xception,
            64,
            "mini-Xception's published input (FER2013's 48 px faces upsampled); global pooling makes the "
            "parameter count independent of the size",
            "depthwise-separable residual net of the mini-Xception kind",
        ),
        Architecture(
            "vgg_bn",
            build_vgg_bn,
            48,
            "FER2013 / FER+'s native 48 px (no upsampling: training cost grows with the square of the side); "
            "four pools leave a 3×3 map, and global pooling keeps it near 0.2 M parameters",
            "plain 3×3 convolutions with BatchNorm (16-32-64-128), the CPU-efficient light family",
        ),
        Architecture(
            "mobilenet_v3_small",
            build_mobilenet_v3_small,
            64,
            "the stride-32 backbone leaves a 2×2 map at 64 px (1×1 below 33 px); larger inputs cost "
            "multiply-adds quadratically with little gain on 48 px sources",
            "MobileNetV3-Small (width 0.75), untrained",
        ),
    )
}


def architecture(name: str) -> Architecture:
    """The family called ``name``; ValueError naming the choices otherwise."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def build_model(
    name: str,
    num_classes: int,
    image_size: int,
    dropout: Sequence[float] = (0.3, 0.3, 0.3),
    l1: float = 0.0,
    input_scaling: str = "unit",
):
    """An uncompiled model of family ``name`` for ``num_classes`` classes at ``image_size`` px."""
    return architecture(name).build(num_classes, image_size, dropout, l1, input_scaling)


def count_multiply_adds(model) -> list[dict]:
    """Multiply-adds per face of each convolution and Dense layer (conv: H·W·k·k·Cin·Cout; depthwise:
    H·W·k·k·Cin·multiplier; separable: depthwise + H·W·Cin·multiplier·Cout; dense: in·out). Elementwise
    layers (BatchNorm, activations, pooling, additions) are not counted.

    Args:
        model: a built Keras model.

    Returns:
        One dict per counted layer: name, kind, output shape, multiply-adds.
    """
    from keras import layers

    counted = []
    for layer in model.layers:
        if isinstance(layer, layers.SeparableConv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_h, kernel_w, channels_in, multiplier = layer.depthwise_kernel.shape
            depthwise = kernel_h * kernel_w * channels_in * multiplier
            macs = height * width * (depthwise + channels_in * multiplier * channels_out)
        elif isinstance(layer, layers.DepthwiseConv2D):
            _, height, width, _ = layer.output.shape
            kernel_h, kernel_w, channels_in, multiplier = layer.kernel.shape
            macs = height * width * kernel_h * kernel_w * channels_in * multiplier
        elif isinstance(layer, layers.Conv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_h, kernel_w, channels_in, _ = layer.kernel.shape
            macs = height * width * kernel_h * kernel_w * channels_in * channels_out
        elif isinstance(layer, layers.Dense):
            inputs, outputs = layer.kernel.shape
            macs = inputs * outputs
        else:
            continue
        counted.append(
            {
                "layer": layer.name,
                "kind": type(layer).__name__,
                "output_shape": [int(d) for d in layer.output.shape[1:]],
                "multiply_adds": int(macs),
            }
        )
    return counted


def model_cost(model) -> dict:
    """``{"parameters", "multiply_adds"}`` per face of a built model (convolutions and Dense layers,
    :func:`count_multiply_adds`)."""
    return {
        "parameters": int(model.count_params()),
        "multiply_adds": int(sum(layer["multiply_adds"] for layer in count_multiply_adds(model))),
    }


def architecture_table(num_classes: int = 7) -> list[dict]:
    """One row per family at its intended input size: name, input, parameters, multiply-adds, why."""
    rows = []
    for family in ARCHITECTURES.values():
        model = family.build(num_classes, family.input_size)
        rows.append(
            {
                "architecture": family.name,
                "input_size": family.input_size,
                **model_cost(model),
                "description": family.description,
                "why_this_size": family.why,
            }
        )
    return rows
