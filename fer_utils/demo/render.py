"""Synthetic demo dataset: short RAVDESS-layout clips made from one real face photo (``fer demo-data``).

Above ``faces`` (it finds the photo's landmarks with the face detector); what marks a cache or run as
built from it lives below, in :mod:`fer_utils.data.synthetic`.

The photo is ``skimage.data.astronaut()`` (public domain, shipped with scikit-image). Its dlib 68 landmarks
are moved by one fixed recipe per emotion (mouth corners up/down, lips apart, brows raised/lowered/drawn
together, eyes widened/narrowed...) and the face is warped with a smooth thin-plate-spline displacement
field built from those landmark moves. Synthetic "actors" differ in identity only: face shape (a second
landmark warp), skin tone, size, position in the frame and background. Each clip rises from
neutral to the emotion's apex, with small head motion and sensor noise, and is written as
``OUT/Actor_XX/02-01-EE-II-SS-RR-XX.mp4`` (RAVDESS naming: video-only, speech channel) so the RAVDESS
dataset spec reads it like the real corpus.

The set is SYNTHETIC: every actor is the same photographed person with drawn-on expressions. It shows the
pipeline working end to end, offline, in minutes; it says nothing about accuracy on real faces.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from fer_utils.data.synthetic import MANIFEST_NAME, SYNTHETIC_MARKER  # noqa: F401 (the demo's markers)
from fer_utils.faces.detection import get_detector, get_landmark_predictor
from fer_utils.progress import progress_bar

#: RAVDESS emotion codes (the third field of a RAVDESS file name).
RAVDESS_EMOTION_CODES = {
    "neutral": 1,
    "calm": 2,
    "happy": 3,
    "sad": 4,
    "angry": 5,
    "fearful": 6,
    "disgust": 7,
    "surprised": 8,
}

#: Emotions the demo renders by default: all eight RAVDESS emotions.
DEMO_EMOTIONS = tuple(RAVDESS_EMOTION_CODES)

#: Peak expression strength per RAVDESS intensity code (01 normal, 02 strong).
INTENSITY_STRENGTH = {1: 0.8, 2: 1.0}

# Landmark indices of the dlib 68-point model (0-based).
JAW_SIDES = (2, 3, 4, 5, 11, 12, 13, 14)
CHIN = (6, 7, 8, 9, 10)
BROWS_OUTER = (17, 18, 25, 26)
BROWS_MIDDLE = (19, 20, 23, 24)
BROWS_INNER = (21, 22)
BROWS = BROWS_OUTER + BROWS_MIDDLE + BROWS_INNER
NOSE_TIP = (30, 31, 32, 33, 34, 35)
NOSTRIL_WINGS = (31, 35)
EYES = tuple(range(36, 48))
UPPER_LIDS = (37, 38, 43, 44)
LOWER_LIDS = (40, 41, 46, 47)
MOUTH = tuple(range(48, 68))
OUTER_CORNERS = (48, 54)
INNER_CORNERS = (60, 64)
UPPER_LIP_OUTER = (49, 50, 51, 52, 53)
UPPER_LIP_INNER = (61, 62, 63)
LOWER_LIP_OUTER_SIDES = (55, 59)
LOWER_LIP_OUTER_MIDDLE = (56, 57, 58)
LOWER_LIP_INNER = (65, 66, 67)
INNER_MOUTH = tuple(range(60, 68))

#: A move: (landmark indices, outward, up) in units of the inter-ocular distance; "outward" is away from
#: the face's vertical midline (points on the midline only move up/down).
Move = tuple[Sequence[int], float, float]

#: Turns the photo's open-mouthed smile into a closed, level mouth: the neutral face every recipe starts from.
NEUTRALIZE: tuple[Move, ...] = (
    (OUTER_CORNERS, -0.06, -0.12),
    (INNER_CORNERS, -0.05, -0.09),
    (UPPER_LIP_OUTER, 0.0, -0.04),
    (UPPER_LIP_INNER, 0.0, -0.10),
    (LOWER_LIP_INNER, 0.0, 0.12),
    (LOWER_LIP_OUTER_SIDES, 0.0, 0.07),
    (LOWER_LIP_OUTER_MIDDLE, 0.0, 0.10),
)


@dataclass(frozen=True)
class ExpressionRecipe:
    """Landmark moves of one emotion at apex (relative to the neutral face) and how the mouth is drawn:
    ``closed`` paints the photo's teeth over with lip colour and a lip line, ``teeth`` keeps the smile's
    teeth, ``open`` paints a dark cavity between the inner lips (upper teeth stay visible above it)."""

    moves: tuple[Move, ...]
    mouth: str = "closed"
    cavity_darkness: float = 0.9


#: One fixed recipe per emotion, the same for every actor (actors differ in identity, not in expression).
EXPRESSIONS: dict[str, ExpressionRecipe] = {
    "neutral": ExpressionRecipe(()),
    # Heavy, relaxed eyelids, brows a little lower, a faint closed-mouth smile.
    "calm": ExpressionRecipe(
        (
            (UPPER_LIDS, 0.0, -0.13),
            (LOWER_LIDS, 0.0, 0.02),
            (BROWS, 0.0, -0.04),
            (OUTER_CORNERS, 0.05, 0.07),
            (INNER_CORNERS, 0.04, 0.06),
        ),
        mouth="closed",
    ),
    # Broad smile showing teeth, corners pulled up and out, cheeks raised (lower lids up).
    "happy": ExpressionRecipe(
        (
            (OUTER_CORNERS, 0.12, 0.16),
            (INNER_CORNERS, 0.10, 0.14),
            (UPPER_LIP_OUTER, 0.0, 0.04),
            (UPPER_LIP_INNER, 0.0, 0.10),
            (LOWER_LIP_INNER, 0.0, -0.16),
            (LOWER_LIP_OUTER_SIDES, 0.02, -0.08),
            (LOWER_LIP_OUTER_MIDDLE, 0.0, -0.14),
            (LOWER_LIDS, 0.0, 0.05),
        ),
        mouth="teeth",
    ),
    # Inner brows raised and drawn together, mouth corners down, lower lip pushed up, lids a little down.
    "sad": ExpressionRecipe(
        (
            (BROWS_INNER, -0.04, 0.16),
            ((20, 23), -0.02, 0.08),
            (BROWS_OUTER, 0.0, -0.05),
            (UPPER_LIDS, 0.0, -0.04),
            (OUTER_CORNERS, -0.03, -0.16),
            (INNER_CORNERS, -0.02, -0.12),
            (LOWER_LIP_OUTER_MIDDLE, 0.0, 0.04),
        ),
        mouth="closed",
    ),
    # Brows lowered and drawn together, eyes narrowed, nostrils flared, lips pressed and narrowed.
    "angry": ExpressionRecipe(
        (
            (BROWS_INNER, -0.10, -0.18),
            (BROWS_MIDDLE, -0.05, -0.13),
            (BROWS_OUTER, -0.02, -0.06),
            (UPPER_LIDS, 0.0, -0.06),
            (LOWER_LIDS, 0.0, 0.04),
            (NOSTRIL_WINGS, 0.06, 0.0),
            (OUTER_CORNERS, -0.06, -0.03),
            (INNER_CORNERS, -0.05, -0.02),
            ((50, 51, 52), 0.0, -0.03),
            (LOWER_LIP_OUTER_MIDDLE, 0.0, 0.04),
        ),
        mouth="closed",
    ),
    # Brows raised and drawn together, eyes wide open, mouth open and stretched sideways.
    "fearful": ExpressionRecipe(
        (
            (BROWS_INNER, -0.05, 0.18),
            (BROWS_MIDDLE, -0.02, 0.13),
            (BROWS_OUTER, 0.0, 0.07),
            (UPPER_LIDS, 0.0, 0.08),
            (LOWER_LIDS, 0.0, -0.03),
            (OUTER_CORNERS, 0.13, -0.06),
            (INNER_CORNERS, 0.11, -0.06),
            (UPPER_LIP_INNER, 0.0, 0.02),
            (LOWER_LIP_INNER, 0.0, -0.18),
            (LOWER_LIP_OUTER_SIDES, 0.04, -0.14),
            (LOWER_LIP_OUTER_MIDDLE, 0.0, -0.18),
            ((7, 8, 9), 0.0, -0.08),
        ),
        mouth="open",
    ),
    # Upper lip raised, nose wrinkled up, brows lowered, eyes squinting, lower lip slightly down.
    "disgust": ExpressionRecipe(
        (
            (UPPER_LIP_OUTER, 0.0, 0.12),
            (UPPER_LIP_INNER, 0.0, 0.12),
            (NOSE_TIP, 0.0, 0.05),
            (NOSTRIL_WINGS, 0.04, 0.03),
            (BROWS_INNER, -0.06, -0.10),
            (BROWS_MIDDLE, -0.03, -0.08),
            (LOWER_LIDS, 0.0, 0.06),
            (UPPER_LIDS, 0.0, -0.03),
            (OUTER_CORNERS, -0.02, -0.03),
            (LOWER_LIP_OUTER_MIDDLE, 0.0, -0.03),
        ),
        mouth="open",
        cavity_darkness=0.7,
    ),
    # Brows raised high, eyes wide open, jaw dropped into an open, rounded mouth.
    "surprised": ExpressionRecipe(
        (
            (BROWS_INNER, 0.0, 0.24),
            (BROWS_MIDDLE, 0.0, 0.24),
            (BROWS_OUTER, 0.0, 0.18),
            (UPPER_LIDS, 0.0, 0.07),
            (LOWER_LIDS, 0.0, -0.03),
            (OUTER_CORNERS, -0.06, -0.14),
            (INNER_CORNERS, -0.06, -0.14),
            (UPPER_LIP_INNER, 0.0, 0.03),
            (LOWER_LIP_INNER, 0.0, -0.36),
            (LOWER_LIP_OUTER_SIDES, -0.02, -0.30),
            (LOWER_LIP_OUTER_MIDDLE, 0.0, -0.38),
            (CHIN, 0.0, -0.32),
            ((4, 5, 11, 12), 0.0, -0.12),
        ),
        mouth="open",
    ),
}


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


@dataclass(frozen=True)
class Actor:
    """Identity parameters of one synthetic actor (everything but the expression)."""

    number: int
    shape_moves: tuple[Move, ...]
    tone: tuple[float, float, float]  # per-channel RGB gain on the person
    contrast: float
    inter_ocular_px: float  # eye distance in the output frame (face size)
    centre: tuple[float, float]  # face centre in the frame, as fractions of width and height
    background: tuple[tuple[float, float, float], tuple[float, float, float]]  # two RGB colours
    background_texture: str  # "gradient", "noise" or "stripes"


#: Skin/hair colour casts (RGB gains) from pale to brown; actors pick one and jitter it. Their brightness is
#: then set separately in a narrow range: the pipeline works on gray faces, where a wide brightness range
#: would make identity, not expression, dominate the pixels of this small synthetic set.
TONES = (
    (1.05, 1.02, 1.0),
    (0.95, 0.86, 0.80),
    (0.82, 0.68, 0.58),
    (0.72, 0.58, 0.48),
    (0.62, 0.49, 0.40),
    (1.0, 0.95, 0.86),
)
#: Gray-level brightness (luma gain) range of an actor's face.
BRIGHTNESS = (0.82, 1.02)


def make_actor(number: int, seed: int = 0) -> Actor:
    """Draw actor ``number``'s identity (deterministic for ``seed``).

    Args:
        number: RAVDESS-style actor number (1-based).
        seed: dataset seed.

    Returns:
        An :class:`Actor`.
    """
    rng = np.random.default_rng([seed, number, 7919])

    def uniform(low: float, high: float) -> float:
        return float(rng.uniform(low, high))

    jaw, chin, eyes_apart = uniform(-0.08, 0.08), uniform(-0.08, 0.10), uniform(-0.05, 0.05)
    eye_size = uniform(-0.02, 0.04)
    shape_moves = (
        (JAW_SIDES, jaw, 0.0),
        ((0, 1, 15, 16), jaw * 0.5, 0.0),
        (CHIN, 0.0, -chin),
        (EYES, eyes_apart, 0.0),
        (BROWS, eyes_apart, uniform(-0.05, 0.06)),
        (UPPER_LIDS, 0.0, eye_size),
        (LOWER_LIDS, 0.0, -eye_size),
        (NOSE_TIP, 0.0, -uniform(-0.05, 0.07)),
        (NOSTRIL_WINGS, uniform(-0.03, 0.05), 0.0),
        (MOUTH, 0.0, uniform(-0.04, 0.04)),
        (OUTER_CORNERS + INNER_CORNERS, uniform(-0.05, 0.07), 0.0),
        (LOWER_LIP_OUTER_MIDDLE, 0.0, -uniform(0.0, 0.04)),
    )
    base_tone = np.array(TONES[(number - 1 + seed) % len(TONES)])
    cast = base_tone * rng.uniform(0.95, 1.05, size=3)
    luma = float(cast @ np.array([0.299, 0.587, 0.114]))
    tone = np.clip(cast / luma * rng.uniform(*BRIGHTNESS), 0.3, 1.3)
    hue = rng.uniform(0, 1, size=2)
    colours = []
    for h in hue:
        rgb = np.array([np.cos(2 * np.pi * (h + k / 3)) for k in range(3)]) * 55 + rng.uniform(90, 170)
        colours.append(tuple(float(v) for v in np.clip(rgb, 15, 240)))
    return Actor(
        number=number,
        shape_moves=shape_moves,
        tone=tuple(float(v) for v in tone),
        contrast=uniform(0.9, 1.1),
        inter_ocular_px=uniform(48.0, 60.0),
        centre=(uniform(0.40, 0.60), uniform(0.47, 0.56)),
        background=(colours[0], colours[1]),
        background_texture=("gradient", "noise", "stripes")[int(rng.integers(3))],
    )


def _background(actor: Actor, width: int, height: int, seed: int) -> np.ndarray:
    """Background image of an actor: a gradient, blotchy noise or soft stripes between its two colours."""
    import cv2

    rng = np.random.default_rng([seed, actor.number, 104729])
    if actor.background_texture == "gradient":
        angle = rng.uniform(0, np.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        ramp = xs / width * np.cos(angle) + ys / height * np.sin(angle)
        weight = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    elif actor.background_texture == "noise":
        small = rng.uniform(0, 1, size=(6, 8)).astype(np.float32)
        weight = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    else:
        period = rng.uniform(18, 40)
        xs = np.arange(width, dtype=np.float32)[None, :] + np.arange(height, dtype=np.float32)[:, None] * 0.3
        weight = 0.5 + 0.5 * np.sin(2 * np.pi * xs / period)
    weight = np.clip(weight, 0, 1)[..., None]
    first, second = np.array(actor.background[0]), np.array(actor.background[1])
    return (first * (1 - weight) + second * weight).astype(np.float32)


def expression_profile(frame_count: int, onset: float = 0.05, apex: float = 0.35) -> np.ndarray:
    """Expression strength per frame: 0 (neutral) at the start, a smooth rise to 1 at ``apex`` (fraction of
    the clip), held to the end."""
    if frame_count < 1:
        raise ValueError(f"frame_count must be at least 1, got {frame_count}")
    position = np.linspace(0.0, 1.0, frame_count)
    ramp = np.clip((position - onset) / (apex - onset), 0.0, 1.0)
    return ramp * ramp * (3 - 2 * ramp)


def _polygon_alpha(shape: tuple[int, int], points: np.ndarray, blur: float) -> np.ndarray:
    """Soft (H, W, 1) coverage of a polygon drawn with sub-pixel precision."""
    import cv2

    layer = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(layer, [np.round(points * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
    return cv2.GaussianBlur(layer.astype(np.float32) / 255.0, (0, 0), blur)[..., None]


def _paint_brows(image: np.ndarray, landmarks: np.ndarray, colour: np.ndarray, width: float) -> None:
    """Darken the brows in place along their landmarks (the photo's brows are light and thin; a darker
    stroke makes their raising, lowering and drawing together as visible as in an expressive face)."""
    import cv2

    brows = landmarks[17:27]
    left, top = np.maximum(np.floor(brows.min(axis=0)).astype(int) - 8, 0)
    right, bottom = np.ceil(brows.max(axis=0)).astype(int) + 8
    region = image[top:bottom, left:right, :3]
    local = brows - np.array([left, top], dtype=np.float32)
    layer = np.zeros(region.shape[:2], dtype=np.uint8)
    strokes = [np.round(local[:5] * 4).astype(np.int32), np.round(local[5:] * 4).astype(np.int32)]
    cv2.polylines(layer, strokes, False, 255, max(1, int(round(width))), cv2.LINE_AA, shift=2)
    alpha = cv2.GaussianBlur(layer.astype(np.float32) / 255.0, (0, 0), 1.0)[..., None] * 0.6
    image[top:bottom, left:right, :3] = region * (1 - alpha) + colour * alpha


def _paint_mouth(
    image: np.ndarray,
    landmarks: np.ndarray,
    recipe: ExpressionRecipe,
    strength: float,
    lip_colour: np.ndarray,
    cavity_colour: np.ndarray,
) -> None:
    """Draw the mouth in place over the warped photo (RGB or RGBA, float): closed lips (lip colour over the teeth, a darker lip
    line) at the neutral start, turning into the recipe's mouth (kept teeth or a dark cavity) as
    ``strength`` rises. Works on a box around the mouth only."""
    import cv2

    mouth = landmarks[48:68]
    left, top = np.maximum(np.floor(mouth.min(axis=0)).astype(int) - 8, 0)
    right, bottom = np.ceil(mouth.max(axis=0)).astype(int) + 8
    region = image[top:bottom, left:right, :3]
    local = landmarks - np.array([left, top], dtype=np.float32)
    closed_weight = 1.0 if recipe.mouth == "closed" else 1.0 - strength
    if closed_weight > 0:
        # Teeth region of the photo: below the upper lip's lower edge, above the lower lip's upper edge.
        teeth = local[[48, 49, 50, 51, 52, 53, 54, 64, 65, 66, 67, 60]]
        teeth = teeth.mean(axis=0) + (teeth - teeth.mean(axis=0)) * np.array([1.1, 1.0], dtype=np.float32)
        alpha = _polygon_alpha(region.shape[:2], teeth, 0.9) * closed_weight
        region = region * (1 - alpha) + lip_colour * alpha
        line = np.stack([local[48], *(local[[61, 62, 63]] + local[[67, 66, 65]]) / 2, local[54]])
        layer = np.zeros(region.shape[:2], dtype=np.uint8)
        cv2.polylines(layer, [np.round(line * 4).astype(np.int32)], False, 255, 1, cv2.LINE_AA, shift=2)
        line_alpha = cv2.GaussianBlur(layer.astype(np.float32) / 255.0, (0, 0), 0.6)[..., None]
        line_alpha *= 0.8 * closed_weight
        region = region * (1 - line_alpha) + lip_colour * 0.35 * line_alpha
    if recipe.mouth == "open" and strength > 0:
        alpha = _polygon_alpha(region.shape[:2], local[60:68], 0.8) * (recipe.cavity_darkness * strength)
        region = region * (1 - alpha) + (0.15 * region + 0.85 * cavity_colour) * alpha
    image[top:bottom, left:right, :3] = region


def render_clip(
    actor: Actor,
    emotion: str,
    intensity: int,
    clip_seed: Sequence[int],
    frame_count: int = 24,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
) -> np.ndarray:
    """Render one clip's frames.

    Args:
        actor: identity from :func:`make_actor`.
        emotion: one of :data:`EXPRESSIONS`.
        intensity: RAVDESS intensity code (1 normal, 2 strong).
        clip_seed: integers seeding this clip's head motion and noise.
        frame_count: frames in the clip.
        size: (width, height) of the frames.
        seed: dataset seed (background texture).

    Returns:
        (frame_count, height, width, 3) uint8 frames in BGR order (OpenCV's), deterministic for the inputs.
    """
    import cv2

    if emotion not in EXPRESSIONS:
        raise ValueError(f"unknown demo emotion {emotion!r}; known: {list(EXPRESSIONS)}")
    if intensity not in INTENSITY_STRENGTH:
        raise ValueError(f"intensity must be one of {sorted(INTENSITY_STRENGTH)}, got {intensity!r}")
    width, height = size
    face = base_face()
    rng = np.random.default_rng(list(clip_seed))
    canvas_at = _expression_canvases(actor, face, EXPRESSIONS[emotion], INTENSITY_STRENGTH[intensity])
    background = _background(actor, width, height, seed)
    strengths = expression_profile(frame_count)
    head_pose = _head_motion(rng, actor, face, size)  # draws from rng before the noise does
    noise_at = _sensor_noise(rng, frame_count, size)
    frames = np.empty((frame_count, height, width, 3), dtype=np.uint8)
    for index, strength in enumerate(strengths.tolist()):
        placed = cv2.warpAffine(
            canvas_at(strength), head_pose(index), (width, height), flags=cv2.INTER_LINEAR, borderValue=0
        )
        frames[index] = _composite(placed, background, noise_at(index))
    return frames


def _toned_face(actor: Actor, face: BaseFace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The actor's tone and contrast (an affine map of each colour channel) applied to the face: its
    RGBA layers and the lip, mouth-cavity and brow colours."""
    gain = np.array(actor.tone, dtype=np.float32) * np.float32(actor.contrast)
    offset = np.float32(128.0 * (1.0 - actor.contrast))
    toned = np.clip(face.image * gain + offset, 0, 255)
    lip_colour = np.clip(face.lip_colour * gain + offset, 0, 255)
    cavity_colour = np.clip(np.array([40.0, 12.0, 16.0], dtype=np.float32) * gain + offset, 0, 255)
    brow_colour = np.clip(np.array([78.0, 50.0, 28.0], dtype=np.float32) * gain + offset, 0, 255)
    layers = np.ascontiguousarray(np.dstack([toned, face.mask * 255.0]), dtype=np.float32)
    return layers, lip_colour, cavity_colour, brow_colour


def _expression_canvases(actor: Actor, face: BaseFace, recipe: ExpressionRecipe, scale: float):
    """``canvas_at(strength)``: the actor's face warped to the expression at ``strength`` (0 neutral, 1
    apex, times ``scale``), mouth and brows painted on, as an RGBA canvas; each strength is made once
    (the apex repeats)."""
    identity = landmark_displacements(NEUTRALIZE, face) + landmark_displacements(actor.shape_moves, face)
    expression = landmark_displacements(recipe.moves, face) * scale
    identity_field = displacement_field(identity, face)
    expression_field = displacement_field(expression, face)
    layers, lip_colour, cavity_colour, brow_colour = _toned_face(actor, face)
    canvases: dict[float, np.ndarray] = {}

    def canvas_at(strength: float) -> np.ndarray:
        if strength not in canvases:
            warped = warp_canvas(layers, identity_field + expression_field * np.float32(strength))
            moved = face.landmarks + identity + expression * strength
            _paint_mouth(warped, moved, recipe, strength, lip_colour, cavity_colour)
            _paint_brows(warped, moved, brow_colour, 0.07 * face.inter_ocular)
            canvases[strength] = warped
        return canvases[strength]

    return canvas_at


def _head_motion(rng: np.random.Generator, actor: Actor, face: BaseFace, size: tuple[int, int]):
    """``pose(frame index)``: the 2×3 affine matrix placing the face canvas in the frame, with a small
    head motion (sway, nod, a slight roll and zoom around the face centre) drawn from ``rng``."""
    import cv2

    width, height = size
    phases = rng.uniform(0, 2 * np.pi, size=4)
    speeds = rng.uniform(0.6, 1.4, size=4)
    face_centre = face.landmarks.mean(axis=0)
    centre_x = face_centre[0]
    scale = actor.inter_ocular_px / face.inter_ocular

    def pose(index: int) -> np.ndarray:
        time_s = index / 15.0
        shift_x = 3.0 * np.sin(speeds[0] * 2 * np.pi * time_s * 0.7 + phases[0])
        shift_y = 2.0 * np.sin(speeds[1] * 2 * np.pi * time_s * 0.5 + phases[1])
        roll = 3.0 * np.sin(speeds[2] * 2 * np.pi * time_s * 0.4 + phases[2])
        zoom = scale * (1 + 0.02 * np.sin(speeds[3] * 2 * np.pi * time_s * 0.3 + phases[3]))
        matrix = cv2.getRotationMatrix2D((float(centre_x), float(face_centre[1])), float(roll), float(zoom))
        matrix[0, 2] += actor.centre[0] * width - centre_x + shift_x
        matrix[1, 2] += actor.centre[1] * height - face_centre[1] + shift_y
        return matrix

    return pose


def _sensor_noise(rng: np.random.Generator, frame_count: int, size: tuple[int, int]):
    """``noise_at(frame index)``: sensor noise from one bank per clip, each frame a different window of
    it (cheaper than fresh noise per frame)."""
    width, height = size
    noise_bank = rng.standard_normal(size=(height + 64, width + 64, 3), dtype=np.float32)
    noise_bank *= np.float32(rng.uniform(1.5, 3.5))
    noise_offsets = rng.integers(0, 64, size=(frame_count, 2))

    def noise_at(index: int) -> np.ndarray:
        noise_y, noise_x = noise_offsets[index]
        return noise_bank[noise_y : noise_y + height, noise_x : noise_x + width]

    return noise_at


def _composite(placed: np.ndarray, background: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The placed RGBA face over the background, plus noise, as a uint8 BGR frame."""
    import cv2

    alpha = np.clip(placed[..., 3:] * np.float32(1 / 255.0), 0, 1)
    frame = background + (placed[..., :3] - background) * alpha
    frame += noise
    return cv2.cvtColor(np.clip(np.rint(frame), 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)


def ravdess_name(emotion: str, intensity: int, statement: int, repetition: int, actor: int) -> str:
    """RAVDESS file name of a video-only speech clip: ``02-01-EE-II-SS-RR-AA.mp4``."""
    code = RAVDESS_EMOTION_CODES[emotion]
    return f"02-01-{code:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.mp4"


def clip_variants(emotion: str, clips_per_emotion: int) -> list[tuple[int, int, int]]:
    """(intensity, statement, repetition) of an emotion's clips per actor, in RAVDESS order of preference:
    both intensities first, then repetition 2, then statement 2. Neutral has only normal intensity, as in
    RAVDESS, so it gets at most 4 clips.

    Args:
        emotion: emotion name.
        clips_per_emotion: clips wanted per actor and emotion (1 to 8).

    Returns:
        Up to ``clips_per_emotion`` (intensity, statement, repetition) triples.
    """
    if not 1 <= clips_per_emotion <= 8:
        raise ValueError(f"clips_per_emotion must be between 1 and 8, got {clips_per_emotion}")
    intensities = (1,) if emotion == "neutral" else (1, 2)
    variants = [
        (intensity, statement, repetition)
        for statement in (1, 2)
        for repetition in (1, 2)
        for intensity in intensities
    ]
    return variants[:clips_per_emotion]


def _write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    """Write BGR frames to an mp4 (MPEG-4 part 2) atomically: a temp name, then a rename."""
    import cv2

    height, width = frames.shape[1:3]
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    writer = cv2.VideoWriter(str(temporary), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4 video to {temporary}")
    for frame in frames:
        writer.write(frame)
    writer.release()
    os.replace(temporary, path)


def make_demo_dataset(
    out_dir: str | os.PathLike,
    actors: int = 6,
    clips_per_emotion: int = 2,
    emotions: Sequence[str] = DEMO_EMOTIONS,
    seed: int = 0,
    size: tuple[int, int] = (320, 240),
    fps: float = 15.0,
    seconds: float = 1.6,
    progress: bool = False,
) -> Path:
    """Write the synthetic RAVDESS-layout demo set (``OUT/Actor_XX/02-01-EE-II-SS-RR-XX.mp4``).

    Reuses an existing set built with the same parameters (recorded in ``demo_manifest.json``).

    Args:
        out_dir: output folder (created).
        actors: number of synthetic actors (at least 4, so a subject-independent split is possible).
        clips_per_emotion: clips per actor and emotion (see :func:`clip_variants`).
        emotions: emotions to render (names of :data:`EXPRESSIONS`).
        seed: seed of identities, head motion and noise; the same seed gives the same frames.
        size: (width, height) of the frames.
        fps: frame rate.
        seconds: clip length.
        progress: show a progress bar.

    Returns:
        ``out_dir`` as a Path.
    """
    width, height, frame_count = _check_demo_arguments(
        actors, clips_per_emotion, emotions, size, fps, seconds
    )
    out_dir = Path(out_dir)
    parameters = {
        "actors": actors,
        "clips_per_emotion": clips_per_emotion,
        "emotions": list(emotions),
        "seed": seed,
        "size": [width, height],
        "fps": fps,
        "seconds": seconds,
    }
    plan = demo_plan(out_dir, actors, clips_per_emotion, emotions)
    manifest_path = out_dir / MANIFEST_NAME
    if _already_built(manifest_path, [path for *_, path in plan], parameters):
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)
    _write_clips(plan, seed, frame_count, (width, height), fps, progress)
    manifest = {
        "synthetic": True,
        "note": "Synthetic demo set made from skimage.data.astronaut() with drawn-on expressions; "
        "it says nothing about accuracy on real faces.",
        "parameters": parameters,
        "clips": len(plan),
        "frames_per_clip": frame_count,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return out_dir


def _check_demo_arguments(
    actors: int,
    clips_per_emotion: int,
    emotions: Sequence[str],
    size: tuple[int, int],
    fps: float,
    seconds: float,
) -> tuple[int, int, int]:
    """ValueError for arguments that cannot make a usable demo set; else ``(width, height, frames per clip)``."""
    if not 4 <= actors <= 24:
        raise ValueError(f"actors must be between 4 and 24 (RAVDESS has 24), got {actors}")
    unknown = [e for e in emotions if e not in EXPRESSIONS]
    if unknown or not emotions:
        raise ValueError(f"unknown or no demo emotions {unknown}; known: {list(EXPRESSIONS)}")
    width, height = (int(v) for v in size)
    if width < 160 or height < 120:
        raise ValueError(
            f"frame size must be at least 160x120 so faces stay detectable, got {width}x{height}"
        )
    frame_count = int(round(seconds * fps))
    if frame_count < 6:
        raise ValueError(f"clips need at least 6 frames (seconds × fps), got {frame_count}")
    clip_variants(emotions[0], clips_per_emotion)  # validates the count
    return width, height, frame_count


def demo_plan(
    out_dir: Path, actors: int, clips_per_emotion: int, emotions: Sequence[str]
) -> list[tuple[int, str, int, int, int, Path]]:
    """Every clip of the set: ``(actor, emotion, intensity, statement, repetition, path)``."""
    return [
        (number, emotion, intensity, statement, repetition, out_dir / f"Actor_{number:02d}" / name)
        for number in range(1, actors + 1)
        for emotion in emotions
        for intensity, statement, repetition in clip_variants(emotion, clips_per_emotion)
        for name in [ravdess_name(emotion, intensity, statement, repetition, number)]
    ]


def _already_built(manifest_path: Path, paths: list[Path], parameters: dict) -> bool:
    """Whether every clip exists and the manifest records the same parameters."""
    if not (manifest_path.exists() and all(path.exists() for path in paths)):
        return False
    return json.loads(manifest_path.read_text()).get("parameters") == parameters


def _write_clips(
    plan: list, seed: int, frame_count: int, size: tuple[int, int], fps: float, progress: bool
) -> None:
    """Render and write every clip of ``plan`` (:func:`demo_plan`)."""
    cast = {number: make_actor(number, seed) for number in sorted({clip[0] for clip in plan})}
    for number, emotion, intensity, statement, repetition, path in progress_bar(
        plan, desc="demo clips", unit="clip", enabled=progress
    ):
        clip_seed = (seed, number, RAVDESS_EMOTION_CODES[emotion], intensity, statement, repetition)
        frames = render_clip(cast[number], emotion, intensity, clip_seed, frame_count, size, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_video(path, frames, fps)


def ensure_demo_dataset(
    root: str | os.PathLike, seed: int = 0, actors: int | None = None
) -> tuple[Path, bool]:
    """The demo set under ``root``, generated first when the folder holds no clip.

    Returns:
        ``(root, made)``: ``made`` is True when this call generated the clips.
    """
    root = Path(root)
    if any(root.glob("Actor_*/*.mp4")):
        return root, False
    make_demo_dataset(root, seed=seed, **({"actors": actors} if actors else {}))
    return root, True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write short synthetic RAVDESS-layout clips made from skimage's astronaut photo with "
        "warped expressions. Synthetic: for seeing the pipeline work, not for measuring accuracy."
    )
    parser.add_argument("out", help="output folder (gets Actor_XX/ subfolders)")
    parser.add_argument("--actors", type=int, default=6, help="synthetic actors (4–24; default 6)")
    parser.add_argument(
        "--clips-per-emotion", type=int, default=2, help="clips per actor and emotion (1–8; default 2)"
    )
    parser.add_argument(
        "--emotions", default=",".join(DEMO_EMOTIONS), help="comma-separated emotions (default: all eight)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed (same seed, same frames)")
    parser.add_argument("--size", default="320x240", help="frame size WIDTHxHEIGHT (default 320x240)")
    parser.add_argument("--fps", type=float, default=15.0, help="frame rate (default 15)")
    parser.add_argument("--seconds", type=float, default=1.6, help="clip length in seconds (default 1.6)")
    parser.set_defaults(func=_run_cli)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 320x240, got {text!r}") from None
    return width, height


def _run_cli(args: argparse.Namespace) -> int:
    emotions = [name.strip() for name in args.emotions.split(",") if name.strip()]
    started = time.perf_counter()
    out_dir = make_demo_dataset(
        args.out,
        actors=args.actors,
        clips_per_emotion=args.clips_per_emotion,
        emotions=emotions,
        seed=args.seed,
        size=_parse_size(args.size),
        fps=args.fps,
        seconds=args.seconds,
        progress=True,
    )
    elapsed = time.perf_counter() - started
    manifest = json.loads((out_dir / MANIFEST_NAME).read_text())
    width, height = manifest["parameters"]["size"]
    print(
        f"wrote {manifest['clips']} clips ({manifest['frames_per_clip']} frames of {width}x{height} at "
        f"{args.fps:g} fps) for {args.actors} actors × {len(emotions)} emotions ({', '.join(emotions)}) "
        f"to {out_dir} in {elapsed:.1f} s"
    )
    print(
        "SYNTHETIC data (one photographed face, drawn-on expressions): it says nothing about accuracy on real faces."
    )
    return 0
