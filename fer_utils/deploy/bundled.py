"""The models shipped inside the package (``fer_utils/models/``): their names, files and model card.

Each bundled model (a *candidate*) is one architecture trained on one dataset (FER2013's equalized JPEG
export, FER+'s raw pixels, ...; the test split held out), one run per seed; the run with the **median**
test accuracy ships, never the luckiest (``fer bundle-model``, :mod:`fer_utils.experiments.bundle_model`).
A candidate is named by its file stem (``fer2013_robust_48``, ``ferplus_vgg_bn_48``); the paper CNN's FER2013
model also by its architecture, ``paper``. Which candidate ``fer predict`` uses without ``--model`` is
:func:`default_model`: the one ``default_model.json`` names (written by ``fer bundle-model`` by its stated
rule), else :data:`DEFAULT_MODEL`. It ships as the Keras model, an int8 TFLite export (what
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


#: The bundled model ``fer predict`` uses without ``--model`` while ``default_model.json`` names none.
DEFAULT_MODEL = "paper"
#: The file in the models folder naming the default candidate (``{"model": <stem>, "rule": ..., ...}``).
DEFAULT_CHOICE_FILE = "default_model.json"


def bundled_name(
    architecture: str = "paper", dataset: str = "fer2013", image_size: int | None = None, members: int = 1
) -> str:
    """The file stem of a bundled model, saying its dataset and family: ``fer2013_robust_48`` for the paper
    CNN on FER2013 (as always shipped), ``fer2013_<architecture>`` for another family on FER2013, and
    ``<dataset>_<architecture>_<input size>`` on any other dataset (``ferplus_vgg_bn_48``); an ensemble of
    ``members`` seeds is ``<dataset>_<architecture>_x<members>_<input size>`` (``ferplus_vgg_bn_x3_48``)."""
    if members > 1:
        return f"{dataset}_{architecture}_x{members}_{image_size or IMAGE_SIZE}"
    if dataset == "fer2013":
        return BUNDLED_NAME if architecture == "paper" else f"fer2013_{architecture}"
    return f"{dataset}_{architecture}_{image_size or IMAGE_SIZE}"


def model_stem(model: str | None = None) -> str:
    """The file stem of the bundled ``model``: an architecture name (its FER2013 model, as before
    candidates had dataset names) or a stem itself; None: :func:`default_model`."""
    model = model or default_model()
    return bundled_name(model) if model in ARCHITECTURES else model


def bundled_files(model: str = "paper") -> dict[str, str]:
    """The shipped file names by format of the bundled ``model`` (an architecture name, or a candidate's
    stem such as ``ferplus_vgg_bn_48``; the fp32 exports let ``fer predict`` pick the engine fastest on
    the CPU, :mod:`fer_utils.deploy.engines`)."""
    name = model_stem(model)
    return {
        "keras": f"{name}.keras",
        "tflite-int8": f"{name}_int8.tflite",
        "tflite-fp32": f"{name}.tflite",
        "onnx-fp32": f"{name}.onnx",
    }


#: The paper CNN's shipped files by format.
BUNDLED_FILES = bundled_files("paper")


def is_bundled_name(model) -> bool:
    """True when ``model`` names a bundled model (``paper`` or another architecture, or the stem of a
    shipped candidate such as ``ferplus_vgg_bn_48``) and no such path exists."""
    if not isinstance(model, str) or not model or Path(model).exists():
        return False
    return model in ARCHITECTURES or model in shipped_candidates()


def shipped_candidates(models_dir: str | os.PathLike | None = None) -> list[str]:
    """The stems of the candidates shipped in ``models_dir`` (default the package's): every model with
    its default-format file and its card, sorted."""
    models_dir = Path(models_dir or BUNDLED_DIR)
    if not models_dir.is_dir():
        return []
    suffix = "_int8.tflite"
    stems = sorted(path.name[: -len(suffix)] for path in models_dir.glob(f"*{suffix}"))
    return [stem for stem in stems if (models_dir / card_file_name(stem)).exists()]


def default_model(models_dir: str | os.PathLike | None = None) -> str:
    """The candidate ``fer predict`` uses without ``--model``: the stem ``default_model.json`` names when
    its files are shipped (``fer bundle-model`` writes it by its rule), else :data:`DEFAULT_MODEL`."""
    models_dir = Path(models_dir or BUNDLED_DIR)
    try:
        chosen = json.loads((models_dir / DEFAULT_CHOICE_FILE).read_text()).get("model")
    except (OSError, ValueError, AttributeError):
        return DEFAULT_MODEL
    return chosen if isinstance(chosen, str) and chosen in shipped_candidates(models_dir) else DEFAULT_MODEL


def bundled_model_path(
    fmt: str = DEFAULT_FORMAT, models_dir: str | os.PathLike | None = None, model: str | None = None
) -> Path:
    """The shipped model file of ``fmt`` (``keras`` or ``tflite-int8``) of the bundled ``model``
    (an architecture name or a candidate's stem; None: :func:`default_model`).

    Raises:
        ValueError: the file is missing (a checkout where ``fer bundle-model`` has not been run).
    """
    model = model or default_model(models_dir)
    files = bundled_files(model)
    if fmt not in files:
        raise ValueError(f"no bundled model in format {fmt!r}; choose one of {', '.join(files)}")
    path = Path(models_dir or BUNDLED_DIR) / files[fmt]
    if not path.exists():
        raise ValueError(
            f"the bundled model {path} is missing; rebuild it with `fer bundle-model"
            f"{'' if model == 'paper' else ' --architecture ' + model}` "
            "or pass --model"
        )
    return path


def card_file_name(model: str) -> str:
    """``model_card.json`` for the paper CNN's FER2013 model, ``model_card_<architecture>.json`` for
    another family on FER2013 (named by its architecture), ``model_card_<stem>.json`` for a candidate
    named by its stem."""
    if model in (BUNDLED_NAME, "paper"):
        return CARD_JSON
    if model.startswith("fer2013_") and model[len("fer2013_") :] in ARCHITECTURES:
        model = model[len("fer2013_") :]
    return f"model_card_{model}.json"


def read_model_card(models_dir: str | os.PathLike | None = None, model: str | None = None) -> dict:
    """The card numbers of the bundled ``model`` (None: :func:`default_model`): training, seeds, test
    scores and calibration of each shipped file."""
    models_dir = Path(models_dir or BUNDLED_DIR)
    return json.loads((models_dir / card_file_name(model or default_model(models_dir))).read_text())
