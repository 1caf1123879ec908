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
    summary.json                    parameters, table, report table, verdict, failed runs
    curves.json, gap_heatmap.json   the figures as plotly JSON (what the report draws)

The analysis functions (:func:`runs_table`, :func:`summarize_configurations`, :func:`make_verdict`, the figures) read
only these files, so a grid can be re-analysed without training anything.

The paper does not state its L1 factor in the text available to us; :data:`PAPER_L1` (1e-3, the grid's
largest value) stands in for it and can be changed per call (``paper_l1``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_utils.paths import NOTEBOOKS_DIR
from fer_utils.settings import accepted_names, setting
from fer_utils.training.config import CHECKED_FIELDS, TrainConfig

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
#: The analysis: table, report table, verdict, failed runs, file names (the report reads it).
SUMMARY_FILE = "summary.json"


RUNS_FOLDER = "runs"

#: In a grid cell copied from a finished run outside the grid (``GridConfig.reuse_runs``): where from.
REUSED_FILE = "reused.json"

#: TrainConfig fields the grid sets per run; every other field is shared by all runs of a grid.
VARIED_FIELDS = ("seed", "dropout", "l1")
#: The ablation's own training defaults (shorter than a full run); everything else is TrainConfig's.
TRAINING_DEFAULTS = {"epochs": DEFAULT_EPOCHS}
#: Training parameters a finished run must share with the grid to be reused by a rerun: every
#: TrainConfig field that can change a result (fields marked ``checked=False`` cannot), and the cache.
CHECKED_PARAMETERS = (*CHECKED_FIELDS, "cache_key")


@dataclass
class GridConfig:
    """The grid and how it is executed (flags of ``fer ablate``, parameters of notebook 03)."""

    dropouts: tuple[float, ...] = setting(DEFAULT_DROPOUTS, help="last-two dropout rates d (rates 0.3/d/d)")
    l1s: tuple[float, ...] = setting(DEFAULT_L1S, help="L1 factors on the Dense(16) kernel")
    n_seeds: int = setting(
        DEFAULT_SEEDS,
        help="seeds per configuration: 0 … n−1 (the API also takes a list)",
        renamed_from=("seeds",),
    )
    paper_l1: float = setting(
        PAPER_L1, help="L1 factor of the paper's Fig. 6 configuration (curves, verdict)"
    )
    include_stalled: bool = setting(False, help="count runs that never learned in the means")
    workers: int | None = setting(
        None,
        help="parallel runs (default: cores ÷ --threads, at most one per pending run; ignored with --scheduler)",
    )
    scheduler: str | None = setting(None, help="Dask scheduler address, e.g. tcp://host:8786")
    cell_timeout: int | None = setting(None, help="seconds a notebook cell may run before the run fails")
    rerun: bool = setting(False, help="execute finished runs again")
    replace_stale: bool = setting(
        False,
        help="execute again the finished runs made with other settings (those with the same are kept); "
        "without it such runs are refused",
    )
    reuse_runs: tuple[str, ...] = setting(
        (),
        help="finished runs outside the grid copied in as a cell (instead of trained) when their checked "
        "settings and face cache are the cell's (`fer run`: its run of the ablation's protocol)",
    )
    retry_failed: bool = setting(True, help="execute runs that failed before again")


#: What notebooks 02 and 03 read from their globals besides the names their cells assign: every
#: TrainConfig and GridConfig field (checked before a kernel starts, and again inside it).
NOTEBOOK_FIELDS = (*accepted_names(TrainConfig), *accepted_names(GridConfig))


def shared_training(training: TrainConfig) -> dict:
    """The training parameters every run of the grid shares (no per-run and no free-form fields)."""
    return {
        field.name: getattr(training, field.name)
        for field in dataclasses.fields(TrainConfig)
        if field.name not in VARIED_FIELDS and field.metadata.get("cli", True)
    }


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
    """``seeds`` as a list: an int n (``n_seeds``) means seeds 0 … n−1."""
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


def read_grid(out_dir: str | os.PathLike) -> dict:
    """An ablation folder's ``grid.json`` ({} when it has none)."""
    path = Path(out_dir) / GRID_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def read_error(run_dir: str | os.PathLike) -> dict:
    """A failed run's ``error.json`` record."""
    return json.loads((Path(run_dir) / ERROR_FILE).read_text())


def error_message(record: dict) -> str:
    """``"Name: message"`` of an ``error.json`` record (first line of the message)."""
    message = str(record.get("evalue") or "").strip().splitlines()
    return f"{record.get('ename', 'Error')}: {message[0] if message else ''}".strip()
