"""Synthetic actors: identity only (face shape, skin tone, size, position in the frame, background), drawn
deterministically from the dataset seed; the expression is the same recipe for every actor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_utils.demo.expressions import (
    BROWS,
    CHIN,
    EYES,
    INNER_CORNERS,
    JAW_SIDES,
    LOWER_LIDS,
    LOWER_LIP_OUTER_MIDDLE,
    MOUTH,
    NOSE_TIP,
    NOSTRIL_WINGS,
    OUTER_CORNERS,
    UPPER_LIDS,
    Move,
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


def background_image(actor: Actor, width: int, height: int, seed: int) -> np.ndarray:
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
