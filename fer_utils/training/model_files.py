"""Model files and what is known of them: the spec rule every model reader shares (``fer predict``,
``fer evaluate``, ``--init-from``): ``<file>.json`` beside the model, else a ``.keras`` file's run
``config.json``. Below training and deploy alike, so both read specs the same way."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fer_utils.faces.detection import EQUALIZATIONS
from fer_utils.training import rundir


def _keras_spec(model_path: Path) -> dict:
    """Labels and size of a ``.keras`` model from its run's ``config.json`` (or generic names)."""
    config_path = model_path.parent / rundir.CONFIG_FILE
    spec: dict = {"format": "keras", "model_file": model_path.name}
    if config_path.exists():
        config = json.loads(config_path.read_text())
        spec.update(
            labels=config.get("labels"),
            image_size=config.get("image_size"),
            preprocessing=config.get("preprocessing", {}),
            source_run=str(model_path.parent.resolve()),
        )
    calibration = run_calibration(model_path.parent)
    if calibration:
        spec["calibration"] = calibration
    return spec


def run_calibration(run_dir: Path) -> dict | None:
    """``{"temperature", "fitted_on"}`` from a run's metrics.json (None for runs without calibration)."""
    metrics_path = Path(run_dir) / rundir.METRICS_FILE
    if not metrics_path.exists():
        return None
    try:
        calibration = json.loads(metrics_path.read_text()).get("calibration") or {}
    except (json.JSONDecodeError, AttributeError):
        return None
    if not calibration.get("temperature"):
        return None
    return {"temperature": float(calibration["temperature"]), "fitted_on": "validation part of the run"}


def read_spec(spec_path: Path) -> dict:
    """A model spec file's JSON object; ValueError naming the file when it is not one."""
    try:
        spec = json.loads(spec_path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{spec_path} is not a model spec (JSON): {error}; export the model again") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{spec_path} is not a model spec (a JSON object); export the model again")
    return spec


def spec_path(model_path: str | os.PathLike) -> Path:
    """Where a model file's spec lives: ``<file>.json`` beside it (``model.keras`` → ``model.keras.json``)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def model_spec(model_path: str | os.PathLike) -> dict:
    """What is known of a model file, by the one rule ``fer predict``, ``fer evaluate`` and ``--init-from``
    share: its spec ``<file>.json`` (exported and bundled models), else for a ``.keras`` file its run's
    ``config.json`` (labels, image size, preprocessing); without either only the format and file name.

    Raises:
        ValueError: the spec file exists but is not a JSON object.
    """
    model_path = Path(model_path)
    path = spec_path(model_path)
    if path.exists():
        spec = read_spec(path)
        if spec:
            return spec
    if model_path.suffix.lower() == ".keras":
        return _keras_spec(model_path)
    return {}


def spec_source(model_path: str | os.PathLike) -> Path | None:
    """The file :func:`model_spec` reads for this model: ``<file>.json``, else a ``.keras`` file's run
    ``config.json``; None when there is neither."""
    model_path = Path(model_path)
    if spec_path(model_path).exists():
        return spec_path(model_path)
    config_path = model_path.parent / rundir.CONFIG_FILE
    if model_path.suffix.lower() == ".keras" and config_path.exists():
        return config_path
    return None


def pixel_step(spec: dict, model_path: str | os.PathLike) -> str:
    """The pixel step a model was trained with (``preprocessing.equalize`` of its spec: none, hist or
    clahe), which every path that feeds it faces applies.

    Raises:
        ValueError: the spec does not declare it (one line naming the spec's path): the model's faces
            would be fed without knowing what the model learned from.
    """
    step = (spec.get("preprocessing") or {}).get("equalize")
    if step in EQUALIZATIONS:
        return step
    source = spec_source(model_path)
    where = f"its spec {source}" if source else "it has no spec (<file>.json) and so"
    found = (
        f"declares an unknown pixel step {step!r}" if step is not None else "does not declare the pixel step"
    )
    raise ValueError(
        f"{Path(model_path).name}: {where} {found} the model was trained with (preprocessing.equalize: "
        f"{', '.join(EQUALIZATIONS)}); export the model again from its run (`fer export`), or add that step "
        "to the spec"
    )
