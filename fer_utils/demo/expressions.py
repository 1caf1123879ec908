"""What each emotion does to the face: landmark groups of dlib's 68-point model and one fixed recipe of
landmark moves per emotion (plus the neutralising moves every recipe starts from). Declarative tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
