"""What a bundled model can be trained on (``fer bundle-model --dataset``) and the faces its card is
measured on: FER2013's equalized JPEG export (``fer2013``, 7 classes, the shipped default's data), FER2013's
raw pixels with the FER+ crowd's majority labels (``ferplus``, 8 classes with contempt; targets label,
majority or the vote distribution) and FER2013's raw pixels with their original labels (``fer2013raw``,
the FER+ layout with ``label_source fer2013``, 7 classes).

:func:`run_dataset` names the bundle dataset a finished run learned from (its cache's dataset and label
source), :func:`require_classes` checks a run predicts that dataset's classes, :func:`bundle_cache`
builds (or finds) the training cache of a dataset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fer_utils.data.datasets import dataset_samples
from fer_utils.data.ferplus import FERPLUS_LABELS
from fer_utils.deploy.bundled import FER2013_CLASSES, IMAGE_SIZE
from fer_utils.faces.preprocess import default_cache_root, image_folder_cache, preprocess
from fer_utils.faces.preprocess_config import PreprocessConfig
from fer_utils.paths import shared_data_root


@dataclass(frozen=True)
class BundleDataset:
    """One dataset a bundled model can be trained on."""

    name: str
    #: The face cache's ``dataset`` (what a run records): ``fer2013`` (JPEG folders) or ``ferplus``.
    cache_dataset: str
    #: The FER+ layout's ``label_source`` (None: the JPEG class folders).
    label_source: str | None
    classes: tuple[str, ...]
    #: How the card and the error messages name it.
    title: str
    #: The training data, for the card and the shipped specs.
    training: str
    #: The folder of ``../shared/data`` it is read from by default.
    folder: str
    #: The test split's name in the card.
    test_name: str
    targets: tuple[str, ...] = ("label",)


BUNDLE_DATASETS = {
    "fer2013": BundleDataset(
        "fer2013",
        "fer2013",
        None,
        tuple(FER2013_CLASSES.values()),
        "FER2013",
        "FER2013 train (28,709 faces, the equalized JPEG export); PublicTest (3,589) selected the epoch",
        "fer2013",
        "PrivateTest",
    ),
    "ferplus": BundleDataset(
        "ferplus",
        "ferplus",
        "majority",
        tuple(FERPLUS_LABELS.values()),
        "FER+",
        "FER+ train (FER2013 Training's raw pixels, 25,045 faces with a FER+ majority); FER+ valid "
        "(PublicTest's raw pixels) selected the epoch",
        "fer2013plus",
        "FER+ test",
        ("label", "majority", "distribution"),
    ),
    "fer2013raw": BundleDataset(
        "fer2013raw",
        "ferplus",
        "fer2013",
        tuple(FER2013_CLASSES.values()),
        "FER2013",
        "FER2013 train on raw pixels (the FER+ copy, original labels); PublicTest's raw pixels selected the "
        "epoch",
        "fer2013plus",
        "PrivateTest (raw pixels)",
        ("label", "majority", "distribution"),
    ),
}
#: Cache datasets holding FER2013's raw pixels in the FER+ layout (folders or Kaggle's csv).
RAW_CACHE_DATASETS = ("ferplus", "fer2013csv")


def bundle_dataset(name: str) -> BundleDataset:
    """The :data:`BUNDLE_DATASETS` entry ``name`` (ValueError in one line naming the choices)."""
    if name not in BUNDLE_DATASETS:
        raise ValueError(f"unknown bundle dataset {name!r}; choose one of {', '.join(BUNDLE_DATASETS)}")
    return BUNDLE_DATASETS[name]


def run_dataset(run) -> str | None:
    """The bundle dataset a finished run learned from: its cache's dataset and (for FER2013's raw pixels)
    the label source; None for any other data."""
    dataset = run.outcome.dataset or run.setup.dataset
    if dataset == "fer2013":
        return "fer2013"
    if dataset in RAW_CACHE_DATASETS:
        options = (run.setup.preprocessing or {}).get("dataset_options") or {}
        return "fer2013raw" if options.get("label_source") == "fer2013" else "ferplus"
    return None


def require_classes(run, dataset: str) -> None:
    """ValueError (one line) unless ``run`` predicts the classes of the bundle ``dataset`` (what its card
    scores it on); checked before anything is built."""
    spec = bundle_dataset(dataset)
    labels, wanted = list(run.setup.labels or run.outcome.labels or []), set(spec.classes)
    if set(labels) != wanted or len(labels) != len(wanted):
        raise ValueError(
            f"{run.path} predicts {', '.join(map(str, labels)) or 'no classes'}, not {spec.title}'s "
            f"{', '.join(sorted(wanted))}: it cannot be shipped as a {spec.title} model"
        )


def default_root(dataset: str) -> Path:
    """Where the bundle ``dataset`` is read from by default (``../shared/data/<folder>``)."""
    return shared_data_root() / bundle_dataset(dataset).folder


def bundle_cache(
    dataset: str, root: str | os.PathLike | None = None, cache_root=None, workers: int | None = None
):
    """The training face cache of the bundle ``dataset`` (built or resumed under the user's cache): the
    JPEG class folders at 48 px for ``fer2013``; the FER+ layout's raw faces, no detector, no pixel step, at
    48 px with its label source otherwise (what ``fer preprocess --dataset ferplus --detector none
    --face-size 48`` builds)."""
    spec = bundle_dataset(dataset)
    root = Path(root or default_root(dataset))
    cache_root = cache_root or default_cache_root()
    if spec.label_source is None:
        return image_folder_cache(root, cache_root, face_size=IMAGE_SIZE, split_dirs=True, progress=False)
    options = {"label_source": spec.label_source}
    samples, skipped = dataset_samples(spec.cache_dataset, root, **options)
    config = PreprocessConfig(face_size=IMAGE_SIZE, detector="none")
    return preprocess(
        samples,
        cache_root,
        config,
        dataset=spec.cache_dataset,
        skipped=skipped,
        progress=False,
        workers=workers,
        dataset_options=options,
    )
