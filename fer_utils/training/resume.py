"""Resumable training: a checkpoint after every epoch inside the run's partial folder, and the state a
rerun restores so it ends exactly as an uninterrupted run of the same config would.

Layout (inside ``.<run>.partial-<id>/``, see :class:`fer_utils.training.rundir.RunWriter`)::

    checkpoint/epoch-<k>/variables.npz   every model variable (weights, BatchNorm statistics, dropout seed
                                          state) and the optimizer's (moments, iteration count)
    checkpoint/epoch-<k>/best.keras       the best checkpoint so far (the run's model.keras at epoch k)
    checkpoint/epoch-<k>/state.json       written last: epoch, history so far, recycled units, the
                                          selection and early-stopping state, the settings, checksums

Each epoch folder is written under a temporary name and renamed in; the last two are kept, so a damaged
newest checkpoint falls back to the one before. The data order needs no saved state: each epoch's
shuffle and augmentation seeds derive from ``(seed, epoch)`` (:func:`fer_utils.training.feed.make_dataset`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_utils.files import atomic_write_json, atomic_write_with
from fer_utils.training.config import setting_mismatches

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
VARIABLES_FILE = "variables.npz"
BEST_FILE = "best.keras"
KEPT_CHECKPOINTS = 2


@dataclass
class TrainingState:
    """What a resumed run restores (epoch = epochs finished)."""

    epoch: int = 0
    history: list = field(default_factory=list)
    recycled: list = field(default_factory=list)
    best: float | None = None
    early_stopping: dict | None = None
    stopped: bool = False
    seconds: float = 0.0
    initial_diagnostics: dict | None = None
    variables: list | None = None  # model variables, then optimizer variables
    model_variable_count: int = 0


def checkpoint_root(work_path: Path) -> Path:
    return Path(work_path) / CHECKPOINT_DIR


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_checkpoint(work_path: Path, model, state: TrainingState, settings: dict, best_model: Path) -> Path:
    """Write epoch ``state.epoch``'s checkpoint atomically and drop all but the last two."""
    root = checkpoint_root(work_path)
    root.mkdir(exist_ok=True)
    final = root / f"epoch-{state.epoch:04d}"
    staging = root / f".epoch-{state.epoch:04d}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    model_variables = [np.asarray(variable) for variable in model.variables]
    optimizer_variables = [np.asarray(variable) for variable in model.optimizer.variables]
    arrays = {f"v{i:05d}": value for i, value in enumerate(model_variables + optimizer_variables)}

    def save(temporary):
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)

    atomic_write_with(staging / VARIABLES_FILE, save, "the training checkpoint")
    checksums = {VARIABLES_FILE: _sha256(staging / VARIABLES_FILE)}
    if Path(best_model).is_file():
        shutil.copyfile(best_model, staging / BEST_FILE)
        checksums[BEST_FILE] = _sha256(staging / BEST_FILE)
    record = {
        "epoch": state.epoch,
        "history": state.history,
        "recycled": state.recycled,
        "best": state.best,
        "early_stopping": state.early_stopping,
        "stopped": state.stopped,
        "seconds": state.seconds,
        "initial_diagnostics": state.initial_diagnostics,
        "model_variables": len(model_variables),
        "settings": settings,
        "checksums": checksums,
    }
    atomic_write_json(staging / STATE_FILE, record)
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    for old in sorted(root.glob("epoch-*"))[:-KEPT_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _read_one(folder: Path) -> tuple[dict, list]:
    record = json.loads((folder / STATE_FILE).read_text())
    for name, digest in record["checksums"].items():
        if _sha256(folder / name) != digest:
            raise ValueError(f"{name} does not match its checksum")
    with np.load(folder / VARIABLES_FILE) as stored:
        variables = [stored[key] for key in sorted(stored.files)]
    return record, variables


def read_checkpoint(work_path: Path, run_name: str = "") -> tuple[dict, list, Path] | None:
    """The newest readable checkpoint ``(state record, variables, folder)``, or None.

    A damaged checkpoint (unreadable, wrong checksum) is removed with one line on stderr saying which
    epoch the run falls back to.
    """
    root = checkpoint_root(work_path)
    for folder in sorted(root.glob("epoch-*"), reverse=True):
        try:
            record, variables = _read_one(folder)
        except (OSError, ValueError, KeyError, EOFError) as error:
            older = [f for f in sorted(root.glob("epoch-*")) if f.name < folder.name]
            fallback = (
                f"resuming from epoch {int(older[-1].name.split('-')[1])}"
                if older
                else "starting over from epoch 1"
            )
            detail = " ".join(str(error).split())[:160]
            print(
                f"{run_name}: checkpoint {folder.name} is damaged ({type(error).__name__}: {detail}); {fallback}",
                file=sys.stderr,
                flush=True,
            )
            shutil.rmtree(folder, ignore_errors=True)
            continue
        return record, variables, folder
    return None


def refuse_changed_settings(recorded: dict, wanted: dict, run_name: str, partial: Path) -> None:
    """ValueError (one line) naming every setting that differs from the checkpoint's."""
    problems = setting_mismatches(recorded, wanted)
    problems += [f"{key} (not in the checkpoint)" for key in recorded.keys() - wanted.keys()]
    if problems:
        raise ValueError(
            f"cannot resume {run_name}: its checkpoint ({partial}) was made with other settings: "
            f"{'; '.join(problems)}; rerun with the same settings, or pass --overwrite to start over"
        )


def restore_variables(model, variables: list, model_variable_count: int, restore_optimizer: bool) -> None:
    """Put saved values back into the model (and, mid-phase, into its freshly built optimizer)."""
    model_values, optimizer_values = variables[:model_variable_count], variables[model_variable_count:]
    if len(model_values) != len(model.variables):
        raise ValueError(
            f"checkpoint holds {len(model_values)} model variables, the model {len(model.variables)}"
        )
    for variable, value in zip(model.variables, model_values, strict=True):
        variable.assign(value)
    if restore_optimizer:
        model.optimizer.build(model.trainable_variables)
        if len(optimizer_values) != len(model.optimizer.variables):
            raise ValueError("checkpoint's optimizer state does not fit this model's optimizer")
        for variable, value in zip(model.optimizer.variables, optimizer_values, strict=True):
            variable.assign(value)


def checkpoint_callback(
    work_path: Path, state: TrainingState, settings: dict, best_model: Path, clock, selection, early_stopping
):
    """Callback (last in the list) recording each finished epoch's logs into ``state.history`` and
    writing the epoch's checkpoint. ``selection`` is the best-epoch ``ModelCheckpoint``, ``early_stopping``
    the ``EarlyStopping`` callback or None; ``clock()`` gives the seconds trained so far. Set
    ``restore_early_stopping`` to a saved early-stopping state to put it back when ``fit`` begins (after
    ``EarlyStopping`` has reset itself)."""
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        restore_early_stopping: dict | None = None

        def on_train_begin(self, logs=None):
            if early_stopping is not None and self.restore_early_stopping:
                for key, value in self.restore_early_stopping.items():
                    setattr(early_stopping, key, value)
            self.restore_early_stopping = None

        def on_epoch_end(self, epoch, logs=None):
            state.history.append({key: _plain(value) for key, value in (logs or {}).items()})
            state.epoch = epoch + 1
            state.best = _plain(selection.best)
            if early_stopping is not None:
                state.early_stopping = {
                    "wait": int(early_stopping.wait),
                    "best": _plain(early_stopping.best),
                    "best_epoch": int(early_stopping.best_epoch),
                }
                state.stopped = bool(self.model.stop_training)
            state.seconds = clock()
            write_checkpoint(work_path, self.model, state, settings, best_model)

    return EpochCheckpoint()


def _plain(value):
    """A JSON-safe Python number (logs hold NumPy scalars or 0-d arrays)."""
    if value is None:
        return None
    value = np.asarray(value).item()
    return value if isinstance(value, int | float) else float(value)


def remove_checkpoints(work_path: Path) -> None:
    """Drop the checkpoints once the run is finished (they are not part of a run directory)."""
    shutil.rmtree(checkpoint_root(work_path), ignore_errors=True)
