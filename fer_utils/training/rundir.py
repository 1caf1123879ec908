"""The run directory: the one module that writes and reads a training run's files.

Layout (see ARCHITECTURE.md, "Run directory")::

    config.json       every parameter, cache key, preprocessing config, seed, versions, split sizes
    split.csv         face id → part (train / validation / test)
    history.csv       per-epoch loss / accuracy for train, validation and the held-out test part
    model.keras       the best-validation checkpoint
    predictions.csv   per test face: ids, true and predicted label, class probabilities
    metrics.json      scores; written last: a run is finished exactly when it exists

Every write is atomic (a temporary name, then a rename), and a run is written in a hidden sibling folder
that replaces the run folder only once finished (:class:`RunWriter`). ``config.json`` and ``metrics.json`` carry
:data:`SCHEMA_VERSION`; readers accept files without it (written before the field existed).

Which run folders readers show (``list_runs``, ``validate_run``) is :mod:`fer_utils.training.run_listing`.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fer_utils.faces.cache import with_time_in_seconds
from fer_utils.files import atomic_write_csv, atomic_write_json, replace_directory, require_folder_path
from fer_utils.formatting import percent, score
from fer_utils.locks import WriterLock, run_lock_path
from fer_utils.training.metrics import scores_text
from fer_utils.training.results import (
    EVALUATION_KIND,
    SCHEMA_VERSION,
    RecordProblem,
    RunConfig,
    RunMetrics,
    Scores,
)

__all__ = ["EVALUATION_KIND", "SCHEMA_VERSION", "RunConfig", "RunMetrics", "Scores"]

CONFIG_FILE = "config.json"
SPLIT_FILE = "split.csv"
HISTORY_FILE = "history.csv"
MODEL_FILE = "model.keras"
PREDICTIONS_FILE = "predictions.csv"
METRICS_FILE = "metrics.json"
#: Inside a partial folder: the per-epoch training checkpoints a rerun resumes from (fer_utils.training.resume).
CHECKPOINT_DIR = "checkpoint"
#: Files a finished run must hold (``split.csv`` is optional for readers: older runs lack it).
RUN_FILES = (CONFIG_FILE, HISTORY_FILE, MODEL_FILE, METRICS_FILE, PREDICTIONS_FILE)
#: An evaluation folder (``config.json``'s ``kind`` is :data:`EVALUATION_KIND`, ``fer evaluate``) has no
#: training history and no model of its own.
EVALUATION_FILES = (CONFIG_FILE, METRICS_FILE, PREDICTIONS_FILE)
#: Keys :func:`load_run` requires in metrics.json, and in each score level (``frame``, ``video``).
REQUIRED_METRICS = RunMetrics.REQUIRED
REQUIRED_SCORES = Scores.REQUIRED


# ------------------------------------------------------------------------------------------------ writing


def is_finished(run_dir: str | os.PathLike) -> bool:
    """True when the run wrote its ``metrics.json`` (the last file of a run)."""
    return (Path(run_dir) / METRICS_FILE).exists()


class RunWriter:
    """Writes one run directory, file by file, ``metrics.json`` last, and swaps it in when finished.

    Args:
        run_dir: the folder (created when the run finishes).
        overwrite: replace a finished run; otherwise a finished run raises ValueError.
        resume: keep and reuse the newest partial folder holding a training checkpoint
            (:mod:`fer_utils.training.resume`; ``resumed`` says whether one was found), and keep this one's
            when the run fails or is interrupted, for the next writer to resume. ``overwrite`` starts over.

    The files go to a hidden sibling (``.<name>.partial-<id>``) that replaces ``run_dir`` in one step
    when :meth:`write_metrics` is called, so ``run_dir`` always holds the previous run or the new
    finished one: a failure (see :meth:`abort`, or use the writer as a context manager) leaves the
    previous run untouched. Files in ``run_dir`` that are not run files (an executed notebook) are
    carried over. When the current directory is inside ``run_dir`` (papermill runs the ablation's kernels
    there) the files are renamed in one by one instead, ``metrics.json`` last, so the cwd stays valid. The writer holds the run's lock (:mod:`fer_utils.locks`) until it finishes or aborts:
    a second writer on the same folder raises :class:`~fer_utils.locks.FolderBusy`.
    """

    def __init__(self, run_dir: str | os.PathLike, overwrite: bool = False, resume: bool = False):
        self.path = Path(run_dir)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"run folder {self.path} is a file, not a folder; choose another path")
        require_folder_path(self.path, "run folder")
        self.lock = WriterLock(self.path, run_lock_path(self.path), "fer train").acquire()
        try:
            if is_finished(self.path) and not overwrite:
                raise ValueError(
                    f"{self.path} already holds a complete run; pass --overwrite (overwrite=True in Python) "
                    "or choose another folder"
                )
            where = Path(os.path.abspath(self.path))  # "." and "runs/x/" have a parent and a name too
            stale = sorted(
                where.parent.glob(f".{glob.escape(where.name)}.partial-*"),
                key=lambda path: path.stat().st_mtime,
            )
            resumable = (
                [path for path in stale if (path / CHECKPOINT_DIR).is_dir()]
                if resume and not overwrite
                else []
            )
            self.resumed = bool(resumable)
            for folder in stale:
                if not resumable or folder != resumable[-1]:
                    shutil.rmtree(folder, ignore_errors=True)  # left by a killed writer; we hold the lock
            if resumable:
                self.work_path = resumable[-1]
            else:
                self.work_path = where.with_name(f".{where.name}.partial-{uuid.uuid4().hex[:8]}")
                self.work_path.mkdir()
        except BaseException:
            self.lock.release()
            raise
        self.finished = False
        self.resumable = resume

    @property
    def model_path(self) -> Path:
        """Where the model checkpoint goes (Keras writes it itself)."""
        return self.work_path / MODEL_FILE

    def write_config(self, config: RunConfig | dict) -> None:
        """``config.json`` from its record (a dict is taken as the file's keys, as older callers give)."""
        if isinstance(config, RunConfig):
            config = config.to_json()
        atomic_write_json(
            self.work_path / CONFIG_FILE, {**config, "schema_version": SCHEMA_VERSION}, default=str
        )

    def write_split(self, parts: pd.DataFrame) -> None:
        atomic_write_csv(self.work_path / SPLIT_FILE, parts)

    def write_history(self, history: pd.DataFrame) -> None:
        atomic_write_csv(self.work_path / HISTORY_FILE, history)

    def write_predictions(self, predictions: pd.DataFrame) -> None:
        atomic_write_csv(self.work_path / PREDICTIONS_FILE, predictions)

    def write_metrics(self, metrics: RunMetrics | dict) -> None:
        """Write ``metrics.json`` and swap the finished run in: from here on it counts as finished."""
        if isinstance(metrics, RunMetrics):
            metrics = metrics.to_json()
        atomic_write_json(self.work_path / METRICS_FILE, {**metrics, "schema_version": SCHEMA_VERSION})
        if Path.cwd().is_relative_to(os.path.abspath(self.path)):
            self._move_files_in()  # a process working inside the folder (papermill's kernel) keeps its cwd
        else:
            self._carry_over_other_files()
            replace_directory(self.work_path, self.path)
        self.finished = True
        self.lock.release()

    def _move_files_in(self) -> None:
        """Finish in place: un-finish the folder, rename each new file in, ``metrics.json`` last."""
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / METRICS_FILE).unlink(missing_ok=True)
        for entry in sorted(self.work_path.iterdir(), key=lambda entry: entry.name == METRICS_FILE):
            os.replace(entry, self.path / entry.name)
        self.work_path.rmdir()

    def _carry_over_other_files(self) -> None:
        if not self.path.is_dir():
            return
        for entry in self.path.iterdir():
            if entry.name in (*RUN_FILES, SPLIT_FILE) or (self.work_path / entry.name).exists():
                continue
            if entry.is_dir():
                shutil.copytree(entry, self.work_path / entry.name, symlinks=True)
            else:
                shutil.copy2(entry, self.work_path / entry.name, follow_symlinks=False)

    def abort(self, keep_checkpoint: bool = False) -> None:
        """Drop the unfinished files and the lock; the previous run (if any) stays as it was. With
        ``keep_checkpoint`` a partial folder holding a training checkpoint stays for a rerun to resume."""
        if not self.finished and not (keep_checkpoint and (self.work_path / CHECKPOINT_DIR).is_dir()):
            shutil.rmtree(self.work_path, ignore_errors=True)
        self.lock.release()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.abort(keep_checkpoint=self.resumable)


def write_run(
    run_dir: str | os.PathLike,
    config: RunConfig | dict,
    history: pd.DataFrame,
    metrics: RunMetrics | dict,
    predictions: pd.DataFrame | None = None,
    split: pd.DataFrame | None = None,
    model_bytes: bytes | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a whole run in the order training does (tools and test fixtures that build runs
    from tables); files given as None are left out."""
    with RunWriter(run_dir, overwrite) as writer:
        writer.write_config(config)
        if split is not None:
            writer.write_split(split)
        writer.write_history(history)
        if model_bytes is not None:
            writer.model_path.write_bytes(model_bytes)
        if predictions is not None:
            writer.write_predictions(predictions)
        writer.write_metrics(metrics)
    return writer.path


# ------------------------------------------------------------------------------------------------ reading


def read_config(run_dir: str | os.PathLike) -> dict:
    return json.loads((Path(run_dir) / CONFIG_FILE).read_text())


def read_metrics(run_dir: str | os.PathLike) -> dict:
    return json.loads((Path(run_dir) / METRICS_FILE).read_text())


def read_setup(run_dir: str | os.PathLike) -> RunConfig:
    """A run's config.json as its record; ValueError when it cannot be read."""
    try:
        return RunConfig.from_json(read_config(run_dir))
    except RecordProblem as error:
        raise ValueError(f"run {Path(run_dir).name}: {CONFIG_FILE} {error}") from error


def read_outcome(run_dir: str | os.PathLike, history: pd.DataFrame | None = None) -> RunMetrics:
    """A finished run's metrics.json as its record (older files migrated with ``history``, see
    :meth:`RunMetrics.from_json`); ValueError when it cannot be read."""
    try:
        return RunMetrics.from_json(read_metrics(run_dir), history)
    except RecordProblem as error:
        raise ValueError(f"run {Path(run_dir).name}: {METRICS_FILE} {error}") from error


def read_history(run_dir: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(Path(run_dir) / HISTORY_FILE)


def read_split(run_dir: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(Path(run_dir) / SPLIT_FILE)


def read_predictions(run_dir: str | os.PathLike) -> pd.DataFrame:
    """predictions.csv, with an older run's ``timestamp`` (ms) read as ``timestamp_s`` (seconds)."""

    table = pd.read_csv(Path(run_dir) / PREDICTIONS_FILE, dtype={"subject": str, "video_id": str})
    return with_time_in_seconds(table)


def model_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / MODEL_FILE


#: What a malformed run file raises while being read.
READ_ERRORS = (
    OSError,
    json.JSONDecodeError,
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
    UnicodeDecodeError,
)


@dataclass
class Run:
    """A finished run: its parameters (``setup``: config.json as a :class:`RunConfig`), per-epoch history,
    outcome (``outcome``: metrics.json as a :class:`RunMetrics`) and test-face predictions. Readers read
    the records' attributes (:mod:`fer_utils.training.results`); a parsed JSON dict given for either is
    turned into its record."""

    path: Path
    setup: RunConfig
    history: pd.DataFrame
    outcome: RunMetrics
    predictions: pd.DataFrame

    def __post_init__(self):
        if not isinstance(self.setup, RunConfig):
            self.setup = RunConfig.from_json(self.setup)
        if not isinstance(self.outcome, RunMetrics):
            self.outcome = RunMetrics.from_json(self.outcome, self.history)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def labels(self) -> list[str]:
        return list(self.outcome.labels)

    @property
    def model_path(self) -> Path:
        return model_path(self.path)

    @property
    def recipe(self) -> str:
        """The recipe as applied (``paper`` for runs made before recipes existed)."""
        return self.outcome.recipe_name

    @property
    def health_warnings(self) -> list[str]:
        """``stalled: …`` / ``underfit: …`` for a run that did not (fully) learn, ``selection_saturated: …``
        when its epoch choice was arbitrary; empty otherwise."""
        return self.outcome.health_warnings

    def summary(self) -> str:
        """One paragraph for a terminal: data, protocol, recipe, scores and health warnings if any."""
        outcome = self.outcome
        frame, split = outcome.frame, outcome.split
        lines = [
            f"run {self.path}",
            f"  dataset {outcome.dataset or None} · protocol {outcome.protocol} · recipe {self.recipe} · "
            f"train/val/test {split.train}/{split.validation}/{split.test} faces · "
            f"{outcome.num_params:,} parameters",
            f"  test {scores_text(frame, 'frame')} (frame level)",
        ]
        if outcome.video:
            lines.append(f"  video level: {scores_text(outcome.video, 'video')}")
        baselines = outcome.baselines
        if baselines:
            lines.append(
                f"  baseline: always {baselines.majority_label!r} scores {percent(baselines.majority_rate)} "
                f"(macro F1 {score(baselines.majority_macro_f1)})"
            )
        lines.extend(f"  WARNING: {warning}" for warning in self.health_warnings)
        return "\n".join(lines)


def load_run(run_dir: str | os.PathLike) -> Run:
    """Load a finished run; ValueError names what is missing or malformed."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"run folder {path} does not exist")
    try:
        config = read_config(path) if (path / CONFIG_FILE).exists() else {}
    except READ_ERRORS as error:
        raise ValueError(f"run {path.name} has a malformed file: {error}") from error
    evaluation = isinstance(config, dict) and config.get("kind") == EVALUATION_KIND
    required = EVALUATION_FILES if evaluation else RUN_FILES
    missing = [name for name in required if not (path / name).exists()]
    if missing:
        raise ValueError(f"run {path.name} is unfinished or incomplete: missing {', '.join(missing)}")
    try:
        metrics = read_metrics(path)
        history = read_history(path) if (path / HISTORY_FILE).exists() else pd.DataFrame()
        predictions = read_predictions(path)
    except READ_ERRORS as error:
        raise ValueError(f"run {path.name} has a malformed file: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"run {path.name} has a malformed file: {CONFIG_FILE} is not a JSON object")
    try:
        setup = RunConfig.from_json(config)
    except RecordProblem as error:
        raise ValueError(f"run {path.name}: {CONFIG_FILE} {error}") from error
    try:
        outcome = RunMetrics.from_json(metrics, history)
    except RecordProblem as error:
        raise ValueError(f"run {path.name}: {METRICS_FILE} {error}") from error
    return Run(path, setup, history, outcome, predictions)
