"""The light-model frontier (``fer study-models``): architectures × seeds under one protocol, then test
accuracy against parameters and against measured int8 latency (1 thread, batch 1), seed spread as error
bars, the Pareto front marked, each point linking to its seeds folder.

Layout of a study folder::

    <architecture>/seed-<k>/   run directories (fer_utils.training.rundir); <architecture>/seeds.*
    study.json                 the architectures, their image sizes, seeds and the shared settings
    frontier.csv               one row per architecture: cost, accuracy over seeds, int8 ms/face, img/s
    frontier_runs.csv          one row per run: seed, scores, kept epoch, wall time, img/s, ECE
    frontier.md                both tables
    frontier.html              the figure (plotly.js from plotly.min.js beside it: works offline)

Resumable: finished seeds are kept and an interrupted seed resumes after its last finished epoch
(:mod:`fer_utils.training.resume`); ``fer study-models`` measures the latencies again on every call, side
by side. Notebook 05 (:func:`notebook_study`) only shows a finished study: its recorded tables, nothing
measured or rewritten; opened without a cache or a study it trains a small study of the demo set. One writer
per study folder (:func:`fer_utils.locks.output_lock`, for the whole call). A later call with other
``--architectures`` adds its families to ``study.json`` (those already there are kept); one with another
cache or other shared settings is refused. A family that could not train is a row of the tables with its
``problem`` (``fer study-models`` then exits 1), never left out.

A family whose median seed is *stalled* (no better than the test part's majority class,
:mod:`fer_utils.training.health`) is never on the Pareto front: being cheap is no merit at chance.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.bench.inference import tflite_timer
from fer_utils.bench.timing import time_calls
from fer_utils.deploy.export import EXPORT_FILE_NAMES, export_run, run_calibration_faces
from fer_utils.deploy.prediction_outputs import write_figure
from fer_utils.experiments.notebook_pipeline import DEMO_DIR, demo_cache
from fer_utils.files import atomic_write_csv, atomic_write_json, atomic_write_text
from fer_utils.locks import output_lock
from fer_utils.paths import output_path, project_path
from fer_utils.settings import add_arguments as add_config_arguments
from fer_utils.settings import config_from_args
from fer_utils.training import rundir
from fer_utils.training.architectures import ARCHITECTURES, architecture
from fer_utils.training.config import TrainConfig
from fer_utils.training.metrics import headline, registered
from fer_utils.training.result_parts import Cost
from fer_utils.training.seeds import finished_seed_runs, median_run, read_seed_summary, train_seed_sets

STUDY_FILE = "study.json"
TABLE_FILE = "frontier.csv"
MARKDOWN_FILE = "frontier.md"
RUNS_FILE = "frontier_runs.csv"
FIGURE_FILE = "frontier.html"
#: Timed calls per int8 model (after warm-up).
LATENCY_REPEATS = 200


def study_image_size(name: str, image_size: int | None) -> int | None:
    """A family's face size in the study: ``image_size`` when given; else its intended input size, except
    ``paper`` (its 180 px is the paper's own video set) at the cache's size (None)."""
    if image_size:
        return image_size
    return None if name == "paper" else architecture(name).input_size


def run_model_study(
    cache_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    base: TrainConfig,
    architectures: Iterable[str],
    seeds: Iterable[int],
    workers: int | None = None,
    progress: bool = True,
    remeasure: bool = True,
) -> pd.DataFrame:
    """Train every architecture over ``seeds`` (one shared pool; resumable), time each one's int8 export
    and write the table and figure. Returns the table (see :func:`frontier_table`). ``remeasure`` False:
    a study whose tables already cover its finished runs is only read (:func:`show_study`)."""
    architectures = list(dict.fromkeys(architectures))
    for name in architectures:
        architecture(name)  # an unknown name: one line, before any work
    seeds = list(seeds)
    out = Path(out_dir)
    configs = {
        out / name: dataclasses.replace(
            base, architecture=name, input_size=study_image_size(name, base.input_size)
        )
        for name in architectures
    }
    record = {
        "cache_dir": str(Path(cache_dir).resolve()),
        "seeds": seeds,
        "architectures": {
            name: {"input_size": configs[out / name].input_size, "seeds": seeds} for name in architectures
        },
        "shared": json.loads(json.dumps(dataclasses.asdict(base), default=str)),
    }
    with output_lock(out, "fer study-models"):  # one writer per study folder, whatever its arguments
        record = merged_study_record(out, record)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / STUDY_FILE, record, default=str)
        train_seed_sets(cache_dir, configs, seeds, workers, progress=progress)
        return write_frontier(out) if remeasure else show_study(out)


def merged_study_record(out: Path, record: dict) -> dict:
    """``record`` (this call's ``study.json``) with the families a study already in ``out`` holds: theirs
    kept, this call's added or updated. ValueError (one line) when ``out`` holds a study of another cache
    or other shared settings, or a ``study.json`` that cannot be read."""
    path = out / STUDY_FILE
    if not path.exists():
        return record
    try:
        existing = json.loads(path.read_text())
        families = dict(existing["architectures"])
        shared = existing["shared"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path} cannot be read ({type(error).__name__}: {error}); choose another --out"
        ) from None
    differences = [
        f"{key} {shared.get(key)!r} → {value!r}"
        for key, value in record["shared"].items()
        if shared.get(key) != value
    ]
    if existing.get("cache_dir") != record["cache_dir"]:
        differences.insert(0, f"cache {existing.get('cache_dir')} → {record['cache_dir']}")
    if differences:
        raise ValueError(
            f"{out} holds a study of {', '.join(families) or 'no families'} made with other settings "
            f"({'; '.join(differences)}); choose another --out, or repeat its settings to add families"
        )
    for family in families.values():
        family.setdefault("seeds", existing.get("seeds", []))
    families.update(record["architectures"])
    seeds = sorted({int(seed) for family in families.values() for seed in family["seeds"]})
    return record | {"architectures": families, "seeds": seeds}


def family_problem(folder: Path, seeds: Iterable[int] = ()) -> str | None:
    """Why a study family is short of runs: its failed seeds' errors (``seeds.json``), or the seeds it
    asked for and has not finished; None when every seed finished."""
    try:
        failed = read_seed_summary(folder).get("failed", {})
    except (OSError, ValueError):
        failed = {}
    if failed:
        return "; ".join(
            f"seed {seed}: {str(error).strip().splitlines()[-1] if str(error).strip() else '?'}"
            for seed, error in failed.items()
        )
    finished = {run.setup.seed for run in finished_seed_runs(folder)}
    missing = sorted(set(seeds) - finished)
    if missing:
        return f"seed(s) {', '.join(map(str, missing))} not finished"
    return None


def int8_latency_ms(run_dir: Path, repeats: int = LATENCY_REPEATS) -> float:
    """Median ms/face of the run's int8 TFLite export (exported when missing) at 1 thread, batch 1."""
    path = Path(run_dir) / EXPORT_FILE_NAMES["tflite-int8"]
    if not path.exists():
        export_run(run_dir, "tflite-int8")
    faces = run_calibration_faces(run_dir, count=16)
    return float(time_calls(tflite_timer(path, 1, 1, faces), warmup=20, repeats=repeats)["median"])


def _ece_after(outcome) -> float:
    """The test part's ECE after temperature scaling (NaN for a run recorded without calibration)."""
    ece = outcome.calibration.test_ece_after if outcome.calibration else None
    return np.nan if ece is None else ece


def _train_images_per_second(run) -> float | None:
    """Training faces per second of wall time of one run (per-epoch evaluation included)."""
    seconds = run.outcome.train_seconds
    return run.setup.split.train * run.outcome.epochs_run / seconds if seconds else None


def _mean_train_images_per_second(runs) -> float | None:
    rates = [rate for rate in map(_train_images_per_second, runs) if rate is not None]
    return float(np.mean(rates)) if rates else None


def frontier_table(out_dir: str | os.PathLike, measured: dict | None = None) -> pd.DataFrame:
    """One row per architecture of a study folder: image size, parameters, multiply-adds, seeds, every
    registered test-part metric (:func:`seed_statistics`), int8 ms/face of the median seed (taken from
    ``measured``, median run → ms, when it holds that run), training img/s and wall time (minutes, all
    seeds), whether its median seed stalled, whether it is on the Pareto front of accuracy vs parameters
    and vs ms, and its ``problem`` (:func:`family_problem`; a family without a finished run is a row with
    only that)."""
    out = Path(out_dir)
    measured = measured or {}
    study = json.loads((out / STUDY_FILE).read_text())
    rows = []
    for name, family in study["architectures"].items():
        runs = finished_seed_runs(out / name)
        problem = family_problem(out / name, family.get("seeds", study.get("seeds", [])))
        if not runs:
            rows.append(
                {
                    "architecture": name,
                    "image_size": family.get("input_size"),
                    "seeds": 0,
                    "problem": problem or "no finished run",
                }
            )
            continue
        summary = read_seed_summary(out / name)
        median = median_run(out / name)
        median_path = os.path.relpath(median.path, out)
        cost = median.outcome.cost or Cost()
        rows.append(
            {
                "architecture": name,
                "image_size": median.setup.image_size,
                "parameters": cost.parameters or median.outcome.num_params,
                "multiply_adds": cost.multiply_adds,
                "seeds": summary["runs"],
                **seed_statistics(summary),
                "int8_ms_per_face": measured.get(median_path) or int8_latency_ms(median.path),
                "train_images_per_s": _mean_train_images_per_second(runs),
                "train_minutes_total": sum(run.outcome.train_seconds or 0 for run in runs) / 60,
                "stalled": bool(median.outcome.stalled),
                "ece_after_mean": float(np.mean([_ece_after(run.outcome) for run in runs])),
                "median_run": median_path,
                "problem": problem,
            }
        )
    table = pd.DataFrame(rows, columns=frontier_columns())
    trained = table["test_accuracy_mean"].notna()
    table["pareto_parameters"] = table["pareto_ms"] = False
    if trained.any():
        part = table[trained].reset_index(drop=True)
        table.loc[trained, "pareto_parameters"] = front_of(part, "parameters")
        table.loc[trained, "pareto_ms"] = front_of(part, "int8_ms_per_face")
    return table.astype({"pareto_parameters": bool, "pareto_ms": bool})


def seed_statistics(summary: dict) -> dict:
    """A family's registered test-part metrics over its seeds (``seeds.json``): ``test_<name>_mean`` and
    ``_sd`` of each, ``_min`` and ``_max`` of the headline one (NaN where the runs predate a metric)."""
    columns = {}
    for entry in registered("frame"):
        stats = summary["scores"].get(entry.column, {})
        wanted = ("mean", "sd", "min", "max") if entry is headline() else ("mean", "sd")
        columns |= {f"{entry.column}_{stat}": stats.get(stat, np.nan) for stat in wanted}
    return columns


def frontier_columns() -> list[str]:
    """The columns of ``frontier.csv`` before the Pareto flags."""
    return [
        "architecture",
        "image_size",
        "parameters",
        "multiply_adds",
        "seeds",
        *seed_statistics({"scores": {}}),
        "int8_ms_per_face",
        "train_images_per_s",
        "train_minutes_total",
        "stalled",
        "ece_after_mean",
        "median_run",
        "problem",
    ]


def front_of(table: pd.DataFrame, cost: str) -> list[bool]:
    """:func:`pareto_front` of accuracy vs ``cost`` among the families that did not stall (a stalled one is
    never on it)."""
    stalled = table["stalled"].to_numpy(bool) if "stalled" in table else np.zeros(len(table), bool)
    front = np.zeros(len(table), bool)
    if (~stalled).any():
        front[~stalled] = pareto_front(table[cost][~stalled], table["test_accuracy_mean"][~stalled])
    return front.tolist()


def run_table(out_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per finished run of a study folder: architecture, seed, every registered test-part metric, the
    kept epoch, training wall time and images/s, test ECE after scaling, and the run's folder."""
    out = Path(out_dir)
    study = json.loads((out / STUDY_FILE).read_text())
    rows = []
    for name in study["architectures"]:
        for run in finished_seed_runs(out / name):
            outcome = run.outcome
            seconds = outcome.train_seconds
            rows.append(
                {
                    "architecture": name,
                    "seed": run.setup.seed,
                    **{entry.column: outcome.frame.value(entry.name) for entry in registered("frame")},
                    "best_epoch": outcome.best_epoch,
                    "epochs_run": outcome.epochs_run,
                    "train_seconds": seconds,
                    "train_images_per_s": _train_images_per_second(run),
                    "ece_after": outcome.calibration.test_ece_after if outcome.calibration else None,
                    "run": os.path.relpath(run.path, out),
                }
            )
    return pd.DataFrame(rows)


def markdown_runs(runs: pd.DataFrame) -> str:
    """The per-run table as Markdown (every registered test-part metric in its format)."""
    metrics = registered("frame")
    headings = " | ".join(f"test {entry.heading}" for entry in metrics)
    lines = [
        f"| architecture | seed | {headings} | kept epoch / run | train min | train img/s (with per-epoch "
        "evaluation) | ECE after |",
        "|---|---|" + "---|" * len(metrics) + "---|---|---|---|",
    ]
    for row in runs.to_dict("records"):
        rate = f"{row['train_images_per_s']:.0f}" if row["train_images_per_s"] else "?"
        minutes = f"{row['train_seconds'] / 60:.1f}" if row["train_seconds"] else "?"
        ece = "?" if pd.isna(row["ece_after"]) else f"{row['ece_after']:.3f}"
        scores = " | ".join(entry.format(row.get(entry.column)) for entry in metrics)
        lines.append(
            f"| [{row['architecture']}]({row['run']}) | {row['seed']} | {scores} | "
            f"{row['best_epoch']} / {row['epochs_run']} | {minutes} | {rate} | {ece} |"
        )
    return "\n".join(lines)


def pareto_front(cost, accuracy) -> list[bool]:
    """True for each point no other point beats: at most its cost with higher accuracy, or lower cost
    with at least its accuracy."""
    cost, accuracy = np.asarray(cost, float), np.asarray(accuracy, float)
    front = []
    for c, a in zip(cost, accuracy, strict=True):
        beaten = ((cost <= c) & (accuracy > a)) | ((cost < c) & (accuracy >= a))
        front.append(not beaten.any())
    return front


def markdown_frontier(table: pd.DataFrame) -> str:
    """The table as Markdown (every registered test-part metric as mean ± sd in its format, the headline
    one with min – max; ★ = on the Pareto front); a family without a finished run is a row saying why, and
    the problems of the others follow the table."""
    metrics = registered("frame")
    lead = headline()
    score_headings = " | ".join(
        f"test {entry.heading} (mean ± sd) | min – max" if entry is lead else f"{entry.heading} (mean ± sd)"
        for entry in metrics
    )
    headings = (
        f"| architecture | px | parameters | multiply-adds | seeds | {score_headings} | int8 ms/face (1 thread) | "
        "train img/s | train min (all seeds) | ECE after | front (params / ms) |"
    )
    width = headings.count("|") - 1
    lines = [headings, "|" + "---|" * width]
    notes = []
    for row in table.to_dict("records"):
        problem = row.get("problem")
        if isinstance(problem, str) and problem:
            notes.append(f"- **{row['architecture']}**: {problem}")
        if pd.isna(row[f"{lead.column}_mean"]):
            size = "?" if pd.isna(row["image_size"]) else int(row["image_size"])
            reason = str(problem).replace("|", "\\|")
            lines.append(f"| {row['architecture']} | {size} | FAILED: {reason} |" + " — |" * (width - 3))
            continue
        several = row["seeds"] >= 2  # a spread only where there are two seeds or more
        scores = []
        for entry in metrics:
            sd = row.get(f"{entry.column}_sd") if several else None
            scores.append(
                entry.format_mean_sd(row.get(f"{entry.column}_mean"), sd)
                if several
                else entry.format(row.get(f"{entry.column}_mean"))
            )
            if entry is lead:
                scores.append(
                    f"{entry.format(row[f'{entry.column}_min'])} – {entry.format(row[f'{entry.column}_max'])}"
                    if several
                    else "— (1 seed)"
                )
        madds = f"{row['multiply_adds'] / 1e6:.1f} M" if pd.notna(row["multiply_adds"]) else "?"
        rate = f"{row['train_images_per_s']:.0f}" if row["train_images_per_s"] else "?"
        front = f"{'★' if row['pareto_parameters'] else '·'} / {'★' if row['pareto_ms'] else '·'}"
        if row.get("stalled") is True:
            front = "stalled: not on it"
        lines.append(
            f"| [{row['architecture']}]({row['median_run']}) | {int(row['image_size'])} | {int(row['parameters']):,} | "
            f"{madds} | {int(row['seeds'])} | {' | '.join(scores)} | {row['int8_ms_per_face']:.3f} | {rate} | "
            f"{_minutes(row)} | {row['ece_after_mean']:.3f} | {front} |"
        )
    if notes:
        lines += ["", "Families short of runs:", "", *notes]
    return "\n".join(lines)


def _minutes(row) -> str:
    """Training wall time of all seeds in minutes (older tables: hours)."""
    minutes = row.get("train_minutes_total")
    if minutes is None or pd.isna(minutes):
        minutes = 60 * row.get("train_hours_total", np.nan)
    return f"{minutes:.1f}"


def frontier_figure(table: pd.DataFrame):
    """Two panels: test accuracy vs parameters (log) and vs int8 ms/face; error bars = seed sd, Pareto
    points as stars joined by a line; each label links to the architecture's median run."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("accuracy vs parameters", "accuracy vs int8 ms/face (1 thread, batch 1)"),
    )
    for column, (x, front) in enumerate(
        (("parameters", "pareto_parameters"), ("int8_ms_per_face", "pareto_ms")), start=1
    ):
        figure.add_trace(
            go.Scatter(
                x=table[x],
                y=100 * table["test_accuracy_mean"],
                error_y={  # the seed spread, where there are two seeds or more
                    "type": "data",
                    "array": (100 * table["test_accuracy_sd"]).where(table["seeds"] >= 2, 0),
                    "visible": bool((table["seeds"] >= 2).any()),
                },
                mode="markers+text",
                marker={"symbol": ["star" if on else "circle" for on in table[front]], "size": 12},
                text=[
                    f'<a href="{run}">{name}</a>'
                    for name, run in zip(table["architecture"], table["median_run"], strict=True)
                ],
                textposition="top center",
                name=x,
                showlegend=False,
            ),
            row=1,
            col=column,
        )
        on_front = table[table[front]].sort_values(x)
        figure.add_trace(
            go.Scatter(
                x=on_front[x],
                y=100 * on_front["test_accuracy_mean"],
                mode="lines",
                line={"dash": "dot"},
                name="Pareto front",
                showlegend=column == 1,
            ),
            row=1,
            col=column,
        )
    figure.update_xaxes(type="log", title_text="parameters", row=1, col=1)
    figure.update_xaxes(title_text="ms/face", row=1, col=2)
    figure.update_yaxes(title_text="test accuracy (%, mean ± sd over seeds)")
    return figure


def write_frontier(out_dir: str | os.PathLike, remeasure: bool = True) -> pd.DataFrame:
    """Write ``frontier.csv``, ``frontier_runs.csv``, ``frontier.md`` (both tables) and ``frontier.html``
    of a study folder. ``remeasure`` False: a median run already in ``frontier.csv`` keeps its latency."""
    out = Path(out_dir)
    measured = {}
    if not remeasure and (out / TABLE_FILE).exists():
        recorded = _read_table(out / TABLE_FILE)
        if "median_run" in recorded:
            measured = dict(zip(recorded["median_run"], recorded["int8_ms_per_face"], strict=True))
    with output_lock(out, "fer study-models"):  # held already when called by run_model_study
        return _write_frontier(out, measured)


def _write_frontier(out: Path, measured: dict) -> pd.DataFrame:
    table = frontier_table(out, measured)
    atomic_write_csv(out / TABLE_FILE, table)
    trained = table[table["test_accuracy_mean"].notna()]
    runs = run_table(out)
    atomic_write_csv(out / RUNS_FILE, runs)
    markdown = markdown_frontier(table)
    if len(runs):
        markdown += "\n\nEvery run:\n\n" + markdown_runs(runs)
    atomic_write_text(out / MARKDOWN_FILE, markdown + "\n")
    if len(trained):
        write_figure(frontier_figure(trained), out / FIGURE_FILE)  # loads plotly.min.js beside it: offline
    return table


def finished_runs(out_dir: str | os.PathLike) -> list[str]:
    """The finished runs of a study folder, relative to it (``<architecture>/seed-<k>``)."""
    out = Path(out_dir)
    study = json.loads((out / STUDY_FILE).read_text())
    return sorted(
        os.path.relpath(path, out)
        for name in study["architectures"]
        for path in (out / name).glob("seed-*")
        if rundir.is_finished(path)
    )


def study_is_current(out_dir: str | os.PathLike) -> bool:
    """True when the study's recorded tables cover exactly its finished runs (nothing to add)."""
    out = Path(out_dir)
    if not all((out / name).exists() for name in (STUDY_FILE, TABLE_FILE, RUNS_FILE, MARKDOWN_FILE)):
        return False
    recorded = _read_table(out / RUNS_FILE)
    return sorted(recorded["run"]) == finished_runs(out) if "run" in recorded else False


def _read_table(path: Path) -> pd.DataFrame:
    """A CSV table written by this module (an empty one when no run had finished)."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def show_study(out_dir: str | os.PathLike) -> pd.DataFrame:
    """A study's table for reading: the recorded ``frontier.csv`` when it covers every finished run (no
    latency measured, no file written), else written afresh keeping the latencies already measured."""
    out = Path(out_dir)
    if study_is_current(out):
        return _read_table(out / TABLE_FILE)
    return write_frontier(out, remeasure=False)


#: The small study notebook 05 trains when opened without a cache or a study: the demo set, two seeds (a
#: spread needs two), few epochs, the demo's recipe, unseen clips tested (the demo has no fixed split).
DEMO_STUDY = {"seeds": [0, 1], "epochs": 6, "recipe": "robust", "protocol": "video"}
#: Where that study goes (beside the demo set's cache and runs).
DEMO_STUDY_DIR = f"{DEMO_DIR}/runs/frontier"


def notebook_study(
    cache_dir: str, study_dir: str, base: TrainConfig, architectures, seeds, demo_settings: bool = True
) -> tuple[Path, pd.DataFrame]:
    """What notebook 05 shows, and where: with ``cache_dir``, the study in ``study_dir`` trained (finished
    seeds kept; a study already complete is only read); without, the study already in ``study_dir``, read
    (nothing measured or rewritten); neither, a small study of the demo set (:data:`DEMO_STUDY` unless
    ``demo_settings`` is False) in :data:`DEMO_STUDY_DIR`, trained once and then read."""
    study = output_path(study_dir, "model study")
    if cache_dir:
        table = run_model_study(project_path(cache_dir), study, base, architectures, seeds, remeasure=False)
        _say_failures(study)
        return study, table
    if (study / STUDY_FILE).exists():
        return study, show_study(study)
    study = output_path(DEMO_STUDY_DIR, "demo model study")
    if demo_settings:
        seeds = DEMO_STUDY["seeds"]
        base = dataclasses.replace(
            base, epochs=DEMO_STUDY["epochs"], recipe=DEMO_STUDY["recipe"], protocol=DEMO_STUDY["protocol"]
        )
    print(
        f"no study in {study_dir} and no cache_dir: a small study of the synthetic demo set in {study} "
        f"({len(list(architectures))} architectures × seeds {list(seeds)}, {base.epochs} epochs; set cache_dir for a real one)"
    )
    cache = demo_cache()
    table = run_model_study(cache.cache_dir, study, base, architectures, seeds, remeasure=False)
    _say_failures(study)
    return study, table


def _say_failures(study: Path) -> None:
    for line in failed_seeds(study):
        print(line)


def failed_seeds(out_dir: str | os.PathLike) -> list[str]:
    """One line per seed of the study that failed, with its error (from each ``seeds.json``)."""
    out = Path(out_dir)
    if not (out / STUDY_FILE).exists():
        return []
    lines = []
    for name in json.loads((out / STUDY_FILE).read_text())["architectures"]:
        if (out / name / "seeds.json").exists():
            failed = read_seed_summary(out / name).get("failed", {})
            lines += [f"{name} seed {seed} failed: {error}" for seed, error in failed.items()]
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fer study-models``: the study's flags and every TrainConfig field shared by its runs."""
    parser.add_argument("--cache", required=True, help="face cache folder every run trains on")
    parser.add_argument(
        "--out", required=True, help="study folder (one seeds folder per architecture, tables)"
    )
    parser.add_argument(
        "--architectures",
        nargs="+",
        choices=tuple(ARCHITECTURES),
        default=tuple(ARCHITECTURES),
        metavar="NAME",
        help=f"which families (default: all: {', '.join(ARCHITECTURES)})",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=(0, 1, 2), help="seeds of every architecture")
    parser.add_argument("--workers", type=int, help="runs at once (default: one per core, 1 thread each)")
    add_config_arguments(
        parser.add_argument_group("training, shared by every run (TrainConfig)"),
        TrainConfig,
        exclude=("seed", "threads", "architecture"),
    )
    parser.set_defaults(func=_cli_study)


def _cli_study(args) -> int:
    table = run_model_study(
        args.cache,
        args.out,
        config_from_args(TrainConfig, args),
        args.architectures,
        args.seeds,
        args.workers,
    )
    print(markdown_frontier(table))
    print(f"\nwrote {Path(args.out) / TABLE_FILE}, {MARKDOWN_FILE} and {FIGURE_FILE}")
    problems = table[table["problem"].notna()]
    for row in problems.itertuples():
        print(f"fer study-models: {row.architecture}: {row.problem}", file=sys.stderr)
    return 1 if len(problems) else 0
