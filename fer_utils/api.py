"""The Python API for notebooks: :func:`predict` (exposed as ``fer_utils.predict``)."""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import pandas as pd

from fer_utils.deploy.bundled import bundled_model_path
from fer_utils.deploy.predict import media_in, predict_image_array, predict_media
from fer_utils.deploy.predictors import Predictor, load_predictor


@lru_cache(maxsize=4)
def _cached_predictor(model: str, threads: int | None):
    return load_predictor(model, threads)


def predict(
    source,
    model=None,
    frames: int | None = None,
    fps: float | None = None,
    detector: str | None = None,
    max_faces: int | None = None,
    min_face_size: int = 0,
    threads: int | None = None,
) -> pd.DataFrame:
    """Every face's emotion in ``source``: one row per face per sampled frame.

    Args:
        source: a video or image path, a folder of them, or a NumPy image (gray, BGR or BGRA uint8).
        model: a model path (run folder, ``.keras``, ``.tflite``, ``.onnx``) or a loaded
            :class:`~fer_utils.deploy.predictors.Predictor`; None = the bundled FER2013 model.
        frames, fps, detector, max_faces, min_face_size: as for ``fer predict``.
        threads: CPU threads of TFLite / ONNX Runtime.

    Returns:
        A DataFrame with ``media_path`` (``"<array>"`` for an array), ``frame_index``, ``timestamp_s``,
        ``status`` (``face``, ``no_face`` — one row for a sampled frame without a face — or ``unreadable``
        with the reason in ``error``), ``face_index`` (largest first), ``track_id`` (the same face across
        frames), ``bbox_x/y/w/h``, ``predicted_label``, ``confidence`` and ``prob_<label>`` per class.
    """

    if isinstance(model, Predictor):
        predictor = model
    else:
        predictor = _cached_predictor(str(model or bundled_model_path()), threads)
    options = {"detector": detector, "max_faces": max_faces, "min_face_size": min_face_size}
    if isinstance(source, np.ndarray):
        return predict_image_array(source, predictor, **options).faces
    if not isinstance(source, str | os.PathLike):
        raise ValueError(f"source must be a path or a NumPy image, got {type(source).__name__}")
    tables = []
    for path in media_in(source):
        result = predict_media(path, predictor, frames, fps, **options)
        if result.error:
            tables.append(
                pd.DataFrame([{"media_path": str(path), "status": "unreadable", "error": result.error}])
            )
        else:
            tables.append(result.faces)
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
