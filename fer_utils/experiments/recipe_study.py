"""The recipe study: does each ingredient of the ``robust`` recipe earn its place? Every configuration
is the robust recipe with one ingredient taken out (or one more added), trained over the same seeds,
beside the paper recipe.

Layout of a study folder::

    <configuration>/seed-<k>/   run directories (fer_utils.training.rundir)
    <configuration>/seeds.*     the configuration's seed distribution (fer_utils.training.seeds)
    study.json                  the configurations (name → TrainConfig overrides) and the shared settings
    recipes.csv, recipes.md     one row per configuration: seed mean ± sd, min, max, converged / stalled / underfit
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from fer_utils import formatting
from fer_utils.files import atomic_write_csv, atomic_write_json, atomic_write_text, require_folder_path
from fer_utils.locks import output_lock
from fer_utils.settings import add_arguments as add_config_arguments
from fer_utils.settings import config_from_args
from fer_utils.training.config import TrainConfig
from fer_utils.training.metrics import headline, registered
from fer_utils.training.seeds import read_seed_summary, train_seed_sets

STUDY_FILE = "study.json"
TABLE_FILE = "recipes.csv"
MARKDOWN_FILE = "recipes.md"

#: Each configuration: its TrainConfig overrides. "−" takes a robust ingredient out, "+" adds one.
INGREDIENT_STUDY: dict[str, dict] = {
    "paper": {"recipe": "paper"},
    "robust": {"recipe": "robust"},
    "robust − recycling": {"recipe": "robust", "recycle_dead_units": False},
    "robust − centring": {"recipe": "robust", "input_scaling": "unit"},
    "robust − F1 selection": {"recipe": "robust", "selection_metric": "val_accuracy"},
    "robust + augmentation": {"recipe": "robust", "augment": True},
    "robust + balanced weights": {"recipe": "robust", "class_weighting": "balanced"},
    "robust + warm-up, cosine": {"recipe": "robust", "warmup_epochs": 1.0, "lr_schedule": "cosine"},
}
#: Fields the study sets per configuration (every ingredient a configuration changes).
INGREDIENT_FIELDS = tuple(
    sorted({key for overrides in INGREDIENT_STUDY.values() for key in overrides} - {"recipe"})
)


def folder_name(configuration: str) -> str:
    """``robust − recycling`` → ``robust-minus-recycling`` (folder-safe)."""
    text = configuration.replace("−", " minus ").replace("+", " plus ")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def run_recipe_study(
    cache_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    base: TrainConfig,
    seeds: Iterable[int],
    configurations: Mapping[str, dict] | Iterable[str] = INGREDIENT_STUDY,
    workers: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Train every configuration over ``seeds`` (one shared pool of workers; finished runs are kept) and
    write the study table. ``configurations``: a mapping name → overrides, or names from
    :data:`INGREDIENT_STUDY`. Returns the table (see :func:`study_table`)."""
    if not isinstance(configurations, Mapping):
        unknown = [name for name in configurations if name not in INGREDIENT_STUDY]
        if unknown:
            raise ValueError(f"unknown configuration(s) {unknown}; choose from {list(INGREDIENT_STUDY)}")
        configurations = {name: INGREDIENT_STUDY[name] for name in configurations}
    out = require_folder_path(out_dir, "--out")
    with output_lock(out, "fer study-recipes"):
        return _run_study(cache_dir, out, base, seeds, configurations, workers, progress)


def _run_study(cache_dir, out: Path, base, seeds, configurations: Mapping, workers, progress) -> pd.DataFrame:
    out.mkdir(parents=True, exist_ok=True)
    configs = {
        out / folder_name(name): dataclasses.replace(base, **overrides)
        for name, overrides in configurations.items()
    }
    atomic_write_json(
        out / STUDY_FILE,
        {
            "cache_dir": str(Path(cache_dir).resolve()),
            "seeds": list(seeds),
            "configurations": {
                name: {"folder": folder_name(name), **o} for name, o in configurations.items()
            },
            "shared": dataclasses.asdict(base),
        },
        default=str,
    )
    train_seed_sets(cache_dir, configs, seeds, workers, progress=progress)
    return write_study_table(out)


def study_table(out_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per configuration of a study folder, from its seeds summaries (in the study's order)."""
    import json

    out = Path(out_dir)
    study = json.loads((out / STUDY_FILE).read_text())
    rows = []
    for name, entry in study["configurations"].items():
        summary = read_seed_summary(out / entry["folder"])
        row = {"configuration": name, **{k: summary[k] for k in ("runs", "converged", "stalled", "underfit")}}
        for score in (entry.column for entry in registered("frame")):
            for stat in ("mean", "sd", "min", "max", "spread"):
                row[f"{score}_{stat}"] = summary["scores"].get(score, {}).get(stat)
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_study(table: pd.DataFrame) -> str:
    """The study table as Markdown: every registered test-part metric as mean ± sd in its format (the
    headline one with min – max and spread)."""
    metrics, lead = registered("frame"), headline()
    score_headings = " | ".join(
        f"test {entry.heading} (mean ± sd) | min – max | spread"
        if entry is lead
        else f"{entry.heading} (mean ± sd)"
        for entry in metrics
    )
    headings = f"| configuration | seeds | converged | stalled | underfit | {score_headings} |"
    lines = [headings, "|" + "---|" * (headings.count("|") - 1)]
    for row in table.to_dict("records"):
        scores = []
        for entry in metrics:
            column = entry.column
            scores.append(entry.format_mean_sd(row.get(f"{column}_mean"), row.get(f"{column}_sd")))
            if entry is lead:
                spread = row.get(f"{column}_spread")
                if not formatting.is_number(spread):
                    spread_text = "—"
                else:
                    spread_text = (
                        f"{100 * spread:.1f} pts" if entry.unit == "percent" else formatting.score(spread)
                    )
                scores += [
                    f"{entry.format(row.get(f'{column}_min'))} – {entry.format(row.get(f'{column}_max'))}",
                    spread_text,
                ]
        lines.append(
            f"| {row['configuration']} | {row['runs']} | {row['converged']} | {row['stalled']} | {row['underfit']} | "
            f"{' | '.join(scores)} |"
        )
    return "\n".join(lines)


def write_study_table(out_dir: str | os.PathLike) -> pd.DataFrame:
    out = Path(out_dir)
    table = study_table(out)
    atomic_write_csv(out / TABLE_FILE, table)
    atomic_write_text(out / MARKDOWN_FILE, markdown_study(table) + "\n")
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fer study-recipes``: the study's own flags and every TrainConfig field shared by its runs."""
    parser.add_argument("--cache", required=True, help="face cache folder every run trains on")
    parser.add_argument(
        "--out", required=True, help="study folder (one seeds folder per configuration, tables)"
    )
    parser.add_argument(
        "--configurations",
        nargs="+",
        choices=tuple(INGREDIENT_STUDY),
        default=tuple(INGREDIENT_STUDY),
        metavar="NAME",
        help=f"which configurations (default: all: {', '.join(INGREDIENT_STUDY)})",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=(0, 1, 2, 3, 4), help="seeds of every configuration"
    )
    parser.add_argument("--workers", type=int, help="runs at once (default: one per core, 1 thread each)")
    add_config_arguments(
        parser.add_argument_group("training, shared by every run (TrainConfig)"),
        TrainConfig,
        exclude=("seed", "threads", "recipe", *INGREDIENT_FIELDS),
        defaults={"epochs": 15},
    )
    parser.set_defaults(func=_cli_study)


def _cli_study(args) -> int:
    table = run_recipe_study(
        args.cache,
        args.out,
        config_from_args(TrainConfig, args),
        args.seeds,
        args.configurations,
        args.workers,
    )
    print(markdown_study(table))
    print(f"\nwrote {Path(args.out) / TABLE_FILE} and {Path(args.out) / MARKDOWN_FILE}")
    return 0
