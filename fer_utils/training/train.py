"""Training runs: face cache → tf.data → a network (``--architecture``) → a run directory (see README, "Run directory").

:func:`train_run` is the one path from data to evaluation; its parts live beside it: the parameters
(:mod:`~fer_utils.training.config`), the data feed (:mod:`~fer_utils.training.feed`), fitting
(:mod:`~fer_utils.training.fit`), what is recorded (:mod:`~fer_utils.training.record`) and the ``fer train``
command (:mod:`~fer_utils.training.cli`). Their public names are re-exported here.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.faces.cache import FaceCache
from fer_utils.files import writing
from fer_utils.training import rundir
from fer_utils.training.architectures import model_cost
from fer_utils.training.calibration import calibrate
from fer_utils.training.config import CHECKED_FIELDS, TrainConfig, effective_settings, setting_mismatches
from fer_utils.training.distill import add_teacher_outputs, load_teacher
from fer_utils.training.evaluate import predictions_table
from fer_utils.training.feed import class_targets, make_dataset, probe_faces
from fer_utils.training.fit import (
    FitResult,
    Resume,
    class_weights,
    compile_model,
    fit_model,
    training_callbacks,
    training_phases,
)
from fer_utils.training.model import load_keras_model
from fer_utils.training.plan import RunPlan
from fer_utils.training.record import run_config_record, run_metrics, split_table
from fer_utils.training.resume import (
    BEST_FILE,
    TrainingState,
    read_checkpoint,
    refuse_changed_settings,
    remove_checkpoints,
)
from fer_utils.training.runtime import configure_numerics
from fer_utils.training.splits import Split, make_split
from fer_utils.training.targets import run_targets
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
    "RunPlan",
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
    """Train and evaluate a network on a face cache and write a run directory (resumable: rerun after an
    interruption and it continues after the last finished epoch, ending as an uninterrupted run would).

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
    refuse_source_as_output(run_dir, config)
    cache = open_training_cache(cache_dir)
    plan = RunPlan.resolve(config, cache)
    with rundir.RunWriter(run_dir, overwrite, resume=True) as writer:
        _write_training(writer, cache, plan, verbose)
    return rundir.load_run(writer.path)


def refuse_source_as_output(run_dir: str | os.PathLike, config: TrainConfig) -> None:
    """ValueError (one line) when the run would be written over what it is built from: a ``teacher`` or
    ``init_from`` that is ``run_dir`` or lies inside it (a finished run is replaced when it is done)."""
    target = Path(run_dir).resolve()
    for flag, source in (("--teacher", config.teacher), ("--init-from", config.init_from)):
        if source and (Path(source).resolve() == target or Path(source).resolve().is_relative_to(target)):
            raise ValueError(
                f"{flag} {source} is inside the run being written ({run_dir}): training would replace "
                "it; choose another --out"
            )


def _write_training(writer: rundir.RunWriter, cache: FaceCache, plan: RunPlan, verbose: int) -> None:
    """Split, fit, evaluate and write every file of the run (``metrics.json`` last); a partial folder with
    a checkpoint of the same settings resumes at its last finished epoch."""
    config, settings, image_size = plan.config, plan.recipe, plan.input_size
    resume = resume_point(writer, plan)
    chosen = run_targets(cache, config.targets)
    split, train_ids = split_faces(cache.index[chosen.usable], config)
    targets = class_targets(cache)
    numerics = prepare_tensorflow(config)

    parts = {"train": train_ids, "validation": split.validation, "test": split.test}
    teacher = None
    if config.teacher:
        teacher = load_teacher(config.teacher, list(cache.labels), image_size)

    def feed(name, ids, epochs=None):
        dataset = make_dataset(
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
            epochs=epochs,
            soft_targets=chosen.soft[ids] if chosen.soft is not None and name == "train" else None,
        )
        if teacher is not None and name == "train":
            weights = class_weights(targets[ids], len(cache.labels), settings.class_weighting)
            dataset = add_teacher_outputs(dataset, teacher[0], teacher[1], len(cache.labels), weights)
        return dataset

    datasets = {name: feed(name, ids) for name, ids in parts.items() if name != "train"}
    datasets["train"] = lambda first, last: feed("train", train_ids, (first, last))
    model, transfer = initial_model(plan)
    run_config = run_config_record(
        writer.path,
        cache,
        plan,
        split,
        train_ids,
        numerics=numerics,
        transfer=transfer,
        cost=model_cost(model),
        teacher=None if teacher is None else str(teacher[2].resolve()),
    )
    writer.write_config(run_config)
    writer.write_split(split_table(split, train_ids))
    probe = probe_faces(cache, train_ids, targets, image_size, config.seed)
    part_targets = {name: targets[ids] for name, ids in parts.items()}
    with writing("the model checkpoint", writer.model_path):
        fitted = fit_model(model, datasets, part_targets, probe, plan, writer.model_path, verbose, resume)
    writer.write_history(fitted.history)
    best = load_keras_model(writer.model_path)
    probabilities = best.predict(datasets["test"], verbose=0)
    validation_probabilities = best.predict(datasets["validation"], verbose=0)
    calibration = calibrate(
        validation_probabilities, part_targets["validation"], probabilities, part_targets["test"]
    )
    faces = cache.index.set_index("face_id")
    predictions = predictions_table(faces.loc[split.test].reset_index(), probabilities, cache.labels)
    writer.write_predictions(predictions)
    validation_predicted = validation_probabilities.argmax(axis=1)
    validation_labels = {
        "present": sorted(set(faces.loc[split.validation, "label"])),
        "predicted": sorted({cache.labels[i] for i in validation_predicted}),
    }
    metrics = run_metrics(
        run_config, fitted, predictions, int(best.count_params()), validation_labels, calibration
    )
    remove_checkpoints(writer.work_path)
    writer.write_metrics(metrics)


def resume_point(writer: rundir.RunWriter, plan: RunPlan) -> Resume:
    """What :func:`fit_model` resumes from: the partial folder's newest good checkpoint (after refusing one
    made with other settings, in one line), or a fresh start."""
    config, wanted = plan.config, plan.checked_settings()
    state = TrainingState()
    found = read_checkpoint(writer.work_path, writer.path.name) if writer.resumed else None
    if found:
        record, variables, folder = found
        refuse_changed_settings(record["settings"], wanted, writer.path.name, writer.work_path)
        state = TrainingState(
            epoch=record["epoch"],
            history=record["history"],
            recycled=record["recycled"],
            best=record["best"],
            early_stopping=record["early_stopping"],
            stopped=record["stopped"],
            seconds=record["seconds"],
            initial_diagnostics=record["initial_diagnostics"],
            variables=variables,
            model_variable_count=record["model_variables"],
        )
        best = folder / BEST_FILE
        if best.is_file():
            shutil.copyfile(best, writer.model_path)
        print(
            f"{writer.path.name}: resuming after epoch {state.epoch} of {config.epochs} ({folder})",
            file=sys.stderr,
            flush=True,
        )
    return Resume(writer.work_path, wanted, state)


def open_training_cache(cache_dir: str | os.PathLike) -> FaceCache:
    """The face cache a run trains on; ValueError when it cannot train a classifier."""
    cache = FaceCache(cache_dir, checksums=True)  # each shard's sha256 checked when first read
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


def initial_model(plan: RunPlan):
    """The plan's network, initialised from ``init_from`` when the config gives one; returns the model and
    what the transfer copied (None without ``init_from``)."""
    model = plan.build_model()
    if not plan.config.init_from:
        return model, None

    return model, initialise_from(plan.config.init_from, model, list(plan.labels))
