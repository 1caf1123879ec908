"""The Python API for notebooks: :func:`predict` (exposed as ``fer_utils.predict``)."""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import pandas as pd

from fer_utils.deploy.bundled import is_bundled_name
from fer_utils.deploy.engines import bundled_predictor
from fer_utils.deploy.media_prediction import predict_image_array, predict_media
from fer_utils.deploy.predict import media_in
from fer_utils.deploy.predictors import Predictor, load_predictor
from fer_utils.faces.keyframes import DEFAULT_DETECT_EVERY


@lru_cache(maxsize=4)
def _cached_predictor(model: str | None, threads: int | None, engine: str = "auto"):
    if model is None or is_bundled_name(model):  # None: the default; "paper": the paper CNN
        return bundled_predictor(engine, threads, model)
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
    detect_every: int | None = None,
    engine: str = "auto",
    tta: str = "none",
) -> pd.DataFrame:
    """Every face's emotion in ``source``: one row per face per sampled frame.

    Args:
        source: a video or image path, a folder of them, or a NumPy image (gray, BGR or BGRA uint8).
        model: a model path (run folder, ``.keras``, ``.tflite``, ``.onnx``) or a loaded
            :class:`~fer_utils.deploy.predictors.Predictor`, or a bundled model by architecture name
            (``"paper"``: the paper CNN on FER2013) or candidate stem (``"ferplus_vgg_bn_48"``); None = the
            default candidate (``fer_utils/models/default_model.json``).
        frames, fps, detector, max_faces, min_face_size: as for ``fer predict``.
        threads: CPU threads of TFLite / ONNX Runtime.
        detect_every: as ``fer predict --detect-every`` (default the same: keyframes on dense video only).
        engine: the bundled model's engine, as ``fer predict --engine`` (``auto``: fastest on this CPU).
        tta: test-time augmentation of each face, as ``fer predict --tta``: ``none`` (one crop), ``flip``
            or ``tencrop`` (:data:`~fer_utils.deploy.predictors.TTA_MODES`).

    Returns:
        A DataFrame with ``media_path`` (``"<array>"`` for an array), ``frame_index``, ``timestamp_s``,
        ``status`` (``face``, ``no_face`` — one row for a sampled frame without a face — or ``unreadable``
        with the reason in ``error``), ``face_index`` (largest first), ``track_id`` (the same face across
        frames), ``bbox_x/y/w/h``, ``predicted_label``, ``confidence`` and ``prob_<label>`` per class.
    """
    if isinstance(model, Predictor):
        predictor = model
    else:
        predictor = _cached_predictor(None if model is None else str(model), threads, engine)
    every = DEFAULT_DETECT_EVERY if detect_every is None else detect_every
    options = {"detector": detector, "max_faces": max_faces, "min_face_size": min_face_size, "tta": tta}
    if isinstance(source, np.ndarray):
        return predict_image_array(source, predictor, **options).faces
    if not isinstance(source, str | os.PathLike):
        raise ValueError(f"source must be a path or a NumPy image, got {type(source).__name__}")
    tables = []
    for path in media_in(source):
        result = predict_media(path, predictor, frames, fps, **options, detect_every=every)
        if result.error:
            tables.append(
                pd.DataFrame([{"media_path": str(path), "status": "unreadable", "error": result.error}])
            )
        else:
            tables.append(result.faces)
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
