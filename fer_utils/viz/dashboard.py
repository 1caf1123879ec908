"""The results dashboard (``notebooks/04_results.ipynb`` served by Voila): explore confusion matrices
down to the faces.

The logic lives in small pure functions (run labels, matrix views, which faces a cell maps to, run
differences, the literature table) that the tests call without a browser; :class:`Dashboard` wires
them to ipywidgets and plotly ``FigureWidget`` heatmaps. Heatmaps are kept out of ``Tab`` widgets
(a ``FigureWidget`` inside a ``Tab`` renders empty in Voila 0.5, voila#1533) and the default drag mode is
kept (heatmap clicks only fire in it).

Video-level cells: a video's prediction is the mean of its faces' class probabilities (as in
:func:`fer_utils.training.evaluate.video_level`); the gallery shows one representative face per video, the
video's face with the highest probability for the video's predicted class, captioned with the video's
mean probability and its number of faces.

``fer dashboard RUNS_DIR`` serves the notebook with Voila on 127.0.0.1; the runs folder reaches the
notebook through the environment variable ``FER_RUNS_DIR`` (and ``FER_INITIAL_RUN``), read when the
notebook's ``runs_dir`` parameter is empty.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.paths import NOTEBOOKS_DIR, PROJECT_ROOT

DASHBOARD_NOTEBOOK = NOTEBOOKS_DIR / "04_results.ipynb"
LITERATURE_CSV = Path(__file__).with_name("literature.csv")
RUNS_DIR_ENV = "FER_RUNS_DIR"
INITIAL_RUN_ENV = "FER_INITIAL_RUN"

#: Matrix views: button label → ``normalize`` argument of :func:`fer_utils.viz.figures.normalize_matrix`.
VIEWS = {
    "counts": None,
    "recall (row-normalised)": "true",
    "precision (column-normalised)": "pred",
}
LEVELS = ("frame", "video")
#: Faces shown per gallery page ("show more" adds another page).
GALLERY_PAGE = 48
FACE_DISPLAY_PX = 96


# ----------------------------------------------------------------------------------------------------
# Runs: discovery and labels
# ----------------------------------------------------------------------------------------------------


@dataclass
class RunChoice:
    """A finished run with the label it has in the run menus."""

    label: str
    run: object  # fer_utils.training.rundir.Run

    @property
    def name(self) -> str:
        return self.run.name


def resolve_runs_dir(runs_dir: str | os.PathLike | None = None) -> Path:
    """The runs folder: ``runs_dir`` if given, else ``$FER_RUNS_DIR``, else ``runs``.

    A relative path is taken from the current folder, or from the project root when it does not exist
    there (Voila and papermill run the notebook inside ``notebooks/``).
    """
    text = str(runs_dir) if runs_dir else os.environ.get(RUNS_DIR_ENV, "") or "runs"
    path = Path(text).expanduser()
    if not path.is_absolute() and not path.exists() and (PROJECT_ROOT / path).exists():
        path = PROJECT_ROOT / path
    return path.resolve()


def resolve_initial_run(initial_run: str | None = None) -> str | None:
    """The run to open first: ``initial_run`` if given, else ``$FER_INITIAL_RUN``, else None."""
    return initial_run or os.environ.get(INITIAL_RUN_ENV) or None


def _short_rate(rate: float) -> str:
    text = f"{float(rate):g}"
    return text[1:] if text.startswith("0.") else text


def _short_factor(value: float) -> str:
    value = float(value)
    if value == 0:
        return "0"
    return np.format_float_scientific(value, trim="-", exp_digits=1)


def run_label(config: dict, metrics: dict | None = None) -> str:
    """Menu label of a run, grouped by dataset, protocol and configuration.

    Example: ``"ravdess · subject · drop(.3,.5,.5) l1=1e-3 · seed 0"``; the image size is added when it
    is not the paper's 180 px and the fold when the protocol has folds beyond the first.
    """
    metrics = metrics or {}
    dataset = config.get("dataset") or metrics.get("dataset") or "?"
    protocol = config.get("protocol") or metrics.get("protocol") or "?"
    parts = [str(dataset), str(protocol)]
    recipe = metrics.get("recipe_label") or config.get("recipe_label") or config.get("recipe")
    if recipe:
        parts.append(str(recipe))
    dropout = config.get("dropout")
    setting = []
    if dropout is not None:
        setting.append("drop(" + ",".join(_short_rate(rate) for rate in dropout) + ")")
    if config.get("l1") is not None:
        setting.append(f"l1={_short_factor(config['l1'])}")
    image_size = config.get("image_size")
    if image_size and int(image_size) != 180:
        setting.append(f"{int(image_size)}px")
    if setting:
        parts.append(" ".join(setting))
    seed = f"seed {config['seed']}" if config.get("seed") is not None else ""
    fold = (config.get("split") or {}).get("fold")
    if fold:
        seed += f" fold {fold}"
    if seed:
        parts.append(seed.strip())
    return " · ".join(parts)


def _sort_key(run) -> tuple:
    config = run.config
    return (
        str(config.get("dataset", "")),
        str(config.get("protocol", "")),
        tuple(config.get("dropout") or ()),
        float(config.get("l1") or 0),
        int(config.get("image_size") or 0),
        int(config.get("seed") or 0),
        run.name,
    )


def run_choices(runs_dir: str | os.PathLike) -> tuple[list[RunChoice], dict[str, str]]:
    """Finished runs under ``runs_dir`` as menu choices (sorted by dataset / protocol / configuration,
    labels made unique with the run folder's name) and, per unreadable run folder, why.

    Raises:
        ValueError: ``runs_dir`` does not exist.
    """
    from fer_utils.training.rundir import list_runs

    runs, problems = list_runs(runs_dir)
    runs = sorted(runs, key=_sort_key)
    labels = [run_label(run.config, run.metrics) for run in runs]
    choices = []
    for run, label in zip(runs, labels, strict=True):
        if labels.count(label) > 1:
            label = f"{label} · {run.name}"
        choices.append(RunChoice(label, run))
    return choices, problems


def find_choice(choices: list[RunChoice], wanted: str | None) -> int:
    """Position of the run named ``wanted`` (folder name, relative path or label); 0 when not given or
    not found."""
    if not wanted:
        return 0
    for position, choice in enumerate(choices):
        if wanted in (choice.name, choice.label, str(choice.run.path)) or str(choice.run.path).endswith(
            "/" + wanted.strip("/")
        ):
            return position
    return 0


# ----------------------------------------------------------------------------------------------------
# Matrices and the faces behind a cell
# ----------------------------------------------------------------------------------------------------


def has_level(metrics: dict, level: str) -> bool:
    """Whether the run has scores at ``level`` (``frame`` always; ``video`` when faces share videos)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    return bool(metrics.get(level))


def confusion_counts(metrics: dict, level: str = "frame") -> np.ndarray:
    """The confusion matrix counts at ``level`` (rows true, columns predicted, order = labels)."""
    if not has_level(metrics, level):
        raise ValueError(f"this run has no {level}-level scores (every face is its own video)")
    return np.asarray(metrics[level]["confusion_matrix"], dtype=int)


def matrix_view(metrics: dict, level: str = "frame", normalize: str | None = None) -> np.ndarray:
    """The matrix shown for a view: counts, row-normalised (``'true'``, recall) or column-normalised
    (``'pred'``, precision)."""
    from fer_utils.viz.figures import normalize_matrix

    return normalize_matrix(confusion_counts(metrics, level), normalize)


def format_cell(value: float, normalize: str | None) -> str:
    """A cell's text as the heatmap writes it."""
    return f"{value:.0f}" if normalize is None else f"{value:.2f}"


def video_predictions(predictions: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """One row per test video: true and predicted label (mean class probabilities over its faces), the
    video's confidence, its number of faces and a representative face (its face with the highest
    probability for the video's predicted class)."""
    from fer_utils.training.evaluate import probability_columns, video_level

    videos = video_level(predictions, labels)
    columns = probability_columns(labels)
    videos["confidence"] = videos[columns].to_numpy().max(axis=1)
    class_of = {label: i for i, label in enumerate(labels)}
    predicted_class = videos.set_index("video_id")["predicted_label"].map(class_of)
    faces = predictions[["face_id", "video_id", "frame_index"]].copy()
    rows = np.arange(len(faces))
    faces["predicted_prob"] = predictions[columns].to_numpy()[rows, faces["video_id"].map(predicted_class)]
    best = faces.sort_values(["predicted_prob", "face_id"], ascending=[False, True]).drop_duplicates(
        "video_id"
    )
    best = best.set_index("video_id")[["face_id", "frame_index"]]
    videos = videos.join(best, on="video_id")
    return videos


def cell_faces(
    predictions: pd.DataFrame,
    labels: list[str],
    true_label: str,
    predicted_label: str,
    level: str = "frame",
) -> pd.DataFrame:
    """The test faces behind one confusion-matrix cell, most confident first.

    Args:
        predictions: a run's ``predictions.csv``.
        labels: the run's class order.
        true_label, predicted_label: the cell (the diagonal gives the correct faces).
        level: ``frame`` (one row per face) or ``video`` (one row per video, with its representative face).

    Returns:
        DataFrame with ``face_id, video_id, frame_index, confidence`` (probability of the predicted class;
        for videos the mean over the video's faces) and, at video level, ``faces``.
    """
    for name in (true_label, predicted_label):
        if name not in labels:
            raise ValueError(f"unknown class {name!r}; this run's classes are {', '.join(labels)}")
    if level == "frame":
        table = predictions[
            (predictions["true_label"] == true_label) & (predictions["predicted_label"] == predicted_label)
        ]
        table = table.assign(confidence=table[f"prob_{predicted_label}"])
        columns = ["face_id", "video_id", "frame_index", "confidence"]
    elif level == "video":
        videos = video_predictions(predictions, labels)
        table = videos[(videos["true_label"] == true_label) & (videos["predicted_label"] == predicted_label)]
        columns = ["face_id", "video_id", "frame_index", "confidence", "faces"]
    else:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    table = table.sort_values(["confidence", "face_id"], ascending=[False, True], kind="stable")
    return table[columns].reset_index(drop=True)


def difference_matrix(
    metrics_a: dict, metrics_b: dict, level: str = "frame", normalize: str | None = None
) -> np.ndarray:
    """Run A's matrix minus run B's in the same view.

    Raises:
        ValueError: the runs have different classes, or one lacks ``level``.
    """
    if list(metrics_a["labels"]) != list(metrics_b["labels"]):
        raise ValueError(
            "the two runs have different classes "
            f"({', '.join(metrics_a['labels'])} vs {', '.join(metrics_b['labels'])}); "
            "their matrices cannot be subtracted"
        )
    return matrix_view(metrics_a, level, normalize) - matrix_view(metrics_b, level, normalize)


def face_png(face: np.ndarray) -> bytes:
    """A uint8 face (H, W) or (H, W, C) as PNG bytes."""
    import cv2

    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(face))
    if not ok:
        raise ValueError(f"could not encode a face of shape {np.shape(face)} as PNG")
    return encoded.tobytes()


# ----------------------------------------------------------------------------------------------------
# Tables: per class, literature
# ----------------------------------------------------------------------------------------------------


def per_class_table(metrics: dict, level: str = "frame") -> pd.DataFrame:
    """Per-class precision / recall / F1 / support, then macro and weighted averages."""
    from fer_utils.viz.figures import metrics_table

    table = metrics_table(metrics, level)
    scores = metrics[level]
    support = int(table["support"].sum())
    averages = pd.DataFrame(
        {
            "precision": [
                table["precision"].mean(),
                np.average(table["precision"], weights=table["support"]),
            ],
            "recall": [table["recall"].mean(), np.average(table["recall"], weights=table["support"])],
            "f1": [scores["macro_f1"], scores["weighted_f1"]],
            "support": [support, support],
        },
        index=pd.Index(["macro avg", "weighted avg"], name="class"),
    )
    if not support:
        averages[["precision", "recall"]] = 0.0
    combined = pd.concat([table, averages])
    combined["support"] = combined["support"].astype(int)
    return combined


def runs_overview(choices: list[RunChoice]) -> pd.DataFrame:
    """One row per finished run: protocol, test faces, frame / video accuracy %, macro F1, parameters and
    whether it stalled (index: the run's menu label)."""
    rows = []
    for choice in choices:
        metrics = choice.run.metrics
        video = metrics.get("video")
        rows.append(
            {
                "run": choice.label,
                "protocol": metrics["protocol"],
                "test faces": int(metrics["frame"].get("support", len(choice.run.predictions))),
                "accuracy %": 100 * metrics["frame"]["accuracy"],
                "video accuracy %": 100 * video["accuracy"] if video else np.nan,
                "macro F1": metrics["frame"]["macro_f1"],
                "parameters": int(metrics["num_params"]),
                "stalled": "yes" if metrics.get("stalled") else "",
                "underfit": "yes" if metrics.get("underfit") else "",
            }
        )
    columns = [
        "run",
        "protocol",
        "test faces",
        "accuracy %",
        "video accuracy %",
        "macro F1",
        "parameters",
        "stalled",
        "underfit",
    ]
    return pd.DataFrame(rows, columns=columns).set_index("run")


def runs_overview_html(choices: list[RunChoice]) -> str:
    """The runs overview as HTML."""
    return table_html(runs_overview(choices), formats={"accuracy %": _percent, "video accuracy %": _percent})


def load_literature(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The paper's literature comparison (Table I / II) as far as it could be sourced: one row per model
    and dataset with accuracy %, parameter count (may be empty) and citation."""
    table = pd.read_csv(path or LITERATURE_CSV, comment="#")
    required = {"model", "dataset", "accuracy_percent", "num_params", "citation"}
    missing = required - set(table.columns)
    if missing:
        raise ValueError(f"literature table lacks columns {sorted(missing)}")
    return table


def literature_comparison(
    choices: list[RunChoice], dataset: str, literature: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Literature models on ``dataset`` beside this suite's finished runs on it (parameter counts from
    the runs' ``metrics.json``), highest accuracy first.

    Returns:
        DataFrame with ``model, source, protocol, accuracy_percent, video_accuracy_percent, num_params,
        params_note, citation``.
    """
    literature = load_literature() if literature is None else literature
    wanted = dataset.strip().lower()
    rows = []
    for row in literature[literature["dataset"].str.lower() == wanted].itertuples():
        rows.append(
            {
                "model": row.model,
                "source": "literature",
                "protocol": row.evaluation if pd.notna(row.evaluation) else "",
                "accuracy_percent": float(row.accuracy_percent),
                "video_accuracy_percent": np.nan,
                "num_params": row.num_params if pd.notna(row.num_params) else np.nan,
                "params_note": getattr(row, "params_note", ""),
                "citation": row.citation,
            }
        )
    for choice in choices:
        metrics = choice.run.metrics
        if str(metrics.get("dataset") or choice.run.config.get("dataset", "")).lower() != wanted:
            continue
        video = metrics.get("video")
        rows.append(
            {
                "model": f"this suite: {choice.label}",
                "source": "this suite",
                "protocol": metrics["protocol"],
                "accuracy_percent": round(100 * metrics["frame"]["accuracy"], 2),
                "video_accuracy_percent": round(100 * video["accuracy"], 2) if video else np.nan,
                "num_params": metrics["num_params"],
                "params_note": "",
                "citation": str(choice.run.path),
            }
        )
    columns = [
        "model",
        "source",
        "protocol",
        "accuracy_percent",
        "video_accuracy_percent",
        "num_params",
        "params_note",
        "citation",
    ]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("accuracy_percent", ascending=False, kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------
# HTML pieces
# ----------------------------------------------------------------------------------------------------

#: The dashboard's CSS (a ``<style>`` element, package data beside this module).
STYLE = Path(__file__).with_name("dashboard_style.html").read_text()


def message_html(text: str, kind: str = "info") -> str:
    """A boxed message (``info``, ``warning`` or ``error``) for the page."""
    return f'<div class="fer-message fer-{kind}">{text}</div>'


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


def header_html(choice: RunChoice) -> str:
    """The run header: dataset, protocol, split sizes, parameter count and headline scores."""
    run = choice.run
    metrics, config = run.metrics, run.config
    split = metrics.get("split") or config.get("split") or {}
    sizes = " / ".join(str(split.get(part, "?")) for part in ("train", "validation", "test"))
    facts = [
        f"dataset <b>{html.escape(str(metrics.get('dataset') or config.get('dataset')))}</b>",
        f"protocol <b>{html.escape(str(metrics['protocol']))}</b>",
        f"train / validation / test faces <b>{sizes}</b>",
        f"<b>{int(metrics['num_params']):,}</b> parameters",
        f"image <b>{config.get('image_size', '?')}px</b>",
        f"epochs <b>{metrics.get('epochs_run', config.get('epochs', '?'))}</b>"
        + (f" (best {metrics['best_epoch']})" if metrics.get("best_epoch") else ""),
    ]
    scores = [
        f"test accuracy <b>{metrics['frame']['accuracy']:.1%}</b>",
        f"macro F1 <b>{metrics['frame']['macro_f1']:.3f}</b>",
    ]
    if metrics.get("video"):
        scores.append(f"video accuracy <b>{metrics['video']['accuracy']:.1%}</b>")
    baselines = metrics.get("baselines")
    if baselines:
        scores.append(f"always {html.escape(baselines['majority_label'])}: {baselines['majority_rate']:.1%}")
    elif metrics.get("majority_rate") is not None:
        scores.append(f"majority-class rate {metrics['majority_rate']:.1%}")
    text = (
        f'<div class="fer-header"><div class="fer-title">{html.escape(choice.label)}</div>'
        f'<div class="fer-facts">{" · ".join(facts)}</div>'
        f'<div class="fer-facts">{" · ".join(scores)} · folder <code>{html.escape(str(run.path))}</code></div>'
        "</div>"
    )
    for flag, title in (("stalled", "Stalled run"), ("underfit", "Underfit run")):
        if metrics.get(flag):
            reason = html.escape(str(metrics.get(f"{flag}_reason") or ""))
            text += message_html(f"<b>{title}:</b> {reason}", "warning")
    return text


def _default_format(value) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{value:.3f}"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    return "" if value is None else str(value)


def table_html(
    table: pd.DataFrame,
    formats: dict | None = None,
    row_classes: dict | None = None,
    escape: tuple[str, ...] = (),
) -> str:
    """A small DataFrame as an HTML table in the dashboard's style.

    Args:
        table: rows to show; the index becomes the first column.
        formats: column → function(value) → text (default: floats with 3 decimals, ints with separators).
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
            numeric = isinstance(value, int | float | np.integer | np.floating) or column in formats
            css = ' class="fer-num"' if numeric else ""
            cells.append(f"<td{css}>{text if column in escape else html.escape(text)}</td>")
        body.append(f'<tr class="{row_classes.get(key, "")}">{"".join(cells)}</tr>')
    return f'<table class="fer-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def per_class_html(metrics: dict, level: str = "frame") -> str:
    """The per-class table as HTML (average rows in italics)."""
    return table_html(
        per_class_table(metrics, level), row_classes={"macro avg": "fer-avg", "weighted avg": "fer-avg"}
    )


def _percent(value) -> str:
    return "" if pd.isna(value) else f"{float(value):.1f}"


def _params(value) -> str:
    if isinstance(value, str):
        return value
    return "" if pd.isna(value) else f"{int(value):,}"


def literature_html(table: pd.DataFrame, dataset: str = "") -> str:
    """The literature comparison as HTML (this suite's runs highlighted; a note when the paper's tables
    have no row for ``dataset``)."""
    note = ""
    if not (table["source"] == "literature").any():
        known = ", ".join(sorted(load_literature()["dataset"].str.lower().unique()))
        note = message_html(
            f"The paper's Table I / II (as far as sourced in <code>fer_utils/data/literature.csv</code>) cover "
            f"{html.escape(known)}; there is no literature row for {html.escape(dataset or 'this dataset')}.",
            "info",
        )
    if table.empty:
        return note
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
    return note + table_html(
        shown,
        formats={"accuracy %": _percent, "video accuracy %": _percent, "parameters": _params},
        row_classes={i: "fer-ours" for i, mine in zip(shown.index, ours, strict=True) if mine},
    )


# ----------------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------------


def run_curves_figure(history: pd.DataFrame):
    """The run's training curves (:func:`fer_utils.viz.figures.curves_figure`) sized for the dashboard."""
    from fer_utils.viz.figures import curves_figure

    return curves_figure(history, title="Training curves").update_layout(height=380)


def heatmap_figure(metrics: dict, level: str, normalize: str | None, title: str, size: int = 520):
    """The confusion heatmap of one run (plotly ``Figure``)."""
    from fer_utils.viz.figures import confusion_figure

    figure = confusion_figure(confusion_counts(metrics, level), metrics["labels"], normalize, title=title)
    figure.update_layout(
        width=size + 40,
        height=size,
        margin={"l": 90, "r": 20, "t": 60, "b": 80},
        title={"font": {"size": 14}},
    )
    if normalize is not None:
        figure.update_traces(zmin=0, zmax=1)
    return figure


def difference_figure(
    metrics_a: dict, metrics_b: dict, level: str, normalize: str | None, title: str, size: int = 460
):
    """Heatmap of run A minus run B (red: A higher, blue: B higher)."""
    import plotly.graph_objects as go

    difference = difference_matrix(metrics_a, metrics_b, level, normalize)
    labels = list(metrics_a["labels"])
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
        margin={"l": 90, "r": 20, "t": 60, "b": 80},
    )
    return figure


# ----------------------------------------------------------------------------------------------------
# The dashboard
# ----------------------------------------------------------------------------------------------------


def show_in_output(output, figure) -> None:
    """Replace an ``Output`` widget's content with a static plotly figure (plotly's mime type, drawn by
    the jupyterlab-plotly renderer). Only the heatmap is a ``FigureWidget``: each ``FigureWidget``
    evaluates its own copy of plotly.js in the browser, and anywidget gives a model 2 s to load."""
    import json

    from IPython.display import display

    output.clear_output(wait=True)
    with output:
        display({"application/vnd.plotly.v1+json": json.loads(figure.to_json())}, raw=True)


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
        self._caches: dict[str, object] = {}
        self._faces = pd.DataFrame()
        self._shown = 0
        self._busy = False
        self.status = widgets.HTML()
        self.status.add_class("fer-status")
        try:
            self.choices, self.problems = run_choices(self.runs_dir)
        except ValueError as error:
            self.choices, self.problems = [], {}
            self.status.value = message_html(
                f"<b>Cannot open the runs folder:</b> {html.escape(str(error))}", "error"
            )
        title = widgets.HTML(
            STYLE + f'<div style="color:#555">runs folder <code>{html.escape(str(self.runs_dir))}</code> · '
            f"{len(self.choices)} finished run(s)</div>"
        )
        problems = widgets.HTML(problems_html(self.problems))
        problems.add_class("fer-problems")
        if not self.choices:
            if not self.status.value:
                self.status.value = message_html(
                    f"<b>No finished runs</b> in <code>{html.escape(str(self.runs_dir))}</code>. "
                    "Train one with <code>fer train</code> or notebook 02, then reload this page.",
                    "info" if not self.problems else "warning",
                )
            self.widget = widgets.VBox([title, self.status, problems])
            self.widget.add_class("fer-dash")
            return
        self._build(title, problems, initial_run)

    # -- layout ------------------------------------------------------------------------------------

    def _build(self, title, problems, initial_run):
        self._build_run_and_matrix_controls(initial_run)
        gallery_panel = self._build_gallery_panel()
        overview = self._build_score_and_compare_widgets()
        widgets = self.widgets
        heatmap_box = self.heatmap_box

        def section(text):
            return widgets.HTML(f"<h2>{text}</h2>")

        self.widget = widgets.VBox(
            [
                title,
                self.status,
                problems,
                self.run_menu,
                self.header,
                section("Confusion matrix"),
                widgets.HBox(
                    [self.view_toggle, self.level_toggle], layout=widgets.Layout(flex_flow="row wrap")
                ),
                widgets.HBox([heatmap_box, gallery_panel], layout=widgets.Layout(align_items="flex-start")),
                section("Per-class scores"),
                self.per_class,
                section("Training curves"),
                self.curves,
                section("Compare two runs"),
                self.compare_menu,
                self.compare_note,
                self.compare_box,
                section("The paper's Table I / II beside this suite's runs"),
                self.literature,
                section("All finished runs"),
                overview,
            ]
        )
        self.widget.add_class("fer-dash")

        self.run_menu.observe(lambda change: self.select_run(change["new"]), names="value")
        self.view_toggle.observe(lambda change: self._view_changed(), names="value")
        self.level_toggle.observe(lambda change: self._view_changed(), names="value")
        self.true_menu.observe(lambda change: self._pair_changed(), names="value")
        self.pred_menu.observe(lambda change: self._pair_changed(), names="value")
        self.compare_menu.observe(lambda change: self.refresh_compare(), names="value")
        self.more_button.on_click(lambda _: self.show_more())
        self.select_run(self.run_menu.value)

    def _build_run_and_matrix_controls(self, initial_run) -> None:
        """Run menu, header, view / level toggles and the heatmap's box."""
        widgets = self.widgets
        options = [(choice.label, i) for i, choice in enumerate(self.choices)]
        self.run_menu = widgets.Dropdown(
            options=options,
            value=find_choice(self.choices, initial_run),
            description="Run",
            layout=widgets.Layout(width="760px"),
            style={"description_width": "60px"},
        )
        self.header = widgets.HTML()
        self.header.add_class("fer-run-header")
        self.view_toggle = widgets.ToggleButtons(
            options=list(VIEWS), value="counts", description="View", style={"button_width": "200px"}
        )
        self.view_toggle.add_class("fer-view")
        self.level_toggle = widgets.ToggleButtons(options=list(LEVELS), value="frame", description="Level")
        self.level_toggle.add_class("fer-level")
        self.heatmap = None  # a go.FigureWidget, rebuilt for each view (see refresh_matrix)
        self.heatmap_box = heatmap_box = widgets.Box()
        heatmap_box.add_class("fer-heatmap")

    def _build_gallery_panel(self):
        """The true / predicted menus and the gallery of faces behind a matrix cell."""
        widgets = self.widgets
        self.true_menu = widgets.Dropdown(description="True", layout=widgets.Layout(width="230px"))
        self.pred_menu = widgets.Dropdown(description="Predicted", layout=widgets.Layout(width="230px"))
        self.gallery_title = widgets.HTML()
        self.gallery_title.add_class("fer-gallery-title")
        self.gallery = widgets.Box(
            layout=widgets.Layout(
                display="flex", flex_flow="row wrap", align_content="flex-start", width="100%"
            )
        )
        self.gallery.add_class("fer-gallery")
        self.more_button = widgets.Button(description="show more", layout=widgets.Layout(display="none"))
        return widgets.VBox(
            [
                widgets.HTML(
                    "<b>Faces behind a cell</b> — click a cell of the matrix or pick the pair here; "
                    "most confident first."
                ),
                widgets.HBox([self.true_menu, self.pred_menu]),
                self.gallery_title,
                self.gallery,
                self.more_button,
            ],
            layout=widgets.Layout(flex="1 1 380px", min_width="380px", padding="0 0 0 16px"),
        )

    def _build_score_and_compare_widgets(self):
        """Per-class table, curves, the two-run comparison and the literature; returns the runs overview."""
        widgets = self.widgets
        self.per_class = widgets.HTML()
        self.per_class.add_class("fer-per-class")
        self.curves = widgets.Output()
        self.curves.add_class("fer-curves")
        self.compare_menu = widgets.Dropdown(
            description="Compare with",
            style={"description_width": "100px"},
            layout=widgets.Layout(width="760px"),
        )
        self.compare_note = widgets.HTML()
        self.compare_a, self.compare_b, self.compare_diff = (
            widgets.Output(layout=widgets.Layout(width="470px")) for _ in range(3)
        )
        self.compare_box = widgets.HBox(
            [self.compare_a, self.compare_b, self.compare_diff], layout=widgets.Layout(flex_flow="row wrap")
        )
        self.compare_box.add_class("fer-compare")
        self.literature = widgets.HTML()
        self.literature.add_class("fer-literature")
        overview = widgets.HTML(runs_overview_html(self.choices))
        overview.add_class("fer-overview")
        return overview

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

    # -- callbacks ---------------------------------------------------------------------------------

    def select_run(self, position: int) -> None:
        """Show run number ``position`` of the menu: header, matrix, table, curves, comparison, literature."""
        if self.run_menu.value != position:
            self.run_menu.value = position  # the observer calls back here
            return
        choice = self.choice
        metrics = choice.run.metrics
        self.header.value = header_html(choice)
        self._busy = True
        try:
            if not has_level(metrics, self.level):
                self.level_toggle.value = "frame"
            self.level_toggle.disabled = not has_level(metrics, "video")
            self.level_toggle.tooltip = (
                None
                if has_level(metrics, "video")
                else "no video-level scores: every test face is its own video"
            )
            labels = list(metrics["labels"])
            self.true_menu.options = labels
            self.pred_menu.options = labels
            self.true_menu.value = self.pred_menu.value = labels[0]
        finally:
            self._busy = False
        self.refresh_matrix()
        self.curves_figure_update()
        others = [(c.label, i) for i, c in enumerate(self.choices) if i != position]
        self.compare_menu.options = [("— none —", -1), *others]
        self.compare_menu.value = others[0][1] if others else -1
        self.refresh_compare()
        dataset = str(metrics.get("dataset") or choice.run.config.get("dataset", ""))
        self.literature.value = literature_html(literature_comparison(self.choices, dataset), dataset)

    def refresh_matrix(self) -> None:
        """Redraw the heatmap, the per-class table and the gallery for the current view and level."""
        metrics = self.choice.run.metrics
        level, normalize = self.level, self.normalize
        self._render_heatmap(heatmap_figure(metrics, level, normalize, title=f"{level} level"))
        self.per_class.value = per_class_html(metrics, level)
        self.show_cell(self.true_menu.value, self.pred_menu.value)
        if hasattr(self, "compare_menu"):
            self.refresh_compare()

    def _render_heatmap(self, figure) -> None:
        """Show ``figure`` in a new ``FigureWidget``. Its figure travels as the widget's initial state:
        plotly's edit messages to a live FigureWidget (restyle, addTraces, relayout) were dropped now and
        then in Voila 0.5 with anywidget, leaving a stale matrix, while a new widget always draws what
        it holds."""
        import plotly.graph_objects as go

        previous = self.heatmap
        self.heatmap = go.FigureWidget(figure)
        self.heatmap.data[0].on_click(self._heatmap_clicked)
        self.heatmap_box.children = (self.heatmap,)
        if previous is not None:
            previous.close()

    def _view_changed(self) -> None:
        if not self._busy:
            self.refresh_matrix()

    def _heatmap_clicked(self, trace, points, state) -> None:
        if not points.xs:
            return
        self.show_cell(points.ys[0], points.xs[0])

    def _pair_changed(self) -> None:
        if not self._busy:
            self.show_cell(self.true_menu.value, self.pred_menu.value)

    def show_cell(self, true_label: str, predicted_label: str) -> pd.DataFrame:
        """Fill the gallery with the faces of one cell (first page) and return the cell's table."""
        run = self.choice.run
        self._busy = True
        try:
            self.true_menu.value, self.pred_menu.value = true_label, predicted_label
        finally:
            self._busy = False
        self._faces = cell_faces(
            run.predictions, list(run.metrics["labels"]), true_label, predicted_label, self.level
        )
        unit = "videos" if self.level == "video" else "faces"
        verdict = "correct" if true_label == predicted_label else "mistaken"
        self.gallery_title.value = (
            f'<span class="fer-cell-count" data-count="{len(self._faces)}"><b>{len(self._faces)}</b> {unit}</span> '
            f"{verdict}: true <b>{html.escape(true_label)}</b> → predicted <b>{html.escape(predicted_label)}</b>"
        )
        self.gallery.children = ()
        self._shown = 0
        self.show_more()
        return self._faces

    def show_more(self) -> None:
        """Add the next page of faces to the gallery."""
        page = self._faces.iloc[self._shown : self._shown + self.gallery_page]
        if len(page):
            items = self._face_items(page)
            self.gallery.children = (*self.gallery.children, *items)
            self._shown += len(page)
        remaining = len(self._faces) - self._shown
        self.more_button.description = f"show {min(remaining, self.gallery_page)} more of {remaining}"
        self.more_button.layout.display = "" if remaining > 0 else "none"

    def _cache(self):
        from fer_utils.faces.cache import FaceCache

        config = self.choice.run.config
        cache_dir = str(config.get("cache_dir", ""))
        if cache_dir not in self._caches:
            try:
                cache = FaceCache(cache_dir)
            except (ValueError, OSError) as error:
                cache = f"the run's face cache cannot be opened ({error})"
            else:
                if config.get("cache_key") and cache.key != config["cache_key"]:
                    cache = (
                        f"the face cache at {cache_dir} was rebuilt with another config "
                        f"(key {cache.key}, the run used {config['cache_key']})"
                    )
            self._caches[cache_dir] = cache
        return self._caches[cache_dir]

    def _face_items(self, page: pd.DataFrame) -> list:
        widgets = self.widgets
        cache = self._cache()
        pixels = None
        if not isinstance(cache, str):
            try:
                pixels = cache.faces(page["face_id"].to_numpy())
            except (IndexError, ValueError, OSError) as error:
                cache = f"faces could not be read from the cache ({error})"
        items = []
        for position, row in enumerate(page.itertuples()):
            if pixels is not None:
                image = widgets.Image(
                    value=face_png(pixels[position]),
                    format="png",
                    width=FACE_DISPLAY_PX,
                    height=FACE_DISPLAY_PX,
                )
            else:
                image = widgets.HTML(
                    f'<div style="width:{FACE_DISPLAY_PX}px;height:{FACE_DISPLAY_PX}px;background:#eee;'
                    f'font-size:10px;overflow:hidden" title="{html.escape(cache)}">no pixels</div>'
                )
            video = html.escape(str(row.video_id))
            detail = f"frame {row.frame_index}"
            if "faces" in page.columns:
                detail += f" · {row.faces} face" + ("s" if row.faces != 1 else "")
            caption = widgets.HTML(
                f'<div class="fer-caption" title="{video}">{video}</div>'
                f'<div class="fer-caption">{detail}</div>'
                f'<div class="fer-caption"><b>p = {row.confidence:.2f}</b></div>'
            )
            item = widgets.VBox([image, caption], layout=widgets.Layout(margin="3px", align_items="center"))
            item.add_class("fer-face")
            items.append(item)
        if isinstance(cache, str):
            self.status.value = message_html(
                html.escape(cache) + " — faces are listed without pixels.", "warning"
            )
        return items

    def curves_figure_update(self) -> None:
        figure = run_curves_figure(self.choice.run.history)
        figure.update_layout(width=1000, title_text="", margin={"t": 40})
        show_in_output(self.curves, figure)

    def refresh_compare(self) -> None:
        """Side-by-side matrices of the current run (A) and the compared run (B) and their difference."""
        position = self.compare_menu.value
        figures = (self.compare_a, self.compare_b, self.compare_diff)
        if position is None or position < 0:
            self.compare_note.value = message_html("Pick a second run to compare.", "info")
            self.compare_box.layout.display = "none"
            return
        a, b = self.choice, self.choices[position]
        level, normalize = self.level, self.normalize
        problem = None
        if not has_level(b.run.metrics, level):
            problem = f"run B has no {level}-level scores"
        elif list(a.run.metrics["labels"]) != list(b.run.metrics["labels"]):
            problem = "the runs have different classes; their matrices cannot be compared cell by cell"
        if problem:
            self.compare_note.value = message_html(html.escape(problem), "warning")
            self.compare_box.layout.display = "none"
            return
        note = f"<b>A</b> = {html.escape(a.label)}<br><b>B</b> = {html.escape(b.label)}"
        test_a = (a.run.config.get("split") or {}).get("test_hash")
        test_b = (b.run.config.get("split") or {}).get("test_hash")
        if test_a and test_b and test_a != test_b:
            note += "<br>The runs were tested on different faces: compare the normalised views rather than counts."
        self.compare_note.value = message_html(note, "info")
        self.compare_box.layout.display = "flex"
        new_figures = (
            heatmap_figure(a.run.metrics, level, normalize, title="A", size=400),
            heatmap_figure(b.run.metrics, level, normalize, title="B", size=400),
            difference_figure(a.run.metrics, b.run.metrics, level, normalize, title="A − B", size=400),
        )
        for output, figure in zip(figures, new_figures, strict=True):
            show_in_output(output, figure)


def build_dashboard(runs_dir: str | os.PathLike | None = None, initial_run: str | None = None):
    """The dashboard widget for the runs under ``runs_dir`` (see :func:`resolve_runs_dir`).

    Args:
        runs_dir: runs folder; empty → ``$FER_RUNS_DIR`` → ``runs``.
        initial_run: run to open first; empty → ``$FER_INITIAL_RUN``.

    Returns:
        An ``ipywidgets.VBox`` to display (a clear message instead of a traceback when the folder is
        missing, empty or holds only unfinished or malformed runs).
    """
    return Dashboard(resolve_runs_dir(runs_dir), resolve_initial_run(initial_run)).widget


# ----------------------------------------------------------------------------------------------------
# Static report (papermill) sections
# ----------------------------------------------------------------------------------------------------


def display_report(runs_dir: str | os.PathLike | None = None) -> None:
    """Display the static report in a notebook: per run its header, confusion matrix (counts and
    recall), per-class table and curves; then the literature comparison per dataset. Used when the
    notebook is executed by papermill (``fer report``)."""
    from IPython.display import HTML, display

    runs_dir = resolve_runs_dir(runs_dir)
    display(HTML(STYLE))
    try:
        choices, problems = run_choices(runs_dir)
    except ValueError as error:
        display(HTML(message_html(f"<b>Cannot open the runs folder:</b> {html.escape(str(error))}", "error")))
        return
    display(HTML(problems_html(problems)))
    show_figure = _FigureShower()
    if not choices:
        display(
            HTML(
                message_html(f"<b>No finished runs</b> in <code>{html.escape(str(runs_dir))}</code>.", "info")
            )
        )
        return
    display(
        HTML(
            f"<h2>All finished runs in <code>{html.escape(str(runs_dir))}</code></h2>"
            + runs_overview_html(choices)
        )
    )
    for choice in choices:
        metrics = choice.run.metrics
        display(HTML(f"<h2>{html.escape(choice.label)}</h2>" + header_html(choice)))
        for level in LEVELS:
            if not has_level(metrics, level):
                continue
            for normalize in (None, "true"):
                show_figure(heatmap_figure(metrics, level, normalize, title=f"{level} level", size=460))
            display(HTML(f"<h4>Per-class scores ({level} level)</h4>" + per_class_html(metrics, level)))
        show_figure(run_curves_figure(choice.run.history))
    datasets = sorted({str(c.run.metrics.get("dataset") or c.run.config.get("dataset", "")) for c in choices})
    for dataset in datasets:
        display(
            HTML(
                f"<h2>The paper's Table I / II on {html.escape(dataset)} beside this suite's runs</h2>"
                + literature_html(literature_comparison(choices, dataset), dataset)
            )
        )


def figure_bundle(figure, include_plotlyjs: bool) -> dict:
    """A display bundle for a static plotly figure: plotly's own mime type (JupyterLab renders it) and
    HTML (what nbconvert keeps). With ``include_plotlyjs`` the HTML carries plotly.js inline, loaded so
    that it sets ``window.Plotly`` even on pages that also load require.js (nbconvert's do)."""
    import json

    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    div = pio.to_html(figure, full_html=False, include_plotlyjs=False, config={"responsive": True})
    if include_plotlyjs:
        loader = (
            "<script>window.__ferDefine = window.define; window.define = undefined;</script>"
            f"<script>{get_plotlyjs()}</script>"
            "<script>window.define = window.__ferDefine;</script>"
        )
        div = loader + div
    return {"application/vnd.plotly.v1+json": json.loads(figure.to_json()), "text/html": div}


class _FigureShower:
    """Displays static figures; the first one of a report carries plotly.js (the report opens offline)."""

    def __init__(self):
        self.plotlyjs_sent = False

    def __call__(self, figure) -> None:
        from IPython.display import display

        display(figure_bundle(figure, include_plotlyjs=not self.plotlyjs_sent), raw=True)
        self.plotlyjs_sent = True


# ----------------------------------------------------------------------------------------------------
# CLI: fer dashboard
# ----------------------------------------------------------------------------------------------------


def voila_command(notebook: Path, port: int, host: str, open_browser: bool) -> list[str]:
    """The command line that serves ``notebook`` with Voila."""
    command = [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        f"--port={port}",
        f"--Voila.ip={host}",
        "--Voila.port_retries=0",  # fail clearly rather than serve on another port than the one printed
    ]
    if not open_browser:
        command.append("--no-browser")
    return command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve notebooks/04_results.ipynb with Voila on a loopback address; the runs folder "
        f"reaches the notebook through ${RUNS_DIR_ENV}."
    )
    parser.add_argument("runs_dir", help="folder of run directories (searched at any depth)")
    parser.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)"
    )
    parser.add_argument("--initial-run", help="run to open first (its folder name)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    parser.set_defaults(func=_cli_dashboard)


def _cli_dashboard(args) -> int:
    runs_dir = Path(args.runs_dir).expanduser().resolve()
    if not runs_dir.is_dir():
        raise ValueError(f"runs folder {runs_dir} does not exist")
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {args.port}")
    if not DASHBOARD_NOTEBOOK.exists():
        raise ValueError(f"dashboard notebook {DASHBOARD_NOTEBOOK} is missing")
    environment = {**os.environ, RUNS_DIR_ENV: str(runs_dir)}
    if args.initial_run:
        environment[INITIAL_RUN_ENV] = args.initial_run
    command = voila_command(DASHBOARD_NOTEBOOK, args.port, args.host, not args.no_browser)
    print(f"serving {runs_dir} at http://{args.host}:{args.port}/ (Ctrl+C stops)", flush=True)
    os.chdir(NOTEBOOKS_DIR)
    # Voila replaces this process, so a signal that stops `fer dashboard` stops the server and its kernels.
    os.execve(sys.executable, command, environment)
    return 0  # not reached
