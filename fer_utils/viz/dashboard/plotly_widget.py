"""Plotly figures as small anywidgets that are redrawn in place.

plotly's own ``FigureWidget`` ships plotly.js (5 MB) inside every widget instance and its in-place edits
do not reach the browser in Voila 0.5, so a view switch meant a new widget and 5 MB more per switch.
Here :class:`PlotlyLibrary` sends plotly.js once per page, and each :class:`PlotlyFigure` holds only
its figure as JSON: changing :attr:`PlotlyFigure.figure` redraws the same plot with ``Plotly.react``,
and a click on the plot calls the Python callback given to :meth:`PlotlyFigure.on_click`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import anywidget
import numpy as np
import traitlets

MODULE = (Path(__file__).with_name("plotly_widget.js")).read_text()


class PlotlyLibrary(anywidget.AnyWidget):
    """plotly.js itself (the copy bundled with the plotly package), loaded once as a page script.
    Put one in the page; every :class:`PlotlyFigure` waits for it."""

    _esm = MODULE
    source = traitlets.Unicode().tag(sync=True)

    def __init__(self, **kwargs):
        from plotly.offline import get_plotlyjs

        super().__init__(source=get_plotlyjs(), **kwargs)
        self.layout.display = "none"


class PlotlyFigure(anywidget.AnyWidget):
    """One plotly figure; :meth:`show` replaces it in place. ``shown`` is the plotly ``Figure`` on
    display (``None`` before the first)."""

    _esm = MODULE
    figure = traitlets.Dict().tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.shown = None
        self._click_callbacks: list[Callable[[object, object], None]] = []
        self.on_msg(self._message)

    def show(self, figure) -> None:
        """Draw a plotly ``Figure`` in this widget (the browser redraws the same plot)."""
        self.shown = figure
        self.figure = plain_json(figure.to_plotly_json())

    def on_click(self, callback: Callable[[object, object], None]) -> None:
        """Call ``callback(x, y)`` with the clicked point's coordinates (for a heatmap: column and row
        labels)."""
        self._click_callbacks.append(callback)

    def _message(self, widget, content, buffers) -> None:
        if isinstance(content, dict) and content.get("event") == "click":
            for callback in self._click_callbacks:
                callback(content.get("x"), content.get("y"))


def plain_json(value):
    """A plotly JSON structure with its typed arrays (``{"dtype", "bdata"}``, as plotly ≥ 6 writes NumPy
    arrays) turned back into lists: plain JSON the widget can sync and the browser reads as arrays."""
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            if "shape" in value:
                array = array.reshape([int(side) for side in str(value["shape"]).split(",")])
            return array.tolist()
        return {key: plain_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
