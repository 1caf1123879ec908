"""Training runs: face cache → tf.data → the paper CNN → a run directory (see README, "Run directory").

:func:`train_run` is the one path from data to evaluation; its parts live beside it: the parameters
(:mod:`~fer_utils.training.config`), the data feed (:mod:`~fer_utils.training.feed`), fitting
(:mod:`~fer_utils.training.fit`), what is recorded (:mod:`~fer_utils.training.record`) and the ``fer train``
command (:mod:`~fer_utils.training.cli`). Their public names are re-exported here.
"""

from __future__ import annotations

import os
from dataclasses import asdict

import numpy as np
import pandas as pd

from fer_utils.faces.cache import FaceCache, announce_resize
from fer_utils.files import writing
from fer_utils.training import rundir
from fer_utils.training.config import CHECKED_FIELDS, TrainConfig, effective_settings, setting_mismatches
from fer_utils.training.evaluate import predictions_table
from fer_utils.training.feed import class_targets, make_dataset, probe_faces
from fer_utils.training.fit import (
    FitResult,
    class_weights,
    compile_model,
    fit_model,
    training_callbacks,
    training_phases,
)
from fer_utils.training.model import build_paper_cnn
from fer_utils.training.record import run_config_record, run_metrics, split_table
from fer_utils.training.runtime import configure_numerics
from fer_utils.training.splits import Split, make_split
from fer_utils.training.transfer import initialise_from

__all__ = [
    "CHECKED_FIELDS",
    "FitResult",
    "TrainConfig",
    "class_targets",
    "class_weights",
    "compile_model",
    "effective_settings",
    "fit_model",
    "initial_model",
    "make_dataset",
    "open_training_cache",
    "prepare_tensorflow",
    "probe_faces",
    "run_config_record",
    "run_metrics",
    "setting_mismatches",
    "split_faces",
    "split_table",
    "train_run",
    "training_callbacks",
    "training_phases",
]


def _cap_per_class(index: pd.DataFrame, face_ids: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    if not cap:
        return face_ids
    part = index.set_index("face_id").loc[face_ids]
    kept = part.groupby("label", group_keys=False).apply(
        lambda rows: rows.sample(n=min(cap, len(rows)), random_state=seed)
    )
    return np.sort(kept.index.to_numpy())


def train_run(
    cache_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    overwrite: bool = False,
    verbose: int = 0,
    **overrides,
) -> rundir.Run:
    """Train and evaluate the paper CNN on a face cache and write a run directory.

    Args:
        cache_dir: a face cache folder (``fer preprocess`` or :func:`image_folder_cache`).
        run_dir: output folder (see :mod:`fer_utils.training.rundir`); ``metrics.json`` is written
            last and marks the run complete.
        config: the run's parameters; keyword ``overrides`` replace single fields.
        overwrite: replace a complete run already in ``run_dir`` (otherwise ValueError).
        verbose: 0 silent, 1 one progress bar over the epochs with the last epoch's scores, 2 one printed
            line per epoch (for notebooks and logs).

    Returns:
        The finished :class:`fer_utils.training.rundir.Run`.

    The inputs are checked first; the run is written beside ``run_dir`` and swapped in when finished
    (:class:`~fer_utils.training.rundir.RunWriter`), so a failure leaves a previous run untouched.
    """
    config = TrainConfig(**{**asdict(config or TrainConfig()), **overrides})
    cache = open_training_cache(cache_dir)
    with rundir.RunWriter(run_dir, overwrite) as writer:
        _write_training(writer, cache, config, verbose)
    return rundir.load_run(writer.path)


def _write_training(writer: rundir.RunWriter, cache: FaceCache, config: TrainConfig, verbose: int) -> None:
    """Split, fit, evaluate and write every file of the run (``metrics.json`` last)."""
    settings = config.settings()
    split, train_ids = split_faces(cache.index, config)
    targets = class_targets(cache)
    image_size = config.input_size or cache.image_size
    numerics = prepare_tensorflow(config)
    import keras

    parts = {"train": train_ids, "validation": split.validation, "test": split.test}
    datasets = {
        name: make_dataset(
            cache,
            ids,
            targets[ids],
            config.batch_size,
            shuffle=name == "train",
            seed=config.seed,
            image_size=image_size,
            in_memory_limit_mb=config.in_memory_limit_mb,
            augment=settings.augment and name == "train",
            one_hot_classes=len(cache.labels) if settings.label_smoothing and name == "train" else None,
        )
        for name, ids in parts.items()
    }
    model, transfer = initial_model(cache.labels, image_size, config)
    run_config = run_config_record(writer.path, cache, config, image_size, split, train_ids)
    run_config.numerics, run_config.transfer = numerics, transfer
    run_config.resized_faces = announce_resize(cache.image_size, image_size, "training")
    writer.write_config(run_config)
    writer.write_split(split_table(split, train_ids))
    probe = probe_faces(cache, train_ids, targets, image_size, config.seed)
    part_targets = {name: targets[ids] for name, ids in parts.items()}
    with writing("the model checkpoint", writer.model_path):
        fitted = fit_model(model, datasets, part_targets, probe, config, writer.model_path, verbose)
    writer.write_history(fitted.history)
    best = keras.models.load_model(writer.model_path)
    probabilities = best.predict(datasets["test"], verbose=0)
    faces = cache.index.set_index("face_id")
    predictions = predictions_table(faces.loc[split.test].reset_index(), probabilities, cache.labels)
    writer.write_predictions(predictions)
    validation_predicted = best.predict(datasets["validation"], verbose=0).argmax(axis=1)
    validation_labels = {
        "present": sorted(set(faces.loc[split.validation, "label"])),
        "predicted": sorted({cache.labels[i] for i in validation_predicted}),
    }
    metrics = run_metrics(run_config, fitted, predictions, int(best.count_params()), validation_labels)
    writer.write_metrics(metrics)


def open_training_cache(cache_dir: str | os.PathLike) -> FaceCache:
    """The face cache a run trains on; ValueError when it cannot train a classifier."""
    cache = FaceCache(cache_dir)
    if not len(cache):
        raise ValueError(f"face cache {cache_dir} holds no faces (see its skipped.csv)")
    if len(cache.labels) < 2:
        raise ValueError(f"a classifier needs at least 2 classes; cache {cache_dir} has only {cache.labels}")
    cache.ensure_face_hashes()  # the duplicate-content leakage check needs them (older caches lack them)
    return cache


def split_faces(index: pd.DataFrame, config: TrainConfig) -> tuple[Split, np.ndarray]:
    """The protocol's split and the (optionally class-capped) training face ids."""
    split = make_split(
        index,
        config.protocol,
        config.test_size,
        config.validation_size,
        config.seed,
        config.fold,
        config.allow_duplicate_leakage,
    )
    train_ids = _cap_per_class(index, split.train, config.train_faces_per_class, config.seed)
    if not len(split.validation):
        raise ValueError("the validation part is empty; set validation_size > 0 (model selection needs it)")
    return split, train_ids


def prepare_tensorflow(config: TrainConfig) -> dict:
    """Threads, determinism and seeds of ``config`` (:func:`fer_utils.training.runtime.configure_numerics`);
    a notebook calls it before building any model, ``train_run`` calls it again. Returns the record."""

    return configure_numerics(config.threads, config.seed)


def initial_model(labels: list[str], image_size: int, config: TrainConfig):
    """The paper CNN for ``labels``, initialised from ``config.init_from`` when given; returns the model
    and what the transfer copied (None without ``init_from``)."""

    settings = config.settings()
    model = build_paper_cnn(len(labels), image_size, config.dropout, config.l1, settings.input_scaling)
    if not config.init_from:
        return model, None

    return model, initialise_from(config.init_from, model, list(labels))
