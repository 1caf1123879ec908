"""The models shipped inside the package (``fer_utils/models/``): their names, files and model card.

Each bundled model is one architecture trained on FER2013 (PrivateTest held out), one run per seed; the
run with the **median** test accuracy ships, never the luckiest (``fer bundle-model``,
:mod:`fer_utils.experiments.bundle_model`). It ships as the Keras model, an int8 TFLite export (what
``fer predict`` and :func:`fer_utils.predict` use by default: no TensorFlow import, a few hundred kB) and
float32 TFLite / ONNX copies, each with its JSON spec, plus a ``model_card*.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fer_utils.paths import PACKAGE_DIR, PROJECT_ROOT
from fer_utils.training.architectures import ARCHITECTURES

BUNDLED_DIR = PACKAGE_DIR / "models"
BUNDLED_NAME = "fer2013_robust_48"
DEFAULT_FORMAT = "tflite-int8"
CARD_JSON = "model_card.json"
CARD_MARKDOWN = PROJECT_ROOT / "docs" / "model_card.md"
IMAGE_SIZE = 48
#: Border added around dlib's (tight) face box when predicting on whole frames, as a fraction of its side:
#: FER2013's faces are framed from the hairline to below the chin, looser than dlib's box.
PREDICT_MARGIN = 0.15
#: Frames wider than this are downscaled for face detection (boxes are mapped back): up to 1280 px
#: dlib sees every pixel (a 1000-px photo of five people: 4 faces at full size, 3 at 640 px).
DETECT_WIDTH = 1280
#: FER2013's folder names and the canonical labels the suite uses for them.
FER2013_CLASSES = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprised",
}


#: The bundled model ``fer predict`` uses without ``--model`` (a name of :func:`bundled_files`).
DEFAULT_MODEL = "paper"


def bundled_name(architecture: str = "paper") -> str:
    """The file stem of a bundled model: ``fer2013_robust_48`` for the paper CNN (as always shipped),
    ``fer2013_<architecture>`` for another family."""
    return BUNDLED_NAME if architecture == "paper" else f"fer2013_{architecture}"


def bundled_files(architecture: str = "paper") -> dict[str, str]:
    """The shipped file names by format of the bundled ``architecture`` (the fp32 exports let ``fer
    predict`` pick the engine fastest on the CPU, :mod:`fer_utils.deploy.engines`)."""
    name = bundled_name(architecture)
    return {
        "keras": f"{name}.keras",
        "tflite-int8": f"{name}_int8.tflite",
        "tflite-fp32": f"{name}.tflite",
        "onnx-fp32": f"{name}.onnx",
    }


#: The paper CNN's shipped files by format.
BUNDLED_FILES = bundled_files("paper")


def is_bundled_name(model) -> bool:
    """True when ``model`` names a bundled model (``paper`` or another architecture) and no such path exists."""
    return isinstance(model, str) and model in ARCHITECTURES and not Path(model).exists()


def bundled_model_path(
    fmt: str = DEFAULT_FORMAT, models_dir: str | os.PathLike | None = None, model: str | None = None
) -> Path:
    """The shipped model file of ``fmt`` (``keras`` or ``tflite-int8``) of the bundled ``model``
    (an architecture name; None: :data:`DEFAULT_MODEL`).

    Raises:
        ValueError: the file is missing (a checkout where ``fer bundle-model`` has not been run).
    """
    files = bundled_files(model or DEFAULT_MODEL)
    if fmt not in files:
        raise ValueError(f"no bundled model in format {fmt!r}; choose one of {', '.join(files)}")
    path = Path(models_dir or BUNDLED_DIR) / files[fmt]
    if not path.exists():
        raise ValueError(
            f"the bundled model {path} is missing; rebuild it with `fer bundle-model"
            f"{'' if (model or DEFAULT_MODEL) == 'paper' else ' --architecture ' + (model or DEFAULT_MODEL)}` "
            "or pass --model"
        )
    return path


def card_file_name(architecture: str) -> str:
    """``model_card.json`` for the paper CNN, ``model_card_<architecture>.json`` for another family."""
    return CARD_JSON if architecture == "paper" else f"model_card_{architecture}.json"


def read_model_card(models_dir: str | os.PathLike | None = None, model: str | None = None) -> dict:
    """The card numbers of the bundled ``model`` (None: :data:`DEFAULT_MODEL`): training, seeds, test
    scores and calibration of each shipped file."""
    return json.loads((Path(models_dir or BUNDLED_DIR) / card_file_name(model or DEFAULT_MODEL)).read_text())
