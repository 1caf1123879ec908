"""The dashboard's plotly figures: the confusion heatmap (with the selected cell outlined), the
difference of two runs, the training curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fer_utils.training.results import RunMetrics
from fer_utils.viz.dashboard.cells import VIEWS, confusion_counts, difference_matrix, format_cell
from fer_utils.viz.figures import confusion_figure, curves_figure

#: A light template: the default one adds ~10 kB of JSON to every figure sent to the browser.
TEMPLATE = "simple_white"
MARGIN = {"l": 90, "r": 20, "t": 60, "b": 80}


def run_curves_figure(history: pd.DataFrame):
    """The run's training curves (:func:`fer_utils.viz.figures.curves_figure`) sized for the dashboard."""

    return curves_figure(history, title="Training curves").update_layout(height=380, template=TEMPLATE)


def selection_shape(labels: list[str], true_label: str | None, predicted_label: str | None) -> list[dict]:
    """A rectangle around the selected cell (true row, predicted column) as layout ``shapes``; none when
    nothing is selected."""
    if true_label not in labels or predicted_label not in labels:
        return []
    row, column = labels.index(true_label), labels.index(predicted_label)
    return [
        {
            "type": "rect",
            "xref": "x",
            "yref": "y",
            "x0": column - 0.5,
            "x1": column + 0.5,
            "y0": row - 0.5,
            "y1": row + 0.5,
            "line": {"color": "#d62728", "width": 3},
            "name": "selected cell",
        }
    ]


def heatmap_figure(
    metrics: RunMetrics,
    level: str,
    normalize: str | None,
    title: str,
    size: int = 520,
    selected: tuple[str, str] | None = None,
):
    """The confusion heatmap of one run (plotly ``Figure``), the ``selected`` (true, predicted) cell
    outlined."""

    labels = list(metrics.labels)
    figure = confusion_figure(confusion_counts(metrics, level), labels, normalize, title=title)
    figure.update_layout(
        width=size + 40,
        height=size,
        margin=MARGIN,
        title={"font": {"size": 14}},
        template=TEMPLATE,
        shapes=selection_shape(labels, *(selected or (None, None))),
    )
    if normalize is not None:
        figure.update_traces(zmin=0, zmax=1)
    return figure


def difference_view(normalize: str | None, same_test_faces: bool = True) -> tuple[str | None, str]:
    """The view of the difference A − B and its name (a key of :data:`VIEWS`, for its title): the view the
    matrices are shown in, except counts of runs tested on different faces (not comparable cell by cell),
    whose difference is of recalls (row-normalised) instead."""
    if normalize is None and not same_test_faces:
        normalize = "true"
    return normalize, next(name for name, value in VIEWS.items() if value == normalize)


def difference_figure(
    metrics_a: RunMetrics,
    metrics_b: RunMetrics,
    level: str,
    normalize: str | None,
    title: str,
    size: int = 460,
):
    """Heatmap of run A minus run B (red: A higher, blue: B higher)."""
    import plotly.graph_objects as go

    difference = difference_matrix(metrics_a, metrics_b, level, normalize)
    labels = list(metrics_a.labels)
    text = [[format_cell(value, normalize) for value in row] for row in difference]
    bound = float(np.abs(difference).max()) or 1.0
    figure = go.Figure(
        go.Heatmap(
            z=difference,
            x=labels,
            y=labels,
            text=text,
            texttemplate="%{text}",
            colorscale="RdBu",
            reversescale=True,
            zmid=0,
            zmin=-bound,
            zmax=bound,
            hovertemplate="true %{y}<br>predicted %{x}<br>A − B %{text}<extra></extra>",
        )
    )
    figure.update_layout(
        title={"text": title, "font": {"size": 14}},
        xaxis_title="predicted",
        yaxis_title="true",
        yaxis_autorange="reversed",
        width=size + 40,
        height=size,
        margin=MARGIN,
        template=TEMPLATE,
    )
    return figure
