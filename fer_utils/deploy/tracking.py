"""Face tracks: the faces of successive sampled frames linked by how much their boxes overlap.

Each frame's boxes are matched one-to-one to the live tracks by maximum total IoU (Hungarian assignment,
``scipy.optimize.linear_sum_assignment``); a match needs IoU ≥ ``min_iou``. An unmatched face starts a
new track; a track unseen for more than ``max_gap`` sampled frames ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    width = min(ax + aw, bx + bw) - max(ax, bx)
    height = min(ay + ah, by + bh) - max(ay, by)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / float(aw * ah + bw * bh - inter)


@dataclass
class _Track:
    track_id: int
    box: tuple[int, int, int, int]
    last_step: int


class FaceTracker:
    """Assigns a track id to every face box, frame after frame (call :meth:`assign` once per frame)."""

    def __init__(self, min_iou: float = 0.3, max_gap: int = 2):
        self.min_iou = min_iou
        self.max_gap = max_gap
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._step = -1

    def assign(self, boxes: list[tuple[int, int, int, int]]) -> list[int]:
        """Track ids for one frame's boxes, in the boxes' order."""
        from scipy.optimize import linear_sum_assignment

        self._step += 1
        self._tracks = [t for t in self._tracks if self._step - t.last_step <= self.max_gap + 1]
        ids: list[int | None] = [None] * len(boxes)
        if boxes and self._tracks:
            overlap = np.array([[box_iou(box, track.box) for track in self._tracks] for box in boxes])
            rows, columns = linear_sum_assignment(-overlap)
            for row, column in zip(rows, columns, strict=True):
                if overlap[row, column] >= self.min_iou:
                    track = self._tracks[column]
                    track.box, track.last_step = boxes[row], self._step
                    ids[row] = track.track_id
        for row, box in enumerate(boxes):
            if ids[row] is None:
                self._tracks.append(_Track(self._next_id, box, self._step))
                ids[row] = self._next_id
                self._next_id += 1
        return [int(i) for i in ids]
