"""The static report (notebook 04 executed by papermill, ``fer report`` / ``fer run``) as a results
section: a title block, a table of contents, the protocol comparison (standalone runs, one row per
protocol), the ablation (table, verdict, figures), per-run detail in collapsible sections with the faces
behind the top confusions as embedded thumbnails, and the literature beside this suite's real-data
runs. plotly.js is embedded once, before the first figure.

The sections are the dashboard's (:mod:`.sections`): the functions here that build the page-level ones
(protocols, ablation, calibration, scores by attribute, literature) build them for the dashboard too."""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from fer_utils import __version__
from fer_utils.training.calibration import reliability_figure
from fer_utils.training.metrics import scores_text
from fer_utils.training.result_parts import Calibration
from fer_utils.viz import formatting
from fer_utils.viz.dashboard.cells import (
    LEVELS,
    cell_faces,
    face_png,
    has_level,
    short_video_id,
    top_confusions,
)
from fer_utils.viz.dashboard.fragments import (
    STYLE,
    attributes_html,
    header_html,
    literature_html,
    message_html,
    no_runs_folder_html,
    per_class_html,
    problems_html,
    protocol_comparison_html,
    runs_overview_html,
    synthetic_html,
    table_html,
)
from fer_utils.viz.dashboard.gallery import open_run_cache
from fer_utils.viz.dashboard.plots import heatmap_figure, run_curves_figure
from fer_utils.viz.dashboard.runs import NoRunsFolder, RunChoice, resolve_runs_dir, run_choices
from fer_utils.viz.dashboard.sections import CONTENTS, SECTIONS, section_heading
from fer_utils.viz.dashboard.tables import (
    leakage_gaps,
    literature_comparison,
    protocol_comparison,
    standalone_runs,
)

#: Faces shown per top confusion, and how many confusions per run.
THUMBNAILS_PER_CELL = 6
TOP_CONFUSIONS = 3
THUMBNAIL_PX = 72


def plotlyjs_html() -> str:
    """plotly.js inline, loaded so that it sets ``window.Plotly`` even on pages that also load require.js
    (nbconvert's do)."""
    from plotly.offline import get_plotlyjs

    return (
        "<script>window.__ferDefine = window.define; window.define = undefined;</script>"
        f"<script>{get_plotlyjs()}</script>"
        "<script>window.define = window.__ferDefine;</script>"
    )


def figure_html(figure) -> str:
    """A plotly figure as a ``<div>`` drawn by the page's ``window.Plotly`` (loaded once)."""
    import plotly.io as pio

    return pio.to_html(figure, full_html=False, include_plotlyjs=False, config={"responsive": True})


def figure_bundle(figure, include_plotlyjs: bool) -> dict:
    """A display bundle for a static plotly figure: plotly's own mime type (JupyterLab renders it) and
    HTML (what nbconvert keeps), with plotly.js inline when ``include_plotlyjs``."""
    div = figure_html(figure)
    if include_plotlyjs:
        div = plotlyjs_html() + div
    return {"application/vnd.plotly.v1+json": json.loads(figure.to_json()), "text/html": div}


# -- title, contents ---------------------------------------------------------------------------------


def _suite_version() -> str:
    return __version__


def title_block_html(choices: list[RunChoice], runs_dir: Path) -> str:
    """The report's title: the data (marked synthetic demo), date, suite version, recipes."""
    data = sorted({choice.data_label for choice in choices}) or ["—"]
    recipes = sorted({choice.run.recipe for choice in choices})
    facts = [
        f"data <b>{html.escape(', '.join(data))}</b>",
        f"date <b>{datetime.now(UTC):%Y-%m-%d}</b>",
        f"fer_utils <b>{html.escape(_suite_version())}</b>",
        f"recipe <b>{html.escape(', '.join(recipes))}</b>",
        f"{len(choices)} finished run(s) in <code>{html.escape(str(runs_dir))}</code>",
    ]
    title = "Facial emotion recognition: results"
    if any(choice.synthetic for choice in choices):
        title += " <span class='fer-synthetic'>(synthetic demo)</span>"
    return (
        f'<div class="fer-header fer-report-title"><div class="fer-title">{title}</div>'
        f'<div class="fer-facts">{" · ".join(facts)}</div></div>' + synthetic_html(choices)
    )


def contents_html(sections: dict[str, str], runs: list[RunChoice]) -> str:
    """The table of contents: the sections, and under "Runs in detail" one link per run."""
    items = []
    for anchor, title in sections.items():
        sub = ""
        if anchor == "runs":
            sub = (
                "<ul>"
                + "".join(f'<li><a href="#{_run_anchor(c)}">{html.escape(c.label)}</a></li>' for c in runs)
                + "</ul>"
            )
        items.append(f'<li><a href="#{anchor}">{html.escape(title)}</a>{sub}</li>')
    return f'<nav class="fer-toc"><b>Contents</b><ol>{"".join(items)}</ol></nav>'


def _run_anchor(choice: RunChoice) -> str:
    return "run-" + "".join(ch if ch.isalnum() else "-" for ch in str(choice.run.path.name)).strip("-")


# -- sections ---------------------------------------------------------------------------------------


def protocols_section_html(choices: list[RunChoice]) -> str:
    """Protocol comparison over the standalone runs (ablation cells are in their own section)."""
    comparison = protocol_comparison(choices)
    return (
        section_heading("protocols", anchor="protocols")
        + "<p>One row per protocol over this folder's standalone runs (mean ± sd over seeds where there "
        "are several). <code>paper</code> splits faces at random, so frames of one video and one person "
        "land on both sides; <code>video</code> and <code>subject</code> keep a video or a person on one "
        "side.</p>" + protocol_comparison_html(comparison, leakage_gaps(comparison))
    )


#: What an ablation folder's analysis wrote (``experiments/ablation/grid.py``'s ``SUMMARY_FILE``): its
#: report table, verdict and the names of its figures' JSON files. The report reads it, never re-analyses.
ABLATION_SUMMARY = "summary.json"


def ablation_folders(choices: list[RunChoice]) -> list[Path]:
    """The ablation folders the runs belong to, in order."""
    return sorted({choice.ablation_dir for choice in choices if choice.ablation_dir is not None})


def bold_markdown_html(text: str) -> str:
    """Escaped HTML of a one-paragraph Markdown text whose only markup is ``**bold**`` (the verdict)."""
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


#: What stands under the ablation heading of a folder without one.
NO_ABLATION = (
    "No ablation among these runs: <code>fer ablate</code> (or <code>fer run</code>) trains one into this "
    "folder."
)


def ablation_parts(choices: list[RunChoice]) -> list[tuple[str, list]]:
    """The ablation section as ``(HTML, figures)`` pieces: its heading (and a line when no run belongs to
    an ablation), then one piece per ablation folder (:func:`ablation_section_html`; a warning for one
    that could not be drawn, never the end of the page)."""
    folders = ablation_folders(choices)
    heading = section_heading("ablation", anchor="ablation")
    parts = [(heading if folders else heading + message_html(NO_ABLATION, "info"), [])]
    for folder in folders:
        try:
            parts.append(ablation_section_html(folder))
        except Exception as error:  # noqa: BLE001  (one unreadable ablation never sinks the page)
            parts.append((ablation_problem_html(folder, error), []))
    return parts


def ablation_section_html(folder: Path) -> tuple[str, list]:
    """One ablation folder as its files say (``summary.json``: the table and verdict; ``curves.json``,
    ``gap_heatmap.json``: the figures), returned apart: the text, and the figures drawn after it. The
    analysis is the ablation's (``fer ablate``); the report only reads what it wrote."""
    files = ", ".join(
        f"<code>{name}</code>"
        for name in ("table.md", ABLATION_SUMMARY, "curves.html", "gap_heatmap.html")
        if (folder / name).exists()
    )
    files = f" ({files})" if files else ""
    intro = (
        f"<h3>{html.escape(folder.name)}</h3><p>Folder <code>{html.escape(str(folder))}</code>{files}.</p>"
    )
    try:
        summary = json.loads((folder / ABLATION_SUMMARY).read_text())
        table = pd.DataFrame(summary["report_table"]).set_index("configuration")
        verdict_text = summary["verdict"]["text"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        reason = (
            f"{ABLATION_SUMMARY} is missing"
            if isinstance(error, FileNotFoundError)
            else f"{ABLATION_SUMMARY} lacks the report's table ({html.escape(str(error))}): it predates it"
        )
        return intro + message_html(
            f"The ablation could not be read: {reason}. Analyse the folder again with "
            f"<code>fer ablate --out {html.escape(str(folder))} …</code> (finished runs are kept).",
            "warning",
        ), []
    import plotly.io as pio  # deferred: plotly is heavy and only an ablation's figures need it here

    figures, problems = [], []
    named = summary.get("figures") if isinstance(summary.get("figures"), dict) else {}
    for name in ("curves", "gap_heatmap"):
        try:
            path = ablation_file(folder, named.get(name, f"{name}.json"))
            if path.exists():
                figures.append(pio.read_json(path))
        except (OSError, ValueError, TypeError) as error:
            problems.append(f"figure {html.escape(name)}: {html.escape(str(error).splitlines()[0])}")
    verdict = f'<p class="fer-verdict"><b>Verdict.</b> {bold_markdown_html(verdict_text)}</p>'
    notes = (
        message_html("Not drawn: " + "; ".join(problems) + ". Analyse the folder again.", "warning")
        if problems
        else ""
    )
    return intro + table_html(table) + verdict + notes, figures


def ablation_file(folder: Path, name) -> Path:
    """A file an ablation's ``summary.json`` names, inside the ablation folder; ValueError for a name that
    is not a relative path or resolves outside the folder (``..``, an absolute path, a link out)."""
    if not isinstance(name, str) or not name or Path(name).is_absolute():
        raise ValueError(f"{name!r} is not a file name inside the ablation folder")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ValueError(f"{name!r} lies outside the ablation folder")
    return path


def face_thumbnails_html(choice: RunChoice, level: str = "frame") -> str:
    """The faces behind the run's largest confusions as embedded PNG thumbnails (static drill-down)."""
    outcome = choice.run.outcome
    confusions = top_confusions(outcome, level, TOP_CONFUSIONS)
    if not confusions:
        return "<p>No confusions: every test face is on the diagonal.</p>"
    cache = open_run_cache(choice.run.setup)
    if isinstance(cache, str):
        return message_html(html.escape(cache) + " — no thumbnails.", "warning")
    labels = list(outcome.labels)
    blocks = []
    for true_label, predicted_label, count in confusions:
        faces = cell_faces(choice.run.predictions, labels, true_label, predicted_label, level)
        shown = faces.head(THUMBNAILS_PER_CELL)
        try:
            pixels = cache.faces(shown["face_id"].to_numpy())
        except (IndexError, ValueError, OSError) as error:
            return message_html(
                f"faces could not be read from the cache ({html.escape(str(error))}) — no thumbnails.",
                "warning",
            )
        cards = "".join(_thumbnail_html(row, pixels[i]) for i, row in enumerate(shown.itertuples()))
        blocks.append(
            f'<div class="fer-confusion"><div><b>{count}</b> true <b>{html.escape(true_label)}</b> → '
            f"predicted <b>{html.escape(predicted_label)}</b> (most confident {len(shown)})</div>"
            f'<div class="fer-thumbs">{cards}</div></div>'
        )
    return "".join(blocks)


def _thumbnail_html(row, face) -> str:
    data = base64.b64encode(face_png(face)).decode("ascii")
    full = html.escape(str(getattr(row, "media_path", "") or row.video_id), quote=True)
    return (
        f'<figure class="fer-thumb" title="{full}"><img src="data:image/png;base64,{data}" '
        f'width="{THUMBNAIL_PX}" height="{THUMBNAIL_PX}" alt="{html.escape(short_video_id(row.video_id))}">'
        f"<figcaption>{html.escape(short_video_id(row.video_id)).replace('_', '_<wbr>')}<br>"
        f"frame {row.frame_index}{_time_text(row)} · p = {row.confidence:.2f}</figcaption></figure>"
    )


def _time_text(row) -> str:
    """`` · 1.47 s`` for a face of a video (its time in the clip), '' for a still (time 0) or unknown."""
    seconds = getattr(row, "timestamp_s", None)
    return f" · {float(seconds):.2f} s" if seconds is not None and pd.notna(seconds) and seconds > 0 else ""


def run_detail_html(choice: RunChoice) -> str:
    """One run as a collapsible section: header, then the run's sections (:data:`.sections.RUN_SECTIONS`):
    matrices (counts, recall) and the faces behind its top confusions, per-class scores, training curves,
    calibration, scores by attribute."""
    outcome = choice.run.outcome
    levels = [level for level in LEVELS if has_level(outcome, level)]
    parts = [header_html(choice), section_heading("matrix", 4)]
    for level in levels:
        figures = [
            heatmap_figure(outcome, level, n, title=f"{level} level", size=460) for n in (None, "true")
        ]
        parts.append('<div class="fer-row">' + "".join(figure_html(f) for f in figures) + "</div>")
    parts.append("<h5>The faces behind the largest confusions</h5>" + face_thumbnails_html(choice))
    parts.append(section_heading("per_class", 4))
    parts += [f"<h5>{level} level</h5>" + per_class_html(outcome, level) for level in levels]
    parts.append(section_heading("curves", 4) + figure_html(run_curves_figure(choice.run.history)))
    parts.append(calibration_html(outcome.calibration))
    parts.append(section_heading("attributes", 4) + attributes_html(outcome))
    summary = f"{html.escape(choice.label)} — {html.escape(scores_text(outcome.frame, 'frame'))}"
    return (
        f'<details class="fer-run" id="{_run_anchor(choice)}"><summary>{summary}</summary>'
        + "".join(parts)
        + "</details>"
    )


def calibration_parts(calibration: Calibration | dict | None, level: int = 4) -> tuple[str, object | None]:
    """The run's calibration section as its text (heading, temperature, test ECE before and after
    scaling) and its reliability diagram (None for runs recorded before calibration existed: the text
    says so)."""
    heading = section_heading("calibration", level)
    calibration = Calibration.from_json(calibration)
    if not calibration or not calibration.temperature:
        return heading + "<p>Not recorded: this run was trained before calibration existed.</p>", None
    return heading + f"<p>{html.escape(calibration_sentence(calibration))}</p>", reliability_figure(
        calibration
    )


def calibration_html(calibration: Calibration | dict | None) -> str:
    """:func:`calibration_parts` as one HTML piece (the diagram drawn by the page's plotly.js)."""
    text, figure = calibration_parts(calibration)
    return text + (figure_html(figure) if figure is not None else "")


def calibration_sentence(calibration: Calibration) -> str:
    """The calibration in words: the temperature applied and why (kept only where it lowered the ECE of
    the validation part that fitted it), then the test part's ECE before and after, better or worse."""
    before, after = calibration.test_ece_before, calibration.test_ece_after
    if calibration.kept is False:
        applied = (
            f"No temperature applied: the one fitted on the validation part "
            f"({calibration.fitted_temperature:.3f}) did not lower its expected calibration error "
            f"({formatting.score(calibration.fit_ece_before)} → {formatting.score(calibration.fit_ece_after)}), "
            "so fer predict reports the raw softmax."
        )
    else:
        applied = f"Temperature {calibration.temperature:.3f} fitted on the validation part."
    if calibration.kept is False or math.isclose(before, after):
        change = f"Test part: expected calibration error {formatting.score(before)}, unchanged."
    else:
        verdict = "better" if after < before else "worse"
        change = (
            f"Test part: expected calibration error {formatting.score(before)} before scaling, "
            f"{formatting.score(after)} after ({verdict}; what fer predict reports)."
        )
    return f"{applied} {change} On the diagonal a confidence of 0.9 is right 90 % of the time."


def isolated_run_detail_html(choice: RunChoice) -> str:
    """:func:`run_detail_html`, or a warning naming the run and why it could not be drawn: one run the
    validation did not catch never sinks the report."""
    try:
        return run_detail_html(choice)
    except Exception as error:  # noqa: BLE001  (whatever one run's files hold, the others are drawn)
        return message_html(
            f"<b>Run <code>{html.escape(choice.name)}</code> could not be drawn</b> and is left out: "
            f"{html.escape(type(error).__name__)}: {html.escape(str(error))}",
            "warning",
        )


def literature_section_html(choices: list[RunChoice]) -> str:
    """Per real dataset, the paper's tables beside this suite's runs on it; with no real-data run, a note
    and the paper's tables on every dataset (each row naming its dataset)."""
    parts = [section_heading("literature", anchor="literature")]
    real = sorted({c.dataset for c in choices if not c.synthetic})
    if any(c.synthetic for c in choices):
        parts.append(
            message_html(
                "Runs on the <b>synthetic demo</b> set are left out here: published numbers are measured "
                "on real recordings and are not comparable.",
                "info",
            )
        )
    for dataset in real:
        parts.append(
            f"<h3>The paper's Table I / II on {html.escape(dataset)} beside this suite's runs</h3>"
            + literature_html(literature_comparison(choices, dataset), dataset)
        )
    if not real:
        parts.append(
            "<h3>The paper's Table I / II, for reference</h3>"
            + literature_html(literature_comparison(choices, None))
        )
    return "".join(parts)


#: The report's "Compare two runs": what the static page cannot do, and where it is done.
COMPARE_NOTE = (
    "Interactive only: <code>fer dashboard RUNS_DIR</code> puts two runs' confusion matrices side by side "
    "with their difference A − B, in the view picked there. This report shows each run's matrices in its "
    "section above."
)


def compare_section_html() -> str:
    """The report's "Compare two runs" section: a line saying it is the dashboard's."""
    return section_heading("compare", anchor="compare") + message_html(COMPARE_NOTE, "info")


# -- the report ---------------------------------------------------------------------------------------


def display_report(runs_dir: str | os.PathLike | None = None) -> None:
    """Display the static report in a notebook (used when papermill executes notebook 04 in report
    mode): :func:`report_parts`, one display each."""
    from IPython.display import HTML, display

    for part in report_parts(runs_dir):
        display(HTML(part))


def report_parts(runs_dir: str | os.PathLike | None = None) -> list[str]:
    """The static report as HTML pieces: title, contents, protocols, ablation, runs overview, runs in
    detail, comparison, literature (or the message saying why there is nothing to show)."""
    parts = [STYLE]
    try:
        runs_dir = resolve_runs_dir(runs_dir)
    except NoRunsFolder as error:
        return [*parts, no_runs_folder_html(error)]
    try:
        choices, problems = run_choices(runs_dir)
    except ValueError as error:
        return [
            *parts,
            message_html(f"<b>Cannot open the runs folder:</b> {html.escape(str(error))}", "error"),
        ]
    parts.append(problems_html(problems))
    if not choices:
        return [
            *parts,
            message_html(f"<b>No finished runs</b> in <code>{html.escape(str(runs_dir))}</code>.", "info"),
        ]
    standalone = standalone_runs(choices)
    sections = {key: SECTIONS[key] for key in CONTENTS}
    parts.append(plotlyjs_html() + title_block_html(choices, runs_dir) + contents_html(sections, standalone))
    parts.append(protocols_section_html(choices))
    parts += [
        text + "".join(figure_html(figure) for figure in figures) for text, figures in ablation_parts(choices)
    ]
    overview = section_heading("overview", 3) + runs_overview_html(standalone)
    if len(standalone) < len(choices):
        overview += f"<p>{len(choices) - len(standalone)} ablation grid run(s) are summarised above.</p>"
    parts.append(section_heading("runs", anchor="runs") + overview)
    parts += [isolated_run_detail_html(choice) for choice in standalone]
    parts.append(compare_section_html())
    parts.append(literature_section_html(choices))
    return parts


def ablation_problem_html(folder: Path, error: Exception) -> str:
    """The ablation section of a folder that could not be drawn: its name and why, in one warning."""
    reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return f"<h3>{html.escape(folder.name)}</h3>" + message_html(
        f"The ablation <code>{html.escape(str(folder))}</code> could not be drawn ({html.escape(reason)}); "
        "the rest of the report is complete.",
        "warning",
    )
