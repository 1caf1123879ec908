"""Predictors: one ``predict(faces) → probabilities`` interface over Keras, TFLite and ONNX Runtime models.

Exported models take raw 0–255 gray pixels; :func:`as_batch` shapes any face array for them.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fer_utils.training import rundir
from fer_utils.training.calibration import apply_temperature
from fer_utils.training.model import load_keras_model
from fer_utils.training.model_files import (  # noqa: F401 (the names readers import from here)
    model_spec,
    pixel_step,
    read_spec,
    run_calibration,
    spec_path,
)
from fer_utils.training.runtime import import_tensorflow, stderr_silenced


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up lines (see :func:`fer_utils.training.runtime.import_tensorflow`)."""
    import_tensorflow()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def as_batch(faces: np.ndarray, image_size: int) -> np.ndarray:
    """``(n, s, s)`` or ``(n, s, s, 1)`` faces → ``(n, image_size, image_size, 1)`` (resized if needed)."""
    import cv2

    if faces.ndim == 4 and faces.shape[-1] == 1:
        faces = faces[..., 0]
    if faces.ndim == 2:
        faces = faces[None]
    if faces.ndim != 3:
        raise ValueError(f"faces must be (n, size, size) gray images, got shape {faces.shape}")
    if faces.shape[1:] != (image_size, image_size):
        interpolation = cv2.INTER_AREA if faces.shape[1] > image_size else cv2.INTER_LINEAR
        faces = np.stack(
            [cv2.resize(face, (image_size, image_size), interpolation=interpolation) for face in faces]
        )
    return faces[..., None]


# --------------------------------------------------------------------------------------------- predict


class Predictor:
    """Class probabilities for gray face crops from a Keras, TFLite or ONNX model.

    Use :func:`load_predictor`. ``predict_proba(faces)`` takes uint8 ``(n, s, s)`` faces (resized when
    their size differs from the model's) and returns float32 ``(n, classes)`` probabilities.
    """

    def __init__(self, path: Path, fmt: str, labels: list[str], image_size: int, spec: dict):
        self.path = path
        self.format = fmt
        self.labels = list(labels)
        self.image_size = int(image_size)
        self.spec = spec
        #: The pixel step the model was trained with (:func:`fer_utils.training.model_files.pixel_step`).
        self.pixel_step = (spec.get("preprocessing") or {}).get("equalize", "none")

    def _run(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - implemented by backends
        raise NotImplementedError

    @property
    def temperature(self) -> float | None:
        """The calibration temperature stored with the model (spec ``calibration``), or None."""
        value = (self.spec.get("calibration") or {}).get("temperature")
        return float(value) if value else None

    def predict_proba(self, faces: np.ndarray, batch_size: int = 64, calibrated: bool = True) -> np.ndarray:
        """Probabilities ``(n, len(labels))`` for uint8 faces ``(n, s, s)`` (or ``(n, s, s, 1)``),
        temperature-scaled when the model carries a calibration (``calibrated=False``: the raw softmax;
        the predicted class is the same either way)."""
        faces = as_batch(np.asarray(faces), self.image_size)
        if not len(faces):
            return np.zeros((0, len(self.labels)), np.float32)
        parts = [self._run(faces[start : start + batch_size]) for start in range(0, len(faces), batch_size)]
        probabilities = np.concatenate(parts).astype(np.float32)
        # Guard against rounding in exported runtimes: every row sums to 1.
        probabilities = probabilities / np.maximum(probabilities.sum(axis=1, keepdims=True), 1e-12)
        if calibrated and self.temperature:
            probabilities = apply_temperature(probabilities, self.temperature).astype(np.float32)
        return probabilities


#: Test-time augmentation: ``none`` (one crop), ``flip`` (the face and its mirror), ``tencrop`` (four
#: corner crops and the centre crop of 90 % of the side, each with its mirror).
TTA_MODES = ("none", "flip", "tencrop")


def check_tta(mode: str) -> None:
    """ValueError (one line) for a test-time augmentation :data:`TTA_MODES` does not hold."""
    if mode not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {mode!r}; choose one of {', '.join(TTA_MODES)}")


def tta_views(faces: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views of uint8 faces ``(n, s, s)`` that ``mode`` averages (each ``(n, ·, ·)``; a predictor
    resizes them to its input)."""
    check_tta(mode)
    if mode == "none":
        return [faces]
    if mode == "flip":
        return [faces, faces[:, :, ::-1]]
    side = faces.shape[1]
    crop = max(1, int(round(0.9 * side)))
    offsets = [(0, 0), (0, side - crop), (side - crop, 0), (side - crop, side - crop)]
    offsets.append(((side - crop) // 2, (side - crop) // 2))
    crops = [faces[:, top : top + crop, left : left + crop] for top, left in offsets]
    return crops + [view[:, :, ::-1] for view in crops]


def predict_with_tta(predictor: Predictor, faces: np.ndarray, mode: str = "none", **options) -> np.ndarray:
    """``predictor.predict_proba`` averaged over the :func:`tta_views` of ``mode``."""
    faces = np.asarray(faces)
    if faces.ndim == 4:
        faces = faces[..., 0]
    views = [np.ascontiguousarray(view) for view in tta_views(faces, mode)]
    return np.mean([predictor.predict_proba(view, **options) for view in views], axis=0).astype(np.float32)


class _KerasPredictor(Predictor):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        quiet_tensorflow()
        import tensorflow as tf

        self.model = load_keras_model(self.path)
        self._call = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def _run(self, batch):
        return np.asarray(self._call(batch.astype(np.float32)))


def tflite_interpreter(
    model: str | os.PathLike | bytes, num_threads: int | None = None, xnnpack: bool = True
):
    """A TFLite interpreter (XNNPACK delegate unless ``xnnpack=False``), its tensors allocated: quietly,
    since TFLite prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on the first allocation,
    past any log level (later ones, after a resize, print nothing).

    Uses ``ai_edge_litert`` when installed, else ``tf.lite`` (deprecated there, still shipped in TF 2.21).
    """
    import warnings

    try:
        from ai_edge_litert import interpreter as litert

        Interpreter, resolver_types = litert.Interpreter, litert.OpResolverType
    except ImportError:
        quiet_tensorflow()
        import tensorflow as tf

        Interpreter, resolver_types = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    resolver = resolver_types.AUTO if xnnpack else resolver_types.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = Interpreter(**source, num_threads=num_threads, experimental_op_resolver_type=resolver)
    with stderr_silenced():
        interpreter.allocate_tensors()
    return interpreter


@contextmanager
def _invalid_model_file(path: Path, kind: str):
    """A runtime's refusal of a model file (garbage bytes, truncated) as a one-line ValueError naming it."""
    try:
        yield
    except Exception as error:  # ONNX Runtime's errors derive from Exception only
        detail = " ".join(str(error).split())[:300]
        raise ValueError(
            f"{path} is not a valid {kind} model file ({type(error).__name__}: {detail}); export it again"
        ) from None


class _TFLitePredictor(Predictor):
    def __init__(self, *args, num_threads=None, **kwargs):
        super().__init__(*args, **kwargs)
        with _invalid_model_file(self.path, "TFLite"):
            self.interpreter = tflite_interpreter(self.path, num_threads)
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self._batch = None

    def _run(self, batch):
        if self._batch != len(batch):
            self.interpreter.resize_tensor_input(self._input["index"], [len(batch), *batch.shape[1:]])
            with stderr_silenced():
                self.interpreter.allocate_tensors()
            self._batch = len(batch)
        dtype = self._input["dtype"]
        if dtype == np.float32:
            data = batch.astype(np.float32)
        else:
            scale, zero_point = self._input["quantization"]
            info = np.iinfo(dtype)
            data = np.clip(np.round(batch / scale + zero_point), info.min, info.max).astype(dtype)
        self.interpreter.set_tensor(self._input["index"], data)
        self.interpreter.invoke()
        output = self.interpreter.get_tensor(self._output["index"])
        if output.dtype != np.float32:
            scale, zero_point = self._output["quantization"]
            output = (output.astype(np.float32) - zero_point) * scale
        if self.spec.get("output", {}).get("kind") == "logits":
            output = softmax(output)
        return output


def onnx_session(path: str | os.PathLike, num_threads: int | None = None, profile_prefix: str | None = None):
    """An ONNX Runtime CPU session with all graph optimizations (``num_threads`` intra-op threads)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = num_threads or 0
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _OnnxPredictor(Predictor):
    def __init__(self, *args, num_threads=None, **kwargs):
        super().__init__(*args, **kwargs)
        with _invalid_model_file(self.path, "ONNX"):
            self.session = onnx_session(self.path, num_threads)
        self._input = self.session.get_inputs()[0].name

    def _run(self, batch):
        return self.session.run(None, {self._input: batch.astype(np.float32)})[0]


def load_predictor(path: str | os.PathLike, num_threads: int | None = None) -> Predictor:
    """Load a model for prediction: a run folder, ``.keras``, ``.tflite`` or ``.onnx``.

    Labels and input size come from ``<model>.json`` (written by :func:`export_model`) or, for Keras
    models, from the run's ``config.json``; without either, classes are named ``class_0…``.

    Args:
        path: model file or run folder.
        num_threads: CPU threads for TFLite / ONNX Runtime (None: the runtime's default).

    Returns:
        A :class:`Predictor`.
    """
    path = Path(path)
    if path.is_dir():
        path = rundir.model_path(path)
    if not path.exists():
        raise ValueError(f"model {path} does not exist")
    suffix = path.suffix.lower()
    kinds = {".keras": _KerasPredictor, ".tflite": _TFLitePredictor, ".onnx": _OnnxPredictor}
    if suffix not in kinds:
        raise ValueError(f"unsupported model file {path.name}: expected .keras, .tflite or .onnx")
    spec = model_spec(path)
    fmt = spec.get("format") or suffix.lstrip(".")
    options = {} if suffix == ".keras" else {"num_threads": num_threads}
    predictor = kinds[suffix](
        path, fmt, spec.get("labels") or [], spec.get("image_size") or 0, spec, **options
    )
    predictor.pixel_step = pixel_step(spec, path)  # after loading: a damaged file says so first
    shape = _model_input_shape(predictor)
    predictor.image_size = int(shape[1])
    classes = _model_output_classes(predictor)
    if not predictor.labels:
        predictor.labels = [f"class_{i}" for i in range(classes)]
    if len(predictor.labels) != classes:
        raise ValueError(
            f"{path.name} has {classes} outputs but its spec names {len(predictor.labels)} labels"
        )
    return predictor


def _model_input_shape(predictor: Predictor) -> tuple:
    if isinstance(predictor, _KerasPredictor):
        return predictor.model.input_shape
    if isinstance(predictor, _TFLitePredictor):
        return tuple(predictor._input["shape_signature"])
    return tuple(predictor.session.get_inputs()[0].shape)


def _model_output_classes(predictor: Predictor) -> int:
    if isinstance(predictor, _KerasPredictor):
        return int(predictor.model.output_shape[-1])
    if isinstance(predictor, _TFLitePredictor):
        return int(predictor._output["shape_signature"][-1])
    return int(predictor.session.get_outputs()[0].shape[-1])
