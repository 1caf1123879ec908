"""Deployment: export a trained model for low-power devices and predict emotions on new media.

``fer export RUN --format tflite|tflite-int8|onnx`` writes the model beside the run (``model.tflite``,
``model_int8.tflite``, ``model.onnx``) with a small JSON spec of its input and labels
(``<model file>.json``). Every export first folds the model's 1/255 rescaling into the first
convolution's weights, so exported models take raw 0–255 gray pixels and spend no operation on scaling.
``tflite-int8`` is full-integer post-training quantization (uint8 pixels in, float probabilities out),
calibrated on faces of the run's training part.

``fer predict MEDIA --model PATH`` runs a Keras model (``model.keras`` or a run folder) or an exported
one on a video, an image or a folder of them, through the same frame sampling and face pipeline as
training, and writes per-frame class probabilities (CSV), a video-level label and an emotion-over-time
figure (HTML).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

EXPORT_FORMATS = ("tflite", "tflite-int8", "onnx")
EXPORT_FILE_NAMES = {"tflite": "model.tflite", "tflite-int8": "model_int8.tflite", "onnx": "model.onnx"}
#: Faces drawn from the run's training part to calibrate int8 quantization.
CALIBRATION_FACES = 256


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# --------------------------------------------------------------------------------------------- export


def fold_rescaling(model):
    """The same network with its ``Rescaling`` layer folded into the next convolution's kernel.

    ``conv(x * s)`` equals ``conv'(x)`` with ``kernel' = kernel * s`` (exact for a zero offset, whatever
    the padding), so the folded model takes raw pixels and gives the same outputs with one operation
    fewer. A model without a ``Rescaling`` layer is returned unchanged.

    Args:
        model: a linear (single-chain) Keras model such as :func:`fer_utils.model.build_paper_cnn`.

    Returns:
        A new ``keras.Model`` (or ``model`` itself when there is nothing to fold).
    """
    import keras
    from keras import layers

    chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    rescale_at = [i for i, layer in enumerate(chain) if isinstance(layer, layers.Rescaling)]
    if not rescale_at:
        return model
    position = rescale_at[0]
    rescale = chain[position]
    scale, offset = np.asarray(rescale.scale, dtype=np.float64), np.asarray(rescale.offset, dtype=np.float64)
    if np.any(offset != 0) or scale.size != 1:
        raise ValueError("only a scalar Rescaling with zero offset can be folded into a convolution")
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


def logits_model(model):
    """The same network with its final softmax removed (outputs logits).

    int8 exports end at the logits: a quantized softmax outputs multiples of 1/256, which ties the
    classes of a low-confidence face; the predictor applies the softmax in float instead.
    """
    import keras

    last = model.layers[-1]
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


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


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
    _quiet_tensorflow()
    import tensorflow as tf

    converter = _tflite_converter(model)
    if calibration_faces is not None:
        faces = _as_batch(np.asarray(calibration_faces), model.input_shape[1])
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
    _quiet_tensorflow()
    import tensorflow as tf
    import tf2onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    signature = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="face"),)
    tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset, output_path=str(path))
    return path


def _as_batch(faces: np.ndarray, image_size: int) -> np.ndarray:
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


def run_calibration_faces(
    run_dir: str | os.PathLike, count: int = CALIBRATION_FACES, seed: int = 0
) -> np.ndarray:
    """Up to ``count`` faces of a run's training part (from its face cache), resized to the run's size.

    Raises:
        ValueError: when the run's face cache is gone (pass calibration faces explicitly then).
    """
    import pandas as pd

    from .cache import FaceCache

    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    cache_dir = Path(config.get("cache_dir", ""))
    if not (cache_dir / "config.json").exists():
        raise ValueError(
            f"int8 calibration needs the run's face cache, but {cache_dir} is missing; "
            "rebuild it with `fer preprocess` or pass --calibration-cache"
        )
    split = pd.read_csv(run_dir / "split.csv")
    train_ids = split.loc[split["part"] == "train", "face_id"].to_numpy()
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(train_ids, size=min(count, len(train_ids)), replace=False))
    faces = FaceCache(cache_dir).faces(chosen)
    return _as_batch(np.asarray(faces), int(config["image_size"]))[..., 0]


def cache_calibration_faces(
    cache_dir: str | os.PathLike, count: int = CALIBRATION_FACES, seed: int = 0
) -> np.ndarray:
    """Up to ``count`` faces drawn at random from a face cache (uint8 ``(n, s, s)``)."""
    from .cache import FaceCache

    cache = FaceCache(cache_dir)
    if not len(cache):
        raise ValueError(f"face cache {cache_dir} holds no faces")
    ids = cache.index["face_id"].to_numpy()
    chosen = np.sort(np.random.default_rng(seed).choice(ids, size=min(count, len(ids)), replace=False))
    return np.asarray(cache.faces(chosen))


def write_model_spec(model_path: Path, spec: dict) -> Path:
    """Write ``<model file>.json`` beside an exported model."""
    spec_path = model_path.with_name(model_path.name + ".json")
    spec_path.write_text(json.dumps(spec, indent=2, default=str))
    return spec_path


def export_model(
    model,
    fmt: str,
    path: str | os.PathLike,
    labels: list[str],
    calibration_faces: np.ndarray | None = None,
    extra: dict | None = None,
) -> Path:
    """Export a Keras model (rescaling folded) in ``fmt`` to ``path`` with its JSON spec.

    Args:
        model: Keras model (or path to a ``.keras`` file).
        fmt: one of :data:`EXPORT_FORMATS`.
        path: output model file.
        labels: class names in output order.
        calibration_faces: uint8 faces, required for ``tflite-int8``.
        extra: more keys for the spec (source run, preprocessing config).

    Returns:
        The model path.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "tflite-int8" and calibration_faces is None:
        raise ValueError("tflite-int8 export needs calibration faces")
    _quiet_tensorflow()
    if isinstance(model, str | os.PathLike):
        import keras

        model = keras.saving.load_model(model, compile=False)
    if model.output_shape[-1] != len(labels):
        raise ValueError(f"model has {model.output_shape[-1]} outputs but {len(labels)} labels were given")
    folded = fold_rescaling(model)
    path = Path(path)
    outputs_logits = fmt == "tflite-int8"
    if fmt == "onnx":
        export_onnx(folded, path)
    elif outputs_logits:
        export_tflite(logits_model(folded), path, calibration_faces)
    else:
        export_tflite(folded, path)
    image_size = int(model.input_shape[1])
    spec = {
        "format": fmt,
        "model_file": path.name,
        "labels": list(labels),
        "image_size": image_size,
        "input": {
            "shape": [None, image_size, image_size, 1],
            "layout": "NHWC",
            "dtype": "uint8" if fmt == "tflite-int8" else "float32",
            "pixels": "gray face crop, raw 0-255 (the 1/255 rescaling is folded into the first convolution)",
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
        "rescale_folded": folded is not model,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    if fmt == "tflite-int8":
        spec["calibration_faces"] = int(len(calibration_faces))
    write_model_spec(path, spec)
    return path


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
    for name in ("model.keras", "config.json"):
        if not (run_dir / name).exists():
            raise ValueError(f"{run_dir} is not a run folder: {name} is missing")
    config = json.loads((run_dir / "config.json").read_text())
    calibration = None
    if fmt == "tflite-int8":
        calibration = (
            cache_calibration_faces(calibration_cache)
            if calibration_cache
            else run_calibration_faces(run_dir)
        )
    extra = {
        "source_run": str(run_dir.resolve()),
        "protocol": config.get("protocol"),
        "preprocessing": config.get("preprocessing", {}),
    }
    return export_model(
        run_dir / "model.keras",
        fmt,
        Path(out) if out else run_dir / EXPORT_FILE_NAMES[fmt],
        list(config["labels"]),
        calibration,
        extra,
    )


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

    def _run(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - implemented by backends
        raise NotImplementedError

    def predict_proba(self, faces: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Probabilities ``(n, len(labels))`` for uint8 faces ``(n, s, s)`` (or ``(n, s, s, 1)``)."""
        faces = _as_batch(np.asarray(faces), self.image_size)
        if not len(faces):
            return np.zeros((0, len(self.labels)), np.float32)
        parts = [self._run(faces[start : start + batch_size]) for start in range(0, len(faces), batch_size)]
        probabilities = np.concatenate(parts).astype(np.float32)
        # Guard against rounding in exported runtimes: every row sums to 1.
        return probabilities / np.maximum(probabilities.sum(axis=1, keepdims=True), 1e-12)


class _KerasPredictor(Predictor):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _quiet_tensorflow()
        import keras
        import tensorflow as tf

        self.model = keras.saving.load_model(self.path, compile=False)
        self._call = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def _run(self, batch):
        return np.asarray(self._call(batch.astype(np.float32)))


def tflite_interpreter(
    model: str | os.PathLike | bytes, num_threads: int | None = None, xnnpack: bool = True
):
    """A TFLite interpreter (XNNPACK delegate unless ``xnnpack=False``).

    Uses ``ai_edge_litert`` when installed, else ``tf.lite`` (deprecated there, still shipped in TF 2.21).
    """
    import warnings

    try:
        from ai_edge_litert import interpreter as litert

        Interpreter, resolver_types = litert.Interpreter, litert.OpResolverType
    except ImportError:
        _quiet_tensorflow()
        import tensorflow as tf

        Interpreter, resolver_types = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    resolver = resolver_types.AUTO if xnnpack else resolver_types.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Interpreter(**source, num_threads=num_threads, experimental_op_resolver_type=resolver)


class _TFLitePredictor(Predictor):
    def __init__(self, *args, num_threads=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.interpreter = tflite_interpreter(self.path, num_threads)
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self._batch = None

    def _run(self, batch):
        if self._batch != len(batch):
            self.interpreter.resize_tensor_input(self._input["index"], [len(batch), *batch.shape[1:]])
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
            output = _softmax(output)
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
        self.session = onnx_session(self.path, num_threads)
        self._input = self.session.get_inputs()[0].name

    def _run(self, batch):
        return self.session.run(None, {self._input: batch.astype(np.float32)})[0]


def _keras_spec(model_path: Path) -> dict:
    """Labels and size of a ``.keras`` model from its run's ``config.json`` (or generic names)."""
    config_path = model_path.parent / "config.json"
    spec: dict = {"format": "keras", "model_file": model_path.name}
    if config_path.exists():
        config = json.loads(config_path.read_text())
        spec.update(
            labels=config.get("labels"),
            image_size=config.get("image_size"),
            preprocessing=config.get("preprocessing", {}),
            source_run=str(model_path.parent.resolve()),
        )
    return spec


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
        path = path / "model.keras"
    if not path.exists():
        raise ValueError(f"model {path} does not exist")
    suffix = path.suffix.lower()
    kinds = {".keras": _KerasPredictor, ".tflite": _TFLitePredictor, ".onnx": _OnnxPredictor}
    if suffix not in kinds:
        raise ValueError(f"unsupported model file {path.name}: expected .keras, .tflite or .onnx")
    spec_path = path.with_name(path.name + ".json")
    spec = json.loads(spec_path.read_text()) if spec_path.exists() else {}
    if not spec and suffix == ".keras":
        spec = _keras_spec(path)
    fmt = spec.get("format") or suffix.lstrip(".")
    options = {} if suffix == ".keras" else {"num_threads": num_threads}
    predictor = kinds[suffix](
        path, fmt, spec.get("labels") or [], spec.get("image_size") or 0, spec, **options
    )
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


# ------------------------------------------------------------------------------------------ predict media

DEFAULT_FRAMES = 6


@dataclass
class MediaPrediction:
    """Result of :func:`predict_media` for one video or image.

    ``timeline`` has one row per sampled frame where a face was found (frame_index, timestamp_s, box,
    predicted_label, confidence, ``prob_<label>``); ``frames_without_face`` lists the other sampled
    frames; ``label`` is the video-level label (highest mean probability over the faces), None when no
    face was found.
    """

    media_path: str
    labels: list[str]
    timeline: object  # pandas.DataFrame
    frames_sampled: int = 0
    frames_without_face: list[int] = field(default_factory=list)
    label: str | None = None
    confidence: float | None = None
    mean_probabilities: dict = field(default_factory=dict)
    error: str | None = None
    outputs: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.error:
            return "unreadable"
        return "ok" if self.label is not None else "no_face"

    def message(self) -> str:
        name = Path(self.media_path).name
        if self.error:
            return f"{name}: {self.error}"
        if self.label is None:
            return f"{name}: no face found in {self.frames_sampled} sampled frame(s)"
        return (
            f"{name}: {self.label} ({self.confidence:.2f}) from {len(self.timeline)} face(s) in "
            f"{self.frames_sampled} sampled frame(s)"
        )


def _face_options(preprocessing: dict, detector: str | None) -> dict:
    """The training face pipeline's options accepted by :func:`fer_utils.faces.extract_face`."""
    import inspect

    from .faces import extract_face

    accepted = set(inspect.signature(extract_face).parameters) - {"gray", "image_size"}
    options = {key: value for key, value in preprocessing.items() if key in accepted}
    if detector:
        options["detector"] = detector
    elif options.get("detector", "hog") == "none":
        # A model trained on already-cropped faces still needs a detector on whole frames.
        options["detector"] = "hog"
    options.setdefault("detector", "hog")
    return options


def frame_count_for_rate(path: str | os.PathLike, fps: float) -> int:
    """How many evenly spaced frames give ``fps`` frames per second of this clip (≥ 1)."""
    import cv2

    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        native_fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        frames = capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0
    finally:
        capture.release()
    if native_fps <= 0 or frames <= 0:
        return DEFAULT_FRAMES
    return max(1, round(frames / native_fps * fps))


def predict_media(
    media_path: str | os.PathLike,
    predictor: Predictor,
    frames: int | None = None,
    fps: float | None = None,
    detector: str | None = None,
) -> MediaPrediction:
    """Per-frame class probabilities of one video or image through the training face pipeline.

    Args:
        media_path: video or image.
        predictor: from :func:`load_predictor`.
        frames: evenly spaced frames to sample (default: the training ``frames_per_video``, else 6).
        fps: sample this many frames per second instead (dense timelines); overrides ``frames``.
        detector: face detector override (default: the training detector; HOG for models trained on
            already-cropped faces).

    Returns:
        A :class:`MediaPrediction`.
    """
    import pandas as pd

    from .faces import extract_face
    from .video import is_image, sample_frames

    media_path = str(media_path)
    preprocessing = dict(predictor.spec.get("preprocessing") or {})
    options = _face_options(preprocessing, detector)
    if fps is not None and not is_image(media_path):
        count = frame_count_for_rate(media_path, fps)
    else:
        count = int(frames or preprocessing.get("frames_per_video") or DEFAULT_FRAMES)
    if count < 1:
        raise ValueError(f"frames must be ≥ 1, got {count}")
    sampled = sample_frames(media_path, count, gray=True)
    empty = pd.DataFrame()
    if sampled.error and not sampled.frames:
        return MediaPrediction(media_path, predictor.labels, empty, error=sampled.error)
    rows, faces, missing = [], [], []
    for frame in sampled.frames:
        crop = extract_face(frame.image, predictor.image_size, **options)
        if crop is None:
            missing.append(frame.index)
            continue
        faces.append(crop.face)
        rows.append(
            {
                "media_path": media_path,
                "frame_index": frame.index,
                "timestamp_s": round(frame.timestamp / 1000.0, 4),
                "bbox_x": crop.box.x,
                "bbox_y": crop.box.y,
                "bbox_w": crop.box.w,
                "bbox_h": crop.box.h,
            }
        )
    result = MediaPrediction(
        media_path, predictor.labels, empty, frames_sampled=len(sampled.frames), frames_without_face=missing
    )
    if not faces:
        return result
    probabilities = predictor.predict_proba(np.stack(faces))
    timeline = pd.DataFrame(rows)
    timeline["predicted_label"] = [predictor.labels[i] for i in probabilities.argmax(axis=1)]
    timeline["confidence"] = probabilities.max(axis=1)
    for i, label in enumerate(predictor.labels):
        timeline[f"prob_{label}"] = probabilities[:, i]
    mean = probabilities.mean(axis=0)
    result.timeline = timeline
    result.label = predictor.labels[int(mean.argmax())]
    result.confidence = float(mean.max())
    result.mean_probabilities = {label: float(p) for label, p in zip(predictor.labels, mean, strict=True)}
    return result


def timeline_figure(prediction: MediaPrediction):
    """Plotly figure of each emotion's probability over time (one line per class)."""
    import plotly.graph_objects as go

    figure = go.Figure()
    timeline = prediction.timeline
    for label in prediction.labels:
        figure.add_trace(
            go.Scatter(
                x=timeline["timestamp_s"] if len(timeline) else [],
                y=timeline[f"prob_{label}"] if len(timeline) else [],
                mode="lines+markers",
                name=label,
                customdata=timeline["frame_index"] if len(timeline) else [],
                hovertemplate=f"{label}: %{{y:.2f}}<br>t=%{{x:.2f}} s, frame %{{customdata}}<extra></extra>",
            )
        )
    verdict = (
        f"video label: {prediction.label} ({prediction.confidence:.2f})"
        if prediction.label
        else "no face found"
    )
    figure.update_layout(
        title=f"Emotion over time — {Path(prediction.media_path).name} — {verdict}",
        xaxis_title="time (s)",
        yaxis_title="probability",
        yaxis_range=[0, 1],
        legend_title="emotion",
    )
    return figure


def write_prediction(prediction: MediaPrediction, out_dir: str | os.PathLike, model_path: str = "") -> dict:
    """Write ``<stem>_timeline.csv``, ``<stem>_summary.json`` and ``<stem>_timeline.html``.

    Returns:
        The written paths by kind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(prediction.media_path).stem
    paths = {"summary": out_dir / f"{stem}_summary.json"}
    summary = {
        "media_path": prediction.media_path,
        "model": model_path,
        "status": prediction.status,
        "message": prediction.message(),
        "label": prediction.label,
        "confidence": prediction.confidence,
        "mean_probabilities": prediction.mean_probabilities,
        "frames_sampled": prediction.frames_sampled,
        "faces": int(len(prediction.timeline)),
        "frames_without_face": prediction.frames_without_face,
        "labels": prediction.labels,
    }
    if prediction.status == "ok":
        paths["timeline"] = out_dir / f"{stem}_timeline.csv"
        prediction.timeline.to_csv(paths["timeline"], index=False)
        paths["figure"] = out_dir / f"{stem}_timeline.html"
        timeline_figure(prediction).write_html(paths["figure"], include_plotlyjs=True)
    paths["summary"].write_text(json.dumps(summary, indent=2))
    prediction.outputs = {kind: str(path) for kind, path in paths.items()}
    return prediction.outputs


def media_in(path: str | os.PathLike) -> list[Path]:
    """The media files to predict: the file itself, or the videos and images of a folder (sorted)."""
    from .datasets import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"media {path} does not exist")
    suffixes = set(IMAGE_SUFFIXES) | set(VIDEO_SUFFIXES)
    found = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes)
    if not found:
        raise ValueError(f"folder {path} holds no video or image")
    return found


# ------------------------------------------------------------------------------------------------ CLI


def add_cli(subparsers) -> None:
    """Register ``fer export`` and ``fer predict``."""
    export = subparsers.add_parser("export", help="export a run's model: TFLite (float / int8) or ONNX")
    export.add_argument("run", help="run folder (with model.keras and config.json)")
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS, dest="fmt")
    export.add_argument("--out", help="output model file (default: beside the run's model.keras)")
    export.add_argument(
        "--calibration-cache", help="face cache to calibrate int8 (default: the run's training faces)"
    )
    export.set_defaults(func=_export_cli)

    predict = subparsers.add_parser(
        "predict", help="emotion timeline of a video, image or folder (CSV, label, HTML figure)"
    )
    predict.add_argument("media", help="video, image or folder of them")
    predict.add_argument("--model", required=True, help="run folder, model.keras, .tflite or .onnx")
    predict.add_argument("--fps", type=float, help="sample this many frames per second (dense timeline)")
    predict.add_argument(
        "--frames", type=int, help="evenly spaced frames per video (default: as in training)"
    )
    predict.add_argument("--detector", choices=("hog", "cnn"), help="face detector (default: as in training)")
    predict.add_argument("--threads", type=int, help="CPU threads for TFLite / ONNX Runtime")
    predict.add_argument("--out", default="predictions", help="output folder (default: ./predictions)")
    predict.set_defaults(func=_predict_cli)


def _export_cli(args) -> int:
    path = export_run(args.run, args.fmt, args.out, args.calibration_cache)
    print(f"wrote {path} and {path.name}.json")
    return 0


def _predict_cli(args) -> int:
    import pandas as pd

    if args.frames is not None and args.frames < 1:
        raise ValueError(f"--frames must be ≥ 1, got {args.frames}")
    if args.fps is not None and args.fps <= 0:
        raise ValueError(f"--fps must be > 0, got {args.fps}")
    media = media_in(args.media)
    predictor = load_predictor(args.model, args.threads)
    rows = []
    for path in media:
        prediction = predict_media(path, predictor, args.frames, args.fps, args.detector)
        outputs = write_prediction(prediction, args.out, str(args.model))
        print(prediction.message())
        rows.append(
            {
                "media_path": str(path),
                "status": prediction.status,
                "label": prediction.label,
                "confidence": prediction.confidence,
                "faces": len(prediction.timeline),
                "frames_sampled": prediction.frames_sampled,
                **outputs,
            }
        )
    if len(media) > 1:
        pd.DataFrame(rows).to_csv(Path(args.out) / "summary.csv", index=False)
    print(f"outputs in {args.out}")
    return 0 if any(row["status"] == "ok" for row in rows) else 1
