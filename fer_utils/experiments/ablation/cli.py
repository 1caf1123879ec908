"""``fer ablate``: the grid's flags from :class:`GridConfig`, the runs' from :class:`TrainConfig`."""

from __future__ import annotations

import argparse
import time

from fer_utils.experiments.ablation.analysis import markdown_table
from fer_utils.experiments.ablation.execute import run_grid
from fer_utils.experiments.ablation.grid import TRAINING_DEFAULTS, VARIED_FIELDS, GridConfig
from fer_utils.settings import add_arguments as add_config_arguments
from fer_utils.settings import config_from_args
from fer_utils.training.config import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fer ablate``: every :class:`GridConfig` field and every shared :class:`TrainConfig` field."""
    parser.add_argument("--cache", required=True, help="face cache folder every run trains on")
    parser.add_argument("--out", required=True, help="ablation folder (runs/, table, figures, summary.json)")
    add_config_arguments(parser.add_argument_group("grid (GridConfig)"), GridConfig)
    add_config_arguments(
        parser.add_argument_group("training, shared by every run (TrainConfig)"),
        TrainConfig,
        exclude=VARIED_FIELDS,
        defaults=TRAINING_DEFAULTS,
    )
    parser.set_defaults(func=_cli_ablate)


def _cli_ablate(args) -> int:
    started = time.perf_counter()
    result = run_grid(
        args.cache,
        args.out,
        grid=config_from_args(GridConfig, args),
        training=config_from_args(TrainConfig, args),
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
