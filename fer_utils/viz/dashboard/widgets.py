"""The interactive page: :class:`Dashboard` wires the pure functions of this package to ipywidgets.

Speed: every plot is a :class:`~fer_utils.viz.dashboard.plotly_widget.PlotlyFigure` redrawn in place
(plotly.js travels once per page, in a :class:`~fer_utils.viz.dashboard.plotly_widget.PlotlyLibrary`); a
view switch redraws the heatmap and the comparison but keeps the gallery (rebuilt only when the run,
level or cell changes); figures use a light template. The default drag mode is kept (heatmap clicks only
fire in it).

The page shows the static report's sections (:mod:`.sections`), each built by the report's own function
(protocols, ablation, calibration, scores by attribute, literature), the run sections for the run picked.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from fer_utils.training.results import RunMetrics
from fer_utils.viz.dashboard.cells import LEVELS, VIEWS, has_level, largest_confusion
from fer_utils.viz.dashboard.fragments import (
    STYLE,
    attributes_html,
    header_html,
    message_html,
    no_runs_folder_html,
    per_class_html,
    problems_html,
    runs_overview_html,
    synthetic_html,
)
from fer_utils.viz.dashboard.gallery import GALLERY_PAGE, FaceGallery
from fer_utils.viz.dashboard.plotly_widget import PlotlyFigure, PlotlyLibrary
from fer_utils.viz.dashboard.plots import (
    difference_figure,
    difference_view,
    heatmap_figure,
    run_curves_figure,
)
from fer_utils.viz.dashboard.runs import (
    NoRunsFolder,
    RunChoice,
    find_choice,
    resolve_initial_run,
    resolve_runs_dir,
    run_choices,
)
from fer_utils.viz.dashboard.sections import section_heading
from fer_utils.viz.dashboard.static import (
    ablation_parts,
    calibration_parts,
    literature_section_html,
    protocols_section_html,
)


def _section(widgets, key: str):
    return widgets.HTML(section_heading(key))


class Dashboard:
    """The interactive page. ``widget`` is the root to display; methods are the callbacks (the tests call
    them directly).

    Args:
        runs_dir: folder of run directories (searched at any depth).
        initial_run: run to open first (folder name, path or label).
        gallery_page: faces per gallery page.
    """

    def __init__(
        self, runs_dir: str | os.PathLike, initial_run: str | None = None, gallery_page: int = GALLERY_PAGE
    ):
        import ipywidgets as widgets

        self.widgets = widgets
        self.runs_dir = Path(runs_dir)
        self.gallery_page = gallery_page
        self._busy = False
        self._gallery_key: tuple = ()
        self.status = widgets.HTML()
        self.status.add_class("fer-status")
        self._load_runs()
        title = widgets.HTML(
            STYLE + f'<div style="color:#555">runs folder <code>{html.escape(str(self.runs_dir))}</code> · '
            f"{len(self.choices)} finished run(s)</div>" + synthetic_html(self.choices)
        )
        problems = widgets.HTML(problems_html(self.problems))
        problems.add_class("fer-problems")
        if not self.choices:
            self.widget = widgets.VBox([title, self.status, problems])
        else:
            self._build_controls(initial_run)
            self.widget = widgets.VBox([PlotlyLibrary(), title, self.status, problems, *self._layout()])
            self._connect()
            self.select_run(self.run_menu.value)
        self.widget.add_class("fer-dash")

    def _load_runs(self) -> None:
        try:
            self.choices, self.problems = run_choices(self.runs_dir)
        except ValueError as error:
            self.choices, self.problems = [], {}
            self.status.value = message_html(
                f"<b>Cannot open the runs folder:</b> {html.escape(str(error))}", "error"
            )
            return
        if not self.choices:
            self.status.value = message_html(
                f"<b>No finished runs</b> in <code>{html.escape(str(self.runs_dir))}</code>. "
                "Train one with <code>fer train</code> or notebook 02, then reload this page.",
                "info" if not self.problems else "warning",
            )

    # -- layout ------------------------------------------------------------------------------------

    def _build_controls(self, initial_run) -> None:
        """Every widget of the page, empty; :meth:`select_run` fills them."""
        widgets = self.widgets
        self.run_menu = widgets.Dropdown(
            options=[(choice.label, i) for i, choice in enumerate(self.choices)],
            value=find_choice(self.choices, initial_run),
            description="Run",
            layout=widgets.Layout(width="760px"),
            style={"description_width": "60px"},
        )
        self.header = self._html("fer-run-header")
        self.view_toggle = widgets.ToggleButtons(
            options=list(VIEWS), value="counts", description="View", style={"button_width": "auto"}
        )
        self.view_toggle.add_class("fer-view")
        self.level_toggle = widgets.ToggleButtons(options=list(LEVELS), value="frame", description="Level")
        self.level_toggle.add_class("fer-level")
        self.heatmap = PlotlyFigure()
        self.heatmap_box = widgets.Box([self.heatmap])
        self.heatmap_box.add_class("fer-heatmap")
        self.faces = FaceGallery(widgets, self.status, self.gallery_page)
        self.true_menu, self.pred_menu = self.faces.true_menu, self.faces.pred_menu
        self.gallery, self.gallery_title, self.more_button = (
            self.faces.box,
            self.faces.title,
            self.faces.more_button,
        )
        self.per_class = self._html("fer-per-class")
        self.curves = PlotlyFigure()
        self.curves.add_class("fer-curves")
        self.calibration = self._html("fer-calibration")
        self.reliability = PlotlyFigure()
        self.attributes = self._html("fer-attributes")
        self._build_compare()
        self.protocols = self._html("fer-protocols", protocols_section_html(self.choices))
        self.ablation = self._ablation_widgets()
        self.literature = self._html("fer-literature", literature_section_html(self.choices))
        self.overview = self._html("fer-overview", runs_overview_html(self.choices))

    def _ablation_widgets(self) -> list:
        """The ablation section: the report's text of each ablation folder, each figure redrawn here."""
        shown = []
        for text, figures in ablation_parts(self.choices):
            shown.append(self._html("fer-ablation", text))
            for figure in figures:
                plot = PlotlyFigure()
                plot.show(figure)
                shown.append(plot)
        return shown

    def _html(self, css_class: str, value: str = ""):
        widget = self.widgets.HTML(value)
        widget.add_class(css_class)
        return widget

    def _build_compare(self) -> None:
        widgets = self.widgets
        self.compare_menu = widgets.Dropdown(
            description="Compare with",
            style={"description_width": "100px"},
            layout=widgets.Layout(width="760px"),
        )
        self.compare_note = widgets.HTML()
        self.compare_a, self.compare_b, self.compare_diff = (
            PlotlyFigure(layout=widgets.Layout(width="470px")) for _ in range(3)
        )
        self.compare_box = widgets.HBox(
            [self.compare_a, self.compare_b, self.compare_diff], layout=widgets.Layout(flex_flow="row wrap")
        )
        self.compare_box.add_class("fer-compare")

    def _layout(self) -> list:
        widgets = self.widgets
        return [
            _section(widgets, "runs"),
            self.run_menu,
            self.header,
            _section(widgets, "matrix"),
            widgets.HBox([self.view_toggle, self.level_toggle], layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox(
                [self.heatmap_box, self.faces.panel()], layout=widgets.Layout(align_items="flex-start")
            ),
            _section(widgets, "per_class"),
            self.per_class,
            _section(widgets, "curves"),
            self.curves,
            self.calibration,
            self.reliability,
            _section(widgets, "attributes"),
            self.attributes,
            _section(widgets, "compare"),
            self.compare_menu,
            self.compare_note,
            self.compare_box,
            self.protocols,
            *self.ablation,
            self.literature,
            _section(widgets, "overview"),
            self.overview,
        ]

    def _connect(self) -> None:
        self.run_menu.observe(lambda change: self.select_run(change["new"]), names="value")
        self.view_toggle.observe(lambda change: self._view_changed(), names="value")
        self.level_toggle.observe(lambda change: self._view_changed(), names="value")
        self.true_menu.observe(lambda change: self._pair_changed(), names="value")
        self.pred_menu.observe(lambda change: self._pair_changed(), names="value")
        self.compare_menu.observe(lambda change: self._compare_changed(), names="value")
        self.heatmap.on_click(self._heatmap_clicked)

    # -- state -------------------------------------------------------------------------------------

    @property
    def choice(self) -> RunChoice:
        return self.choices[self.run_menu.value]

    @property
    def level(self) -> str:
        return self.level_toggle.value

    @property
    def normalize(self) -> str | None:
        return VIEWS[self.view_toggle.value]

    @property
    def selected(self) -> tuple[str, str]:
        """The (true, predicted) cell shown in the gallery."""
        return self.true_menu.value, self.pred_menu.value

    # -- callbacks ---------------------------------------------------------------------------------

    def select_run(self, position: int) -> None:
        """Show run number ``position`` of the menu: header, matrix (its largest confusion selected),
        table, curves, calibration, scores by attribute, comparison."""
        if self.run_menu.value != position:
            self.run_menu.value = position  # the observer calls back here
            return
        metrics = self.choice.run.outcome
        self.header.value = header_html(self.choice)
        self._busy = True
        try:
            self._fit_level_toggle(metrics)
            labels = list(metrics.labels)
            self.true_menu.options = self.pred_menu.options = labels
            self.true_menu.value, self.pred_menu.value = largest_confusion(metrics, self.level)
        finally:
            self._busy = False
        self.refresh_matrix(compare=False)
        self.curves.show(self._curves_figure())
        others = [(c.label, i) for i, c in enumerate(self.choices) if i != position]
        self._busy = True
        try:
            self.compare_menu.options = [("— none —", -1), *others]
            self.compare_menu.value = others[0][1] if others else -1
        finally:
            self._busy = False
        self.refresh_compare()
        self._show_calibration(metrics)
        self.attributes.value = attributes_html(metrics)

    def _show_calibration(self, metrics: RunMetrics) -> None:
        text, figure = calibration_parts(metrics.calibration, level=2)
        self.calibration.value = text
        self.reliability.layout.display = "none" if figure is None else None
        if figure is not None:
            self.reliability.show(figure)

    def _fit_level_toggle(self, metrics: RunMetrics) -> None:
        video = has_level(metrics, "video")
        if not video:
            self.level_toggle.value = "frame"
        self.level_toggle.disabled = not video
        self.level_toggle.tooltip = (
            None if video else "no video-level scores: every test face is its own video"
        )

    def _curves_figure(self):
        figure = run_curves_figure(self.choice.run.history)
        return figure.update_layout(width=1000, title_text="", margin={"t": 40})

    def refresh_matrix(self, compare: bool = True) -> None:
        """Redraw the heatmap, the per-class table, the gallery (when its level changed) and, with
        ``compare``, the comparison, for the current view and level."""
        self.per_class.value = per_class_html(self.choice.run.outcome, self.level)
        self._draw_heatmap()
        if self._gallery_key != self._wanted_gallery_key():
            self._fill_gallery()
        if compare:
            self.refresh_compare()

    def _wanted_gallery_key(self) -> tuple:
        return (self.run_menu.value, self.level, *self.selected)

    def _fill_gallery(self):
        self._gallery_key = self._wanted_gallery_key()
        return self.faces.show(self.choice.run, *self.selected, self.level)

    def _draw_heatmap(self) -> None:
        title = f"{self.level} level"
        metrics = self.choice.run.outcome
        self.heatmap.show(
            heatmap_figure(metrics, self.level, self.normalize, title=title, selected=self.selected)
        )

    def _view_changed(self) -> None:
        if not self._busy:
            self.refresh_matrix()

    def _compare_changed(self) -> None:
        if not self._busy:
            self.refresh_compare()

    def _heatmap_clicked(self, predicted_label, true_label) -> None:
        if predicted_label is not None and true_label is not None:
            self.show_cell(true_label, predicted_label)

    def _pair_changed(self) -> None:
        if not self._busy:
            self.show_cell(*self.selected)

    def show_cell(self, true_label: str, predicted_label: str):
        """Fill the gallery with the faces of one cell (first page) and return the cell's table."""
        self._busy, busy = True, self._busy
        try:
            self.true_menu.value, self.pred_menu.value = true_label, predicted_label
        finally:
            self._busy = busy
        self._draw_heatmap()  # moves the outline to this cell
        return self._fill_gallery()

    def show_more(self) -> None:
        """Add the next page of faces to the gallery."""
        self.faces.show_more()

    def refresh_compare(self) -> None:
        """Side-by-side matrices of the current run (A) and the compared run (B) and their difference."""
        position = self.compare_menu.value
        if position is None or position < 0:
            self._hide_compare(message_html("Pick a second run to compare.", "info"))
            return
        a, b = self.choice, self.choices[position]
        problem = self._compare_problem(a, b)
        if problem:
            self._hide_compare(message_html(html.escape(problem), "warning"))
            return
        note = f"<b>A</b> = {html.escape(a.label)}<br><b>B</b> = {html.escape(b.label)}"
        test_a, test_b = a.run.setup.split.test_hash, b.run.setup.split.test_hash
        same_faces = not (test_a and test_b and test_a != test_b)
        level, normalize = self.level, self.normalize
        difference, difference_name = difference_view(normalize, same_faces)
        if not same_faces:
            note += (
                "<br>The runs were tested on different faces, so their counts are not comparable: "
                f"A − B is the difference of their {html.escape(difference_name)}."
            )
        self.compare_note.value = message_html(note, "info")
        self.compare_box.layout.display = "flex"
        figures = (
            heatmap_figure(a.run.outcome, level, normalize, title="A", size=400),
            heatmap_figure(b.run.outcome, level, normalize, title="B", size=400),
            difference_figure(
                a.run.outcome, b.run.outcome, level, difference, title=f"A − B ({difference_name})", size=400
            ),
        )
        for plot, figure in zip((self.compare_a, self.compare_b, self.compare_diff), figures, strict=True):
            plot.show(figure)

    def _compare_problem(self, a: RunChoice, b: RunChoice) -> str | None:
        if not has_level(b.run.outcome, self.level):
            return f"run B has no {self.level}-level scores"
        if a.run.labels != b.run.labels:
            return "the runs have different classes; their matrices cannot be compared cell by cell"
        return None

    def _hide_compare(self, note: str) -> None:
        self.compare_note.value = note
        self.compare_box.layout.display = "none"


def build_dashboard(runs_dir: str | os.PathLike | None = None, initial_run: str | None = None):
    """The dashboard widget for the runs under ``runs_dir`` (see :func:`resolve_runs_dir`).

    Args:
        runs_dir: runs folder; empty → ``$FER_RUNS_DIR`` → ``runs``.
        initial_run: run to open first; empty → ``$FER_INITIAL_RUN``.

    Returns:
        An ``ipywidgets.VBox`` to display (a clear message instead of a traceback when the folder is
        missing, empty or holds only unfinished or malformed runs).
    """
    try:
        folder = resolve_runs_dir(runs_dir)
    except NoRunsFolder as error:
        import ipywidgets as widgets

        return widgets.HTML(STYLE + no_runs_folder_html(error))
    return Dashboard(folder, resolve_initial_run(initial_run)).widget
