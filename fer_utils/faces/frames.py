"""Frame sampling: N evenly spaced frames of a clip, decoding only what is needed.

Frames are read with a sequential ``grab()`` walk that converts (``retrieve()``) only the chosen frames:
frame-accurate on every container, including variable-frame-rate ``.mov`` files where
``CAP_PROP_POS_FRAMES`` seeks land on the wrong frame. ``method="seek"`` is kept for comparison
(benchmarks); it is faster only on long clips with frequent key frames.

Containers often over-state their frame count (``face_noface.mov`` reports 169 frames but the last one
never decodes). The last stretch of the clip is therefore kept in a small buffer: when the stream ends
early, the missing targets are replaced by the latest frames that did decode; when it ends far earlier
than announced, the clip is sampled again, evenly over the frames that really decode. An image is a
one-frame medium.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_utils.data.samples import IMAGE_SUFFIXES

SAMPLING_METHODS = ("grab", "seek")


@dataclass
class Frame:
    """One decoded frame: its index in the clip, timestamp (ms) and pixels (gray or BGR uint8)."""

    index: int
    timestamp: float
    image: np.ndarray


@dataclass
class SampledFrames:
    """Result of :func:`sample_frames`.

    ``frames`` are sorted by index; ``reported_count`` is what the container announced,
    ``decoded_count`` how many frames really decoded when the walk reached the end (None if it stopped
    before), ``error`` a reason when nothing could be read.
    """

    frames: list[Frame] = field(default_factory=list)
    reported_count: int = 0
    decoded_count: int | None = None
    error: str | None = None


def is_image(path: str | os.PathLike) -> bool:
    """True when the path has an image suffix (images are one-frame media)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def evenly_spaced(count: int, n: int) -> list[int]:
    """``n`` evenly spaced indices over ``range(count)`` including both ends (fewer if count < n).

    Args:
        count: number of frames.
        n: wanted number of indices.

    Returns:
        Sorted distinct indices.
    """
    if n < 1:
        raise ValueError(f"number of frames must be ≥ 1, got {n}")
    if count <= 0:
        return []
    if n == 1:
        return [(count - 1) // 2]
    return sorted(set(np.linspace(0, count - 1, min(n, count)).round().astype(int).tolist()))


#: FFmpeg's log level for the suite's decoding (AV_LOG_QUIET): a damaged clip is reported by the suite in one
#: line, not by FFmpeg's "moov atom not found" / "Reference 4 >= 4" lines before it.
FFMPEG_LOG_LEVEL = "-8"
_decoding_quieted = False


def quiet_video_decoding() -> None:
    """Silence FFmpeg's and OpenCV's own lines about damaged media (``OPENCV_FFMPEG_LOGLEVEL``, read when the
    first capture opens, and OpenCV's log level to errors); a user's ``OPENCV_FFMPEG_LOGLEVEL`` or
    ``OPENCV_LOG_LEVEL`` wins. Called before every capture the suite opens."""
    global _decoding_quieted
    if _decoding_quieted:
        return
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_LOG_LEVEL)
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    _decoding_quieted = True


def open_video(path: str | os.PathLike, threads: int = 1):
    """An opened ``cv2.VideoCapture`` (FFmpeg, ``threads`` decoding threads, quiet), or None."""
    import cv2

    quiet_video_decoding()
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    if not capture.isOpened():
        capture.release()
        return None
    return capture


def _open_capture(path: str):
    # One decoding thread: parallelism comes from worker processes, one clip each.
    return open_video(path, threads=1)


def _convert(image: np.ndarray, gray: bool) -> np.ndarray:
    import cv2

    if gray and image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return image


def read_image(path: str | os.PathLike, gray: bool = True) -> SampledFrames:
    """An image as a one-frame :class:`SampledFrames` (frame index 0, timestamp 0)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if image is None:
        return SampledFrames(error=_permission_problem(str(path)) or "unreadable (not a decodable image)")
    return SampledFrames([Frame(0, 0.0, image)], reported_count=1, decoded_count=1)


def sample_frames(
    path: str | os.PathLike,
    count: int,
    gray: bool = True,
    method: str = "grab",
    tail_window: int | None = None,
) -> SampledFrames:
    """Decode ``count`` evenly spaced frames of a video (or the single frame of an image).

    Args:
        path: video or image file.
        count: wanted number of frames (fewer when the clip is shorter).
        gray: convert frames to grayscale (faces are gray in the cache).
        method: ``"grab"`` (sequential, frame-accurate; default) or ``"seek"`` (``CAP_PROP_POS_FRAMES``).
        tail_window: frames kept near the announced end to replace targets that do not decode
            (default: the last 5 % of the clip, at least 4 frames); a clip that ends before this
            window is sampled again over the frames that decode.

    Returns:
        A :class:`SampledFrames`; ``error`` is set when the file does not open or no frame decodes.
    """
    if method not in SAMPLING_METHODS:
        raise ValueError(f"unknown frame sampling method {method!r}; choose one of {SAMPLING_METHODS}")
    if count < 1:
        raise ValueError(f"number of frames must be ≥ 1, got {count}")
    path = str(path)
    problem = _file_problem(path)
    if problem:
        return SampledFrames(error=problem)
    if is_image(path):
        return read_image(path, gray)
    capture = _open_capture(path)
    if capture is None:
        return SampledFrames(error="unreadable (the container does not open)")
    result = _sample_video(capture, path, count, gray, method, tail_window)
    if not result.frames:
        result.error = "no decodable frame"
    return result


def _file_problem(path: str) -> str | None:
    if not os.path.isfile(path):
        return "unreadable (not a regular file)"
    if os.path.getsize(path) == 0:
        return "unreadable (empty file)"
    return _permission_problem(path)


def _permission_problem(path: str) -> str | None:
    """``unreadable (permission denied)`` when the file cannot be opened for reading (OpenCV says only
    that it does not decode)."""
    try:
        open(path, "rb").close()
    except PermissionError:
        return "unreadable (permission denied)"
    return None


def _sample_video(
    capture, path: str, count: int, gray: bool, method: str, tail_window: int | None
) -> SampledFrames:
    """Sample an open capture (released here), reopening the file when it must be walked again."""
    import cv2

    try:
        reported = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if reported <= 0:
            reported = _count_frames(capture)
            capture.release()
            capture = _open_capture(path)
            if capture is None or reported == 0:
                return SampledFrames(reported_count=0, decoded_count=0, error="no decodable frame")
        result = _sample_once(capture, reported, count, gray, method, tail_window)
        if result.decoded_count is not None and len(result.frames) < min(count, result.decoded_count):
            # The clip ends far before its announced length: sample again over what decodes.
            capture.release()
            capture = _open_capture(path)
            result = _sample_decoded(capture, reported, result.decoded_count, count, gray)
    finally:
        if capture is not None:
            capture.release()
    return result


def _sample_once(
    capture, reported: int, count: int, gray: bool, method: str, tail_window: int | None
) -> SampledFrames:
    if method == "seek":
        return _sample_by_seeking(capture, reported, count, gray)
    window = tail_window if tail_window is not None else max(4, reported // 20)
    return _sample_by_grabbing(capture, reported, count, gray, window)


def _sample_decoded(capture, reported: int, decoded: int, count: int, gray: bool) -> SampledFrames:
    targets = evenly_spaced(decoded, count)
    result = _sample_by_grabbing(capture, max(targets) + 1, count, gray, 0, targets=targets)
    result.reported_count, result.decoded_count = reported, decoded
    return result


def _count_frames(capture) -> int:
    frames = 0
    while capture.grab():
        frames += 1
    return frames


def _sample_by_grabbing(
    capture, reported: int, count: int, gray: bool, tail_window: int, targets: list[int] | None = None
) -> SampledFrames:
    import cv2

    targets = targets if targets is not None else evenly_spaced(reported, count)
    wanted = set(targets)
    last_target = targets[-1]
    tail_start = max(0, reported - tail_window)
    taken: dict[int, Frame] = {}
    tail: deque[Frame] = deque(maxlen=max(1, len(targets)))
    index = 0
    ended_at = None
    while index <= last_target:
        if not capture.grab():
            ended_at = index
            break
        if index in wanted or (tail_window and index >= tail_start):
            ok, image = capture.retrieve()
            # A uniform frame near the announced end is padding, not picture (noface_face.mov).
            if ok and image is not None and not (index >= tail_start and image.min() == image.max()):
                frame = Frame(index, float(capture.get(cv2.CAP_PROP_POS_MSEC)), _convert(image, gray))
                if index in wanted:
                    taken[index] = frame
                else:
                    tail.append(frame)
        index += 1
    result = SampledFrames(reported_count=reported)
    missing = len(targets) - len(taken)
    if ended_at is not None:
        result.decoded_count = ended_at
    if missing:
        # Replace targets past the real end (or blank there) by the latest frames that decoded.
        spare = [frame for frame in reversed(tail) if frame.index not in taken]
        for frame in spare[:missing]:
            taken[frame.index] = frame
    result.frames = [taken[i] for i in sorted(taken)]
    return result


def _sample_by_seeking(capture, reported: int, count: int, gray: bool) -> SampledFrames:
    import cv2

    result = SampledFrames(reported_count=reported)
    frames: dict[int, Frame] = {}
    for target in evenly_spaced(reported, count):
        index = target
        # Step back from targets past the real end (over-stated frame counts).
        while index >= 0 and index not in frames:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, image = capture.read()
            if ok and image is not None:
                timestamp = float(capture.get(cv2.CAP_PROP_POS_MSEC))
                frames[index] = Frame(index, timestamp, _convert(image, gray))
                break
            index -= 1
            if target - index > max(2 * count, reported // 20):
                break
    result.frames = [frames[i] for i in sorted(frames)]
    return result


#: Above this many frames, :func:`stream_frames` decodes and hands out one frame at a time.
STREAM_ABOVE = 64


class UnreadableMedia(Exception):
    """A file that gives no frame: the message says why."""


def stream_frames(path: str | os.PathLike, count: int, gray: bool = True, color: bool = False):
    """Yield ``count`` evenly spaced frames of a clip in order, holding one decoded frame at a time.

    Up to :data:`STREAM_ABOVE` frames come from :func:`sample_frames` (with its repair of over-stated
    frame counts); denser sampling (``fer predict --fps``) walks the clip once and yields each chosen frame
    as it decodes, so memory does not grow with the clip's length. Targets past the real end of the clip
    are simply not yielded. An image yields its one frame.

    Args:
        color: also keep the BGR frame (``Frame.image`` is then BGR; convert for detection).

    Raises:
        UnreadableMedia: the file does not open or no frame decodes.
    """
    import cv2

    if count < 1:
        raise ValueError(f"number of frames must be ≥ 1, got {count}")
    path = str(path)
    if is_image(path) or count <= STREAM_ABOVE:
        sampled = sample_frames(path, count, gray=gray and not color)
        if not sampled.frames:
            raise UnreadableMedia(sampled.error or "no decodable frame")
        yield from sampled.frames
        return
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise UnreadableMedia("unreadable (not a regular, non-empty file)")
    capture = _open_capture(path)
    if capture is None:
        raise UnreadableMedia("unreadable (the container does not open)")
    try:
        reported = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if reported <= 0:
            raise UnreadableMedia("the container does not say how many frames it holds")
        wanted = iter(evenly_spaced(reported, count))
        target, index, yielded = next(wanted, None), 0, 0
        while target is not None and capture.grab():
            if index == target:
                ok, image = capture.retrieve()
                if ok and image is not None:
                    yielded += 1
                    timestamp = float(capture.get(cv2.CAP_PROP_POS_MSEC))
                    yield Frame(index, timestamp, _convert(image, gray and not color))
                target = next(wanted, None)
            index += 1
        if not yielded:
            raise UnreadableMedia("no decodable frame")
    finally:
        capture.release()
