"""HTML fragments shared by the dashboard and the static report: messages, the run header, tables in
the page's style. Numbers go through :mod:`fer_utils.viz.formatting` (percent with one decimal, scores
with three)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.training.metrics import headline, registered
from fer_utils.training.results import RunMetrics
from fer_utils.viz import formatting
from fer_utils.viz.dashboard.runs import SYNTHETIC_NOTE, RunChoice
from fer_utils.viz.dashboard.tables import (
    comparison_metrics,
    incomparable_video_scores,
    load_literature,
    overview_metric_columns,
    per_class_table,
    runs_overview,
)
from fer_utils.viz.figures import attribute_table

#: The page's CSS (a ``<style>`` element, package data beside this module).
STYLE = Path(__file__).with_name("style.html").read_text()


def message_html(text: str, kind: str = "info") -> str:
    """A boxed message (``info``, ``warning`` or ``error``) for the page."""
    return f'<div class="fer-message fer-{kind}">{text}</div>'


def no_runs_folder_html(error: Exception) -> str:
    """The message notebook 04 shows when opened without a runs folder: what to run or set."""
    return message_html(f"<b>No runs to show yet.</b> {html.escape(str(error))}.", "info")


def synthetic_html(choices: list[RunChoice]) -> str:
    """A banner saying which runs trained on the synthetic demo set (empty when none did)."""
    demo = [choice for choice in choices if choice.synthetic]
    if not demo:
        return ""
    which = "All runs" if len(demo) == len(choices) else f"{len(demo)} of {len(choices)} runs"
    return message_html(
        f'<b class="fer-synthetic">{which} trained on the {SYNTHETIC_NOTE} set</b>: generated clips of one '
        "face, for trying the suite out. Their scores say nothing about real emotion recognition and are "
        "kept out of the literature comparison.",
        "warning",
    )


def problems_html(problems: dict[str, str]) -> str:
    """A warning listing run folders that could not be opened (unfinished or malformed)."""
    if not problems:
        return ""
    items = "".join(
        f"<li><code>{html.escape(folder)}</code>: {html.escape(reason)}</li>"
        for folder, reason in sorted(problems.items())
    )
    return message_html(
        f"<b>{len(problems)} run folder(s) could not be opened</b> and are left out "
        f"(a run is finished when its <code>metrics.json</code> is written):<ul>{items}</ul>",
        "warning",
    )


def _header_facts(choice: RunChoice) -> list[str]:
    outcome, setup = choice.run.outcome, choice.run.setup
    parts = ("train", "validation", "test")
    split = outcome.split if any(getattr(outcome.split, part) is not None for part in parts) else setup.split
    sizes = " / ".join(
        str(getattr(split, part) if getattr(split, part) is not None else "?") for part in parts
    )
    epochs = outcome.epochs_run if outcome.epochs_run is not None else setup.setting("epochs", "?")
    return [
        f"dataset <b>{html.escape(choice.data_label)}</b>",
        f"protocol <b>{html.escape(str(outcome.protocol))}</b>",
        f"train / validation / test faces <b>{sizes}</b>",
        f"<b>{formatting.count(outcome.num_params)}</b> parameters",
        f"image <b>{setup.image_size or '?'}px</b>",
        f"epochs <b>{epochs}</b>" + (f" (best {outcome.best_epoch})" if outcome.best_epoch else ""),
    ]


def _header_scores(outcome: RunMetrics) -> list[str]:
    scores = [
        f"{'test ' if i == 0 else ''}{html.escape(entry.heading)} <b>{entry.format(outcome.value(entry.name))}</b>"
        for i, entry in enumerate(registered("frame"))
    ]
    if outcome.video:
        scores += [
            f"video {html.escape(entry.heading)} <b>{entry.format(outcome.value(entry.name, 'video'))}</b>"
            for entry in registered("video")
        ]
    baselines = outcome.baselines
    if baselines:
        scores.append(
            f"always {html.escape(baselines.majority_label)}: {formatting.percent(baselines.majority_rate)}"
        )
    elif outcome.majority_rate is not None:
        scores.append(f"majority-class rate {formatting.percent(outcome.majority_rate)}")
    restricted = (outcome.restricted or {}).get("frame")
    if restricted:
        scores.append(
            f"restricted to the mapped classes: accuracy <b>{formatting.percent(restricted['accuracy'])}</b>, "
            f"macro F1 <b>{formatting.score(restricted['macro_f1'])}</b>"
        )
    unmapped = outcome.unmapped_answers
    if unmapped:
        scores.append(
            f"answers on unmapped classes <b>{unmapped['count']}</b> ({formatting.percent(unmapped['share'])})"
        )
    return scores


def header_html(choice: RunChoice) -> str:
    """The run header: dataset (marked synthetic demo when it is), protocol, split sizes, parameter count
    and headline scores; warnings for stalled or underfit runs."""
    run, outcome = choice.run, choice.run.outcome
    text = (
        f'<div class="fer-header"><div class="fer-title">{html.escape(choice.label)}</div>'
        f'<div class="fer-facts">{" · ".join(_header_facts(choice))}</div>'
        f'<div class="fer-facts">{" · ".join(_header_scores(outcome))} · folder '
        f"<code>{html.escape(str(run.path))}</code></div></div>"
    )
    for flag, title in (
        ("stalled", "Stalled run"),
        ("underfit", "Underfit run"),
        ("selection_saturated", "Arbitrary epoch choice"),
    ):
        if getattr(outcome, flag):
            reason = html.escape(str(getattr(outcome, f"{flag}_reason") or ""))
            text += message_html(f"<b>{title}:</b> {reason}", "warning")
    return text


def _default_format(value) -> str:
    if isinstance(value, float | np.floating):
        return formatting.score(value)
    if isinstance(value, int | np.integer):
        return formatting.count(value)
    return "" if value is None else str(value)


def table_html(
    table: pd.DataFrame,
    formats: dict | None = None,
    row_classes: dict | None = None,
    escape: tuple[str, ...] = (),
) -> str:
    """A small DataFrame as an HTML table in the page's style.

    Args:
        table: rows to show; the index becomes the first column.
        formats: column → function(value) → text (default: floats as scores with 3 decimals, ints with
            separators).
        row_classes: index value → CSS class of that row.
        escape: columns whose formatted text is already HTML (not escaped again).
    """
    formats = formats or {}
    row_classes = row_classes or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [table.index.name or "", *table.columns])
    body = []
    for key, *values in table.itertuples(index=True, name=None):
        cells = [f"<td>{html.escape(str(key))}</td>"]
        for column, value in zip(table.columns, values, strict=True):
            text = formats.get(column, _default_format)(value)
            numeric = formatting.is_number(value) or column in formats
            css = ' class="fer-num"' if numeric else ""
            cells.append(f"<td{css}>{text if column in escape else html.escape(text)}</td>")
        body.append(f'<tr class="{row_classes.get(key, "")}">{"".join(cells)}</tr>')
    return f'<table class="fer-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def per_class_html(metrics: RunMetrics, level: str = "frame") -> str:
    """The per-class table as HTML (average rows in italics)."""
    return table_html(
        per_class_table(metrics, level), row_classes={"macro avg": "fer-avg", "weighted avg": "fer-avg"}
    )


def attributes_html(metrics: RunMetrics) -> str:
    """The scores by each sample attribute of the test part (subject, intensity, view…), one table each
    (accuracy in percent, macro F1, faces); a line when the test part has no attribute with two values."""
    if not metrics.by_attribute:
        return (
            "<p>No breakdown: the test part has no attribute (subject, intensity, view…) with two or more "
            "values.</p>"
        )
    return "".join(
        f"<h5>by {html.escape(str(name))}</h5>" + table_html(attribute_table(groups, as_text=True))
        for name, groups in metrics.by_attribute.items()
    )


def _percent_column(value) -> str:
    """A column already in percent ("accuracy %") with one decimal."""
    return "" if pd.isna(value) else formatting.percent_number(float(value) / 100)


def _score_column(value) -> str:
    """A score column ("macro F1") with three decimals; ``—`` where a run lacks it."""
    return "—" if pd.isna(value) else formatting.score(value)


def _params(value) -> str:
    if isinstance(value, str):
        return value
    return formatting.count(value)


def runs_overview_html(choices: list[RunChoice]) -> str:
    """The runs overview as HTML."""
    percent_columns = [
        column for column, (entry, _) in overview_metric_columns().items() if entry.unit == "percent"
    ]
    return table_html(
        runs_overview(choices),
        formats=dict.fromkeys(percent_columns, _percent_column)
        | {column: _score_column for column in overview_metric_columns() if column not in percent_columns},
    )


def _literature_shown(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    shown = table.copy()
    if "params_note" in shown.columns:
        noted = shown["num_params"].isna() & shown["params_note"].notna() & (shown["params_note"] != "")
        shown["num_params"] = shown["num_params"].astype(object)
        shown.loc[noted, "num_params"] = shown.loc[noted, "params_note"]
        shown = shown.drop(columns=["params_note"])
    ours = shown["source"] == "this suite"
    shown = shown.drop(columns=["source"])
    shown.index = pd.RangeIndex(1, len(shown) + 1, name="#")
    shown = shown.rename(
        columns={
            "accuracy_percent": "accuracy %",
            "video_accuracy_percent": "video accuracy %",
            "num_params": "parameters",
        }
    )
    return shown, ours


def literature_html(table: pd.DataFrame, dataset: str = "") -> str:
    """The literature comparison as HTML (this suite's runs highlighted; a note when the paper's tables
    have no row for ``dataset``)."""
    note = ""
    if not (table["source"] == "literature").any():
        known = ", ".join(sorted(load_literature()["dataset"].str.lower().unique()))
        note = message_html(
            f"The paper's Table I / II (as far as sourced in <code>fer_utils/viz/literature.csv</code>) cover "
            f"{html.escape(known)}; there is no literature row for {html.escape(dataset or 'this dataset')}.",
            "info",
        )
    if table.empty:
        return note
    shown, ours = _literature_shown(table)
    return note + table_html(
        shown,
        formats={"accuracy %": _percent_column, "video accuracy %": _percent_column, "parameters": _params},
        row_classes={i: "fer-ours" for i, mine in zip(shown.index, ours, strict=True) if mine},
    )


def stalled_flag(stalled: int, runs: int) -> str:
    """What stands beside a mean that includes stalled runs: `` ⚠ 2 of 2 stalled`` ('' when none)."""
    return f" ⚠ {stalled} of {runs} stalled" if stalled else ""


def protocol_comparison_html(comparison: pd.DataFrame, gaps: dict[str, float]) -> str:
    """The protocol comparison (one row per dataset × protocol, mean ± sd over seeds) and the leakage
    gap paper − subject per dataset."""
    if comparison.empty:
        return message_html("No standalone runs to compare protocols with.", "info")
    incomparable = incomparable_video_scores(comparison)
    rows = []
    for (data, protocol), row in comparison.iterrows():
        shown = {
            "data · protocol": f"{data} · {protocol}",
            "runs (seeds)": int(row["runs"]),
            "test faces per video": f"{row['faces_per_video']:.1f}",
        }
        for stem, entry, level in comparison_metrics():
            text = entry.format_mean_sd(row.get(f"{stem}_mean"), row.get(f"{stem}_sd"))
            if level == "video":
                shown[f"video {entry.heading}"] = f"{text} †" if data in incomparable else text
            elif entry is headline():
                flag = stalled_flag(int(row.get("stalled", 0)), int(row["runs"]))
                shown[f"{entry.heading} (per face)"] = text + flag
            else:
                shown[entry.heading] = text
        rows.append(shown)
    table = pd.DataFrame(rows).set_index("data · protocol")
    text = table_html(table)
    for data, faces in incomparable.items():
        counts = ", ".join(f"{protocol} {value:.1f}" for protocol, value in faces.items())
        text += (
            f'<p class="fer-note">† {html.escape(data)}: video accuracies are not comparable across these '
            f"rows, nor with the per-face accuracy: test videos hold {html.escape(counts)} faces each, and a "
            "video of one or two faces is scored on those alone (a protocol that scores higher per face may "
            "score lower per video).</p>"
        )
    for data, gap in gaps.items():
        text += (
            f'<p class="fer-gap">Leakage gap on {html.escape(data)} (paper − subject accuracy per face): '
            f"<b>{formatting.percent(gap, sign=True)}</b> — what frames of the same person on both sides of "
            "the split add to the score.</p>"
        )
    return text
