"""An ablation folder in, its table, verdict, figures and ``summary.json`` out (:func:`analyze`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fer_utils.experiments.ablation.analysis import (
    format_table,
    load_histories,
    make_verdict,
    markdown_table,
    report_table,
    runs_table,
    summarize_configurations,
)
from fer_utils.experiments.ablation.figures import configuration_curves_figure, gap_heatmap_figure
from fer_utils.experiments.ablation.grid import GRID_FILE, PAPER_L1, RUNS_FOLDER, SUMMARY_FILE, read_grid
from fer_utils.files import atomic_write_json, atomic_write_text


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
        write: write ``runs.csv, table.csv, table.md, curves.html|json, gap_heatmap.html|json, summary.json``.

    Returns:
        The :class:`Ablation`.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ValueError(f"ablation folder {out_dir} does not exist")
    grid = read_grid(out_dir)
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
        "curves_json": out_dir / "curves.json",
        "gap_heatmap_json": out_dir / "gap_heatmap.json",
        "summary": out_dir / SUMMARY_FILE,
    }
    result.runs.to_csv(paths["runs"], index=False)
    result.summary.to_csv(paths["table_csv"], index=False)
    atomic_write_text(paths["table_md"], result.markdown())
    for name in ("curves", "gap_heatmap"):
        result.figures[name].write_html(paths[name], include_plotlyjs=True, full_html=True)
        atomic_write_text(paths[f"{name}_json"], result.figures[name].to_json())
    summary = {
        "grid": grid or {},
        "table": json.loads(result.summary.to_json(orient="records")),
        "report_table": json.loads(report_table(result.summary).reset_index().to_json(orient="records")),
        "figures": {name: paths[f"{name}_json"].name for name in ("curves", "gap_heatmap")},
        "verdict": result.verdict,
        "runs": {status: int(count) for status, count in result.runs["status"].value_counts().items()},
        "failed": json.loads(result.failed.to_json(orient="records")),
        "files": {name: path.name for name, path in paths.items()},
    }
    atomic_write_json(paths["summary"], summary)
    return paths
