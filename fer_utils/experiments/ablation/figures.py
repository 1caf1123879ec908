"""The ablation's figures: train vs validation curves per configuration, and the gap over the grid."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fer_utils.experiments.ablation.analysis import GAP_METRICS, find_configuration, metric_text
from fer_utils.experiments.ablation.grid import (
    FIRST_DROPOUT,
    PAPER_BASELINE,
    PAPER_DROPOUT,
    PAPER_L1,
    config_label,
)


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


#: (history column prefix, name, RGB) of each curve of :func:`configuration_curves_figure`.
_CURVE_SERIES = (("", "train", "31, 119, 180"), ("val_", "validation", "255, 127, 14"))


def configuration_curves_figure(
    histories: pd.DataFrame,
    configurations: Sequence[tuple[float, float]] | None = None,
    paper_l1: float = PAPER_L1,
):
    """Train vs validation accuracy (top) and loss (bottom) per configuration (columns, the paper's
    Fig. 5 / Fig. 6 view by default), mean over seeds with a ± sd band."""
    configurations = list(configurations or [PAPER_BASELINE, (PAPER_DROPOUT, paper_l1)])
    figure = make_subplots(
        rows=2,
        cols=len(configurations),
        shared_yaxes="rows",
        vertical_spacing=0.12,
        horizontal_spacing=0.05,
        subplot_titles=[config_label(*c) for c in configurations] + [""] * len(configurations),
    )
    for col, (dropout, l1) in enumerate(configurations, start=1):
        for row, metric in enumerate(("accuracy", "loss"), start=1):
            for prefix, name, rgb in _CURVE_SERIES:
                band = seed_band(histories, dropout, l1, f"{prefix}{metric}") if len(histories) else None
                if band is None or band.empty:
                    continue
                for trace in _band_traces(band, name, metric, rgb, show_legend=row == 1 and col == 1):
                    figure.add_trace(trace, row=row, col=col)
            figure.update_xaxes(title_text="epoch", row=row, col=col)
        if histories.empty or seed_band(histories, dropout, l1, "accuracy").empty:
            _mark_empty_column(figure, col)
    figure.update_yaxes(title_text="accuracy", row=1, col=1)
    figure.update_yaxes(title_text="loss", row=2, col=1)
    figure.update_layout(
        title="Train vs validation over epochs<br><sup>mean ± sd over seeds: the paper's Fig. 5 / Fig. 6 view</sup>",
        height=700,
        legend={"orientation": "h", "y": -0.1},
    )
    return figure


def _band_traces(band: pd.DataFrame, name: str, metric: str, rgb: str, show_legend: bool) -> list:
    """The ± sd band and the mean line of one :func:`seed_band`."""
    epochs = band["epoch"].tolist()
    upper = (band["mean"] + band["sd"]).tolist()
    lower = (band["mean"] - band["sd"]).tolist()
    spread = go.Scatter(
        x=epochs + epochs[::-1],
        y=upper + lower[::-1],
        fill="toself",
        fillcolor=f"rgba({rgb}, 0.2)",
        line={"width": 0},
        hoverinfo="skip",
        showlegend=False,
        legendgroup=name,
        name=f"{name} ± sd",
    )
    mean = go.Scatter(
        x=epochs,
        y=band["mean"],
        customdata=np.stack([band["sd"], band["n"]], axis=1),
        hovertemplate=f"{name} {metric}<br>epoch %{{x}}: %{{y:.3f}} ± %{{customdata[0]:.3f}}"
        " (%{customdata[1]} seeds)<extra></extra>",
        name=f"{name} (mean of seeds)",
        legendgroup=name,
        showlegend=show_legend,
        line={"color": f"rgb({rgb})"},
        mode="lines+markers",
    )
    return [spread, mean]


def _mark_empty_column(figure, col: int) -> None:
    figure.add_annotation(
        text="no finished run",
        showarrow=False,
        xref=f"x{'' if col == 1 else col} domain",
        yref=f"y{'' if col == 1 else col} domain",
        x=0.5,
        y=0.5,
    )


def gap_heatmap_figure(summary: pd.DataFrame):
    """Heatmaps of the final and the largest train − validation accuracy gap (mean over seeds) over the
    grid; cells without a finished run read ``failed`` or ``—``."""
    dropouts = sorted(summary["last_two_dropout"].unique()) if len(summary) else []
    l1s = sorted(summary["l1"].unique()) if len(summary) else []
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=[GAP_METRICS[m][0] for m in ("final_gap", "max_gap")]
    )
    for col, metric in enumerate(("final_gap", "max_gap"), start=1):
        z, text = [], []
        for dropout in dropouts:
            z_row, text_row = [], []
            for l1 in l1s:
                row = find_configuration(summary, dropout, l1)
                if row is None or row["n_ok"] == 0:
                    z_row.append(None)
                    text_row.append("failed" if row is not None and row["n_failed"] else "—")
                else:
                    z_row.append(100 * row[f"{metric}_mean"])  # percent, as the cells read
                    text_row.append(metric_text(row, metric))
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
        title="Overfitting over the grid: train − validation gap<br><sup>accuracy, mean ± sd over seeds</sup>",
        coloraxis={"colorscale": "Reds", "colorbar": {"title": "gap (%)", "ticksuffix": " %"}},
        height=420,
    )
    return figure
