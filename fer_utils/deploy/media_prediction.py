"""Every face of one video or image, frame by frame, streamed.

:func:`predict_media` samples a media file's frames, finds each face through the training face pipeline
(or keyframe detection + tracking), links faces into tracks and classifies them: a :class:`MediaPrediction`
(faces table, tracks table). :func:`predict_image_array` does the same for an image in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_utils.deploy.predictors import Predictor, check_tta, predict_with_tta
from fer_utils.deploy.tracking import FaceTracker
from fer_utils.faces.detection import crops_of_boxes, detect_width_for, extract_face, extract_faces
from fer_utils.faces.frames import Frame, UnreadableMedia, is_image, open_video, stream_frames
from fer_utils.faces.keyframes import DEFAULT_TRACKER, KeyframeDetector

DEFAULT_FRAMES = 6
#: Frames per second ``fer predict`` samples of a video unless told otherwise: a timeline of the clip (the
#: paper's 6 frames per clip stay for training caches). Dense enough for keyframe tracking.
DEFAULT_FPS = 10.0
#: The face detector of ``fer predict`` / ``fer_utils.predict`` (``--detector hog``: the paper's).
PREDICT_DETECTOR = "centerface"
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


def model_face_options(predictor: Predictor, detector: str | None) -> dict:
    """The training face pipeline's options accepted by :func:`fer_utils.faces.detection.extract_faces`,
    with the pixel step the model declares (``predictor.pixel_step``)."""
    import inspect

    preprocessing = dict(predictor.spec.get("preprocessing") or {})
    accepted = set(inspect.signature(extract_face).parameters) - {"gray", "image_size"}
    options = {key: value for key, value in preprocessing.items() if key in accepted}
    options["equalize"] = predictor.pixel_step
    # Whatever detector built the training cache (HOG, or none for cropped faces), whole frames get the CNN
    # unless asked otherwise: HOG misses faces (sunglasses, turned heads); boxes are framed as HOG's.
    options["detector"] = detector or PREDICT_DETECTOR
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
    return max(1, min(round(frames), round(frames / native_fps * fps)))  # never more than the clip has


def frames_to_sample(media_path: str, preprocessing: dict, frames: int | None, fps: float | None) -> int:
    """How many frames :func:`predict_media` samples: ``fps`` × duration, else ``frames``, else
    :data:`DEFAULT_FPS` × duration (a timeline, not the training caches' few frames per clip)."""
    if not is_image(media_path) and (fps is not None or not frames):
        return frame_count_for_rate(media_path, DEFAULT_FPS if fps is None else fps)
    count = int(frames or DEFAULT_FRAMES)
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
    tta: str = "none",
):
    """Detect, track and classify every face of an iterable of frames (one frame in memory at a time).

    ``detect_every`` > 1 detects fully on every k-th frame only and follows the faces between
    (:class:`fer_utils.faces.keyframes.KeyframeDetector` with ``tracker``). ``tta`` averages each face's
    probabilities over its test-time views (:func:`~fer_utils.deploy.predictors.tta_views`).

    Returns:
        ``(faces table, frames seen, frames without a face)``; the table as :class:`MediaPrediction`'s.
    """
    check_tta(tta)
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
        probabilities = predict_with_tta(predictor, np.stack([c.face for c in crops]), tta)
        table.add_frame(frame, crops, track_ids, probabilities)
    return table.frame(), seen, empty


def _face_finder(image_size: int, options: dict, max_faces, min_face_size: int, detect_every: int, tracker):
    """``frame → crops``: :func:`extract_faces` on every frame, or keyframe detection + tracking."""
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
    tta: str = "none",
) -> MediaPrediction:
    """Every face's class probabilities in a video or image, through the training face pipeline.

    Args:
        media_path: video or image.
        predictor: from :func:`load_predictor`.
        frames: evenly spaced frames to sample instead (default: :data:`DEFAULT_FPS` frames per second).
        fps: sample this many frames per second instead (dense timelines); overrides ``frames``. Frames
            stream through one at a time whatever the clip's length.
        detector: face detector (default :data:`PREDICT_DETECTOR`; ``"hog"``: the paper's).
        max_faces: at most this many faces per frame (the largest); None = all.
        min_face_size: ignore faces smaller than this (box side, pixels); also lets detection run on a
            downscaled frame (:func:`fer_utils.faces.detection.detect_width_for`).
        detect_every: full face detection on every k-th sampled frame, faces followed between
            (:mod:`fer_utils.faces.keyframes`); 1 = detect on every frame.
        tracker: how faces are followed between keyframes (:data:`fer_utils.faces.keyframes.TRACKERS`).
        tta: test-time augmentation of each face (:data:`~fer_utils.deploy.predictors.TTA_MODES`):
            ``none`` (one crop), ``flip`` (the mean with the mirrored face: twice the classifier's cost)
            or ``tencrop``; the model card reports each.

    Returns:
        A :class:`MediaPrediction`; an unreadable file gives one with ``error`` set, not an exception.
    """
    media_path = str(media_path)
    preprocessing = dict(predictor.spec.get("preprocessing") or {})
    options = {**model_face_options(predictor, detector), "media_path": media_path}
    count = frames_to_sample(media_path, preprocessing, frames, fps)
    result = MediaPrediction(media_path, predictor.labels, _FaceTable(media_path, []).frame())
    result.is_image = is_image(media_path)
    detect_every = effective_detect_every(media_path, count, detect_every)
    result.method = {
        "detector": options["detector"],
        "detect_every": detect_every,
        "tracker": tracker if detect_every > 1 else None,
        "engine": getattr(predictor, "engine", None) or predictor.format,
        "engine_choice": getattr(predictor, "engine_choice", None),
        "tta": tta,
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
            tta,
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

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(
            f"expected a gray or BGR uint8 image, got shape {image.shape} and dtype {image.dtype}"
        )
    face_options = {**model_face_options(predictor, options.pop("detector", None)), "media_path": "<array>"}
    faces, seen, empty = predict_frames([Frame(0, 0.0, image)], predictor, face_options, **options)
    result = MediaPrediction(
        "<array>", predictor.labels, faces, frames_sampled=seen, frames_without_face=empty
    )
    result.is_image, result.tracks = True, track_table(faces, predictor.labels)
    return result
