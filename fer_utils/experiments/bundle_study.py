"""``fer bundle-model --from-study``: the seeds folder of one architecture in a ``fer study-models`` folder,
checked to be shippable as a bundled candidate (its data's own split, every seed finished, the study's
settings, the classes of the data it learned from)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from fer_utils.experiments.bundle_data import BUNDLE_DATASETS, require_classes, run_dataset
from fer_utils.experiments.model_study import STUDY_FILE
from fer_utils.training.config import TrainConfig
from fer_utils.training.seeds import finished_seed_runs, refuse_other_settings


def study_seeds_folder(study_dir: str | os.PathLike, architecture: str, dataset: str | None = None) -> Path:
    """The seeds folder of ``architecture`` in a ``fer study-models`` folder, checked to be shippable as
    a bundled model: trained on the data's own split (``fixed`` protocol: PublicTest / FER+ valid selected,
    PrivateTest / FER+ test tested), every seed of the study finished, each run made with the study's
    settings, all on one bundle dataset (:data:`~fer_utils.experiments.bundle_data.BUNDLE_DATASETS`;
    ``dataset`` when given) and predicting its classes. ValueError (one line) naming what is not so, before
    any work."""
    study_dir = Path(study_dir)
    try:
        study = json.loads((study_dir / STUDY_FILE).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{study_dir} is not a model study folder ({STUDY_FILE}: {error})") from None
    if architecture not in study.get("architectures", {}):
        raise ValueError(
            f"the study {study_dir} has no {architecture!r} runs; it has "
            f"{', '.join(study.get('architectures', {})) or 'none'}"
        )
    protocol = study.get("shared", {}).get("protocol")
    if protocol != "fixed":
        raise ValueError(
            f"the study {study_dir} split FER2013 by protocol {protocol!r}; a bundled model is trained on "
            "FER2013's own split (--protocol fixed) so that PrivateTest stays unseen"
        )
    folder = study_dir / architecture
    runs = finished_seed_runs(folder)
    missing = sorted(set(study.get("seeds", [])) - {run.setup.seed for run in runs})
    if missing:
        raise ValueError(
            f"{folder}: seed(s) {', '.join(map(str, missing))} not finished; rerun the study command to "
            "finish them"
        )
    found = study_dataset(folder, runs)
    if dataset and found != dataset:
        raise ValueError(f"{folder}: runs trained on {found}, not {dataset} (--dataset)")
    try:
        refuse_other_settings({folder: study_config(study, architecture)})
    except ValueError as error:
        stale = "; ".join(line.strip() for line in str(error).splitlines()[1:])
        raise ValueError(
            f"made with other settings than the study {study_dir}, not shipped: {stale}"
        ) from None
    for run in runs:
        require_classes(run, found)
    return folder


def study_dataset(folder: Path, runs) -> str:
    """The one bundle dataset every run of a study's seeds folder learned from (ValueError otherwise)."""
    datasets = {run_dataset(run) or (run.outcome.dataset or "unknown data") for run in runs}
    if len(datasets) != 1 or not datasets <= set(BUNDLE_DATASETS):
        raise ValueError(
            f"{folder}: runs trained on {', '.join(sorted(datasets)) or 'nothing'}, not one of "
            f"{', '.join(BUNDLE_DATASETS)} (FER2013, FER+)"
        )
    return datasets.pop()


def study_config(study: dict, architecture: str) -> TrainConfig:
    """The TrainConfig a ``fer study-models`` folder trained ``architecture`` with (its ``study.json``)."""
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    shared = {key: value for key, value in study.get("shared", {}).items() if key in known}
    family = study["architectures"][architecture] or {}
    return dataclasses.replace(
        TrainConfig(**shared), architecture=architecture, input_size=family.get("input_size")
    )
