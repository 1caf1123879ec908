"""Plotly figures shared by the notebooks, the dashboard and the reports."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from fer_utils.training.metrics import registered
from fer_utils.training.results import RunMetrics
from fer_utils.viz.formatting import count, percent, score

NORMALIZATIONS = (None, "true", "pred")


def normalize_matrix(matrix: Sequence[Sequence[int]], normalize: str | None = None) -> np.ndarray:
    """Counts as they are (None), row-normalised (``'true'``, recall) or column-normalised (``'pred'``,
    precision); empty rows/columns give 0."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    counts = np.asarray(matrix, dtype=float)
    if normalize is None:
        return counts
    axis = 1 if normalize == "true" else 0
    totals = counts.sum(axis=axis, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def confusion_figure(
    matrix, labels: Sequence[str], normalize: str | None = None, title: str = "Confusion matrix"
):
    """Heatmap of a confusion matrix (rows true, columns predicted) with the values written in the cells."""
    import plotly.graph_objects as go

    values = normalize_matrix(matrix, normalize)
    text = [[f"{v:.0f}" if normalize is None else f"{v:.2f}" for v in row] for row in values]
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=list(labels),
            y=list(labels),
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
        )
    )
    subtitle = {None: "counts", "true": "row-normalised (recall)", "pred": "column-normalised (precision)"}[
        normalize
    ]
    figure.update_layout(
        title=f"{title} — {subtitle}",
        xaxis_title="predicted",
        yaxis_title="true",
        yaxis_autorange="reversed",
        width=560,
        height=520,
    )
    return figure


def curves_figure(history: pd.DataFrame, title: str = "Training curves"):
    """Accuracy and loss per epoch: train, validation (model selection) and, when recorded, the
    held-out test part as the paper plotted it (never used for selection)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "loss"))
    series = (
        ("", "train", "#1f77b4", "solid"),
        ("val_", "validation", "#ff7f0e", "solid"),
        ("test_", "held-out test (paper's view, not used for selection)", "#2ca02c", "dot"),
    )
    for column, metric in enumerate(("accuracy", "loss"), start=1):
        for prefix, name, color, dash in series:
            key = f"{prefix}{metric}"
            if key not in history.columns:
                continue
            figure.add_trace(
                go.Scatter(
                    x=history["epoch"],
                    y=history[key],
                    name=name,
                    legendgroup=name,
                    showlegend=column == 1,
                    line={"color": color, "dash": dash},
                    mode="lines+markers",
                ),
                row=1,
                col=column,
            )
        figure.update_xaxes(
            title_text="epoch", tick0=1, dtick=max(1, math.ceil(len(history) / 15)), row=1, col=column
        )
    figure.update_layout(title=title, height=400, legend={"orientation": "h", "y": -0.25})
    return figure


#: Per-epoch diagnostics a run records (history.csv column → panel title).
DIAGNOSTICS = {
    "dead_units": "dead Dense(16) units (fraction)",
    "grad_norm": "gradient norm (probe faces)",
    "val_macro_f1": "validation macro F1",
    "val_classes_predicted": "classes predicted on validation",
}


def diagnostics_figure(
    history: pd.DataFrame, classes: int | None = None, title: str = "Training diagnostics"
):
    """The run's health per epoch: dead bottleneck units, gradient norm, validation macro F1 and how many
    classes the model predicts (``classes``: the total, drawn as a line). Runs made before the
    diagnostics existed get an empty figure with a note."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    present = [column for column in DIAGNOSTICS if column in history.columns]
    figure = make_subplots(
        rows=1, cols=max(1, len(present)), subplot_titles=[DIAGNOSTICS[c] for c in present]
    )
    for column_index, column in enumerate(present, start=1):
        figure.add_trace(
            go.Scatter(x=history["epoch"], y=history[column], mode="lines+markers", showlegend=False),
            row=1,
            col=column_index,
        )
        if column == "val_classes_predicted" and classes:
            figure.add_hline(y=classes, line_dash="dot", row=1, col=column_index)
        if column == "dead_units":
            figure.update_yaxes(range=[-0.02, 1.02], row=1, col=column_index)
        figure.update_xaxes(title_text="epoch", row=1, col=column_index)
    if not present:
        figure.add_annotation(
            text="this run records no diagnostics (made before they existed)", showarrow=False
        )
    figure.update_layout(title=title, height=320)
    return figure


def metrics_table(metrics: RunMetrics, level: str = "frame", as_text: bool = False) -> pd.DataFrame:
    """Per-class precision / recall / F1 / support of a run (``run.outcome``); ``as_text`` writes the
    scores with three decimals (:func:`fer_utils.viz.formatting.score`) for display."""
    table = pd.DataFrame(metrics.scores(level).per_class).T[["precision", "recall", "f1", "support"]]
    table["support"] = table["support"].astype(int)
    table.index.name = "class"
    if as_text:
        for column in ("precision", "recall", "f1"):
            table[column] = table[column].map(score)
    return table


def summary_table(metrics: RunMetrics) -> pd.DataFrame:
    """Headline numbers of a run (``run.outcome``: every registered metric at frame and, when present, video
    level) as a one-column table, each in its metric's format (``—`` where the run predates it)."""
    frame, video = metrics.frame, metrics.video
    rows = {
        "protocol": metrics.protocol,
        "parameters": count(metrics.num_params),
        "test faces": frame.support,
    }
    for level, scores in (("frame", frame), ("video", video)):
        if scores is not None:
            rows |= {f"{m.heading} ({level})": m.format(scores.value(m.name)) for m in registered(level)}
    rows["recipe"] = metrics.recipe_name
    if metrics.baselines:
        rows["always-majority baseline"] = (
            f"{percent(metrics.baselines.majority_rate)} ({metrics.baselines.majority_label})"
        )
    rows["stalled"] = metrics.stalled
    rows["underfit"] = metrics.underfit
    return pd.DataFrame({"value": rows})


def setup_notebook_rendering() -> None:
    """Render plotly figures so they work offline in JupyterLab, Voila and exported HTML alike
    (the mimetype for live frontends plus plotly.js embedded once for static HTML)."""
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype+notebook"


def attribute_table(groups: dict, as_text: bool = False) -> pd.DataFrame:
    """A ``metrics['by_attribute'][name]`` mapping as a table (one row per attribute value); ``as_text``
    writes accuracy in percent and macro F1 with three decimals."""

    table = pd.DataFrame(groups).T[["accuracy", "macro_f1", "support"]].astype({"support": int})
    if as_text:
        table["accuracy"] = table["accuracy"].map(percent)
        table["macro_f1"] = table["macro_f1"].map(score)
    return table


def face_grid_figure(
    grid: np.ndarray, grid_labels: list[str], per_row: int, title: str = "Faces per class (rows)"
):
    """The crops of :func:`fer_utils.faces.cache_overview.face_grid` as one image grid, one class per row,
    the class named once at the start of its row."""
    import plotly.express as px

    figure = px.imshow(
        grid,
        facet_col=0,
        facet_col_wrap=per_row,
        binary_string=True,
        facet_row_spacing=0.02,
        facet_col_spacing=0.01,
        height=160 * len(grid_labels) + 60,
    )
    for annotation in figure.layout.annotations:
        number = int(annotation.text.split("=")[-1])
        annotation.text = grid_labels[number // per_row] if number % per_row == 0 else ""
    figure.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
    return figure.update_layout(title=title)
