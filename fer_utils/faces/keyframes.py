"""Detect on keyframes, follow the faces between: the face boxes of a stream of frames at a fraction of
the cost of running the detector on every frame.

Every ``detect_every``-th frame (a *keyframe*) gets a full detection (:func:`~fer_utils.faces.detection.
detect_faces`, as on every frame otherwise). On the frames between, each face of the previous frame is
followed by one of two cheap trackers (:data:`TRACKERS`):

* ``"window"`` — the same detector run on a small window around the face's last box, scaled
  so the face is about :data:`WINDOW_FACE_PX` pixels: the box is the detector's own box (no drift), at a
  fraction of a full frame's pixels.
* ``"correlation"`` (:data:`DEFAULT_TRACKER`) — dlib's correlation tracker (``dlib.correlation_tracker``),
  started on each keyframe box; its peak-to-sidelobe ratio is its confidence.

A face that is not re-found (no box in its window, or a correlation confidence under
:data:`MIN_CORRELATION_CONFIDENCE`) makes that frame a keyframe: full detection again. Keyframes come
every ``detect_every`` frames while faces are followed, so a new face appears on the next keyframe (at
most ``detect_every - 1`` frames late); while no face is known, every :data:`SEARCH_EVERY` frames (a face
entering an empty scene is at most one frame late, at half the cost of detecting on every frame).
``detect_every=1`` is detection on every frame, as before.
"""

from __future__ import annotations

import numpy as np

from fer_utils.faces.detection import FaceBox, detect_faces

TRACKERS = ("window", "correlation")
#: Keyframe spacing of ``fer predict`` (sampled frames): chosen from ``fer bench``'s keyframe section on
#: the real clips (``single_face.mp4``, ``WolfgangLanger_Pexels.mp4``): see benchmarks/README.md.
DEFAULT_DETECT_EVERY = 10
#: The tracker of ``fer predict`` (same measurements).
DEFAULT_TRACKER = "correlation"
#: Keyframe spacing while no face is known (searching).
SEARCH_EVERY = 2
#: The side (pixels) a followed face is scaled to in its search window (dlib's HOG window is 80 px).
WINDOW_FACE_PX = 100
#: Side of the search window as a multiple of the face box's side.
WINDOW_SIDE = 1.8
#: Below this peak-to-sidelobe ratio dlib's correlation tracker has lost the face.
MIN_CORRELATION_CONFIDENCE = 7.0


def _window_redetect(gray: np.ndarray, box: FaceBox, detector: str, upsample: int) -> FaceBox | None:
    """The face nearest ``box`` found by the detector in a window around it (None: not found)."""
    import cv2

    side = max(box.w, box.h) * WINDOW_SIDE
    centre_x, centre_y = box.x + box.w / 2.0, box.y + box.h / 2.0
    height, width = gray.shape[:2]
    x0, y0 = max(0, round(centre_x - side / 2)), max(0, round(centre_y - side / 2))
    x1, y1 = min(width, round(centre_x + side / 2)), min(height, round(centre_y + side / 2))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    window = gray[y0:y1, x0:x1]
    scale = min(1.0, WINDOW_FACE_PX / max(box.w, box.h))
    if scale < 1.0:
        window = cv2.resize(window, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found = detect_faces(window, detector, upsample)
    if not found:
        return None
    best = min(
        found,
        key=lambda b: (
            abs(b.x + b.w / 2 - (centre_x - x0) * scale) + abs(b.y + b.h / 2 - (centre_y - y0) * scale)
        ),
    )
    return FaceBox(
        x0 + round(best.x / scale),
        y0 + round(best.y / scale),
        round(best.w / scale),
        round(best.h / scale),
        best.score,
    )


class KeyframeDetector:
    """Face boxes frame after frame, detecting fully only on keyframes (see the module doc).

    Call :meth:`boxes` once per frame, in order. :attr:`keyframes` counts the full detections made.
    """

    def __init__(
        self,
        detect_every: int = DEFAULT_DETECT_EVERY,
        tracker: str = DEFAULT_TRACKER,
        detector: str = "hog",
        upsample: int = 0,
        detect_width: int | None = None,
    ):
        if detect_every < 1:
            raise ValueError(f"detect_every must be ≥ 1, got {detect_every}")
        if tracker not in TRACKERS:
            raise ValueError(f"unknown tracker {tracker!r}; choose one of {', '.join(TRACKERS)}")
        self.detect_every, self.tracker = detect_every, tracker
        self.detector, self.upsample, self.detect_width = detector, upsample, detect_width
        self.keyframes = 0
        self._since_keyframe: int | None = None
        self._boxes: list[FaceBox] = []
        self._correlation: list = []

    def boxes(self, gray: np.ndarray) -> list[FaceBox]:
        """This frame's face boxes, largest first (as :func:`detect_faces`)."""
        spacing = self.detect_every if self._boxes else min(self.detect_every, SEARCH_EVERY)
        if self._since_keyframe is not None and self._since_keyframe + 1 < spacing:
            followed = self._follow(gray) if self._boxes else []
            if followed is not None:
                self._since_keyframe += 1
                self._boxes = sorted(followed, key=lambda box: (-box.area, -box.score))
                return self._boxes
        return self._keyframe(gray)

    def _keyframe(self, gray: np.ndarray) -> list[FaceBox]:
        self.keyframes += 1
        self._since_keyframe = 0
        self._boxes = detect_faces(gray, self.detector, self.upsample, self.detect_width)
        if self.tracker == "correlation":
            # dlib's update costs about the same (~4 ms here) at any frame or face size: no downscaling.
            self._correlation = [self._start_correlation(gray, box) for box in self._boxes]
        return self._boxes

    def _follow(self, gray: np.ndarray) -> list[FaceBox] | None:
        """Every known face followed into this frame, or None when one is lost (→ keyframe)."""
        if self.tracker == "window":
            followed = [_window_redetect(gray, box, self.detector, self.upsample) for box in self._boxes]
        else:
            followed = [self._update_correlation(gray, tracker) for tracker in self._correlation]
        return None if any(box is None for box in followed) else followed

    @staticmethod
    def _start_correlation(gray: np.ndarray, box: FaceBox):
        import dlib

        tracker = dlib.correlation_tracker()
        rect = dlib.rectangle(box.x, box.y, box.x + box.w, box.y + box.h)
        tracker.start_track(np.ascontiguousarray(gray), rect)
        return tracker

    @staticmethod
    def _update_correlation(gray: np.ndarray, tracker) -> FaceBox | None:
        confidence = tracker.update(np.ascontiguousarray(gray))
        if confidence < MIN_CORRELATION_CONFIDENCE:
            return None
        rect = tracker.get_position()
        return FaceBox(
            round(rect.left()), round(rect.top()), round(rect.width()), round(rect.height()), confidence
        )
