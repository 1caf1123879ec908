"""Which run folders readers show: :func:`list_runs` (every finished run below a folder, and per folder it
cannot show, why), :func:`validate_run` (what readers index with: confusion matrices, predictions.csv and
history.csv columns, face ids inside a present cache), :func:`metrics_problem`, :func:`linked_folders`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.faces.cache import FaceCache
from fer_utils.training.results import RecordProblem, RunMetrics
from fer_utils.training.rundir import (
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    SPLIT_FILE,
    Run,
    is_finished,
    load_run,
)


def metrics_problem(metrics) -> str | None:
    """Why ``metrics`` (a parsed metrics.json) cannot be shown (e.g. ``"lacks 'frame'"``), or None."""
    try:
        RunMetrics.from_json(metrics)
    except RecordProblem as error:
        return str(error)
    return None


#: Columns every reader of predictions.csv uses (besides one ``prob_<label>`` per class).
REQUIRED_PREDICTION_COLUMNS = ("face_id", "video_id", "frame_index", "true_label", "predicted_label")


def validate_run(run: Run, caches: dict | None = None) -> list[str]:
    """Why a loaded run cannot be drawn as it stands, one sentence each (empty: it can).

    Checks what readers index with: each confusion matrix is labels × labels of counts, predictions.csv
    has its columns and labels, history.csv has epochs, and, when the run's face cache is there, that it
    is a face cache whose shards are faces and that every face id lies inside it (a negative id would
    otherwise show another face). ``caches`` memoises opened caches by folder across runs.
    """
    problems = _score_problems(run) + _table_problems(run)
    if not problems:
        problems += _cache_problems(run, {} if caches is None else caches)
    return problems


def _score_problems(run: Run) -> list[str]:
    labels = run.labels
    problems = []
    for level in ("frame", "video"):
        scores = run.outcome.scores(level)
        if not scores:
            continue
        try:
            matrix = np.asarray(scores.confusion_matrix, dtype=float)
        except (TypeError, ValueError):
            problems.append(f"the {level}-level confusion matrix is not a table of numbers")
            continue
        if matrix.shape != (len(labels), len(labels)):
            shape = " × ".join(map(str, matrix.shape)) or "a single number"
            problems.append(
                f"the {level}-level confusion matrix is {shape}, not {len(labels)} × {len(labels)} "
                f"for its labels ({', '.join(map(str, labels))})"
            )
        elif np.isnan(matrix).any() or (matrix < 0).any():
            problems.append(f"the {level}-level confusion matrix has negative or missing counts")
    return problems


def _table_problems(run: Run) -> list[str]:
    problems = []
    predictions = run.predictions
    wanted = [*REQUIRED_PREDICTION_COLUMNS, *(f"prob_{label}" for label in run.labels)]
    missing = [column for column in wanted if column not in predictions.columns]
    if missing:
        problems.append(f"{PREDICTIONS_FILE} lacks {', '.join(missing)}")
    elif len(predictions) and not pd.api.types.is_integer_dtype(predictions["face_id"]):
        problems.append(f"{PREDICTIONS_FILE}'s face_id column is not whole numbers")
    else:
        unknown = sorted(
            set(map(str, pd.concat([predictions["true_label"], predictions["predicted_label"]]).unique()))
            - set(map(str, run.labels))
        )
        if unknown:
            problems.append(
                f"{PREDICTIONS_FILE} names classes outside the run's labels: {', '.join(unknown[:5])}"
            )
    history = run.history
    if len(history.columns) and "epoch" not in history.columns:
        problems.append(
            f"{HISTORY_FILE} is not a training history (no 'epoch' column; columns: "
            f"{', '.join(map(str, history.columns[:6]))})"
        )
    elif "epoch" in history.columns and not pd.api.types.is_numeric_dtype(history["epoch"]):
        problems.append(f"{HISTORY_FILE}'s epoch column is not numbers")
    return problems


def _cache_problems(run: Run, caches: dict) -> list[str]:
    """A present face cache that is damaged, or face ids outside it. A cache that is gone or was rebuilt
    with another config is no problem of the run (readers then show it without faces)."""
    cache_dir = run.setup.cache_dir
    if not cache_dir or not Path(str(cache_dir)).is_dir():
        return []
    key = str(cache_dir)
    if key not in caches:
        try:
            cache = FaceCache(key)
            caches[key] = (cache, cache.shard_problems())
        except (ValueError, OSError, KeyError, TypeError) as error:
            caches[key] = (None, [f"its face cache {key} cannot be read ({error})"])
    cache, problems = caches[key]
    if problems or cache is None:
        return problems
    if run.setup.cache_key and cache.key != run.setup.cache_key:
        return []
    problem = cache.id_problem(run.predictions["face_id"].to_numpy())
    return [f"{PREDICTIONS_FILE} has {problem}"] if problem else []


def linked_folders(root: Path) -> dict[str, str]:
    """Symbolic links to folders below ``root`` (outside hidden folders), each with why it is not read:
    a link inside the runs folder names a run listed under its own name; one leading outside is not
    followed (a runs folder shows what it holds)."""
    found = {}
    real_root = root.resolve()
    for folder, subfolders, _ in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in subfolders:
            link = Path(folder) / name
            if not link.is_symlink():
                continue
            target = link.resolve()
            relative = str(link.relative_to(root))
            if target.is_relative_to(real_root):
                found[relative] = (
                    f"a symbolic link to {target.relative_to(real_root)} inside the runs folder, "
                    "which is listed under its own name"
                )
            else:
                found[relative] = (
                    f"a symbolic link to {target}, outside the runs folder: not followed (copy the run "
                    "in, or give that folder to the reader)"
                )
    return found


def list_runs(runs_dir: str | os.PathLike) -> tuple[list[Run], dict[str, str]]:
    """All finished runs below ``runs_dir`` (any depth) and, per unreadable run folder, why.

    A run folder is any folder holding ``metrics.json``, or ``config.json`` beside ``split.csv``
    (a run that started but did not finish); face caches and other folders are ignored. A run that
    loads but fails :func:`validate_run` is listed with its reasons, never returned, and so is a
    symbolic link to a folder (:func:`linked_folders`).
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise ValueError(f"runs folder {root} does not exist")
    found = {p.parent for pattern in (CONFIG_FILE, METRICS_FILE) for p in root.rglob(pattern)}
    # hidden folders hold runs being written (RunWriter) or leftovers; they are nobody's results
    candidates = sorted(f for f in found if not any(p.startswith(".") for p in f.relative_to(root).parts))
    runs, problems, caches = [], linked_folders(root), {}
    for folder in candidates:
        if not is_finished(folder) and not (folder / SPLIT_FILE).exists():
            continue
        try:
            run = load_run(folder)
        except ValueError as error:
            problems[str(folder.relative_to(root))] = str(error)
            continue
        invalid = validate_run(run, caches)
        if invalid:
            problems[str(folder.relative_to(root))] = f"run {run.name}: " + "; ".join(invalid)
        else:
            runs.append(run)
    return runs, problems
