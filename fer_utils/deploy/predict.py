"""Predict emotions on new media.

``fer predict MEDIA --model PATH`` runs a Keras model (``model.keras`` or a run folder) or an exported
one on a video, an image or a folder of them, through the same frame sampling and face pipeline as
training, and writes per-frame class probabilities (CSV), a video-level label and an emotion-over-time
figure (HTML).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_utils.data.datasets import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from fer_utils.deploy.predictors import Predictor, load_predictor
from fer_utils.faces.detection import DETECTORS, extract_face
from fer_utils.faces.frames import is_image, sample_frames

# ------------------------------------------------------------------------------------------ predict media

DEFAULT_FRAMES = 6


@dataclass
class MediaPrediction:
    """Result of :func:`predict_media` for one video or image.

    ``timeline`` has one row per sampled frame where a face was found (frame_index, timestamp_s, box,
    predicted_label, confidence, ``prob_<label>``); ``frames_without_face`` lists the other sampled
    frames; ``label`` is the video-level label (highest mean probability over the faces), None when no
    face was found.
    """

    media_path: str
    labels: list[str]
    timeline: object  # pandas.DataFrame
    frames_sampled: int = 0
    frames_without_face: list[int] = field(default_factory=list)
    label: str | None = None
    confidence: float | None = None
    mean_probabilities: dict = field(default_factory=dict)
    error: str | None = None
    outputs: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.error:
            return "unreadable"
        return "ok" if self.label is not None else "no_face"

    def message(self) -> str:
        name = Path(self.media_path).name
        if self.error:
            return f"{name}: {self.error}"
        if self.label is None:
            return f"{name}: no face found in {self.frames_sampled} sampled frame(s)"
        return (
            f"{name}: {self.label} ({self.confidence:.2f}) from {len(self.timeline)} face(s) in "
            f"{self.frames_sampled} sampled frame(s)"
        )


def _face_options(preprocessing: dict, detector: str | None) -> dict:
    """The training face pipeline's options accepted by :func:`fer_utils.faces.extract_face`."""
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
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        native_fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        frames = capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0
    finally:
        capture.release()
    if native_fps <= 0 or frames <= 0:
        return DEFAULT_FRAMES
    return max(1, round(frames / native_fps * fps))


def predict_media(
    media_path: str | os.PathLike,
    predictor: Predictor,
    frames: int | None = None,
    fps: float | None = None,
    detector: str | None = None,
) -> MediaPrediction:
    """Per-frame class probabilities of one video or image through the training face pipeline.

    Args:
        media_path: video or image.
        predictor: from :func:`load_predictor`.
        frames: evenly spaced frames to sample (default: the training ``frames_per_video``, else 6).
        fps: sample this many frames per second instead (dense timelines); overrides ``frames``.
        detector: face detector override (default: the training detector; HOG for models trained on
            already-cropped faces).

    Returns:
        A :class:`MediaPrediction`.
    """
    import pandas as pd

    media_path = str(media_path)
    preprocessing = dict(predictor.spec.get("preprocessing") or {})
    options = _face_options(preprocessing, detector)
    if fps is not None and not is_image(media_path):
        count = frame_count_for_rate(media_path, fps)
    else:
        count = int(frames or preprocessing.get("frames_per_video") or DEFAULT_FRAMES)
    if count < 1:
        raise ValueError(f"frames must be ≥ 1, got {count}")
    sampled = sample_frames(media_path, count, gray=True)
    empty = pd.DataFrame()
    if sampled.error and not sampled.frames:
        return MediaPrediction(media_path, predictor.labels, empty, error=sampled.error)
    rows, faces, missing = [], [], []
    for frame in sampled.frames:
        crop = extract_face(frame.image, predictor.image_size, **options)
        if crop is None:
            missing.append(frame.index)
            continue
        faces.append(crop.face)
        rows.append(
            {
                "media_path": media_path,
                "frame_index": frame.index,
                "timestamp_s": round(frame.timestamp / 1000.0, 4),
                "bbox_x": crop.box.x,
                "bbox_y": crop.box.y,
                "bbox_w": crop.box.w,
                "bbox_h": crop.box.h,
            }
        )
    result = MediaPrediction(
        media_path, predictor.labels, empty, frames_sampled=len(sampled.frames), frames_without_face=missing
    )
    if not faces:
        return result
    probabilities = predictor.predict_proba(np.stack(faces))
    timeline = pd.DataFrame(rows)
    timeline["predicted_label"] = [predictor.labels[i] for i in probabilities.argmax(axis=1)]
    timeline["confidence"] = probabilities.max(axis=1)
    for i, label in enumerate(predictor.labels):
        timeline[f"prob_{label}"] = probabilities[:, i]
    mean = probabilities.mean(axis=0)
    result.timeline = timeline
    result.label = predictor.labels[int(mean.argmax())]
    result.confidence = float(mean.max())
    result.mean_probabilities = {label: float(p) for label, p in zip(predictor.labels, mean, strict=True)}
    return result


def timeline_figure(prediction: MediaPrediction):
    """Plotly figure of each emotion's probability over time (one line per class)."""
    import plotly.graph_objects as go

    figure = go.Figure()
    timeline = prediction.timeline
    for label in prediction.labels:
        figure.add_trace(
            go.Scatter(
                x=timeline["timestamp_s"] if len(timeline) else [],
                y=timeline[f"prob_{label}"] if len(timeline) else [],
                mode="lines+markers",
                name=label,
                customdata=timeline["frame_index"] if len(timeline) else [],
                hovertemplate=f"{label}: %{{y:.2f}}<br>t=%{{x:.2f}} s, frame %{{customdata}}<extra></extra>",
            )
        )
    verdict = (
        f"video label: {prediction.label} ({prediction.confidence:.2f})"
        if prediction.label
        else "no face found"
    )
    figure.update_layout(
        title=f"Emotion over time — {Path(prediction.media_path).name} — {verdict}",
        xaxis_title="time (s)",
        yaxis_title="probability",
        yaxis_range=[0, 1],
        legend_title="emotion",
    )
    return figure


#: Longest output file name in bytes (most file systems allow 255; room is left for temporary names).
MAX_OUTPUT_NAME_BYTES = 200
OUTPUT_SUFFIXES = ("_summary.json", "_timeline.csv", "_timeline.html")


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


def write_prediction(prediction: MediaPrediction, out_dir: str | os.PathLike, model_path: str = "") -> dict:
    """Write ``<name>_timeline.csv``, ``<name>_summary.json`` and ``<name>_timeline.html``, ``<name>`` being
    the media's whole file name (:func:`output_stem`).

    Returns:
        The written paths by kind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = output_stem(prediction.media_path)
    paths = {"summary": out_dir / f"{stem}_summary.json"}
    summary = {
        "media_path": prediction.media_path,
        "model": model_path,
        "status": prediction.status,
        "message": prediction.message(),
        "label": prediction.label,
        "confidence": prediction.confidence,
        "mean_probabilities": prediction.mean_probabilities,
        "frames_sampled": prediction.frames_sampled,
        "faces": int(len(prediction.timeline)),
        "frames_without_face": prediction.frames_without_face,
        "labels": prediction.labels,
    }
    if prediction.status == "ok":
        paths["timeline"] = out_dir / f"{stem}_timeline.csv"
        prediction.timeline.to_csv(paths["timeline"], index=False)
        paths["figure"] = out_dir / f"{stem}_timeline.html"
        timeline_figure(prediction).write_html(paths["figure"], include_plotlyjs=True)
    paths["summary"].write_text(json.dumps(summary, indent=2))
    prediction.outputs = {kind: str(path) for kind, path in paths.items()}
    return prediction.outputs


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
    predict.add_argument("media", help="video, image or folder of them")
    predict.add_argument("--model", required=True, help="run folder, model.keras, .tflite or .onnx")
    predict.add_argument("--fps", type=float, help="sample this many frames per second (dense timeline)")
    predict.add_argument(
        "--frames-per-video",
        "--frames",
        dest="frames",
        type=int,
        help="evenly spaced frames per video (default: as in training)",
    )
    predict.add_argument("--detector", choices=DETECTORS, help="face detector (default: as in training)")
    predict.add_argument("--threads", type=int, help="CPU threads of TFLite / ONNX Runtime (default: all)")
    predict.add_argument("--out", default="predictions", help="output folder (default: ./predictions)")
    predict.set_defaults(func=_predict_cli)


def _predict_cli(args) -> int:
    import pandas as pd

    if args.frames is not None and args.frames < 1:
        raise ValueError(f"--frames must be ≥ 1, got {args.frames}")
    if args.fps is not None and args.fps <= 0:
        raise ValueError(f"--fps must be > 0, got {args.fps}")
    media = media_in(args.media)
    predictor = load_predictor(args.model, args.threads)
    rows = []
    for path in media:
        prediction = predict_media(path, predictor, args.frames, args.fps, args.detector)
        outputs = write_prediction(prediction, args.out, str(args.model))
        print(prediction.message())
        rows.append(
            {
                "media_path": str(path),
                "status": prediction.status,
                "label": prediction.label,
                "confidence": prediction.confidence,
                "faces": len(prediction.timeline),
                "frames_sampled": prediction.frames_sampled,
                **outputs,
            }
        )
    if len(media) > 1:
        pd.DataFrame(rows).to_csv(Path(args.out) / "summary.csv", index=False)
    print(f"outputs in {args.out}")
    return 0 if any(row["status"] == "ok" for row in rows) else 1
