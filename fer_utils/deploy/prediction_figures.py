"""The figures and the annotated photo of one :class:`~fer_utils.deploy.media_prediction.MediaPrediction`:
emotion over time per face track (video), class probabilities per face (photo), boxes and labels drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_utils.deploy.media_prediction import MediaPrediction

#: At most this many tracks (those with the most faces) get a panel in the timeline figure.
FIGURE_TRACKS = 8


def track_points(prediction: MediaPrediction, track_id):
    """One row per sampled frame for a track's panel: its probabilities where the track has a face, NaN
    elsewhere (frames without a face or where another face was seen), so its lines break there."""
    frames = prediction.faces.drop_duplicates("frame_index")[["frame_index", "timestamp_s"]]
    points = prediction.face_rows[prediction.face_rows["track_id"] == track_id]
    points = points.drop_duplicates("frame_index").drop(columns="timestamp_s")
    return frames.merge(points, on="frame_index", how="left").sort_values("frame_index")


def no_face_spans(prediction: MediaPrediction) -> list[tuple[float, float]]:
    """The time spans (first, last sampled time, seconds) of consecutive sampled frames without any face."""
    if not len(prediction.faces):
        return []
    frames = prediction.faces.groupby("frame_index", sort=True).agg(
        time=("timestamp_s", "first"), empty=("status", lambda s: bool((s == "no_face").all()))
    )
    spans, start, previous = [], None, None
    for time, empty in zip(frames["time"], frames["empty"], strict=True):
        if empty and start is None:
            start = time
        if not empty and start is not None:
            spans.append((float(start), float(previous)))
            start = None
        previous = time
    if start is not None:
        spans.append((float(start), float(previous)))
    return spans


def _mark_no_face(figure, spans: list[tuple[float, float]], half_step: float) -> None:
    """Shade each span without a face across every panel, labelled "no face"."""
    for first, last in spans:
        figure.add_vrect(
            x0=max(0.0, first - half_step),
            x1=last + half_step,
            fillcolor="lightgray",
            opacity=0.4,
            line_width=0,
            annotation_text="no face",
            annotation_position="top left",
        )


def timeline_figure(prediction: MediaPrediction):
    """Plotly figure of each emotion's probability over time, one panel per face track; sampled frames
    without a face break the lines and are shaded "no face", and the time axis spans every sampled frame."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    tracks = prediction.tracks.head(FIGURE_TRACKS) if prediction.tracks is not None else []
    rows = max(1, len(tracks))
    titles = (
        [
            f"face {t.track_id}: {t.label} ({t.confidence:.2f}), {t.faces} frame(s)"
            for t in tracks.itertuples()
        ]
        if len(tracks)
        else ["no face found"]
    )
    figure = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.08 / rows
    )
    colors = go.layout.Template().layout.colorway or None
    for row, track in enumerate(tracks.itertuples() if len(tracks) else [], start=1):
        points = track_points(prediction, track.track_id)
        for i, label in enumerate(prediction.labels):
            figure.add_trace(
                go.Scatter(
                    x=points["timestamp_s"],
                    y=points[f"prob_{label}"],
                    mode="lines+markers",
                    connectgaps=False,
                    name=label,
                    legendgroup=label,
                    showlegend=row == 1,
                    line={"color": colors[i % len(colors)]} if colors else None,
                    customdata=points["frame_index"],
                    hovertemplate=f"{label}: %{{y:.2f}}<br>t=%{{x:.2f}} s, frame %{{customdata}}<extra></extra>",
                ),
                row=row,
                col=1,
            )
        figure.update_yaxes(range=[0, 1], title_text="probability", row=row, col=1)
    figure.update_xaxes(title_text="time (s)", row=rows, col=1)
    times = prediction.faces["timestamp_s"].drop_duplicates().sort_values() if len(prediction.faces) else []
    if len(times):
        half_step = float(np.diff(times).min()) / 2 if len(times) > 1 else 0.05
        _mark_no_face(figure, no_face_spans(prediction), half_step)
        figure.update_xaxes(
            range=[max(0.0, float(times.iloc[0]) - half_step), float(times.iloc[-1]) + half_step]
        )
    hidden = len(prediction.tracks) - len(tracks) if prediction.tracks is not None else 0
    note = f" ({hidden} shorter track(s) in the CSV only)" if hidden > 0 else ""
    figure.update_layout(
        title=f"Emotion over time — {Path(prediction.media_path).name}{note}",
        legend_title="emotion",
        height=220 + 260 * rows,
    )
    return figure


def faces_bar_figure(prediction: MediaPrediction):
    """Plotly bar chart of each face's class probabilities (still images)."""
    import plotly.graph_objects as go

    figure = go.Figure()
    rows = prediction.face_rows
    columns = [f"prob_{label}" for label in prediction.labels]  # labels are data: columns, never attributes
    for (_, row), probabilities in zip(rows.iterrows(), rows[columns].to_numpy(), strict=True):
        figure.add_trace(
            go.Bar(
                x=prediction.labels,
                y=probabilities,
                name=f"face {row['face_index']}: {row['predicted_label']} ({row['confidence']:.2f})",
            )
        )
    figure.update_layout(
        title=f"Emotion per face — {Path(prediction.media_path).name}",
        barmode="group",
        yaxis_range=[0, 1],
        yaxis_title="probability",
        legend_title="face (numbered as in the annotated picture)",
    )
    return figure


def annotated_image(prediction: MediaPrediction) -> np.ndarray:
    """The still image in colour with each face's box, number and label drawn on it (BGR uint8)."""
    import cv2

    image = cv2.imread(prediction.media_path, cv2.IMREAD_COLOR)
    for row in prediction.face_rows.itertuples():
        draw_face(image, row, f"{row.face_index}: {row.predicted_label} {row.confidence:.2f}")
    return image


def draw_face(image: np.ndarray, row, text: str) -> None:
    """One face's box and its label (``text``) drawn in place on a BGR image; ``row``: a faces-table row."""
    import cv2

    thickness = max(1, round(max(image.shape[:2]) / 400))
    x, y, w, h = int(row.bbox_x), int(row.bbox_y), int(row.bbox_w), int(row.bbox_h)
    cv2.rectangle(image, (x, y), (x + w, y + h), (0, 200, 255), thickness)
    scale = max(0.4, w / 220)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    left, top = label_origin((x, y), (tw, th + base + 2), image.shape)
    cv2.rectangle(image, (left, top), (left + tw, top + th + base + 2), (0, 200, 255), -1)
    cv2.putText(image, text, (left, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness)


def label_origin(box_corner: tuple[int, int], label_size: tuple[int, int], image_shape) -> tuple[int, int]:
    """Top-left corner of a face's label: just above the box's top-left corner, moved inside the image
    when the box reaches past an edge (a face cut by the frame still gets its whole label)."""
    (x, y), (width, height) = box_corner, label_size
    image_height, image_width = image_shape[:2]
    left = min(max(0, x), max(0, image_width - width))
    top = y - height if y - height >= 0 else max(0, y)
    return int(left), int(min(top, max(0, image_height - height)))
