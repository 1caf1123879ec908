"""Predict emotions on new media.

``fer predict MEDIA --model PATH`` runs a Keras model (``model.keras`` or a run folder) or an exported
one on a video, an image or a folder of them, through the same frame sampling and face pipeline as
training, and writes per-frame class probabilities (CSV), a video-level label and an emotion-over-time
figure (HTML).
"""

from __future__ import annotations

import argparse
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_utils.data.datasets import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from fer_utils.deploy.predictors import Predictor, load_predictor
from fer_utils.faces.detection import DETECTORS, extract_face, extract_faces
from fer_utils.faces.frames import UnreadableMedia, is_image, open_video, stream_frames
from fer_utils.faces.keyframes import DEFAULT_TRACKER
from fer_utils.files import atomic_write_csv, atomic_write_json, atomic_write_with, writing
from fer_utils.locks import output_lock

# ------------------------------------------------------------------------------------------ predict media

DEFAULT_FRAMES = 6
#: Columns of the per-face table that identify a face (the class probabilities follow them).
FACE_COLUMNS = (
    "media_path",
    "frame_index",
    "timestamp_s",
    "status",
    "face_index",
    "track_id",
    "bbox_x",
    "bbox_y",
    "bbox_w",
    "bbox_h",
    "predicted_label",
    "confidence",
)
#: At most this many tracks (those with the most faces) get a panel in the timeline figure.
FIGURE_TRACKS = 8


@dataclass
class MediaPrediction:
    """Result of :func:`predict_media` for one video or image.

    ``faces`` has one row per face per sampled frame (:data:`FACE_COLUMNS` then ``prob_<label>``) and one
    row with ``status == "no_face"`` per sampled frame without a face; ``tracks`` one row per face track
    (faces linked across frames by box overlap) with its video-level label (highest mean probability).
    ``label`` / ``confidence`` are those of the track seen in most frames (None when no face was found).
    """

    media_path: str
    labels: list[str]
    faces: object  # pandas.DataFrame
    tracks: object = None  # pandas.DataFrame
    frames_sampled: int = 0
    frames_without_face: int = 0
    error: str | None = None
    is_image: bool = False
    outputs: dict = field(default_factory=dict)
    #: How faces were found and classified (detect_every, tracker, engine): recorded in the summary.
    method: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.error:
            return "unreadable"
        return "ok" if self.tracks is not None and len(self.tracks) else "no_face"

    @property
    def face_rows(self):
        """The rows of :attr:`faces` that are faces (not "no face" markers)."""
        return self.faces[self.faces["status"] == "face"] if len(self.faces) else self.faces

    @property
    def label(self) -> str | None:
        return None if self.status != "ok" else str(self.tracks.iloc[0]["label"])

    @property
    def confidence(self) -> float | None:
        return None if self.status != "ok" else float(self.tracks.iloc[0]["confidence"])

    def message(self) -> str:
        name = Path(self.media_path).name
        if self.error:
            return f"{name}: {self.error}"
        if self.status == "no_face":
            return f"{name}: no face found in {self.frames_sampled} sampled frame(s)"
        tracks = ", ".join(
            f"face {row.track_id}: {row.label} ({row.confidence:.2f}, {row.faces} frame(s))"
            for row in self.tracks.itertuples()
        )
        return (
            f"{name}: {len(self.face_rows)} face(s) in {self.frames_sampled} sampled frame(s), "
            f"{len(self.tracks)} track(s) — {tracks}"
        )


def _face_options(preprocessing: dict, detector: str | None) -> dict:
    """The training face pipeline's options accepted by :func:`fer_utils.faces.detection.extract_faces`."""
    import inspect

    accepted = set(inspect.signature(extract_face).parameters) - {"gray", "image_size"}
    options = {key: value for key, value in preprocessing.items() if key in accepted}
    if detector:
        options["detector"] = detector
    elif options.get("detector", "hog") == "none":
        # A model trained on already-cropped faces still needs a detector on whole frames.
        options["detector"] = "hog"
    options.setdefault("detector", "hog")
    return options


def frame_count_for_rate(path: str | os.PathLike, fps: float) -> int:
    """How many evenly spaced frames give ``fps`` frames per second of this clip (≥ 1)."""
    import cv2

    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    capture = open_video(path)
    if capture is None:
        return DEFAULT_FRAMES
    try:
        native_fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        frames = capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0
    finally:
        capture.release()
    if native_fps <= 0 or frames <= 0:
        return DEFAULT_FRAMES
    return max(1, round(frames / native_fps * fps))


def frames_to_sample(media_path: str, preprocessing: dict, frames: int | None, fps: float | None) -> int:
    """How many frames :func:`predict_media` samples: ``fps`` × duration, else ``frames``, else as in
    training (``frames_per_video``), else :data:`DEFAULT_FRAMES`."""
    if fps is not None and not is_image(media_path):
        return frame_count_for_rate(media_path, fps)
    count = int(frames or preprocessing.get("frames_per_video") or DEFAULT_FRAMES)
    if count < 1:
        raise ValueError(f"frames must be ≥ 1, got {count}")
    return count


class _FaceTable:
    """Collects face rows compactly (ids as tuples, probabilities as one array per frame)."""

    def __init__(self, media_path: str, labels: list[str]):
        self.media_path, self.labels = media_path, labels
        self.ids: list[tuple] = []
        self.probabilities: list[np.ndarray] = []

    def add_frame(self, frame, crops, track_ids, probabilities) -> None:
        time_s = round(frame.timestamp / 1000.0, 4)
        if not crops:
            self.ids.append((frame.index, time_s, "no_face", None, None, None, None, None, None))
            self.probabilities.append(np.full((1, len(self.labels)), np.nan, np.float32))
            return
        for face_index, (crop, track_id) in enumerate(zip(crops, track_ids, strict=True)):
            box = crop.box
            self.ids.append((frame.index, time_s, "face", face_index, track_id, box.x, box.y, box.w, box.h))
        self.probabilities.append(probabilities.astype(np.float32))

    def frame(self):
        """The table as a DataFrame (:data:`FACE_COLUMNS` then ``prob_<label>``)."""
        import pandas as pd

        columns = [c for c in FACE_COLUMNS if c not in ("media_path", "predicted_label", "confidence")]
        table = pd.DataFrame(self.ids, columns=columns)
        for column in ("face_index", "track_id", "bbox_x", "bbox_y", "bbox_w", "bbox_h"):
            table[column] = table[column].astype("Int64")
        probabilities = np.concatenate(self.probabilities) if self.probabilities else np.zeros((0, 1))
        is_face = (table["status"] == "face").to_numpy()
        best = np.where(is_face, np.nan_to_num(probabilities).argmax(axis=1) if len(table) else 0, -1)
        table.insert(0, "media_path", self.media_path)
        table["predicted_label"] = [self.labels[i] if i >= 0 else None for i in best]
        table["confidence"] = np.where(is_face, np.nan_to_num(probabilities).max(axis=1), np.nan)
        for i, label in enumerate(self.labels):
            table[f"prob_{label}"] = probabilities[:, i] if len(table) else []
        return table


def track_table(faces, labels: list[str]):
    """One row per track: faces, first / last time, label and confidence (highest mean probability) and the
    mean probabilities; tracks seen in most frames first."""
    import pandas as pd

    columns = [f"prob_{label}" for label in labels]
    found = faces[faces["status"] == "face"]
    if not len(found):
        return pd.DataFrame(
            columns=["track_id", "faces", "first_s", "last_s", "label", "confidence", *columns]
        )
    grouped = found.groupby("track_id")
    tracks = grouped[columns].mean()
    tracks.insert(0, "faces", grouped.size())
    tracks.insert(1, "first_s", grouped["timestamp_s"].min())
    tracks.insert(2, "last_s", grouped["timestamp_s"].max())
    mean = tracks[columns].to_numpy()
    tracks.insert(3, "label", np.asarray(labels)[mean.argmax(axis=1)])
    tracks.insert(4, "confidence", mean.max(axis=1))
    tracks = tracks.reset_index().sort_values(["faces", "track_id"], ascending=[False, True])
    return tracks.reset_index(drop=True)


def predict_frames(
    frames,
    predictor: Predictor,
    options: dict,
    max_faces=None,
    min_face_size: int = 0,
    detect_every: int = 1,
    tracker: str = DEFAULT_TRACKER,
):
    """Detect, track and classify every face of an iterable of frames (one frame in memory at a time).

    ``detect_every`` > 1 detects fully on every k-th frame only and follows the faces between
    (:class:`fer_utils.faces.keyframes.KeyframeDetector` with ``tracker``).

    Returns:
        ``(faces table, frames seen, frames without a face)``; the table as :class:`MediaPrediction`'s.
    """
    from fer_utils.deploy.tracking import FaceTracker

    media_path = options.pop("media_path", "")
    table, tracker_ids = _FaceTable(media_path, predictor.labels), FaceTracker()
    find_faces = _face_finder(predictor.image_size, options, max_faces, min_face_size, detect_every, tracker)
    seen = empty = 0
    for frame in frames:
        seen += 1
        crops = find_faces(frame.image)
        if not crops:
            empty += 1
            table.add_frame(frame, [], [], None)
            tracker_ids.assign([])
            continue
        track_ids = tracker_ids.assign([(c.box.x, c.box.y, c.box.w, c.box.h) for c in crops])
        table.add_frame(frame, crops, track_ids, predictor.predict_proba(np.stack([c.face for c in crops])))
    return table.frame(), seen, empty


def _face_finder(image_size: int, options: dict, max_faces, min_face_size: int, detect_every: int, tracker):
    """``frame → crops``: :func:`extract_faces` on every frame, or keyframe detection + tracking."""
    from fer_utils.faces.detection import crops_of_boxes, detect_width_for
    from fer_utils.faces.keyframes import KeyframeDetector

    if detect_every <= 1 or options.get("detector") == "none":
        return lambda image: extract_faces(
            image, image_size, max_faces=max_faces, min_face_size=min_face_size, **options
        )
    keyframes = None
    crop_options = {k: options[k] for k in ("margin", "align", "equalize") if k in options}

    def find(image):
        nonlocal keyframes
        if image.ndim == 3:
            import cv2

            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if keyframes is None:
            upsample = options.get("upsample", 0)
            width = detect_width_for(image.shape[1], min_face_size, options.get("detect_width"), upsample)
            keyframes = KeyframeDetector(detect_every, tracker, options["detector"], upsample, width)
        return crops_of_boxes(
            image,
            keyframes.boxes(image),
            image_size,
            max_faces=max_faces,
            min_face_size=min_face_size,
            **crop_options,
        )

    return find


def predict_media(
    media_path: str | os.PathLike,
    predictor: Predictor,
    frames: int | None = None,
    fps: float | None = None,
    detector: str | None = None,
    max_faces: int | None = None,
    min_face_size: int = 0,
    detect_every: int = 1,
    tracker: str = DEFAULT_TRACKER,
) -> MediaPrediction:
    """Every face's class probabilities in a video or image, through the training face pipeline.

    Args:
        media_path: video or image.
        predictor: from :func:`load_predictor`.
        frames: evenly spaced frames to sample (default: the training ``frames_per_video``, else 6).
        fps: sample this many frames per second instead (dense timelines); overrides ``frames``. Frames
            stream through one at a time whatever the clip's length.
        detector: face detector override (default: the model's; HOG for models trained on cropped faces).
        max_faces: at most this many faces per frame (the largest); None = all.
        min_face_size: ignore faces smaller than this (box side, pixels); also lets detection run on a
            downscaled frame (:func:`fer_utils.faces.detection.detect_width_for`).
        detect_every: full face detection on every k-th sampled frame, faces followed between
            (:mod:`fer_utils.faces.keyframes`); 1 = detect on every frame.
        tracker: how faces are followed between keyframes (:data:`fer_utils.faces.keyframes.TRACKERS`).

    Returns:
        A :class:`MediaPrediction`; an unreadable file gives one with ``error`` set, not an exception.
    """
    media_path = str(media_path)
    preprocessing = dict(predictor.spec.get("preprocessing") or {})
    options = {**_face_options(preprocessing, detector), "media_path": media_path}
    count = frames_to_sample(media_path, preprocessing, frames, fps)
    result = MediaPrediction(media_path, predictor.labels, _FaceTable(media_path, []).frame())
    result.is_image = is_image(media_path)
    detect_every = effective_detect_every(media_path, count, detect_every)
    result.method = {
        "detect_every": detect_every,
        "tracker": tracker if detect_every > 1 else None,
        "engine": getattr(predictor, "engine", None) or predictor.format,
        "engine_choice": getattr(predictor, "engine_choice", None),
    }
    try:
        faces, seen, empty = predict_frames(
            stream_frames(media_path, count),
            predictor,
            options,
            max_faces,
            min_face_size,
            detect_every,
            tracker,
        )
    except UnreadableMedia as error:
        result.error = str(error)
        return result
    result.faces, result.frames_sampled, result.frames_without_face = faces, seen, empty
    result.tracks = track_table(faces, predictor.labels)
    return result


#: Faces are followed between keyframes only across sampled frames at most this far apart (seconds).
MAX_TRACKING_GAP_S = 0.25


def effective_detect_every(media_path: str, count: int, detect_every: int) -> int:
    """``detect_every``, or 1 for an image and for sampling sparser than :data:`MAX_TRACKING_GAP_S`
    (faces move too far between the frames for a tracker)."""
    import cv2

    if detect_every <= 1 or is_image(media_path):
        return 1
    capture = open_video(media_path)
    if capture is None:
        return 1  # unreadable: predict_media reports it
    try:
        native_fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        frames = capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0
    finally:
        capture.release()
    if native_fps <= 0 or frames <= 0 or count < 2:
        return 1
    gap_s = frames / native_fps / count
    return detect_every if gap_s <= MAX_TRACKING_GAP_S else 1


def predict_image_array(image: np.ndarray, predictor: Predictor, **options) -> MediaPrediction:
    """:func:`predict_media` for an image already in memory (gray, BGR, or BGRA uint8)."""
    import cv2

    from fer_utils.faces.frames import Frame

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(
            f"expected a gray or BGR uint8 image, got shape {image.shape} and dtype {image.dtype}"
        )
    preprocessing = dict(predictor.spec.get("preprocessing") or {})
    face_options = {**_face_options(preprocessing, options.pop("detector", None)), "media_path": "<array>"}
    faces, seen, empty = predict_frames([Frame(0, 0.0, image)], predictor, face_options, **options)
    result = MediaPrediction(
        "<array>", predictor.labels, faces, frames_sampled=seen, frames_without_face=empty
    )
    result.is_image, result.tracks = True, track_table(faces, predictor.labels)
    return result


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
    for row in prediction.face_rows.itertuples():
        figure.add_trace(
            go.Bar(
                x=prediction.labels,
                y=[getattr(row, f"prob_{label}") for label in prediction.labels],
                name=f"face {row.face_index}: {row.predicted_label} ({row.confidence:.2f})",
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
    thickness = max(1, round(max(image.shape[:2]) / 400))
    for row in prediction.face_rows.itertuples():
        x, y, w, h = int(row.bbox_x), int(row.bbox_y), int(row.bbox_w), int(row.bbox_h)
        cv2.rectangle(image, (x, y), (x + w, y + h), (0, 200, 255), thickness)
        text = f"{row.face_index}: {row.predicted_label} {row.confidence:.2f}"
        scale = max(0.4, w / 220)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        left, top = label_origin((x, y), (tw, th + base + 2), image.shape)
        cv2.rectangle(image, (left, top), (left + tw, top + th + base + 2), (0, 200, 255), -1)
        cv2.putText(image, text, (left, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness)
    return image


def label_origin(box_corner: tuple[int, int], label_size: tuple[int, int], image_shape) -> tuple[int, int]:
    """Top-left corner of a face's label: just above the box's top-left corner, moved inside the image
    when the box reaches past an edge (a face cut by the frame still gets its whole label)."""
    (x, y), (width, height) = box_corner, label_size
    image_height, image_width = image_shape[:2]
    left = min(max(0, x), max(0, image_width - width))
    top = y - height if y - height >= 0 else max(0, y)
    return int(left), int(min(top, max(0, image_height - height)))


#: Longest output file name in bytes (most file systems allow 255; room is left for temporary names).
MAX_OUTPUT_NAME_BYTES = 200
OUTPUT_SUFFIXES = (
    "_summary.json",
    "_faces.csv",
    "_tracks.csv",
    "_timeline.html",
    "_annotated.png",
    "_faces.html",
)


def output_stem(media_path: str | os.PathLike) -> str:
    """What a media file's outputs are named after: its whole file name, extension included (``clip.mp4``
    and ``clip.jpg`` never collide). A name too long for ``<stem>_timeline.html`` to fit in
    :data:`MAX_OUTPUT_NAME_BYTES` is cut (at a character boundary) and given ``~<hash of the full name>``
    before its extension, so shortened names stay distinct."""
    name = Path(media_path).name
    budget = MAX_OUTPUT_NAME_BYTES - max(len(suffix) for suffix in OUTPUT_SUFFIXES)
    if len(name.encode()) <= budget:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    extension = Path(name).suffix if len(Path(name).suffix.encode()) <= 16 else ""
    room = budget - len(f"~{digest}{extension}".encode())
    prefix = name.encode()[:room].decode(errors="ignore")
    return f"{prefix}~{digest}{extension}"


#: Joins the folders of a media file's path below the inputs' common root in its output name.
FOLDER_SEPARATOR = "__"


def output_names(media: list[Path]) -> list[str]:
    """Output names of ``media`` (one per file, same order) that never collide: the file's path relative
    to the inputs' common folder, folders joined by ``__`` (``dirA/photo.jpg`` → ``dirA__photo.jpg``;
    files of one folder keep their bare names), cut to fit as :func:`output_stem` does. Names that would
    still meet (``a__b/x`` and ``a/b__x``, or ``X.JPG`` and ``x.jpg`` on a case-insensitive disk) get
    ``~<hash of the path>``."""
    absolute = [os.path.abspath(path) for path in media]
    root = os.path.commonpath([os.path.dirname(path) for path in absolute]) if absolute else ""
    names = [output_stem(FOLDER_SEPARATOR.join(Path(os.path.relpath(path, root)).parts)) for path in absolute]
    taken = [name.lower() for name in names]
    for position, (name, path) in enumerate(zip(names, absolute, strict=True)):
        if taken.count(name.lower()) > 1:
            digest = hashlib.sha256(path.encode()).hexdigest()[:10]
            names[position] = output_stem(f"{Path(name).stem}~{digest}{Path(name).suffix}")
    return names


def write_prediction(
    prediction: MediaPrediction, out_dir: str | os.PathLike, model_path: str = "", name: str | None = None
) -> dict:
    """Write a media file's outputs, named ``name`` (:func:`output_names`; default: its whole file name,
    :func:`output_stem`):
    ``_summary.json`` always; with faces ``_faces.csv`` (one row per face per frame, and one per frame
    without a face), ``_tracks.csv`` (a label per track) and, for a video, ``_timeline.html`` (one panel
    per track) or, for an image, ``_annotated.png`` (boxes and labels) and ``_faces.html`` (a bar chart
    per face). Figures load plotly.js from one ``plotly.min.js`` beside them.

    Returns:
        The written paths by kind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = name or output_stem(prediction.media_path)
    paths = {"summary": out_dir / f"{stem}_summary.json"}
    if prediction.status != "unreadable":
        paths["faces"] = out_dir / f"{stem}_faces.csv"
        with writing("the faces table", paths["faces"]):
            atomic_write_csv(paths["faces"], prediction.faces)
    if prediction.status == "ok":
        paths["tracks"] = out_dir / f"{stem}_tracks.csv"
        with writing("the tracks table", paths["tracks"]):
            atomic_write_csv(paths["tracks"], prediction.tracks)
        if prediction.is_image:
            paths["annotated"] = out_dir / f"{stem}_annotated.png"
            write_png(annotated_image(prediction), paths["annotated"])
            paths["figure"] = out_dir / f"{stem}_faces.html"
            write_figure(faces_bar_figure(prediction), paths["figure"])
        else:
            paths["figure"] = out_dir / f"{stem}_timeline.html"
            write_figure(timeline_figure(prediction), paths["figure"])
    with writing("the summary", paths["summary"]):
        atomic_write_json(paths["summary"], prediction_summary(prediction, model_path))
    prediction.outputs = {kind: str(path) for kind, path in paths.items()}
    return prediction.outputs


#: The one copy of plotly.js that every figure of an output folder loads.
PLOTLY_FILE = "plotly.min.js"
#: Output folders whose plotly.js this process has checked (it is read back once, not per figure).
_CHECKED_PLOTLY: set[Path] = set()


def ensure_plotly_js(out_dir: Path) -> str:
    """Make ``out_dir/plotly.min.js`` the bundled plotly.js: written atomically, and rewritten when the
    file there is not it (cut short by a full disk, or another version). Returns the name figures load."""
    from plotly.offline import get_plotlyjs

    path = Path(os.path.abspath(out_dir / PLOTLY_FILE))
    if path in _CHECKED_PLOTLY and path.exists():
        return PLOTLY_FILE
    script = get_plotlyjs().encode()
    if not (path.is_file() and path.stat().st_size == len(script) and path.read_bytes() == script):
        with writing("plotly.js", path, len(script)):
            atomic_write_with(path, lambda tmp: tmp.write_bytes(script), "plotly.js", needed=len(script))
    _CHECKED_PLOTLY.add(path)
    return PLOTLY_FILE


def write_figure(figure, path: Path) -> None:
    """A plotly figure as HTML loading the folder's :func:`ensure_plotly_js`, written atomically."""
    script = ensure_plotly_js(path.parent)
    with writing("the figure", path):
        atomic_write_with(
            path, lambda tmp: figure.write_html(tmp, include_plotlyjs=script), suffix=".tmp.html"
        )


def write_png(image: np.ndarray, path: Path) -> None:
    """An image as PNG, written atomically (``cv2.imwrite`` reports a full disk only as False)."""
    import cv2

    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode the annotated image {path.name} as PNG")
    with writing("the annotated image", path, encoded.nbytes):
        atomic_write_with(path, lambda tmp: tmp.write_bytes(encoded.tobytes()), needed=encoded.nbytes)


def prediction_summary(prediction: MediaPrediction, model_path: str = "") -> dict:
    """What ``_summary.json`` holds: status, message, counts and one entry per track."""
    tracks = [] if prediction.tracks is None else prediction.tracks.to_dict(orient="records")
    return {
        "media_path": prediction.media_path,
        "model": model_path,
        "status": prediction.status,
        "message": prediction.message(),
        "label": prediction.label,
        "confidence": prediction.confidence,
        "frames_sampled": prediction.frames_sampled,
        "frames_without_face": prediction.frames_without_face,
        "faces": int(len(prediction.face_rows)),
        **prediction.method,
        "tracks": tracks,
        "labels": prediction.labels,
    }


#: Columns of ``summary.csv``, in this order whatever the inputs: counts, then the files written.
SUMMARY_COLUMNS = (
    "media_path",
    "output_name",
    "status",
    "label",
    "confidence",
    "faces",
    "tracks",
    "frames_sampled",
    "frames_without_face",
    "message",
)
OUTPUT_KINDS = ("summary", "faces", "tracks", "figure", "annotated")


def summary_row(
    media_path, prediction: MediaPrediction | None, outputs: dict, message: str = "", output_name: str = ""
) -> dict:
    """One row of ``summary.csv``: :data:`SUMMARY_COLUMNS` (``faces`` and ``tracks`` are counts, as in
    ``_summary.json``), then ``<kind>_file`` for each of :data:`OUTPUT_KINDS` (empty when not written).
    ``output_name`` is what its files are named after (:func:`output_names`). ``prediction`` None: a path
    that could not be predicted at all (``status`` missing)."""
    if prediction is None:
        row = dict.fromkeys(SUMMARY_COLUMNS)
        row.update(media_path=str(media_path), status="missing", message=message)
    else:
        row = {
            "media_path": str(media_path),
            "output_name": output_name,
            "status": prediction.status,
            "label": prediction.label,
            "confidence": prediction.confidence,
            "faces": int(len(prediction.face_rows)),
            "tracks": 0 if prediction.tracks is None else int(len(prediction.tracks)),
            "frames_sampled": prediction.frames_sampled,
            "frames_without_face": prediction.frames_without_face,
            "message": prediction.message(),
        }
    return {**row, **{f"{kind}_file": outputs.get(kind, "") for kind in OUTPUT_KINDS}}


def summary_table(rows: list[dict]):
    """``summary.csv`` from :func:`summary_row` rows: counts as integers (empty for a skipped path)."""
    import pandas as pd

    table = pd.DataFrame(rows)
    for column in ("faces", "tracks", "frames_sampled", "frames_without_face"):
        table[column] = table[column].astype("Int64")
    return table


def collect_media(items) -> tuple[list[Path], list[tuple[str, str]]]:
    """The media of every given path (:func:`media_in`) and, for a path that gives none (missing, or a
    folder without media), ``(path, reason)``: reported and skipped, the rest goes on."""
    media, skipped = [], []
    for item in items:
        try:
            media.extend(media_in(item))
        except ValueError as error:
            skipped.append((str(item), str(error)))
    return list(dict.fromkeys(media)), skipped  # a file given twice is done once


def media_in(path: str | os.PathLike) -> list[Path]:
    """The media files to predict: the file itself, or the videos and images of a folder (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"media {path} does not exist")
    suffixes = set(IMAGE_SUFFIXES) | set(VIDEO_SUFFIXES)
    found = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes)
    if not found:
        raise ValueError(f"folder {path} holds no video or image")
    return found


def add_arguments(predict: argparse.ArgumentParser) -> None:
    predict.add_argument("media", nargs="+", help="videos, images or folders of them")
    predict.add_argument(
        "--model",
        help="run folder, model.keras, .tflite or .onnx, or a bundled model by architecture name, e.g. paper "
        "(default: the bundled FER2013 model, see `fer bundle-model`)",
    )
    predict.add_argument("--fps", type=float, help="sample this many frames per second (dense timeline)")
    predict.add_argument(
        "--frames-per-video",
        "--frames",
        dest="frames",
        type=int,
        help="evenly spaced frames per video (default: as in training)",
    )
    predict.add_argument("--detector", choices=DETECTORS, help="face detector (default: as in training)")
    predict.add_argument(
        "--max-faces", type=int, help="at most this many faces per frame, the largest (default: all)"
    )
    predict.add_argument(
        "--min-face-size", type=int, default=0, help="ignore faces smaller than this many pixels (box side)"
    )
    predict.add_argument("--threads", type=int, help="CPU threads of TFLite / ONNX Runtime (default: all)")
    add_speed_arguments(predict)
    predict.add_argument("--out", default="predictions", help="output folder (default: ./predictions)")
    predict.set_defaults(func=_predict_cli)


def add_speed_arguments(predict: argparse.ArgumentParser) -> None:
    """``--detect-every``, ``--tracker`` and ``--engine``: how fast faces are found and classified."""
    from fer_utils.deploy.engines import ENGINES
    from fer_utils.faces.keyframes import DEFAULT_DETECT_EVERY, DEFAULT_TRACKER, TRACKERS

    predict.add_argument(
        "--detect-every",
        type=int,
        default=DEFAULT_DETECT_EVERY,
        help=f"full face detection on every k-th sampled frame, faces tracked between (default "
        f"{DEFAULT_DETECT_EVERY}; 1 = every frame; only for frames ≤ {MAX_TRACKING_GAP_S} s apart)",
    )
    predict.add_argument(
        "--tracker", choices=TRACKERS, default=DEFAULT_TRACKER, help="tracker between keyframes"
    )
    predict.add_argument(
        "--engine",
        choices=("auto", *ENGINES),
        default="auto",
        help="engine of the bundled model (default auto: the fastest on this CPU, measured once and cached)",
    )


def _check_arguments(args) -> None:
    if args.frames is not None and args.frames < 1:
        raise ValueError(f"--frames must be ≥ 1, got {args.frames}")
    if args.fps is not None and args.fps <= 0:
        raise ValueError(f"--fps must be > 0, got {args.fps}")
    if args.max_faces is not None and args.max_faces < 1:
        raise ValueError(f"--max-faces must be ≥ 1, got {args.max_faces}")
    if args.min_face_size < 0:
        raise ValueError(f"--min-face-size must be ≥ 0, got {args.min_face_size}")
    if args.detect_every < 1:
        raise ValueError(f"--detect-every must be ≥ 1, got {args.detect_every}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a file, not a folder")


def _predict_cli_predictor(args):
    """The predictor of ``fer predict``: ``--model`` (a file, a run folder, or a bundled model by
    architecture name such as ``paper``), else the bundled default, in ``--engine``'s format."""
    from fer_utils.deploy.bundled import is_bundled_name
    from fer_utils.deploy.engines import bundled_predictor

    if args.model and not is_bundled_name(args.model):
        if args.engine != "auto":
            raise ValueError("--engine chooses among the bundled model's files; drop it with --model FILE")
        return load_predictor(args.model, args.threads), str(args.model)
    predictor = bundled_predictor(args.engine, args.threads, args.model)
    return predictor, str(predictor.path)


def _predict_cli(args) -> int:
    _check_arguments(args)
    media, skipped = collect_media(args.media)
    with output_lock(args.out, "fer predict"):  # one writer per output folder
        return _predict_into(args, media, skipped)


def _predict_into(args, media: list[Path], skipped: list[tuple[str, str]]) -> int:
    predictor, model = _predict_cli_predictor(args)
    rows = []
    for item, reason in skipped:
        print(f"{item}: skipped ({reason})")
        rows.append(summary_row(item, None, {}, message=f"skipped: {reason}"))
    for path, name in zip(media, output_names(media), strict=True):
        prediction = predict_media(
            path,
            predictor,
            args.frames,
            args.fps,
            args.detector,
            args.max_faces,
            args.min_face_size,
            args.detect_every,
            args.tracker,
        )
        outputs = write_prediction(prediction, args.out, str(model), name)
        print(prediction.message())
        rows.append(summary_row(path, prediction, outputs, output_name=name))
    if len(rows) > 1:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        atomic_write_csv(Path(args.out) / "summary.csv", summary_table(rows))
    print(f"outputs in {args.out}")
    return _exit_status(rows)


def _exit_status(rows: list[dict]) -> int:
    """1 (after saying which) when any input was missing or unreadable, else 0."""
    unreadable = sum(row["status"] == "unreadable" for row in rows)
    missing = sum(row["status"] == "missing" for row in rows)
    if unreadable:
        print(f"{unreadable} of {len(rows)} file(s) could not be read (see their _summary.json)")
    if missing:
        print(f"{missing} of {len(rows)} path(s) skipped: they do not exist or hold no video or image")
    return 1 if unreadable or missing else 0
