"""Seeds as a first-class axis: one run per seed, in parallel within the CPU budget, and a summary of
the distribution (mean ± sd, min, max, how many converged) — never one lucky seed.

Layout of a seeds folder::

    seed-<k>/          a run directory per seed (fer_utils.training.rundir)
    seeds.csv          one row per seed: scores and health flags
    seeds.json         the distribution of each score and the counts of converged / stalled / underfit
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from fer_utils.faces.cache import FaceCache, face_size_of
from fer_utils.files import atomic_write_csv, atomic_write_json, require_folder_path
from fer_utils.locks import output_lock
from fer_utils.parallel import default_workers, parallel_map
from fer_utils.training import rundir
from fer_utils.training.config import TrainConfig, effective_settings, setting_mismatches
from fer_utils.training.metrics import registered
from fer_utils.training.plan import RunPlan, recorded_settings
from fer_utils.training.resume import checkpoint_root
from fer_utils.training.train import train_run

SEEDS_TABLE_FILE = "seeds.csv"
SEEDS_SUMMARY_FILE = "seeds.json"
#: Validation scores summarised over seeds beside the registered test-part metrics (:func:`seed_scores`).
VALIDATION_SCORES = {
    "best_val_accuracy": lambda outcome: outcome.best_val_accuracy,
    "best_val_macro_f1": lambda outcome: outcome.best_val_macro_f1,
}


def seed_scores() -> dict:
    """Scores summarised over seeds: column → how it is read from a run's metrics record. Every registered
    metric of the test part (:mod:`fer_utils.training.metrics`, frame level, ``test_<name>``), then the kept
    epoch's validation scores."""
    registry = {
        entry.column: (lambda outcome, name=entry.name: outcome.frame.value(name))
        for entry in registered("frame")
    }
    return registry | VALIDATION_SCORES


def seed_run_name(seed: int) -> str:
    return f"seed-{seed}"


def plan_threads(runs: int, workers: int | None, threads: int | None) -> tuple[int, int]:
    """``(parallel runs, TensorFlow threads per run)`` that fit the cores: by default as many runs at
    once as cores (one thread each), which trains this small CNN faster than one run on all cores."""
    cores = default_workers()
    workers = max(1, min(workers or cores, runs))
    return workers, threads or max(1, cores // workers)


def _train_one(task: dict) -> dict:
    """Worker: one seed's run (TensorFlow is imported in this spawned process, with the run's threads)."""
    config = TrainConfig(**task["config"])
    try:
        run = train_run(task["cache_dir"], task["run_dir"], config, overwrite=task["overwrite"])
    except Exception as error:  # one failed seed must not lose the others
        return {"seed": config.seed, "run_dir": task["run_dir"], "error": f"{type(error).__name__}: {error}"}
    return {"seed": config.seed, "run_dir": str(run.path), "error": None}


def train_seeds(
    cache_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config,
    seeds: Iterable[int],
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Train ``config`` once per seed into ``out_dir/seed-<k>`` and summarise the distribution.

    Finished seeds are kept (a rerun trains only what is missing) unless ``overwrite``. Returns the
    summary written to ``seeds.json`` (see :func:`summarize_seeds`); failed seeds are listed there.
    """
    return train_seed_sets(cache_dir, {Path(out_dir): config}, seeds, workers, overwrite, progress)[
        Path(out_dir)
    ]


def train_seed_sets(
    cache_dir: str | os.PathLike,
    configs: dict,
    seeds: Iterable[int],
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """:func:`train_seeds` for several configurations (``{seeds folder: TrainConfig}``) sharing one pool
    of workers, so no core idles between configurations. Returns ``{seeds folder: summary}``."""
    seeds = list(dict.fromkeys(int(seed) for seed in seeds))
    if not seeds:
        raise ValueError("give at least one seed")
    folders = {Path(folder): config for folder, config in configs.items()}
    for folder in folders:
        require_folder_path(folder, "--out")
    with contextlib.ExitStack() as held:  # one writer per seeds folder (each seed run has its own lock)
        for folder in folders:
            held.enter_context(output_lock(folder, "fer train"))
        return _train_seed_sets(cache_dir, folders, seeds, workers, overwrite, progress)


def _train_seed_sets(
    cache_dir, folders: dict, seeds: list[int], workers, overwrite: bool, progress: bool
) -> dict:
    if not overwrite:
        refuse_other_settings(folders, FaceCache(cache_dir))
    pending = [
        (folder, seed)
        for seed in seeds
        for folder in folders
        if overwrite or not rundir.is_finished(folder / seed_run_name(seed))
    ]
    workers, threads = plan_threads(
        max(1, len(pending)), workers, next(iter(folders.values())).threads if folders else None
    )
    tasks = [
        {
            "cache_dir": str(cache_dir),
            "run_dir": str(folder / seed_run_name(seed)),
            "config": asdict(replace(folders[folder], seed=seed, threads=threads)),
            "overwrite": overwrite,
        }
        for folder, seed in pending
    ]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    results = parallel_map(_train_one, tasks, workers=workers, start_method="spawn")
    watcher = EpochProgress(tasks) if progress and tasks else None
    failures: dict = {folder: {} for folder in folders}
    try:
        for result in results:
            if result["error"]:
                failures[Path(result["run_dir"]).parent][result["seed"]] = result["error"]
    finally:
        if watcher:
            watcher.stop()
    return {
        folder: write_seed_summary(folder, finished_seed_runs(folder), failures[folder]) for folder in folders
    }


def epochs_done(run_dir: Path) -> int:
    """Epochs a run has finished: all when it is complete, else its partial folder's newest checkpoint."""
    run_dir = Path(os.path.abspath(run_dir))
    if rundir.is_finished(run_dir):
        return -1
    found = [
        int(path.name.split("-")[1])
        for partial in run_dir.parent.glob(f".{glob.escape(run_dir.name)}.partial-*")
        for path in checkpoint_root(partial).glob("epoch-*")
    ]
    return max(found, default=0)


class EpochProgress:
    """One tqdm bar per pending run (``seed-<k>``: epochs done of its epochs), fed by a thread that reads
    the runs' checkpoints every few seconds: the workers are other processes and need not report."""

    def __init__(self, tasks: list[dict], every_s: float = 2.0):
        import threading

        from tqdm.auto import tqdm

        self.runs = [(Path(task["run_dir"]), int(task["config"]["epochs"])) for task in tasks]
        self.bars = [
            tqdm(total=epochs, desc=f"{path.parent.name}/{path.name}", unit="epoch", position=i, leave=True)
            for i, (path, epochs) in enumerate(self.runs)
        ]
        self.every_s = every_s
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _update(self) -> None:
        for bar, (path, epochs) in zip(self.bars, self.runs, strict=True):
            done = epochs_done(path)
            done = epochs if done < 0 else min(done, epochs)
            if done != bar.n:
                bar.n = done
                bar.refresh()

    def _watch(self) -> None:
        while not self.stopped.wait(self.every_s):
            self._update()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self._update()
        for bar in self.bars:
            bar.close()


def finished_seed_runs(folder: Path) -> list[rundir.Run]:
    """Every finished ``seed-<k>`` run of a seeds folder, by seed (a folder's summary covers them all); a
    linked folder is not the folder's own run."""
    found = [
        path
        for path in Path(folder).glob("seed-*")
        if path.name[len("seed-") :].isdigit() and not path.is_symlink() and rundir.is_finished(path)
    ]
    return [rundir.load_run(path) for path in sorted(found, key=lambda path: int(path.name.split("-")[1]))]


def refuse_other_settings(folders: dict, cache: FaceCache | None = None) -> None:
    """ValueError when a finished seed run in a folder was made with other settings than its config: each
    seed's :class:`~fer_utils.training.plan.RunPlan` on ``cache`` (None: on the face size the run's own
    cache recorded, for a folder checked without its cache)."""
    stale = []
    for folder, config in folders.items():
        for run in finished_seed_runs(folder):
            wanted = replace(config, seed=run.setup.seed)
            if cache is not None:
                problems = RunPlan.resolve(wanted, cache).mismatches(run.setup, cache=False)
            else:
                face_size = face_size_of(run.setup.preprocessing)
                problems = setting_mismatches(
                    recorded_settings(run.setup), effective_settings(asdict(wanted), face_size)
                )
            if problems:
                stale.append(f"{run.path}: {', '.join(problems)}")
    if stale:
        raise ValueError(
            "finished runs were made with other settings (choose another folder, or --overwrite):\n  "
            + "\n  ".join(stale)
        )


def read_seed_summary(out_dir: str | os.PathLike) -> dict:
    """A seeds folder's ``seeds.json``."""
    import json

    return json.loads((Path(out_dir) / SEEDS_SUMMARY_FILE).read_text())


def read_seed_table(out_dir: str | os.PathLike) -> pd.DataFrame:
    """A seeds folder's ``seeds.csv``."""
    return pd.read_csv(Path(out_dir) / SEEDS_TABLE_FILE)


def median_run(out_dir: str | os.PathLike) -> rundir.Run:
    """The run whose test accuracy is the median of its seeds folder (the lower middle one for an even
    count): the typical outcome, not the luckiest. Chosen among the folder's own finished ``seed-<k>`` runs (never a path ``seeds.csv`` names)."""
    runs = sorted(
        finished_seed_runs(Path(out_dir)), key=lambda run: (run.outcome.frame.accuracy, run.setup.seed)
    )
    if not runs:
        raise ValueError(f"{out_dir} holds no finished seed runs")
    return runs[(len(runs) - 1) // 2]


def seed_table(runs: Sequence[rundir.Run]) -> pd.DataFrame:
    """One row per run: seed, recipe, scores and health flags."""
    rows = []
    for run in runs:
        outcome = run.outcome
        row = {"seed": run.setup.seed, "run": run.name, "recipe": run.recipe}
        row |= {column: read(outcome) for column, read in seed_scores().items()}
        row |= {"stalled": outcome.stalled, "underfit": outcome.underfit}
        row["converged"] = not (row["stalled"] or row["underfit"])
        row["majority_rate"] = outcome.majority_rate
        rows.append(row)
    return pd.DataFrame(rows)


def summarize_seeds(table: pd.DataFrame) -> dict:
    """Per score: mean, sd (n − 1), min, max, spread (max − min); and the counts of runs."""
    summary = {
        "runs": int(len(table)),
        "converged": int(table["converged"].sum()) if len(table) else 0,
        "stalled": int(table["stalled"].sum()) if len(table) else 0,
        "underfit": int(table["underfit"].sum()) if len(table) else 0,
        "scores": {},
    }
    for column in seed_scores():
        values = pd.to_numeric(table.get(column, pd.Series(dtype=float)), errors="coerce").dropna()
        if values.empty:
            continue
        summary["scores"][column] = {
            "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "min": float(values.min()),
            "max": float(values.max()),
            "spread": float(values.max() - values.min()),
        }
    return summary


def write_seed_summary(out_dir: Path, runs: Sequence[rundir.Run], failures: dict | None = None) -> dict:
    """Write ``seeds.csv`` and ``seeds.json`` for ``runs`` (all of one configuration)."""
    table = seed_table(runs)
    summary = summarize_seeds(table) | {
        "seeds": [int(seed) for seed in table["seed"]] if len(table) else [],
        "recipe": runs[0].recipe if runs else None,
        "failed": {str(seed): error for seed, error in (failures or {}).items()},
    }
    atomic_write_csv(out_dir / SEEDS_TABLE_FILE, table)
    atomic_write_json(out_dir / SEEDS_SUMMARY_FILE, summary)
    return summary


def describe_seeds(summary: dict) -> str:
    """A terminal paragraph: every registered test-part metric as mean ± sd [min–max] and the counts."""
    lines = [
        f"{summary['runs']} seeds ({summary.get('recipe')}): {summary['converged']} converged, "
        f"{summary['stalled']} stalled, {summary['underfit']} underfit"
    ]
    for entry in registered("frame"):
        stats = summary["scores"].get(entry.column)
        if stats:
            lines.append(
                f"  test {entry.heading}: {entry.format_mean_sd(stats['mean'], stats['sd'])} "
                f"[{entry.format(stats['min'])} – {entry.format(stats['max'])}]"
            )
    lines.extend(f"  seed {seed} FAILED: {error}" for seed, error in summary.get("failed", {}).items())
    return "\n".join(lines)
