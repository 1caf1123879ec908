"""A trained run → deployable models and predictions on new media.

- :mod:`~fer_utils.deploy.export`: ``fer export`` (TFLite float / int8, ONNX; the 1/255 rescaling folded in).
- :mod:`~fer_utils.deploy.predictors`: one ``predict(faces)`` interface over Keras, TFLite and ONNX Runtime.
- :mod:`~fer_utils.deploy.predict`: ``fer predict`` (per-frame emotion timeline of a video, image or folder);
  :mod:`~fer_utils.deploy.media_prediction` (one media file's faces and tracks),
  :mod:`~fer_utils.deploy.prediction_figures`, :mod:`~fer_utils.deploy.prediction_outputs` (files written).
"""

from fer_utils.deploy.export import (
    EXPORT_FILE_NAMES,
    EXPORT_FORMATS,
    export_model,
    export_onnx,
    export_run,
    export_tflite,
    fold_rescaling,
    logits_model,
    run_calibration_faces,
)
from fer_utils.deploy.media_prediction import MediaPrediction, predict_media
from fer_utils.deploy.predict import media_in
from fer_utils.deploy.prediction_outputs import write_prediction
from fer_utils.deploy.predictors import (
    Predictor,
    as_batch,
    load_predictor,
    onnx_session,
    softmax,
    tflite_interpreter,
)

__all__ = [
    "EXPORT_FILE_NAMES",
    "EXPORT_FORMATS",
    "MediaPrediction",
    "Predictor",
    "as_batch",
    "export_model",
    "export_onnx",
    "export_run",
    "export_tflite",
    "fold_rescaling",
    "load_predictor",
    "logits_model",
    "media_in",
    "onnx_session",
    "predict_media",
    "run_calibration_faces",
    "softmax",
    "tflite_interpreter",
    "write_prediction",
]
