"""Confusion matrices and the faces behind a cell (frame and video level), run differences, the
largest confusion, and face thumbnails with their captions.

Video-level cells: a video's prediction is the mean of its faces' class probabilities (as in
:func:`fer_utils.training.evaluate.video_level`); the gallery shows one representative face per video, the
video's face with the highest probability for the video's predicted class, captioned with the video's
mean probability and its number of faces.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from fer_utils.faces.cache import TIME_COLUMN, with_time_in_seconds
from fer_utils.training.evaluate import probability_columns, video_level
from fer_utils.training.results import RunMetrics
from fer_utils.viz.figures import normalize_matrix

#: Matrix views: button label → ``normalize`` argument of :func:`fer_utils.viz.figures.normalize_matrix`.
VIEWS = {
    "counts": None,
    "recall (row-normalised)": "true",
    "precision (column-normalised)": "pred",
}
LEVELS = ("frame", "video")


def has_level(metrics: RunMetrics, level: str) -> bool:
    """Whether the run has scores at ``level`` (``frame`` always; ``video`` when faces share videos)."""
    return metrics.scores(level) is not None


def confusion_counts(metrics: RunMetrics, level: str = "frame") -> np.ndarray:
    """The confusion matrix counts at ``level`` (rows true, columns predicted, order = labels)."""
    if not has_level(metrics, level):
        raise ValueError(f"this run has no {level}-level scores (every face is its own video)")
    return np.asarray(metrics.scores(level).confusion_matrix, dtype=int)


def matrix_view(metrics: RunMetrics, level: str = "frame", normalize: str | None = None) -> np.ndarray:
    """The matrix shown for a view: counts, row-normalised (``'true'``, recall) or column-normalised
    (``'pred'``, precision)."""

    return normalize_matrix(confusion_counts(metrics, level), normalize)


def format_cell(value: float, normalize: str | None) -> str:
    """A cell's text as the heatmap writes it."""
    return f"{value:.0f}" if normalize is None else f"{value:.2f}"


def largest_confusion(metrics: RunMetrics, level: str = "frame") -> tuple[str, str]:
    """The (true, predicted) pair of the largest off-diagonal count; the largest diagonal cell when the
    run confuses nothing. Ties go to the first in class order."""
    counts = confusion_counts(metrics, level)
    labels = list(metrics.labels)
    off_diagonal = np.where(np.eye(len(labels), dtype=bool), -1, counts)
    chosen = off_diagonal if off_diagonal.max() > 0 else np.diag(np.diag(counts))
    row, column = np.unravel_index(int(np.argmax(chosen)), chosen.shape)
    return labels[row], labels[column]


def top_confusions(metrics: RunMetrics, level: str = "frame", limit: int = 3) -> list[tuple[str, str, int]]:
    """The ``limit`` largest off-diagonal cells as ``(true, predicted, count)``, largest first."""
    counts = confusion_counts(metrics, level)
    labels = list(metrics.labels)
    cells = [
        (int(counts[i, j]), i, j)
        for i in range(len(labels))
        for j in range(len(labels))
        if i != j and counts[i, j] > 0
    ]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return [(labels[i], labels[j], n) for n, i, j in cells[:limit]]


def video_predictions(predictions: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """One row per test video: true and predicted label (mean class probabilities over its faces), the
    video's confidence, its number of faces and a representative face (its face with the highest
    probability for the video's predicted class)."""

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
    return videos.join(best, on="video_id")


def _with_timestamp(table: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """Add the face's ``timestamp_s`` (seconds) and ``media_path`` from the predictions when it records
    them (older runs' ``timestamp``, in milliseconds, is read as seconds)."""
    predictions = with_time_in_seconds(predictions)
    extra = [column for column in (TIME_COLUMN, "media_path") if column in predictions.columns]
    if not extra:
        return table
    lookup = predictions.set_index("face_id")[extra]
    return table.join(lookup, on="face_id", rsuffix="_face")


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
        for videos the mean over the video's faces), at video level ``faces``, and ``timestamp_s`` /
        ``media_path`` when the predictions record them.
    """
    for name in (true_label, predicted_label):
        if name not in labels:
            raise ValueError(f"unknown class {name!r}; this run's classes are {', '.join(labels)}")
    columns = ["face_id", "video_id", "frame_index", "confidence"]
    if level == "frame":
        table = predictions[
            (predictions["true_label"] == true_label) & (predictions["predicted_label"] == predicted_label)
        ]
        table = table.assign(confidence=table[f"prob_{predicted_label}"])[columns]
    elif level == "video":
        videos = video_predictions(predictions, labels)
        table = videos[(videos["true_label"] == true_label) & (videos["predicted_label"] == predicted_label)]
        columns = [*columns, "faces"]
        table = table[columns]
    else:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    table = _with_timestamp(table, predictions)
    table = table.sort_values(["confidence", "face_id"], ascending=[False, True], kind="stable")
    return table.reset_index(drop=True)


def difference_matrix(
    metrics_a: RunMetrics, metrics_b: RunMetrics, level: str = "frame", normalize: str | None = None
) -> np.ndarray:
    """Run A's matrix minus run B's in the same view.

    Raises:
        ValueError: the runs have different classes, or one lacks ``level``.
    """
    if list(metrics_a.labels) != list(metrics_b.labels):
        raise ValueError(
            "the two runs have different classes "
            f"({', '.join(metrics_a.labels)} vs {', '.join(metrics_b.labels)}); "
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


def short_video_id(video_id: str) -> str:
    """The readable end of a video id: its file name without folders or extension
    (``"ravdess/Actor_01/01-01-03-01-01-01-01.mp4"`` → ``"01-01-03-01-01-01-01"``)."""
    name = str(video_id).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name[1:] else name


def face_caption_html(row) -> str:
    """A gallery face's caption: short video id, frame (and time), confidence; the full video id / media
    path in the hover title."""
    full = str(getattr(row, "media_path", "") or row.video_id)
    detail = f"frame {row.frame_index}"
    seconds = getattr(row, TIME_COLUMN, None)
    if seconds is not None and not pd.isna(seconds) and float(seconds) > 0:  # stills have time 0
        detail += f" · {float(seconds):.2f} s"
    faces = getattr(row, "faces", None)
    if faces is not None and not pd.isna(faces):
        detail += f" · {int(faces)} face" + ("s" if int(faces) != 1 else "")
    title = html.escape(f"{row.video_id}\n{full}" if full != str(row.video_id) else full, quote=True)
    return (
        f'<div class="fer-caption" title="{title}">{html.escape(short_video_id(row.video_id)).replace("_", "_<wbr>")}</div>'
        f'<div class="fer-caption" title="{title}">{detail}</div>'
        f'<div class="fer-caption"><b>p = {row.confidence:.2f}</b></div>'
    )
