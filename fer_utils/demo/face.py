"""The source photo (``skimage.data.astronaut()``): its canvas, person mask and 68 landmarks found with the
face detector, and the thin-plate-spline warp that moves those landmarks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fer_utils.demo.expressions import Move
from fer_utils.faces.detection import get_detector, get_landmark_predictor


@dataclass(frozen=True)
class BaseFace:
    """The source photo cropped to a canvas around the head, its person mask and its 68 landmarks."""

    image: np.ndarray  # (H, W, 3) float32 RGB in 0..255
    mask: np.ndarray  # (H, W) float32 in 0..1, 1 on the person
    landmarks: np.ndarray  # (68, 2) float32 (x, y) in canvas pixels
    inter_ocular: float
    midline_x: float
    lip_colour: np.ndarray  # (3,) mean RGB of the lower lip


@lru_cache(maxsize=1)
def base_face() -> BaseFace:
    """Load ``skimage.data.astronaut()``, find its face and 68 landmarks with dlib, and cut the canvas.

    Returns:
        The cached :class:`BaseFace`.
    """
    import cv2
    from skimage import data

    photo = data.astronaut()
    detections = get_detector("hog")(photo, 1)
    if not detections:
        raise RuntimeError("dlib found no face in skimage.data.astronaut(); the demo cannot be built")
    face_box = max(detections, key=lambda r: r.width() * r.height())
    shape = get_landmark_predictor()(photo, face_box)
    landmarks = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)

    # Canvas: a fixed window around the head (the person mask cuts the studio background away).
    centre_x, centre_y = landmarks.mean(axis=0)
    left, top = int(round(centre_x)) - 160, max(int(round(centre_y)) - 150, 0)
    canvas = photo[top : top + 320, left : left + 320]
    landmarks = landmarks - np.array([left, top], dtype=np.float32)

    # Person mask: the studio background is light and unsaturated; the person is saturated (skin, hair,
    # suit) or dark (shirt, collar ring).
    hsv = cv2.cvtColor(canvas, cv2.COLOR_RGB2HSV)
    person = ((hsv[..., 1] > 45) | (hsv[..., 2] < 120)).astype(np.uint8)
    person = cv2.morphologyEx(person, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    person = cv2.morphologyEx(person, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(person)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    person = (labels == biggest).astype(np.uint8)
    # Fill holes (teeth, eye whites, highlights) by flood-filling the background from the border.
    flood = np.pad(1 - person, 1, constant_values=1)
    cv2.floodFill(flood, None, (0, 0), 2)
    person[flood[1:-1, 1:-1] != 2] = 1
    # Cover the face itself for sure, whatever the threshold did.
    cv2.fillConvexPoly(person, cv2.convexHull(landmarks.astype(np.int32)), 1)
    mask = cv2.GaussianBlur(person.astype(np.float32), (0, 0), 1.5)

    lower_lip = np.zeros(person.shape, dtype=np.uint8)
    cv2.fillPoly(lower_lip, [landmarks[[54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64]].astype(np.int32)], 1)
    lip_colour = canvas[lower_lip.astype(bool)].mean(axis=0).astype(np.float32)

    eye_right = landmarks[36:42].mean(axis=0)
    eye_left = landmarks[42:48].mean(axis=0)
    return BaseFace(
        image=canvas.astype(np.float32),
        mask=mask,
        landmarks=landmarks,
        inter_ocular=float(np.linalg.norm(eye_left - eye_right)),
        midline_x=float(landmarks[27:31, 0].mean()),
        lip_colour=lip_colour,
    )


def landmark_displacements(moves: Sequence[Move], face: BaseFace) -> np.ndarray:
    """Turn (indices, outward, up) moves into a (68, 2) pixel displacement array (moves add up)."""
    displacement = np.zeros((68, 2), dtype=np.float32)
    for indices, outward, up in moves:
        for index in indices:
            side = np.sign(face.landmarks[index, 0] - face.midline_x)
            if abs(face.landmarks[index, 0] - face.midline_x) < 0.05 * face.inter_ocular:
                side = 0.0
            displacement[index, 0] += side * outward * face.inter_ocular
            displacement[index, 1] -= up * face.inter_ocular
    return displacement


def _anchor_points(face: BaseFace) -> np.ndarray:
    """Points that stay put: a wide ellipse around the face and the canvas border."""
    centre = face.landmarks.mean(axis=0)
    half_size = (face.landmarks.max(axis=0) - face.landmarks.min(axis=0)) / 2
    angles = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    ring = centre + np.stack(
        [np.cos(angles) * half_size[0] * 1.9, np.sin(angles) * half_size[1] * 2.0], axis=1
    )
    height, width = face.mask.shape
    steps = np.linspace(0, 1, 6)
    border = np.concatenate(
        [
            np.stack([steps * (width - 1), np.zeros_like(steps)], 1),
            np.stack([steps * (width - 1), np.full_like(steps, height - 1)], 1),
            np.stack([np.zeros_like(steps), steps * (height - 1)], 1),
            np.stack([np.full_like(steps, width - 1), steps * (height - 1)], 1),
        ]
    )
    return np.concatenate([ring, border]).astype(np.float32)


def displacement_field(displacement: np.ndarray, face: BaseFace, grid_step: int = 8) -> np.ndarray:
    """Dense forward displacement field (H, W, 2) of the canvas that moves each landmark by
    ``displacement`` and keeps the anchors still (thin-plate-spline interpolation on a coarse grid)."""
    import cv2
    from scipy.interpolate import RBFInterpolator

    anchors = _anchor_points(face)
    centres = np.concatenate([face.landmarks, anchors])
    values = np.concatenate([displacement, np.zeros_like(anchors)])
    interpolator = RBFInterpolator(centres, values, kernel="thin_plate_spline", smoothing=0.5)
    height, width = face.mask.shape
    ys, xs = np.mgrid[0 : height + grid_step : grid_step, 0 : width + grid_step : grid_step]
    coarse = interpolator(np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64))
    coarse = coarse.reshape(xs.shape + (2,)).astype(np.float32)
    full = cv2.resize(
        coarse, (xs.shape[1] * grid_step, xs.shape[0] * grid_step), interpolation=cv2.INTER_LINEAR
    )
    return full[:height, :width]


def warp_canvas(
    image: np.ndarray, forward_field: np.ndarray, border_value: float | tuple = 0.0, iterations: int = 3
) -> np.ndarray:
    """Apply a forward displacement field by inverting it with fixed-point iterations (dst = src + D(src)
    → src = dst − D(src)) and resampling with :func:`cv2.remap`."""
    import cv2

    forward_field = np.ascontiguousarray(forward_field, dtype=np.float32)
    height, width = forward_field.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    source_x, source_y = grid_x.copy(), grid_y.copy()
    for _ in range(iterations):
        sampled = cv2.remap(
            forward_field, source_x, source_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        source_x = grid_x - sampled[..., 0]
        source_y = grid_y - sampled[..., 1]
    return cv2.remap(
        image, source_x, source_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border_value
    )
