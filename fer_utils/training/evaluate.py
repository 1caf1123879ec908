"""Metrics of a run: frame-level and video-level scores, per class and per sample attribute."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fer_utils.training.metrics import level_scores

#: Sample attributes that get their own breakdown when a test set has two or more values of them.
ATTRIBUTE_COLUMNS = (
    "subject",
    "intensity",
    "view",
    "level",
    "vocal_channel",
    "modality",
    "statement",
    "gender",
)


def classification_metrics(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str],
    average_over: Sequence[str] | None = None,
    level: str = "frame",
) -> dict:
    """Every registered metric of ``level`` (:mod:`fer_utils.training.metrics`: accuracy, macro / weighted
    F1, balanced accuracy, neutral rate, ...), per-class precision/recall/F1/support and the confusion matrix.

    Args:
        y_true, y_pred: label names.
        labels: class order of the per-class table and the matrix (rows true, columns predicted).
        average_over: the labels macro / weighted F1 average over (default ``labels``); an evaluation
            leaves out its ``(unmapped)`` answer column, which no face has as its true label.
        level: ``frame`` or ``video``: which registered metrics apply.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        **level_scores(y_true, y_pred, labels, level, average_over),
        "support": int(len(y_true)),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def probability_columns(labels: Sequence[str]) -> list[str]:
    return [f"prob_{label}" for label in labels]


def predictions_table(
    index_rows: pd.DataFrame, probabilities: np.ndarray, labels: Sequence[str]
) -> pd.DataFrame:
    """One row per face: its index row, true and predicted label, confidence and class probabilities."""
    labels = list(labels)
    table = index_rows.drop(columns=["shard", "offset"], errors="ignore").reset_index(drop=True).copy()
    table = table.rename(columns={"label": "true_label"})
    predicted = np.asarray(probabilities).argmax(axis=1)
    table["predicted_label"] = np.asarray(labels)[predicted]
    table["confidence"] = np.asarray(probabilities).max(axis=1)
    table["correct"] = table["true_label"] == table["predicted_label"]
    for column, values in zip(probability_columns(labels), np.asarray(probabilities).T, strict=True):
        table[column] = values
    return table


def video_level(predictions: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Aggregate faces to videos by the mean of their class probabilities."""
    columns = probability_columns(labels)
    grouped = predictions.groupby("video_id", sort=True)
    videos = grouped[columns].mean()
    videos["true_label"] = grouped["true_label"].first()
    videos["faces"] = grouped.size()
    videos["predicted_label"] = np.asarray(labels)[videos[columns].to_numpy().argmax(axis=1)]
    return videos.reset_index()


def evaluate_predictions(
    predictions: pd.DataFrame, labels: Sequence[str], average_over: Sequence[str] | None = None
) -> dict:
    """Frame-level metrics, video-level metrics (when faces share videos) and per-attribute breakdowns;
    F1 averages over ``average_over`` (default ``labels``, see :func:`classification_metrics`)."""
    labels = list(labels)
    result = {
        "frame": classification_metrics(
            predictions["true_label"], predictions["predicted_label"], labels, average_over
        )
    }
    result["video"] = None
    if "video_id" in predictions.columns and predictions["video_id"].nunique() < len(predictions):
        videos = video_level(predictions, labels)
        result["video"] = classification_metrics(
            videos["true_label"], videos["predicted_label"], labels, average_over, level="video"
        )
    from sklearn.metrics import accuracy_score, f1_score

    breakdown = {}
    for column in ATTRIBUTE_COLUMNS:
        if column not in predictions.columns or predictions[column].nunique(dropna=True) < 2:
            continue
        breakdown[column] = {
            str(value): {
                "accuracy": float(accuracy_score(part["true_label"], part["predicted_label"])),
                "macro_f1": float(
                    f1_score(
                        part["true_label"],
                        part["predicted_label"],
                        labels=_present(part, average_over),
                        average="macro",
                        zero_division=0,
                    )
                ),
                "support": int(len(part)),
            }
            for value, part in predictions.groupby(column, sort=True)
        }
    result["by_attribute"] = breakdown
    return result


def _present(part: pd.DataFrame, average_over: Sequence[str] | None) -> list[str] | None:
    """The labels a part's macro F1 averages over: those it has or predicts, within ``average_over``."""
    if average_over is None:
        return None
    present = set(part["true_label"]) | set(part["predicted_label"])
    return [label for label in average_over if label in present]
