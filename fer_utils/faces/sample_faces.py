"""One sample (video or image) → its faces: :func:`process_sample`, what each worker of
:func:`fer_utils.faces.preprocess.preprocess` runs.

``frames_per_video × candidates_per_frame`` evenly spaced candidate frames are decoded; per group of
consecutive candidates the face nearest the group's centre is kept, face-less stretches filled from the
other candidates; fewer than ``min_faces`` is a skip reason. Each face gets its index row.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from fer_utils.data.samples import Sample
from fer_utils.faces.cache import TIME_COLUMN
from fer_utils.faces.detection import extract_face
from fer_utils.faces.frames import SampledFrames, sample_frames
from fer_utils.faces.preprocess_config import PreprocessConfig

REASON_NO_FACE = "no face"
REASON_FEWER_FACES = "fewer faces than"
REASON_ERROR = "error"


class ProcessedItem(NamedTuple):
    """What a worker returns for one sample."""

    media_path: str
    faces: np.ndarray | None
    rows: list[dict]
    reason: str | None
    stats: dict


#: A frame source: ``(media path, count) → SampledFrames`` (see :func:`fer_utils.faces.frames.sample_frames`).
FrameSource = Callable[[str, int], SampledFrames]


def process_sample(
    sample: Sample, config: PreprocessConfig, frame_source: FrameSource | None = None
) -> ProcessedItem:
    """One sample → faces, index rows, a skip reason (or None) and per-item stats.

    Args:
        sample: the media item.
        config: the preprocessing config.
        frame_source: how candidate frames are read (default: :func:`~fer_utils.faces.frames.sample_frames`
            in gray with ``config.sampling``); the benchmark passes a naive decoder here.

    Returns:
        A :class:`ProcessedItem`; ``stats`` holds ``sampled_frames`` (frames searched for a face),
        ``face_frames`` (of those, frames with a face), ``faces`` (kept) and ``seconds``.
    """
    started = time.perf_counter()
    try:
        faces, rows, reason, stats = _process(sample, config, frame_source)
    except Exception as error:  # one bad file must not stop a batch of thousands
        detail = traceback.format_exception_only(type(error), error)[-1].strip()
        faces, rows, reason = None, [], f"{REASON_ERROR}: {detail}"
        stats = {"sampled_frames": 0, "face_frames": 0}
    stats = {**stats, "faces": len(rows), "seconds": round(time.perf_counter() - started, 4)}
    return ProcessedItem(sample.media_path, faces, rows, reason, stats)


def _process(sample: Sample, config: PreprocessConfig, frame_source: FrameSource | None):
    sampled = _candidate_frames(sample, config, frame_source)
    if sampled.error:
        return None, [], sampled.error, {"sampled_frames": 0, "face_frames": 0}
    frames = sampled.frames
    found: dict[int, object] = {}  # position in frames → FaceCrop or None

    def look(position: int):
        if position not in found:
            found[position] = _extract(frames[position].image, config)
        return found[position]

    chosen = _choose_positions(len(frames), config.frames_per_video, look)
    stats = {
        "sampled_frames": len(found),
        "face_frames": sum(crop is not None for crop in found.values()),
        "candidate_frames": len(frames),
        "reported_frames": sampled.reported_count,
    }
    reason = _shortfall(len(chosen), len(found), config.min_faces)
    if reason:
        return None, [], reason, stats
    crops = [(frames[position], found[position]) for position in chosen]
    base = sample.row()
    rows = [_index_row(base, frame, crop, config.detector) for frame, crop in crops]
    return np.stack([crop.face for _, crop in crops]).astype(np.uint8), rows, None, stats


def _candidate_frames(
    sample: Sample, config: PreprocessConfig, frame_source: FrameSource | None
) -> SampledFrames:
    candidates = config.frames_per_video * (1 if config.detector == "none" else config.candidates_per_frame)
    if frame_source is None:
        return sample_frames(sample.media_path, candidates, gray=True, method=config.sampling)
    return frame_source(sample.media_path, candidates)


def _extract(image: np.ndarray, config: PreprocessConfig):
    return extract_face(
        image,
        image_size=config.face_size,
        detector=config.detector,
        upsample=config.upsample,
        detect_width=config.detect_width,
        margin=config.margin,
        align=config.align,
        equalize=config.equalize,
    )


def _choose_positions(count: int, wanted: int, look: Callable[[int], object]) -> list[int]:
    """Up to ``wanted`` sorted positions among ``count`` candidates whose ``look`` finds a face."""
    chosen = _nearest_centre_faces(count, wanted, look)
    if len(chosen) < wanted:
        chosen.extend(_spare_faces(count, wanted - len(chosen), chosen, look))
    return sorted(chosen)


def _nearest_centre_faces(count: int, wanted: int, look: Callable[[int], object]) -> list[int]:
    """Per group of consecutive candidates, the face nearest the group's centre."""
    chosen: list[int] = []
    for group in np.array_split(np.arange(count), min(wanted, count)):
        group = list(group)
        centre = (len(group) - 1) / 2
        for position in sorted(group, key=lambda p: (abs(p - group[0] - centre), p)):
            if look(position) is not None:
                chosen.append(position)
                break
    return chosen


def _spare_faces(count: int, missing: int, chosen: list[int], look: Callable[[int], object]) -> list[int]:
    """Up to ``missing`` evenly spread other candidates with a face (fills face-less stretches)."""
    spare = [p for p in range(count) if p not in chosen and look(p) is not None]
    extra = min(missing, len(spare))
    if not extra:
        return []
    picks = np.linspace(0, len(spare) - 1, extra).round().astype(int)
    return [spare[i] for i in sorted(set(picks.tolist()))]


def _shortfall(chosen: int, sampled: int, min_faces: int) -> str | None:
    if not chosen:
        return f"{REASON_NO_FACE}: none in {sampled} sampled frames"
    if chosen < min_faces:
        return f"{REASON_FEWER_FACES} {min_faces}: found {chosen} in {sampled} sampled frames"
    return None


def _index_row(base: dict, frame, crop, detector: str) -> dict:
    return {
        **base,
        "frame_index": frame.index,
        TIME_COLUMN: round(frame.timestamp / 1000.0, 4),
        "bbox_x": crop.box.x,
        "bbox_y": crop.box.y,
        "bbox_w": crop.box.w,
        "bbox_h": crop.box.h,
        "face_score": round(crop.box.score, 4),
        "align_angle": round(crop.angle, 3),
        "detector": detector,
    }
