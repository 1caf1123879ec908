"""Export a trained run for low-power devices.

``fer export RUN --format tflite|tflite-int8|onnx`` writes the model beside the run (``model.tflite``,
``model_int8.tflite``, ``model.onnx``) with a small JSON spec of its input and labels
(``<model file>.json``). Every export first folds the model's 1/255 rescaling into the first
convolution's weights, so exported models take raw 0–255 gray pixels and spend no operation on scaling.
``tflite-int8`` is full-integer post-training quantization (uint8 pixels in, float probabilities out),
calibrated on faces of the run's training part.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fer_utils.deploy.predictors import as_batch, quiet_tensorflow
from fer_utils.faces.cache import FaceCache
from fer_utils.files import atomic_write_json
from fer_utils.training import model_files, rundir
from fer_utils.training.model import load_keras_model, logits_model
from fer_utils.training.model_files import model_spec, run_calibration, spec_path
from fer_utils.training.runtime import stderr_silenced

EXPORT_FORMATS = ("tflite", "tflite-int8", "onnx")
EXPORT_FILE_NAMES = {"tflite": "model.tflite", "tflite-int8": "model_int8.tflite", "onnx": "model.onnx"}
#: Faces drawn from the run's training part to calibrate int8 quantization.
CALIBRATION_FACES = 256

# --------------------------------------------------------------------------------------------- export


def fold_rescaling(model):
    """The same network with its ``Rescaling`` layer folded into the next convolution's kernel.

    A Rescaling with an offset (the ``robust`` recipe's centring to [−1, 1]) is kept, and so is the Rescaling
    of a graph with merges (residual families of :mod:`fer_utils.training.architectures`): the model is
    returned unchanged.

    ``conv(x * s)`` equals ``conv'(x)`` with ``kernel' = kernel * s`` (exact for a zero offset, whatever
    the padding), so the folded model takes raw pixels and gives the same outputs with one operation
    fewer. A model without a ``Rescaling`` layer is returned unchanged.

    Args:
        model: a linear (single-chain) Keras model such as :func:`fer_utils.training.model.build_paper_cnn`.

    Returns:
        A new ``keras.Model`` (or ``model`` itself when there is nothing to fold).
    """
    import keras
    from keras import layers

    chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if any(isinstance(layer.input, list | tuple) for layer in chain):
        return model  # a residual graph (Add, Multiply): its Rescaling stays, one cheap elementwise op
    rescale_at = [i for i, layer in enumerate(chain) if isinstance(layer, layers.Rescaling)]
    if not rescale_at:
        return model
    position = rescale_at[0]
    rescale = chain[position]
    scale, offset = np.asarray(rescale.scale, dtype=np.float64), np.asarray(rescale.offset, dtype=np.float64)
    if scale.size != 1 or offset.size != 1:
        raise ValueError("only a scalar Rescaling can be folded into a convolution")
    if np.any(offset != 0):
        # conv(s·x + o) with zero padding pads with o-shifted values at the borders, so folding the offset
        # would not be exact: centred models keep their Rescaling layer (one cheap elementwise op).
        return model
    if position + 1 >= len(chain) or not isinstance(chain[position + 1], layers.Conv2D):
        raise ValueError("the Rescaling layer must be followed by a Conv2D to be folded")

    inputs = keras.Input(shape=model.input_shape[1:], name=model.inputs[0].name.split(":")[0])
    x = inputs
    clones = []
    for layer in chain:
        if layer is rescale:
            continue
        clone = layer.__class__.from_config(layer.get_config())
        x = clone(x)
        clones.append((layer, clone))
    folded = keras.Model(inputs, x, name=model.name)
    for original, clone in clones:
        weights = original.get_weights()
        if original is chain[position + 1]:
            weights[0] = (weights[0] * float(scale)).astype(weights[0].dtype)
        clone.set_weights(weights)
    return folded


def _tflite_converter(model):
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(model)


def export_tflite(model, path: str | os.PathLike, calibration_faces: np.ndarray | None = None) -> Path:
    """Write a TensorFlow Lite model: float32, or full-integer int8 when calibration faces are given.

    Args:
        model: Keras model taking ``(n, s, s, 1)`` pixels (fold the rescaling first for raw pixels).
        path: output ``.tflite`` file.
        calibration_faces: uint8 ``(n, s, s)`` faces for int8 post-training quantization (int8 input
            is uint8 pixels, output float32 probabilities); None for float32.

    Returns:
        The written path.
    """
    quiet_tensorflow()
    import tensorflow as tf

    converter = _tflite_converter(model)
    if calibration_faces is not None:
        faces = as_batch(np.asarray(calibration_faces), model.input_shape[1])
        if not len(faces):
            raise ValueError("int8 export needs at least one calibration face")

        def representative_dataset():
            for face in faces:
                yield [face[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.float32

    # The converter prints the SavedModel's signature, native quantizer lines and a calibration warning.
    with contextlib.redirect_stdout(io.StringIO()), stderr_silenced(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        content = converter.convert()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def export_onnx(model, path: str | os.PathLike, opset: int = 17) -> Path:
    """Write an ONNX model (input ``face``: float32 ``(n, s, s, 1)``; output class probabilities).

    Args:
        model: Keras model.
        path: output ``.onnx`` file.
        opset: ONNX opset.

    Returns:
        The written path.
    """
    quiet_tensorflow()
    import tensorflow as tf
    import tf2onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    signature = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="face"),)
    tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset, output_path=str(path))
    return path


def run_calibration_faces(
    run_dir: str | os.PathLike, count: int = CALIBRATION_FACES, seed: int = 0
) -> np.ndarray:
    """Up to ``count`` faces of a run's training part (from its face cache), resized to the run's size.

    Raises:
        ValueError: when the run's face cache is gone (pass calibration faces explicitly then).
    """

    run_dir = Path(run_dir)
    setup = rundir.read_setup(run_dir)
    cache_dir = Path(setup.cache_dir)
    if not (cache_dir / "config.json").exists():
        raise ValueError(
            f"int8 calibration needs the run's face cache, but {cache_dir} is missing; "
            "rebuild it with `fer preprocess` or pass --calibration-cache"
        )
    split = rundir.read_split(run_dir)
    train_ids = split.loc[split["part"] == "train", "face_id"].to_numpy()
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(train_ids, size=min(count, len(train_ids)), replace=False))
    faces = FaceCache(cache_dir).faces(chosen)
    return as_batch(np.asarray(faces), int(setup.image_size))[..., 0]


def cache_calibration_faces(
    cache_dir: str | os.PathLike, count: int = CALIBRATION_FACES, seed: int = 0
) -> np.ndarray:
    """Up to ``count`` faces drawn at random from a face cache (uint8 ``(n, s, s)``)."""

    cache = FaceCache(cache_dir)
    if not len(cache):
        raise ValueError(f"face cache {cache_dir} holds no faces")
    ids = cache.index["face_id"].to_numpy()
    chosen = np.sort(np.random.default_rng(seed).choice(ids, size=min(count, len(ids)), replace=False))
    return np.asarray(cache.faces(chosen))


def write_model_spec(model_path: Path, spec: dict) -> Path:
    """Write ``<model file>.json`` beside an exported model."""
    path = spec_path(model_path)
    atomic_write_json(path, spec, default=str)
    return path


def export_model(
    model,
    fmt: str,
    path: str | os.PathLike,
    labels: list[str],
    calibration_faces: np.ndarray | None = None,
    extra: dict | None = None,
    pixel_step: str = "none",
) -> Path:
    """Export a Keras model (rescaling folded) in ``fmt`` to ``path`` with its JSON spec.

    Args:
        model: Keras model (or path to a ``.keras`` file).
        fmt: one of :data:`EXPORT_FORMATS`.
        path: output model file.
        labels: class names in output order.
        calibration_faces: uint8 faces, required for ``tflite-int8``.
        extra: more keys for the spec (source run, preprocessing config).
        pixel_step: the pixel step the model was trained with (``preprocessing.equalize`` of the spec,
            which every predictor applies), where ``extra``'s preprocessing does not say it.

    Returns:
        The model path.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "tflite-int8" and calibration_faces is None:
        raise ValueError("tflite-int8 export needs calibration faces")
    quiet_tensorflow()
    if isinstance(model, str | os.PathLike):
        model = load_keras_model(model)
    if model.output_shape[-1] != len(labels):
        raise ValueError(f"model has {model.output_shape[-1]} outputs but {len(labels)} labels were given")
    folded = fold_rescaling(model)
    path = Path(path)
    if fmt == "onnx":
        export_onnx(folded, path)
    elif fmt == "tflite-int8":
        export_tflite(logits_model(folded), path, calibration_faces)
    else:
        export_tflite(folded, path)
    spec = _export_spec(fmt, path, labels, int(model.input_shape[1]), folded is not model)
    spec.update(extra or {})
    spec["preprocessing"] = {"equalize": pixel_step, **(spec.get("preprocessing") or {})}
    if fmt == "tflite-int8":
        spec["calibration_faces"] = int(len(calibration_faces))
    write_model_spec(path, spec)
    return path


def _export_spec(fmt: str, path: Path, labels: list[str], image_size: int, rescale_folded: bool) -> dict:
    """The spec of an exported model: its file, labels, input and output."""
    outputs_logits = fmt == "tflite-int8"
    return {
        "format": fmt,
        "model_file": path.name,
        "labels": list(labels),
        "image_size": image_size,
        "input": {
            "shape": [None, image_size, image_size, 1],
            "layout": "NHWC",
            "dtype": "uint8" if fmt == "tflite-int8" else "float32",
            "pixels": (
                "gray face crop, raw 0-255 (the 1/255 rescaling is folded into the first convolution)"
                if rescale_folded
                else "gray face crop, raw 0-255 (the model's own Rescaling layer scales them)"
            ),
        },
        "output": {
            "dtype": "float32",
            "kind": "logits" if outputs_logits else "probabilities",
            "meaning": (
                "class logits (apply softmax), order = labels"
                if outputs_logits
                else "class probabilities (softmax), order = labels"
            ),
        },
        "rescale_folded": rescale_folded,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def export_run(
    run_dir: str | os.PathLike,
    fmt: str,
    out: str | os.PathLike | None = None,
    calibration_cache: str | os.PathLike | None = None,
) -> Path:
    """Export a run's ``model.keras`` beside the run (``fer export``).

    Args:
        run_dir: a run folder with ``model.keras`` and ``config.json``.
        fmt: ``tflite``, ``tflite-int8`` or ``onnx``.
        out: output file (default: :data:`EXPORT_FILE_NAMES` inside the run folder).
        calibration_cache: a face cache to calibrate int8 from (default: the run's own training faces).

    Returns:
        The exported model path (its spec is ``<path>.json``).
    """
    run_dir = Path(run_dir)
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if run_dir.suffix.lower() == ".keras" and run_dir.is_file():
        return export_model_file(run_dir, fmt, out, calibration_cache)
    for name in (rundir.MODEL_FILE, rundir.CONFIG_FILE):
        if not (run_dir / name).exists():
            raise ValueError(f"{run_dir} is not a run folder: {name} is missing")
    setup = rundir.read_setup(run_dir)
    calibration = None
    if fmt == "tflite-int8":
        calibration = (
            cache_calibration_faces(calibration_cache)
            if calibration_cache
            else run_calibration_faces(run_dir)
        )
    extra = {
        "source_run": str(run_dir.resolve()),
        "protocol": setup.protocol,
        "preprocessing": setup.preprocessing,
        "architecture": setup.architecture,
    }
    temperature = run_calibration(run_dir)
    if temperature:
        extra["calibration"] = temperature  # predictors scale their probabilities with it
    return export_model(
        rundir.model_path(run_dir),
        fmt,
        Path(out) if out else run_dir / EXPORT_FILE_NAMES[fmt],
        list(setup.labels),
        calibration,
        extra,
    )


#: Spec keys an exported model file (an ensemble's, :mod:`fer_utils.training.ensemble`) keeps.
CARRIED_SPEC_KEYS = (
    "preprocessing",
    "architecture",
    "members",
    "cost",
    "calibration",
    "trained_on",
    "dataset",
)


def export_model_file(
    model_path: Path,
    fmt: str,
    out: str | os.PathLike | None = None,
    calibration_cache: str | os.PathLike | None = None,
) -> Path:
    """Export a ``.keras`` file that has a spec of its own (``<file>.json``: an ensemble) beside it; int8
    calibrates on ``calibration_cache`` or on the training faces of the first member's run.

    Raises:
        ValueError: no spec naming its labels, or int8 without calibration faces to draw from.
    """
    spec = model_spec(model_path)
    if not spec_path(model_path).exists() or not spec.get("labels"):
        raise ValueError(
            f"{model_path}: a model file is exported with its spec ({spec_path(model_path).name}, naming its "
            "labels); export a run folder instead"
        )
    calibration = None
    if fmt == "tflite-int8":
        members = [Path(member["model"]).parent for member in spec.get("members", [])]
        if calibration_cache:
            calibration = cache_calibration_faces(calibration_cache)
        elif members and (members[0] / rundir.CONFIG_FILE).exists():
            calibration = run_calibration_faces(members[0])
        else:
            raise ValueError(f"{model_path}: int8 needs calibration faces; give --calibration-cache CACHE")
    extra = {key: spec[key] for key in CARRIED_SPEC_KEYS if key in spec}
    return export_model(
        model_path,
        fmt,
        Path(out) if out else model_path.parent / EXPORT_FILE_NAMES[fmt],
        list(spec["labels"]),
        calibration,
        {"source_model": str(model_path.resolve()), **extra},
        model_files.pixel_step(spec, model_path),
    )


def add_arguments(export: argparse.ArgumentParser) -> None:
    export.add_argument(
        "run",
        help="run folder (with model.keras and config.json), or a .keras file with its spec (an ensemble)",
    )
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS, dest="fmt", help="model format")
    export.add_argument(
        "--out",
        help="folder the model goes into, named by format "
        f"({', '.join(EXPORT_FILE_NAMES.values())}; default: the run folder)",
    )
    export.add_argument(
        "--calibration-cache", help="face cache to calibrate int8 (default: the run's training faces)"
    )
    export.set_defaults(func=_export_cli)


def _export_cli(args) -> int:
    out = Path(args.out) / EXPORT_FILE_NAMES[args.fmt] if args.out else None
    path = export_run(args.run, args.fmt, out, args.calibration_cache)
    print(f"wrote {path} and {path.name}.json")
    return 0
