"""Tables of runs as DataFrames: per-class scores, the runs overview, the protocol comparison (one row
per protocol, mean ± sd over seeds, the leakage gap) and the literature beside this suite's real-data
runs. Rendering to HTML is :mod:`.fragments`' job; numbers stay numbers here."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.training.metrics import headline, registered
from fer_utils.training.results import RunMetrics
from fer_utils.viz.dashboard.runs import RunChoice
from fer_utils.viz.figures import metrics_table

LITERATURE_CSV = Path(__file__).resolve().parent.parent / "literature.csv"
PROTOCOL_ORDER = ("paper", "video", "subject")


def per_class_table(metrics: RunMetrics, level: str = "frame") -> pd.DataFrame:
    """Per-class precision / recall / F1 / support, then macro and weighted averages."""
    table = metrics_table(metrics, level)
    scores = metrics.scores(level)
    support = int(table["support"].sum())
    averages = pd.DataFrame(
        {
            "precision": [
                table["precision"].mean(),
                np.average(table["precision"], weights=table["support"]) if support else 0.0,
            ],
            "recall": [
                table["recall"].mean(),
                np.average(table["recall"], weights=table["support"]) if support else 0.0,
            ],
            "f1": [scores.macro_f1, scores.weighted_f1],
            "support": [support, support],
        },
        index=pd.Index(["macro avg", "weighted avg"], name="class"),
    )
    if not support:
        averages[["precision", "recall"]] = 0.0
    combined = pd.concat([table, averages])
    combined["support"] = combined["support"].astype(int)
    for column in ("precision", "recall", "f1"):
        combined[column] = combined[column].astype(float)
    return combined


def overview_metric_columns() -> dict[str, tuple]:
    """The runs overview's score columns, from the metric registry: every frame-level metric (``<heading>
    %`` in percent for a rate, ``<heading>`` for a score) and the headline metric per video → ``(metric,
    level)``."""
    columns = {}
    for entry in registered("frame"):
        columns[f"{entry.heading} %" if entry.unit == "percent" else entry.heading] = (entry, "frame")
        if entry is headline():
            video = f"video {entry.heading} %" if entry.unit == "percent" else f"video {entry.heading}"
            columns[video] = (entry, "video")
    return columns


def _overview_value(outcome: RunMetrics, entry, level: str) -> float:
    value = outcome.value(entry.name, level)
    if value is None:
        return np.nan
    return 100 * value if entry.unit == "percent" else value


def runs_overview(choices: list[RunChoice]) -> pd.DataFrame:
    """One row per finished run: protocol, test faces, every registered frame-level metric and the headline
    one per video (:func:`overview_metric_columns`; NaN where a run lacks it), parameters and whether it
    stalled (index: the run's menu label)."""
    metric_columns = overview_metric_columns()
    rows = []
    for choice in choices:
        outcome = choice.run.outcome
        support = outcome.frame.support
        row = {
            "run": choice.label,
            "protocol": outcome.protocol,
            "test faces": int(support if support is not None else len(choice.run.predictions)),
        }
        row |= {
            column: _overview_value(outcome, entry, level)
            for column, (entry, level) in metric_columns.items()
        }
        row |= {
            "parameters": int(outcome.num_params),
            "stalled": "yes" if outcome.stalled else "",
            "underfit": "yes" if outcome.underfit else "",
        }
        rows.append(row)
    columns = ["run", "protocol", "test faces", *metric_columns, "parameters", "stalled", "underfit"]
    return pd.DataFrame(rows, columns=columns).set_index("run")


def standalone_runs(choices: list[RunChoice]) -> list[RunChoice]:
    """The runs that are not cells of an ablation grid (those are reported in the ablation section)."""
    return [choice for choice in choices if choice.ablation_dir is None]


def comparison_metrics() -> list[tuple]:
    """The protocol comparison's scores: ``(column stem, metric, level)`` for every registered frame-level
    metric (stem: its name) and the headline metric per video (``video_<name>``), in the order shown."""
    stems = []
    for entry in registered("frame"):
        stems.append((entry.name, entry, "frame"))
        if entry is headline():
            stems.append((f"video_{entry.name}", entry, "video"))
    return stems


def protocol_comparison(choices: list[RunChoice]) -> pd.DataFrame:
    """One row per dataset × protocol over the standalone runs (ablation cells left out): the number of
    runs (seeds), the test faces per test video (mean over the runs: what a video-level score averages
    over), and every score of :func:`comparison_metrics` as mean and sd over them.

    Returns:
        DataFrame indexed by ``(data, protocol)`` with ``runs, faces_per_video, stalled`` (how many of the
        runs stalled: they are in the means, and flagged where shown), ``<stem>_mean, <stem>_sd`` per score
        (``accuracy_mean``, ``video_accuracy_mean``, ``macro_f1_mean``, …; fractions; sd NaN for one run).
    """
    stems = comparison_metrics()
    rows = []
    for choice in standalone_runs(choices):
        outcome = choice.run.outcome
        row = {"data": choice.data_label, "protocol": str(outcome.protocol)}
        for stem, entry, level in stems:
            value = outcome.value(entry.name, level)
            row[stem] = np.nan if value is None else value
        row |= {"faces_per_video": faces_per_test_video(outcome), "stalled": bool(outcome.stalled)}
        rows.append(row)
    columns = [stem for stem, _, _ in stems]
    if not rows:
        return pd.DataFrame(
            columns=[
                "runs",
                "faces_per_video",
                "stalled",
                *(f"{c}_{s}" for c in columns for s in ("mean", "sd")),
            ]
        )
    frame = pd.DataFrame(rows)
    grouped = frame.groupby(["data", "protocol"], sort=False)
    table = grouped[columns].agg(["mean", "std"])
    table.columns = [f"{column}_{'sd' if stat == 'std' else stat}" for column, stat in table.columns]
    table.insert(0, "runs", grouped.size())
    table.insert(1, "faces_per_video", grouped["faces_per_video"].mean())
    table.insert(2, "stalled", grouped["stalled"].sum().astype(int))
    order = {name: i for i, name in enumerate(PROTOCOL_ORDER)}
    keys = sorted(table.index, key=lambda key: (key[0], order.get(key[1], len(order)), key[1]))
    return table.loc[keys]


def faces_per_test_video(metrics: RunMetrics) -> float:
    """Test faces per test video (frame-level support / video-level support); 1 when every face is its
    own video (no video-level scores)."""
    if not (metrics.video and metrics.video.support):
        return 1.0
    return metrics.frame.support / metrics.video.support


#: Rows of one dataset whose test videos differ more than this in faces per video are not comparable at
#: video level (a video of one or two faces is scored on those alone).
COMPARABLE_FACES_RATIO = 1.5


def incomparable_video_scores(comparison: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per dataset whose protocols' test videos hold very different numbers of faces (ratio above
    :data:`COMPARABLE_FACES_RATIO`): faces per test video by protocol. Its video accuracies, and its frame
    against video accuracies, are not comparable across those rows."""
    found = {}
    for data in comparison.index.get_level_values("data").unique():
        per_protocol = comparison.loc[data, "faces_per_video"].dropna()
        if len(per_protocol) > 1 and per_protocol.max() > COMPARABLE_FACES_RATIO * per_protocol.min():
            found[data] = {str(k): float(v) for k, v in per_protocol.items()}
    return found


def leakage_gaps(comparison: pd.DataFrame) -> dict[str, float]:
    """Per dataset, mean accuracy under ``paper`` minus under ``subject`` (what frames of one person on
    both sides of the split add); only datasets with both protocols."""
    gaps = {}
    if "data" not in comparison.index.names:  # no standalone run (e.g. a folder holding only an ablation)
        return gaps
    for data in comparison.index.get_level_values("data").unique():
        if (data, "paper") in comparison.index and (data, "subject") in comparison.index:
            gaps[data] = float(
                comparison.loc[(data, "paper"), "accuracy_mean"]
                - comparison.loc[(data, "subject"), "accuracy_mean"]
            )
    return gaps


def load_literature(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The paper's literature comparison (Table I / II) as far as it could be sourced: one row per model
    and dataset with accuracy %, parameter count (may be empty) and citation."""
    table = pd.read_csv(path or LITERATURE_CSV, comment="#")
    required = {"model", "dataset", "accuracy_percent", "num_params", "citation"}
    missing = required - set(table.columns)
    if missing:
        raise ValueError(f"literature table lacks columns {sorted(missing)}")
    return table


LITERATURE_COLUMNS = [
    "model",
    "dataset",
    "source",
    "protocol",
    "accuracy_percent",
    "video_accuracy_percent",
    "num_params",
    "params_note",
    "citation",
]


def _literature_rows(literature: pd.DataFrame, wanted: str | None) -> list[dict]:
    rows = []
    chosen = literature if wanted is None else literature[literature["dataset"].str.lower() == wanted]
    for row in chosen.itertuples():
        rows.append(
            {
                "model": row.model,
                "dataset": row.dataset,
                "source": "literature",
                "protocol": row.evaluation if pd.notna(row.evaluation) else "",
                "accuracy_percent": float(row.accuracy_percent),
                "video_accuracy_percent": np.nan,
                "num_params": row.num_params if pd.notna(row.num_params) else np.nan,
                "params_note": getattr(row, "params_note", ""),
                "citation": row.citation,
            }
        )
    return rows


def _suite_row(choice: RunChoice) -> dict:
    outcome = choice.run.outcome
    return {
        "model": f"this suite: {choice.label}",
        "dataset": choice.dataset,
        "source": "this suite",
        "protocol": outcome.protocol,
        "accuracy_percent": 100 * outcome.frame.accuracy,
        "video_accuracy_percent": 100 * outcome.video.accuracy if outcome.video else np.nan,
        "num_params": outcome.num_params,
        "params_note": "",
        "citation": str(choice.run.path),
    }


def literature_comparison(
    choices: list[RunChoice], dataset: str | None, literature: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Literature models on ``dataset`` (None: every dataset) beside this suite's finished **real-data**
    runs on it (runs on the synthetic demo set are never put next to published numbers), by dataset,
    highest accuracy first.

    Returns:
        DataFrame with ``model, dataset, source, protocol, accuracy_percent, video_accuracy_percent,
        num_params, params_note, citation``.
    """
    literature = load_literature() if literature is None else literature
    wanted = None if dataset is None else dataset.strip().lower()
    rows = _literature_rows(literature, wanted)
    rows += [
        _suite_row(choice)
        for choice in choices
        if wanted in (None, choice.dataset.lower()) and not choice.synthetic
    ]
    table = pd.DataFrame(rows, columns=LITERATURE_COLUMNS)
    order = table.assign(_dataset=table["dataset"].str.lower())
    order = order.sort_values(["_dataset", "accuracy_percent"], ascending=[True, False], kind="stable")
    return table.loc[order.index].reset_index(drop=True)
