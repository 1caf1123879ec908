"""Regularization ablation: the paper's dropout / L1 study (its Fig. 5 vs Fig. 6) as a papermill grid.

The paper cured overfitting on SAVEE by raising the last two dropout rates from 0.3 to 0.5 and adding an
L1 penalty on the dense layer, from one run each. Here every grid cell (last-two dropout ``d`` → rates
``[0.3, d, d]``, L1 factor) × seed is one papermill execution of ``notebooks/02_training.ipynb``, saved
inside its run directory, so every number in the table can be opened and inspected.

Layout of an ablation folder::

    grid.json                       the grid and the training parameters it was run with
    runs/<cell>-seed<k>/            a run directory (see fer_utils.training.train) plus
        02_training.ipynb           the executed notebook
        error.json                  only when the run failed: papermill's error cell
    runs.csv                        one row per run (status, error, scores, gaps)
    table.csv, table.md             one row per configuration: mean ± sd over seeds, runs ok / failed
    curves.html                     train vs validation curves of the paper's two configurations
    gap_heatmap.html                the train − validation gap over the grid
    summary.json                    parameters, table, verdict, failed runs

The analysis functions (:func:`runs_table`, :func:`summarize_configurations`, :func:`make_verdict`, the figures) read
only these files, so a grid can be re-analysed without training anything.

The paper does not state its L1 factor in the text available to us; :data:`PAPER_L1` (1e-3, the grid's
largest value) stands in for it and can be changed per call (``paper_l1``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.faces.cache import atomic_write_text
from fer_utils.paths import NOTEBOOKS_DIR

#: The first dropout rate is never varied (the paper changed only the last two).
FIRST_DROPOUT = 0.3
DEFAULT_DROPOUTS = (0.3, 0.5)
DEFAULT_L1S = (0.0, 1e-4, 1e-3)
DEFAULT_SEEDS = 3
DEFAULT_EPOCHS = 15
#: Stand-in for the paper's unstated L1 factor (its Fig. 6 configuration).
PAPER_L1 = 1e-3
#: The paper's baseline (Fig. 5): dropout 0.3/0.3/0.3 without L1; its fix (Fig. 6): 0.3/0.5/0.5 with L1.
PAPER_BASELINE = (0.3, 0.0)
PAPER_DROPOUT = 0.5

TRAINING_NOTEBOOK = NOTEBOOKS_DIR / "02_training.ipynb"
EXECUTED_NOTEBOOK = "02_training.ipynb"
ERROR_FILE = "error.json"
GRID_FILE = "grid.json"
RUNS_FOLDER = "runs"

#: Per-run scores aggregated over seeds: column → (table heading, decimals).
METRICS = {
    "val_accuracy": ("validation accuracy (best)", 3),
    "test_accuracy": ("test accuracy", 3),
    "macro_f1": ("macro F1 (test)", 3),
    "final_gap": ("final train−val gap", 3),
    "max_gap": ("largest train−val gap", 3),
    "epochs_to_best": ("epochs to best", 1),
}
#: Training parameters a finished run must share with the grid to be reused by a rerun.
CHECKED_PARAMETERS = (
    "protocol",
    "epochs",
    "batch_size",
    "learning_rate",
    "seed",
    "dropout",
    "l1",
    "image_size",
    "fold",
    "early_stopping_patience",
    "train_faces_per_class",
    "cache_key",
)
_SHORT_NAMES = {
    "val_accuracy": "validation accuracy",
    "test_accuracy": "test accuracy",
    "final_gap": "final train−validation gap",
    "max_gap": "largest train−validation gap",
}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# --------------------------------------------------------------------------------------------- grid


@dataclass(frozen=True)
class GridRun:
    """One grid cell × seed: dropout rates ``[0.3, d, d]`` and an L1 factor."""

    last_two_dropout: float
    l1: float
    seed: int

    @property
    def dropout(self) -> list[float]:
        return [FIRST_DROPOUT, self.last_two_dropout, self.last_two_dropout]

    @property
    def cell(self) -> str:
        return cell_name(self.last_two_dropout, self.l1)

    @property
    def name(self) -> str:
        return f"{self.cell}-seed{self.seed}"


def cell_name(last_two_dropout: float, l1: float) -> str:
    """Folder-safe name of a configuration, e.g. ``dropout0.3-0.5-0.5_l1-0.001``."""
    d = f"{last_two_dropout:g}"
    return f"dropout{FIRST_DROPOUT:g}-{d}-{d}_l1-{l1:g}"


def config_label(last_two_dropout: float, l1: float) -> str:
    """Readable name of a configuration, e.g. ``dropout 0.3/0.5/0.5 · L1 0.001``."""
    d = f"{last_two_dropout:g}"
    return f"dropout {FIRST_DROPOUT:g}/{d}/{d} · L1 {l1:g}"


def seed_list(seeds: int | Iterable[int]) -> list[int]:
    """``seeds`` as a list: an int n means seeds 0 … n−1."""
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"seeds must be ≥ 1 (a count) or a list of seeds, got {seeds}")
        return list(range(int(seeds)))
    values = list(dict.fromkeys(int(seed) for seed in seeds))
    if not values:
        raise ValueError("seeds is empty: give a count or a list of seeds")
    return values


def grid_runs(
    dropouts: Sequence[float] = DEFAULT_DROPOUTS,
    l1s: Sequence[float] = DEFAULT_L1S,
    seeds: int | Iterable[int] = DEFAULT_SEEDS,
) -> list[GridRun]:
    """Every (last-two dropout, L1, seed), seed-major so a partial grid covers every cell early.

    Rates are not range-checked here: an invalid one becomes a failed run, reported by the notebook.
    """
    dropouts = list(dict.fromkeys(float(d) for d in dropouts))
    l1s = list(dict.fromkeys(float(value) for value in l1s))
    if not dropouts or not l1s:
        raise ValueError(f"the grid needs at least one dropout and one L1 value, got {dropouts}, {l1s}")
    return [GridRun(d, l1, seed) for seed in seed_list(seeds) for d in dropouts for l1 in l1s]


# ---------------------------------------------------------------------------------------- execution


@contextlib.contextmanager
def _thread_environment(threads: int | None):
    """Limit the TensorFlow / OpenMP threads of kernels started inside the block (they inherit the
    environment), so parallel runs do not oversubscribe the cores."""
    names = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in (*names, "TF_CPP_MIN_LOG_LEVEL")}
    if threads:
        os.environ.update({name: str(threads) for name in names})
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute_run(task: dict) -> dict:
    """Execute the training notebook for one grid run; never raises.

    Args:
        task: ``name``, ``run_dir``, ``notebook``, ``parameters`` (injected by papermill), ``threads``
            (per-kernel thread cap or None), ``cell_timeout`` (seconds per cell or None) and ``grid``
            (the run's grid coordinates, kept in ``error.json``).

    Returns:
        ``{name, status: complete | failed, seconds, error}``; a failure is also written to
        ``<run_dir>/error.json`` with papermill's error cell (name, message, cell source, traceback).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    run_dir = Path(task["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in (ERROR_FILE, "metrics.json"):  # only runs to (re)do get here
        (run_dir / stale).unlink(missing_ok=True)
    started = time.perf_counter()
    failure = None
    try:
        with _thread_environment(task.get("threads")):
            papermill.execute_notebook(
                str(task["notebook"]),
                str(run_dir / EXECUTED_NOTEBOOK),
                parameters=task["parameters"],
                kernel_name="python3",
                progress_bar=False,
                cwd=str(run_dir),
                execution_timeout=task.get("cell_timeout"),
            )
    except PapermillExecutionError as error:
        failure = {
            "ename": error.ename,
            "evalue": error.evalue,
            "cell_index": error.cell_index,
            "cell_source": error.source,
            "traceback": _ANSI.sub("", "\n".join(error.traceback or [])),
        }
    except Exception as error:  # a dead kernel, a cell timeout, a kernel that never started
        failure = {"ename": type(error).__name__, "evalue": str(error), "cell_index": None}
    else:
        if not (run_dir / "metrics.json").exists():
            failure = {
                "ename": "MissingMetrics",
                "evalue": "the notebook finished but wrote no metrics.json",
                "cell_index": None,
            }
    seconds = round(time.perf_counter() - started, 1)
    if failure is None:
        return {"name": task["name"], "status": "complete", "seconds": seconds, "error": ""}
    record = {
        "run_name": task["name"],
        "status": "failed",
        **task.get("grid", {}),
        "seconds": seconds,
        **failure,
    }
    atomic_write_text(run_dir / ERROR_FILE, json.dumps(record, indent=2, default=str))
    return {
        "name": task["name"],
        "status": "failed",
        "seconds": seconds,
        "error": error_message(record),
    }


def error_message(record: dict) -> str:
    """``"Name: message"`` of an ``error.json`` record (first line of the message)."""
    message = str(record.get("evalue") or "").strip().splitlines()
    return f"{record.get('ename', 'Error')}: {message[0] if message else ''}".strip()


def _mismatches(config: dict, expected: dict) -> list[str]:
    problems = []
    for key, wanted in expected.items():
        stored = config.get(key)
        if isinstance(wanted, (list, tuple)) and isinstance(stored, (list, tuple)):
            same = len(wanted) == len(stored) and all(
                math.isclose(float(a), float(b)) for a, b in zip(wanted, stored, strict=True)
            )
        elif isinstance(wanted, float) and isinstance(stored, (int, float)):
            same = math.isclose(wanted, float(stored))
        else:
            same = wanted == stored
        if not same:
            problems.append(f"{key} {stored!r} ≠ {wanted!r}")
    return problems


def run_grid(
    cache_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    dropouts: Sequence[float] = DEFAULT_DROPOUTS,
    l1s: Sequence[float] = DEFAULT_L1S,
    seeds: int | Iterable[int] = DEFAULT_SEEDS,
    protocol: str = "paper",
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    image_size: int | None = None,
    train_faces_per_class: int | None = None,
    early_stopping_patience: int = 0,
    fold: int = 0,
    workers: int | None = None,
    scheduler=None,
    threads_per_run: int | None = None,
    rerun: bool = False,
    retry_failed: bool = True,
    cell_timeout: int | None = None,
    paper_l1: float = PAPER_L1,
    include_stalled: bool = False,
    notebook: str | os.PathLike = TRAINING_NOTEBOOK,
    progress: bool = True,
) -> Ablation:
    """Run the grid (one papermill execution of notebook 02 per cell × seed), then analyse it.

    Args:
        cache_dir: the face cache every run trains on.
        out_dir: the ablation folder (see the module docstring for its layout).
        dropouts: last-two dropout rates ``d`` (rates ``[0.3, d, d]``).
        l1s: L1 factors on the dense layer.
        seeds: a count (seeds 0 … n−1) or a list of seeds.
        protocol, epochs, batch_size, learning_rate, train_faces_per_class, early_stopping_patience, fold:
            passed to every run (see :class:`fer_utils.training.train.TrainConfig`).
        image_size: face side the runs train at (default: the cache's own size, no resizing).
        workers: parallel runs (default: one per core, at most one per pending run); ignored with
            ``scheduler``.
        scheduler: a Dask scheduler address (``tcp://host:8786``) or ``distributed.Client``.
        threads_per_run: TensorFlow/OpenMP threads per kernel (default: cores ÷ workers; with a
            scheduler, left to the workers).
        rerun: execute finished runs again (otherwise a run with ``metrics.json`` is skipped).
        retry_failed: execute runs that failed before again (otherwise they stay failed).
        cell_timeout: seconds a notebook cell may take before the run is recorded as failed.
        paper_l1: the L1 factor of the paper's regularized configuration in the curves and verdict.
        include_stalled: count runs that never learned in the means (default: counted apart).
        notebook: the training notebook to execute.
        progress: print one line per finished run.

    Returns:
        The :class:`Ablation` (also written into ``out_dir``), with ``executions`` listing what this
        call ran or skipped.
    """
    from fer_utils.faces.cache import FaceCache
    from fer_utils.parallel import default_workers, parallel_map
    from fer_utils.training.splits import PROTOCOLS

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be ≥ 1, got {epochs}, {batch_size}")
    notebook = Path(notebook)
    if not notebook.exists():
        raise ValueError(f"training notebook {notebook} not found")
    cache = FaceCache(cache_dir)
    if not len(cache):
        raise ValueError(f"face cache {cache_dir} holds no faces")
    image_size = int(image_size or cache.image_size)
    runs = grid_runs(dropouts, l1s, seeds)
    out_dir = Path(out_dir)
    runs_dir = out_dir / RUNS_FOLDER
    runs_dir.mkdir(parents=True, exist_ok=True)
    training = {
        "protocol": protocol,
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "image_size": image_size,
        "fold": int(fold),
        "early_stopping_patience": int(early_stopping_patience),
        "train_faces_per_class": None if train_faces_per_class is None else int(train_faces_per_class),
    }
    grid = {
        "cache_dir": str(Path(cache_dir).resolve()),
        "cache_key": cache.key,
        "dropouts": sorted({run.last_two_dropout for run in runs}),
        "l1s": sorted({run.l1 for run in runs}),
        "seeds": seed_list(seeds),
        "first_dropout": FIRST_DROPOUT,
        "paper_l1": float(paper_l1),
        "training": training,
        "runs": [run.name for run in runs],
    }

    tasks, executions, stale = [], [], []
    for run in runs:
        run_dir = runs_dir / run.name
        expected = {
            **training,
            "seed": run.seed,
            "dropout": run.dropout,
            "l1": run.l1,
            "cache_key": cache.key,
        }
        if (run_dir / "metrics.json").exists() and not rerun:
            config = json.loads((run_dir / "config.json").read_text())
            problems = _mismatches(config, {key: expected[key] for key in CHECKED_PARAMETERS})
            if problems:
                stale.append(f"{run.name}: {', '.join(problems)}")
            executions.append({"name": run.name, "status": "skipped (complete)", "seconds": 0.0, "error": ""})
            continue
        if (run_dir / ERROR_FILE).exists() and not retry_failed and not rerun:
            record = json.loads((run_dir / ERROR_FILE).read_text())
            executions.append(
                {
                    "name": run.name,
                    "status": "skipped (failed)",
                    "seconds": 0.0,
                    "error": error_message(record),
                }
            )
            continue
        parameters = {
            "cache_dir": grid["cache_dir"],
            "run_dir": str(run_dir.resolve()),
            "overwrite": True,  # finished runs were skipped above; this replaces a half-written one
            "seed": run.seed,
            "dropout": run.dropout,
            "l1": run.l1,
            **training,
        }
        tasks.append(
            {
                "name": run.name,
                "run_dir": str(run_dir.resolve()),
                "notebook": str(notebook.resolve()),
                "parameters": parameters,
                "cell_timeout": cell_timeout,
                "grid": {"dropout": run.dropout, "l1": run.l1, "seed": run.seed},
            }
        )
    if stale:
        raise ValueError(
            f"{out_dir} holds finished runs made with other parameters (use another out_dir or rerun=True):\n  "
            + "\n  ".join(stale)
        )
    atomic_write_text(out_dir / GRID_FILE, json.dumps(grid, indent=2))

    if tasks:
        cores = default_workers()
        if scheduler is None:
            workers = min(workers or cores, len(tasks))
            threads = threads_per_run or max(1, cores // workers)
        else:
            threads = threads_per_run
        for task in tasks:
            task["threads"] = threads
        if progress:
            where = f"Dask scheduler {scheduler}" if scheduler is not None else f"{workers} worker(s)"
            print(
                f"ablation: {len(tasks)} run(s) to execute, {len(executions)} skipped; {where}, "
                f"{threads or 'default'} thread(s) per run",
                flush=True,
            )
        started = time.perf_counter()
        for number, outcome in enumerate(parallel_map(execute_run, tasks, workers, scheduler), start=1):
            executions.append(outcome)
            if progress:
                note = f" — {outcome['error']}" if outcome["error"] else ""
                print(
                    f"[{number}/{len(tasks)}] {outcome['name']}: {outcome['status']} in {outcome['seconds']:.0f} s"
                    f" (elapsed {time.perf_counter() - started:.0f} s){note}",
                    flush=True,
                )
    result = analyze(out_dir, paper_l1=paper_l1, include_stalled=include_stalled)
    result.executions = pd.DataFrame(executions, columns=["name", "status", "seconds", "error"])
    return result


# ----------------------------------------------------------------------------------------- analysis


def run_record(run_dir: str | os.PathLike) -> dict:
    """One row of the runs table, read from a run directory's files.

    A finished run (``metrics.json``) gives its scores: best validation accuracy, test accuracy and macro
    F1 (frame level), the train − validation accuracy gap at the last epoch and its largest value over the
    epochs, epochs to the best validation accuracy. A failed run gives its error from ``error.json``.
    """
    run_dir = Path(run_dir)
    row = {"run_name": run_dir.name, "run_dir": str(run_dir), "notebook": ""}
    if (run_dir / EXECUTED_NOTEBOOK).exists():
        row["notebook"] = str(run_dir / EXECUTED_NOTEBOOK)
    if (run_dir / "metrics.json").exists():
        try:
            config = json.loads((run_dir / "config.json").read_text())
            metrics = json.loads((run_dir / "metrics.json").read_text())
            history = pd.read_csv(run_dir / "history.csv")
        except (OSError, json.JSONDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            return {**row, "status": "unreadable", "error": f"{type(error).__name__}: {error}"}
        gap = history["accuracy"] - history["val_accuracy"]
        best = int(history["val_accuracy"].to_numpy().argmax())
        return {
            **row,
            "status": "complete",
            "error": "",
            "last_two_dropout": float(config["dropout"][1]),
            "l1": float(config["l1"]),
            "seed": int(config["seed"]),
            "dropout": "/".join(f"{float(rate):g}" for rate in config["dropout"]),
            "val_accuracy": float(history["val_accuracy"].iloc[best]),
            "test_accuracy": float(metrics["frame"]["accuracy"]),
            "macro_f1": float(metrics["frame"]["macro_f1"]),
            "final_gap": float(gap.iloc[-1]),
            "max_gap": float(gap.max()),
            "epochs_to_best": int(history["epoch"].iloc[best]),
            "epochs_run": len(history),
            "stalled": bool(metrics.get("stalled", False)),
        }
    if (run_dir / ERROR_FILE).exists():
        record = json.loads((run_dir / ERROR_FILE).read_text())
        return {
            **row,
            "status": "failed",
            "error": error_message(record),
            "last_two_dropout": float(record["dropout"][1]),
            "l1": float(record["l1"]),
            "seed": int(record["seed"]),
            "dropout": "/".join(f"{float(rate):g}" for rate in record["dropout"]),
        }
    return {**row, "status": "unfinished", "error": "no metrics.json and no error.json (interrupted?)"}


RUN_COLUMNS = [
    "run_name",
    "status",
    "error",
    "dropout",
    "last_two_dropout",
    "l1",
    "seed",
    *METRICS,
    "epochs_run",
    "stalled",
    "notebook",
    "run_dir",
]


def runs_table(out_dir: str | os.PathLike) -> pd.DataFrame:
    """The runs table of an ablation folder: one row per run of ``grid.json`` (or, without it, per
    folder under ``runs/``); runs that never started are listed as ``missing``."""
    out_dir = Path(out_dir)
    runs_dir = out_dir / RUNS_FOLDER
    planned: dict[str, GridRun] = {}
    if (out_dir / GRID_FILE).exists():
        grid = json.loads((out_dir / GRID_FILE).read_text())
        planned = {run.name: run for run in grid_runs(grid["dropouts"], grid["l1s"], grid["seeds"])}
    folders = sorted(p.name for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
    names = list(planned) or folders
    rows = []
    for name in names:
        if (runs_dir / name).is_dir():
            row = run_record(runs_dir / name)
        else:
            row = {"run_name": name, "status": "missing", "error": "not run yet"}
        if name in planned and "l1" not in row:
            run = planned[name]
            row.update(
                last_two_dropout=run.last_two_dropout,
                l1=run.l1,
                seed=run.seed,
                dropout="/".join(f"{rate:g}" for rate in run.dropout),
            )
        rows.append(row)
    table = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return table.sort_values(["last_two_dropout", "l1", "seed"], kind="stable").reset_index(drop=True)


def aggregated_runs(runs: pd.DataFrame, include_stalled: bool = False) -> pd.Series:
    """Which runs enter the means: finished ones, without stalled runs (a run that never learned measures
    the optimiser, not the regularization, and its "gap" of ~0 would pass for a cure) unless asked."""
    finished = runs["status"] == "complete"
    if include_stalled:
        return finished
    return finished & ~runs["stalled"].eq(True)


def summarize_configurations(runs: pd.DataFrame, include_stalled: bool = False) -> pd.DataFrame:
    """Per configuration (last-two dropout × L1): runs ok / stalled / failed, and mean and sd (ddof 1; NaN
    from a single run) over the aggregated runs (:func:`aggregated_runs`) of every :data:`METRICS` column.

    Returns:
        One row per configuration, ordered by dropout then L1, with ``configuration, dropout,
        last_two_dropout, l1, n_ok, n_stalled, n_failed, n_other, <metric>_mean, <metric>_sd, errors``
        (``n_ok`` counts the aggregated runs).
    """
    rows = []
    runs = runs.dropna(subset=["last_two_dropout", "l1"])
    runs = runs.assign(aggregated=aggregated_runs(runs, include_stalled))
    for (dropout, l1), group in runs.groupby(["last_two_dropout", "l1"], sort=True):
        ok = group[group["aggregated"]]
        finished = group["status"] == "complete"
        row = {
            "configuration": config_label(dropout, l1),
            "dropout": f"{FIRST_DROPOUT:g}/{dropout:g}/{dropout:g}",
            "last_two_dropout": float(dropout),
            "l1": float(l1),
            "n_ok": len(ok),
            "n_stalled": int((finished & group["stalled"].eq(True)).sum()),
            "n_failed": int((group["status"] == "failed").sum()),
            "n_other": int((~group["status"].isin(["complete", "failed"])).sum()),
        }
        for metric in METRICS:
            values = ok[metric].astype(float)
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        errors = group.loc[group["status"] != "complete", "error"].dropna().astype(str)
        row["errors"] = "; ".join(dict.fromkeys(error for error in errors if error))
        rows.append(row)
    return pd.DataFrame(rows)


def mean_sd(mean: float, sd: float, decimals: int = 3) -> str:
    """``"0.452 ± 0.012"``; ``"0.452"`` for a single run; ``"—"`` when there is no value."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if sd is None or (isinstance(sd, float) and math.isnan(sd)):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def format_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as the readable table: ``mean ± sd`` strings, runs ok / failed and errors."""
    table = pd.DataFrame(
        {
            "dropout": summary["dropout"],
            "L1": [f"{value:g}" for value in summary["l1"]],
        }
    )
    for metric, (heading, decimals) in METRICS.items():
        table[heading] = [
            mean_sd(m, s, decimals)
            for m, s in zip(summary[f"{metric}_mean"], summary[f"{metric}_sd"], strict=True)
        ]
    table["runs ok"] = summary["n_ok"].astype(int)
    table["stalled"] = summary["n_stalled"].astype(int)
    table["failed"] = summary["n_failed"].astype(int)
    table["error"] = summary["errors"]
    return table


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown pipe table of a DataFrame (its index is not written)."""

    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(column) for column in table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def _find(summary: pd.DataFrame, last_two_dropout: float, l1: float) -> pd.Series | None:
    hit = summary[np.isclose(summary["last_two_dropout"], last_two_dropout) & np.isclose(summary["l1"], l1)]
    return None if hit.empty else hit.iloc[0]


def make_verdict(
    summary: pd.DataFrame,
    paper_l1: float = PAPER_L1,
    accuracy: str = "val_accuracy",
    gap: str = "final_gap",
) -> dict:
    """Name the configuration with the smallest mean gap among those whose mean accuracy is within one sd
    (of the best configuration) of the best mean accuracy.

    Args:
        summary: :func:`summarize_configurations` output.
        paper_l1: L1 factor of the paper's regularized configuration (compared with its baseline).
        accuracy: the accuracy that ranks configurations (validation: the test part never selects).
        gap: the overfitting measure minimised among the near-best (``final_gap`` or ``max_gap``).

    Returns:
        ``{text (Markdown), best, chosen, threshold, candidates, paper}``; ``chosen`` is None when no
        configuration has a finished run.
    """
    accuracy_name = _SHORT_NAMES.get(accuracy, accuracy)
    gap_name = _SHORT_NAMES.get(gap, gap)
    usable = summary[summary["n_ok"] > 0]
    failed = summary[summary["n_failed"] > 0]
    failed_note = ""
    if len(failed):
        failed_note = (
            " Configurations with failed runs: "
            + ", ".join(f"{row.configuration} ({row.n_failed} failed)" for row in failed.itertuples())
            + "."
        )
    stalled = summary[summary.get("n_stalled", pd.Series(0, index=summary.index)) > 0]
    if len(stalled):
        failed_note += (
            f" {int(stalled['n_stalled'].sum())} run(s) stalled (never left the majority-class rate) and are "
            "left out of the means: "
            + ", ".join(f"{row.configuration} ({row.n_stalled})" for row in stalled.itertuples())
            + "."
        )
    if usable.empty:
        return {
            "text": "No configuration finished a run, so there is nothing to compare." + failed_note,
            "best": None,
            "chosen": None,
            "threshold": None,
            "candidates": [],
            "paper": None,
        }
    best = usable.loc[usable[f"{accuracy}_mean"].idxmax()]
    best_sd = best[f"{accuracy}_sd"]
    best_sd = 0.0 if math.isnan(best_sd) else float(best_sd)
    threshold = float(best[f"{accuracy}_mean"]) - best_sd
    candidates = usable[usable[f"{accuracy}_mean"] >= threshold - 1e-12]
    chosen = candidates.sort_values([f"{gap}_mean", f"{accuracy}_mean"], ascending=[True, False]).iloc[0]

    def describe(row) -> str:
        return (
            f"{accuracy_name} {mean_sd(row[f'{accuracy}_mean'], row[f'{accuracy}_sd'])}, "
            f"{gap_name} {mean_sd(row[f'{gap}_mean'], row[f'{gap}_sd'])} over {int(row['n_ok'])} run(s)"
        )

    text = [
        f"Best {accuracy_name}: **{best['configuration']}** ({describe(best)}). "
        f"{len(candidates)} of {len(usable)} configurations lie within one sd of it (≥ {threshold:.3f}); "
        f"among them **{chosen['configuration']}** has the smallest {gap_name} ({describe(chosen)})."
    ]
    baseline = _find(usable, *PAPER_BASELINE)
    regularized = _find(usable, PAPER_DROPOUT, paper_l1)
    paper = None
    if baseline is not None and regularized is not None:
        gap_change = regularized[f"{gap}_mean"] - baseline[f"{gap}_mean"]
        accuracy_change = regularized[f"{accuracy}_mean"] - baseline[f"{accuracy}_mean"]
        paper = {
            "baseline": baseline["configuration"],
            "regularized": regularized["configuration"],
            "gap_change": float(gap_change),
            "accuracy_change": float(accuracy_change),
        }
        text.append(
            f"The paper's fix ({regularized['configuration']} vs its baseline {baseline['configuration']}) "
            f"{'narrows' if gap_change < 0 else 'does not narrow'} the {gap_name} "
            f"({baseline[f'{gap}_mean']:.3f} → {regularized[f'{gap}_mean']:.3f}) and changes the "
            f"{accuracy_name} by {accuracy_change:+.3f}."
        )
    text.append(
        "Seeds are few, so differences smaller than the sd are not evidence either way."
        if int(usable["n_ok"].min()) > 1
        else "Some configurations have a single finished run: no sd, so read the differences as anecdotes."
    )
    return {
        "text": " ".join(text) + failed_note,
        "best": best["configuration"],
        "chosen": chosen["configuration"],
        "threshold": threshold,
        "candidates": candidates["configuration"].tolist(),
        "paper": paper,
    }


def load_histories(runs: pd.DataFrame, include_stalled: bool = False) -> pd.DataFrame:
    """The ``history.csv`` of every aggregated run (:func:`aggregated_runs`), stacked with ``run_name,
    last_two_dropout, l1, seed``."""
    frames = []
    for row in runs[aggregated_runs(runs, include_stalled)].itertuples():
        history = pd.read_csv(Path(row.run_dir) / "history.csv")
        history.insert(0, "run_name", row.run_name)
        history["last_two_dropout"] = row.last_two_dropout
        history["l1"] = row.l1
        history["seed"] = row.seed
        frames.append(history)
    if not frames:
        return pd.DataFrame(columns=["run_name", "epoch", "last_two_dropout", "l1", "seed"])
    return pd.concat(frames, ignore_index=True)


def seed_band(histories: pd.DataFrame, last_two_dropout: float, l1: float, column: str) -> pd.DataFrame:
    """Per epoch: ``mean``, ``sd`` (ddof 1, 0 from a single run) and ``n`` of ``column`` over the seeds
    of one configuration (runs stopped early simply drop out of later epochs)."""
    rows = histories[
        np.isclose(histories["last_two_dropout"].astype(float), last_two_dropout)
        & np.isclose(histories["l1"].astype(float), l1)
    ]
    band = rows.groupby("epoch")[column].agg(mean="mean", sd="std", n="count").reset_index()
    band["sd"] = band["sd"].fillna(0.0)
    return band


def configuration_curves_figure(
    histories: pd.DataFrame,
    configurations: Sequence[tuple[float, float]] | None = None,
    paper_l1: float = PAPER_L1,
):
    """Train vs validation accuracy (top) and loss (bottom) per configuration (columns, the paper's
    Fig. 5 / Fig. 6 view by default), mean over seeds with a ± sd band."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    configurations = list(configurations or [PAPER_BASELINE, (PAPER_DROPOUT, paper_l1)])
    figure = make_subplots(
        rows=2,
        cols=len(configurations),
        shared_yaxes="rows",
        vertical_spacing=0.12,
        horizontal_spacing=0.05,
        subplot_titles=[config_label(*c) for c in configurations] + [""] * len(configurations),
    )
    series = (("", "train", "31, 119, 180"), ("val_", "validation", "255, 127, 14"))
    for col, (dropout, l1) in enumerate(configurations, start=1):
        for row, metric in enumerate(("accuracy", "loss"), start=1):
            for prefix, name, rgb in series:
                band = seed_band(histories, dropout, l1, f"{prefix}{metric}") if len(histories) else None
                if band is None or band.empty:
                    continue
                epochs = band["epoch"].tolist()
                upper = (band["mean"] + band["sd"]).tolist()
                lower = (band["mean"] - band["sd"]).tolist()
                figure.add_trace(
                    go.Scatter(
                        x=epochs + epochs[::-1],
                        y=upper + lower[::-1],
                        fill="toself",
                        fillcolor=f"rgba({rgb}, 0.2)",
                        line={"width": 0},
                        hoverinfo="skip",
                        showlegend=False,
                        legendgroup=name,
                        name=f"{name} ± sd",
                    ),
                    row=row,
                    col=col,
                )
                figure.add_trace(
                    go.Scatter(
                        x=epochs,
                        y=band["mean"],
                        customdata=np.stack([band["sd"], band["n"]], axis=1),
                        hovertemplate=f"{name} {metric}<br>epoch %{{x}}: %{{y:.3f}} ± %{{customdata[0]:.3f}}"
                        " (%{customdata[1]} seeds)<extra></extra>",
                        name=f"{name} (mean of seeds)",
                        legendgroup=name,
                        showlegend=row == 1 and col == 1,
                        line={"color": f"rgb({rgb})"},
                        mode="lines+markers",
                    ),
                    row=row,
                    col=col,
                )
            figure.update_xaxes(title_text="epoch", row=row, col=col)
        if histories.empty or seed_band(histories, dropout, l1, "accuracy").empty:
            figure.add_annotation(
                text="no finished run",
                showarrow=False,
                xref=f"x{'' if col == 1 else col} domain",
                yref=f"y{'' if col == 1 else col} domain",
                x=0.5,
                y=0.5,
            )
    figure.update_yaxes(title_text="accuracy", row=1, col=1)
    figure.update_yaxes(title_text="loss", row=2, col=1)
    figure.update_layout(
        title="Train vs validation over epochs (mean ± sd over seeds): the paper's Fig. 5 / Fig. 6 view",
        height=700,
        legend={"orientation": "h", "y": -0.1},
    )
    return figure


def gap_heatmap_figure(summary: pd.DataFrame):
    """Heatmaps of the final and the largest train − validation accuracy gap (mean over seeds) over the
    grid; cells without a finished run read ``failed`` or ``—``."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    dropouts = sorted(summary["last_two_dropout"].unique()) if len(summary) else []
    l1s = sorted(summary["l1"].unique()) if len(summary) else []
    figure = make_subplots(rows=1, cols=2, subplot_titles=[METRICS[m][0] for m in ("final_gap", "max_gap")])
    for col, metric in enumerate(("final_gap", "max_gap"), start=1):
        z, text = [], []
        for dropout in dropouts:
            z_row, text_row = [], []
            for l1 in l1s:
                row = _find(summary, dropout, l1)
                if row is None or row["n_ok"] == 0:
                    z_row.append(None)
                    text_row.append("failed" if row is not None and row["n_failed"] else "—")
                else:
                    z_row.append(row[f"{metric}_mean"])
                    text_row.append(mean_sd(row[f"{metric}_mean"], row[f"{metric}_sd"]))
            z.append(z_row)
            text.append(text_row)
        figure.add_trace(
            go.Heatmap(
                z=z,
                x=[f"L1 {value:g}" for value in l1s],
                y=[f"{FIRST_DROPOUT:g}/{d:g}/{d:g}" for d in dropouts],
                text=text,
                texttemplate="%{text}",
                coloraxis="coloraxis",
                hovertemplate="dropout %{y} · %{x}<br>gap %{text}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        figure.update_xaxes(title_text="L1 factor (dense layer)", type="category", row=1, col=col)
        figure.update_yaxes(title_text="dropout rates" if col == 1 else None, type="category", row=1, col=col)
    figure.update_layout(
        title="Overfitting over the grid: train − validation accuracy gap (mean ± sd over seeds)",
        coloraxis={"colorscale": "Reds", "colorbar": {"title": "gap"}},
        height=420,
    )
    return figure


# ---------------------------------------------------------------------------------------- reporting


@dataclass
class Ablation:
    """An analysed ablation folder: the runs, the per-configuration table, the verdict and the figures."""

    out_dir: Path
    runs: pd.DataFrame
    summary: pd.DataFrame
    table: pd.DataFrame
    verdict: dict
    figures: dict
    paths: dict = field(default_factory=dict)
    executions: pd.DataFrame | None = None

    @property
    def failed(self) -> pd.DataFrame:
        """Runs that failed (or never finished), with their error and executed notebook."""
        return self.runs.loc[
            self.runs["status"] != "complete",
            ["run_name", "status", "error", "dropout", "l1", "seed", "notebook"],
        ].reset_index(drop=True)

    def markdown(self) -> str:
        """The table, the verdict and the failed runs as Markdown (``table.md``)."""
        parts = [
            "# Regularization ablation",
            "",
            markdown_table(self.table),
            "",
            "**Verdict.** " + self.verdict["text"],
        ]
        if len(self.failed):
            parts += ["", "## Failed runs", "", markdown_table(self.failed.drop(columns=["notebook"]))]
        return "\n".join(parts) + "\n"


def analyze(
    out_dir: str | os.PathLike,
    paper_l1: float | None = None,
    include_stalled: bool = False,
    write: bool = True,
) -> Ablation:
    """Read an ablation folder's runs and build (and, with ``write``, save) the table, figures and verdict.

    Args:
        out_dir: the ablation folder made by :func:`run_grid`.
        paper_l1: L1 factor of the paper's regularized configuration (default: the one in ``grid.json``,
            else :data:`PAPER_L1`).
        include_stalled: count runs that never learned in the means and curves (default: counted apart).
        write: write ``runs.csv, table.csv, table.md, curves.html, gap_heatmap.html, summary.json``.

    Returns:
        The :class:`Ablation`.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ValueError(f"ablation folder {out_dir} does not exist")
    grid = json.loads((out_dir / GRID_FILE).read_text()) if (out_dir / GRID_FILE).exists() else {}
    if paper_l1 is None:
        paper_l1 = float(grid.get("paper_l1", PAPER_L1))
    runs = runs_table(out_dir)
    if runs.empty:
        raise ValueError(f"{out_dir} holds no runs (expected {RUNS_FOLDER}/<run>/ folders or {GRID_FILE})")
    summary = summarize_configurations(runs, include_stalled)
    verdict = make_verdict(summary, paper_l1=paper_l1)
    figures = {
        "curves": configuration_curves_figure(load_histories(runs, include_stalled), paper_l1=paper_l1),
        "gap_heatmap": gap_heatmap_figure(summary),
    }
    result = Ablation(out_dir, runs, summary, format_table(summary), verdict, figures)
    if write:
        result.paths = write_ablation_files(result, grid)
    return result


def write_ablation_files(result: Ablation, grid: dict | None = None) -> dict:
    """Write the ablation's files into its folder; returns ``{name: path}``."""
    out_dir = result.out_dir
    paths = {
        "runs": out_dir / "runs.csv",
        "table_csv": out_dir / "table.csv",
        "table_md": out_dir / "table.md",
        "curves": out_dir / "curves.html",
        "gap_heatmap": out_dir / "gap_heatmap.html",
        "summary": out_dir / "summary.json",
    }
    result.runs.to_csv(paths["runs"], index=False)
    result.summary.to_csv(paths["table_csv"], index=False)
    atomic_write_text(paths["table_md"], result.markdown())
    for name in ("curves", "gap_heatmap"):
        result.figures[name].write_html(paths[name], include_plotlyjs=True, full_html=True)
    summary = {
        "grid": grid or {},
        "table": json.loads(result.summary.to_json(orient="records")),
        "verdict": result.verdict,
        "runs": {status: int(count) for status, count in result.runs["status"].value_counts().items()},
        "failed": json.loads(result.failed.to_json(orient="records")),
        "files": {name: path.name for name, path in paths.items()},
    }
    atomic_write_text(paths["summary"], json.dumps(summary, indent=2))
    return paths


# --------------------------------------------------------------------------------------------- CLI


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "ablate",
        help="the paper's dropout / L1 study: a grid of papermill-executed training runs, with table and figures",
    )
    parser.add_argument("--cache", required=True, help="face cache folder every run trains on")
    parser.add_argument("--out", required=True, help="ablation folder (runs/, table, figures, summary.json)")
    parser.add_argument("--protocol", default="paper", help="paper | video | subject | fixed")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--image-size", type=int, help="train at this face size (default: the cache's)")
    parser.add_argument(
        "--train-faces-per-class", type=int, help="class-balanced cap on each run's training part"
    )
    parser.add_argument("--patience", type=int, default=0, help="early stopping patience (0: off)")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument(
        "--dropouts", type=float, nargs="+", default=list(DEFAULT_DROPOUTS), help="last-two dropout rates d"
    )
    parser.add_argument("--l1s", type=float, nargs="+", default=list(DEFAULT_L1S), help="L1 factors")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="seeds per configuration (0 … n−1)")
    parser.add_argument(
        "--paper-l1", type=float, default=PAPER_L1, help="L1 of the paper's Fig. 6 configuration"
    )
    parser.add_argument("--workers", type=int, help="parallel runs (default: one per core)")
    parser.add_argument(
        "--threads-per-run", type=int, help="TensorFlow threads per run (default: cores ÷ workers)"
    )
    parser.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    parser.add_argument(
        "--cell-timeout", type=int, help="seconds a notebook cell may run before the run fails"
    )
    parser.add_argument("--rerun", action="store_true", help="execute finished runs again")
    parser.add_argument("--no-retry-failed", action="store_true", help="leave failed runs failed")
    parser.add_argument(
        "--include-stalled", action="store_true", help="count runs that never learned in the means"
    )
    parser.set_defaults(func=_cli_ablate)


def _cli_ablate(args) -> int:
    started = time.perf_counter()
    result = run_grid(
        args.cache,
        args.out,
        dropouts=args.dropouts,
        l1s=args.l1s,
        seeds=args.seeds,
        protocol=args.protocol,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        image_size=args.image_size,
        train_faces_per_class=args.train_faces_per_class,
        early_stopping_patience=args.patience,
        fold=args.fold,
        workers=args.workers,
        scheduler=args.scheduler,
        threads_per_run=args.threads_per_run,
        rerun=args.rerun,
        retry_failed=not args.no_retry_failed,
        cell_timeout=args.cell_timeout,
        paper_l1=args.paper_l1,
        include_stalled=args.include_stalled,
    )
    print(markdown_table(result.table))
    print(f"\nVerdict: {result.verdict['text']}")
    if len(result.failed):
        print(f"\n{len(result.failed)} run(s) did not finish:")
        for row in result.failed.itertuples():
            print(f"  {row.run_name}: {row.error}")
    print(f"\nwrote {', '.join(str(path) for path in result.paths.values())}")
    print(f"wall time {time.perf_counter() - started:.0f} s")
    return 0 if (result.runs["status"] == "complete").any() else 1
