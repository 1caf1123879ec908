"""Executing the grid: one papermill run of notebook 02 per cell × seed, in parallel, resumable."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import time
from pathlib import Path

import pandas as pd

from fer_utils.experiments.ablation.grid import (
    ERROR_FILE,
    EXECUTED_NOTEBOOK,
    FIRST_DROPOUT,
    GRID_FILE,
    NOTEBOOK_FIELDS,
    REUSED_FILE,
    RUNS_FOLDER,
    TRAINING_DEFAULTS,
    TRAINING_NOTEBOOK,
    GridConfig,
    GridRun,
    error_message,
    grid_runs,
    read_error,
    seed_list,
    shared_training,
)
from fer_utils.experiments.ablation.outputs import Ablation, analyze
from fer_utils.faces.cache import FaceCache, face_size_of
from fer_utils.files import atomic_write_json, replace_directory
from fer_utils.locks import FolderBusy, WriterLock, output_lock, run_lock_path
from fer_utils.notebook_execution import execute_notebook
from fer_utils.parallel import default_workers, parallel_map
from fer_utils.progress import bars_disabled, progress_bar, report_step, watched_steps
from fer_utils.settings import field_names, warn_renamed
from fer_utils.training import rundir
from fer_utils.training.config import TrainConfig, effective_settings, setting_mismatches

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def execute_run(task: dict) -> dict:
    """Execute the training notebook for one grid run; never raises.

    Args:
        task: ``name``, ``run_dir``, ``notebook``, ``parameters`` (injected by papermill), ``threads``
            (the run's TensorFlow threads, also the kernel's OpenMP cap), ``cell_timeout`` (seconds per cell or None) and ``grid``
            (the run's grid coordinates, kept in ``error.json``).

    Returns:
        ``{name, status: complete | failed, seconds, error}``; a failure is also written to
        ``<run_dir>/error.json`` with papermill's error cell (name, message, cell source, traceback).
    """
    run_dir = Path(task["run_dir"])
    try:
        clean_cell(run_dir)
    except FolderBusy as error:  # someone else writes this cell: leave its files alone
        return {"name": task["name"], "status": "failed", "seconds": 0.0, "error": str(error)}
    started = time.perf_counter()
    failure = _notebook_failure(task, run_dir)
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
    atomic_write_json(run_dir / ERROR_FILE, record, default=str)
    return {
        "name": task["name"],
        "status": "failed",
        "seconds": seconds,
        "error": error_message(record),
    }


def clean_cell(run_dir: Path) -> None:
    """Remove a cell's previous outcome (``error.json``, ``metrics.json``) under the cell's run lock, which
    is released before the notebook's kernel takes it to write the run. FolderBusy when another writer
    holds the cell."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with WriterLock(run_dir, run_lock_path(run_dir), "fer train"):
        for stale in (ERROR_FILE, rundir.METRICS_FILE):  # only runs to (re)do get here
            (run_dir / stale).unlink(missing_ok=True)


def _notebook_failure(task: dict, run_dir: Path) -> dict | None:
    """Run the task's notebook in ``run_dir``; what went wrong (``ename``, ``evalue``, ``cell_index``, and
    papermill's cell source and traceback when a cell raised), or None when it wrote its metrics."""
    from papermill.exceptions import PapermillExecutionError

    try:
        execute_notebook(
            task["notebook"],
            run_dir / EXECUTED_NOTEBOOK,
            task["parameters"],
            cwd=run_dir,
            threads=task.get("threads"),
            timeout=task.get("cell_timeout"),
            accepted=NOTEBOOK_FIELDS,
        )
    except PapermillExecutionError as error:
        return {
            "ename": error.ename,
            "evalue": error.evalue,
            "cell_index": error.cell_index,
            "cell_source": error.source,
            "traceback": _ANSI.sub("", "\n".join(error.traceback or [])),
        }
    except Exception as error:  # a dead kernel, a cell timeout, a kernel that never started
        return {"ename": type(error).__name__, "evalue": str(error), "cell_index": None}
    if not rundir.is_finished(run_dir):
        return {
            "ename": "MissingMetrics",
            "evalue": "the notebook finished but wrote no metrics.json",
            "cell_index": None,
        }
    return None


def run_grid(
    cache_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    grid: GridConfig | None = None,
    training: TrainConfig | None = None,
    notebook: str | os.PathLike = TRAINING_NOTEBOOK,
    progress: bool = True,
    **options,
) -> Ablation:
    """Run the grid (one papermill execution of notebook 02 per cell × seed), then analyse it.

    Args:
        cache_dir: the face cache every run trains on.
        out_dir: the ablation folder (see :mod:`fer_utils.experiments.ablation`).
        grid: the grid and how it runs (:class:`GridConfig`: dropouts, L1s, n_seeds, workers, rerun …).
        training: the parameters every run shares (:class:`~fer_utils.training.config.TrainConfig`; the
            grid sets ``seed, dropout, l1`` per run). Default: TrainConfig with :data:`TRAINING_DEFAULTS`.
            ``input_size`` None trains at the cache's own size.
        notebook: the training notebook to execute.
        progress: print one line per finished run.
        options: single fields of either config by name (``n_seeds=2, epochs=3``), applied over them.

    Returns:
        The :class:`Ablation` (also written into ``out_dir``), with ``executions`` listing what this
        call ran or skipped.
    """
    grid, training = grid_settings(grid, training, options)
    notebook = Path(notebook)
    if not notebook.exists():
        raise ValueError(f"training notebook {notebook} not found")
    cache = FaceCache(cache_dir)
    if not len(cache):
        raise ValueError(f"face cache {cache_dir} holds no faces")
    runs = grid_runs(grid.dropouts, grid.l1s, grid.n_seeds)
    out_dir = Path(out_dir)
    with output_lock(out_dir, "fer ablate"):  # one ablation per folder; cells are locked one by one
        (out_dir / RUNS_FOLDER).mkdir(parents=True, exist_ok=True)
        record = grid_record(Path(cache_dir), cache.key, runs, grid, training) | {
            "face_size": cache.face_size
        }
        tasks, executions = plan_runs(runs, out_dir, record, grid, notebook)
        atomic_write_json(out_dir / GRID_FILE, record)
        if tasks:
            executions += execute_tasks(tasks, grid, progress, skipped=len(executions))
        result = analyze(out_dir, paper_l1=grid.paper_l1, include_stalled=grid.include_stalled)
    result.executions = pd.DataFrame(executions, columns=["name", "status", "seconds", "error"])
    return result


def grid_settings(
    grid: GridConfig | None, training: TrainConfig | None, options: dict
) -> tuple[GridConfig, TrainConfig]:
    """The two configs with single-field ``options`` applied (each name to the config that has it)."""
    options = dict(options)
    if "seeds" in options:  # the former name of n_seeds
        warn_renamed("seeds", "n_seeds")
        options["n_seeds"] = options.pop("seeds")
    grid_fields, training_fields = set(field_names(GridConfig)), set(field_names(TrainConfig))
    unknown = set(options) - grid_fields - training_fields
    if unknown:
        raise TypeError(f"run_grid() got unknown option(s): {', '.join(sorted(unknown))}")
    grid = dataclasses.replace(grid or GridConfig(), **{k: v for k, v in options.items() if k in grid_fields})
    overrides = {k: v for k, v in options.items() if k in training_fields}
    if training is None:
        training = TrainConfig(**{**TRAINING_DEFAULTS, **overrides})
    else:
        training = dataclasses.replace(training, **overrides)
    return grid, training


def grid_record(
    cache_dir: Path, cache_key: str, runs: list[GridRun], grid: GridConfig, training: TrainConfig
) -> dict:
    """What ``grid.json`` records: the cache, the grid and the shared training parameters."""
    return {
        "cache_dir": str(cache_dir.resolve()),
        "cache_key": cache_key,
        "dropouts": sorted({run.last_two_dropout for run in runs}),
        "l1s": sorted({run.l1 for run in runs}),
        "seeds": seed_list(grid.n_seeds),
        "first_dropout": FIRST_DROPOUT,
        "paper_l1": float(grid.paper_l1),
        "training": shared_training(training),
        "runs": [run.name for run in runs],
    }


def run_mismatches(
    run_dir: str | os.PathLike, parameters: dict, cache_key: str, face_size: int | None = None
) -> list[str]:
    """How a finished run's recorded settings and face cache differ from ``parameters`` on the cache
    ``cache_key`` of faces of ``face_size`` px (:data:`CHECKED_PARAMETERS`; ``"name recorded ≠ expected"``,
    empty when none). ``input_size`` None means that face size (default: the run's cache's)."""
    recorded = rundir.read_config(run_dir)
    face_size = face_size or face_size_of(recorded.get("preprocessing") or {})
    return setting_mismatches(
        {**effective_settings(recorded), "cache_key": recorded.get("cache_key")},
        {**effective_settings(parameters, face_size), "cache_key": cache_key},
    )


def reusable_run(candidates, parameters: dict, cache_key: str, face_size: int | None = None) -> Path | None:
    """The first finished run among ``candidates`` made with exactly ``parameters``' checked settings and
    thread count on the cache ``cache_key``: the run the grid would train, so it is copied in instead."""
    for candidate in map(Path, candidates):
        if (
            rundir.is_finished(candidate)
            and not run_mismatches(candidate, parameters, cache_key, face_size)
            and rundir.read_config(candidate).get("threads") == parameters.get("threads")
        ):
            return candidate
    return None


def copy_reused_run(source: Path, run_dir: Path) -> None:
    """Put a copy of the finished run ``source`` at ``run_dir`` (whole or not at all), noting where from."""
    partial = run_dir.with_name(f".{run_dir.name}.reused")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial, ignore=shutil.ignore_patterns(".*"))
    atomic_write_json(partial / REUSED_FILE, {"reused_from": str(source.resolve())})
    replace_directory(partial, run_dir)


def plan_runs(
    runs: list[GridRun], out_dir: Path, record: dict, grid: GridConfig, notebook: Path
) -> tuple[list[dict], list[dict]]:
    """The runs to execute (papermill tasks) and those skipped (finished, failed and not retried, or
    copied from a matching run of ``grid.reuse_runs``).

    Raises ValueError when a finished run was made with other parameters (see :data:`CHECKED_PARAMETERS`),
    unless ``grid.replace_stale`` (then it is executed again).
    """
    tasks, executions, stale = [], [], []
    for run in runs:
        run_dir = out_dir / RUNS_FOLDER / run.name
        parameters = {**record["training"], "seed": run.seed, "dropout": run.dropout, "l1": run.l1}
        if rundir.is_finished(run_dir) and not grid.rerun:
            problems = run_mismatches(run_dir, parameters, record["cache_key"], record.get("face_size"))
            if not problems:
                executions.append(
                    {"name": run.name, "status": "skipped (complete)", "seconds": 0.0, "error": ""}
                )
                continue
            if not grid.replace_stale:
                stale.append(f"{run.name}: {', '.join(problems)}")
                continue
        reused = (
            None
            if grid.rerun
            else reusable_run(grid.reuse_runs, parameters, record["cache_key"], record.get("face_size"))
        )
        if reused is not None:
            copy_reused_run(reused, run_dir)
            executions.append({"name": run.name, "status": f"reused ({reused})", "seconds": 0.0, "error": ""})
            continue
        if (run_dir / ERROR_FILE).exists() and not grid.retry_failed and not grid.rerun:
            error = error_message(read_error(run_dir))
            executions.append(
                {"name": run.name, "status": "skipped (failed)", "seconds": 0.0, "error": error}
            )
            continue
        tasks.append(
            {
                "name": run.name,
                "run_dir": str(run_dir.resolve()),
                "notebook": str(notebook.resolve()),
                # overwrite: finished runs were skipped above; this replaces a half-written one
                "parameters": {
                    "cache_dir": record["cache_dir"],
                    "run_dir": str(run_dir.resolve()),
                    "overwrite": True,
                    **parameters,
                },
                "cell_timeout": grid.cell_timeout,
                "grid": {"dropout": run.dropout, "l1": run.l1, "seed": run.seed},
            }
        )
    if stale:
        raise ValueError(
            f"{out_dir} holds finished runs made with other parameters (use another folder, "
            "--replace-stale to train those again, or --rerun to train every run again):\n  "
            + "\n  ".join(stale)
        )
    return tasks, executions


def execute_tasks(tasks: list[dict], grid: GridConfig, progress: bool, skipped: int = 0) -> list[dict]:
    """Execute the papermill tasks in parallel (local processes or Dask); one outcome per task."""
    threads = tasks[0]["parameters"]["threads"]  # the runs' TrainConfig.threads: part of their numbers
    workers = grid.workers
    if grid.scheduler is None:
        workers = min(workers or max(1, default_workers() // (threads or default_workers())), len(tasks))
    for task in tasks:
        task["threads"] = threads
    if progress:
        where = f"Dask scheduler {grid.scheduler}" if grid.scheduler is not None else f"{workers} worker(s)"
        print(
            f"ablation: {len(tasks)} run(s) to execute, {skipped} skipped; {where}, "
            f"{threads or 'all'} thread(s) per run",
            flush=True,
        )
    started = time.perf_counter()
    outcomes = []
    with run_progress(len(tasks), enabled=progress and grid.scheduler is None) as bar:
        for number, outcome in enumerate(parallel_map(execute_run, tasks, workers, grid.scheduler), start=1):
            outcomes.append(outcome)
            if not progress:
                continue
            note = f" — {outcome['error']}" if outcome["error"] else ""
            line = (
                f"[{number}/{len(tasks)}] {outcome['name']}: {outcome['status']} in {outcome['seconds']:.0f} s"
                f" (elapsed {time.perf_counter() - started:.0f} s){note}"
            )
            report_step(line)  # inside a kernel (notebook 03 under `fer run`): its parent's progress line
            if bar is None:
                print(line, flush=True)
            else:
                bar.write(line)
                bar.update(1)
    return outcomes


@contextlib.contextmanager
def run_progress(total: int, enabled: bool = True):
    """A progress line below the runs' outcome lines: runs done, elapsed time and the last epoch of the
    kernels training (their step lines, :func:`fer_utils.progress.watched_steps`). None where progress
    bars are off (inside a kernel, whose parent shows those lines) or ``enabled`` is False."""
    if not enabled or bars_disabled():
        yield None
        return
    bar = progress_bar(
        total=total, desc="ablation", bar_format="{desc}: run {n_fmt}/{total_fmt} [{elapsed}]{postfix}"
    )
    with bar, watched_steps(bar.set_postfix_str):
        yield bar
