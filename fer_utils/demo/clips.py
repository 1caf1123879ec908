"""One clip's frames: the actor's face warped from neutral to the emotion's apex, mouth and brows painted
on, placed in the frame with a small head motion over the actor's background, plus sensor noise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fer_utils.demo.actors import Actor, background_image
from fer_utils.demo.expressions import EXPRESSIONS, INTENSITY_STRENGTH, NEUTRALIZE, ExpressionRecipe
from fer_utils.demo.face import BaseFace, base_face, displacement_field, landmark_displacements, warp_canvas


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
    background = background_image(actor, width, height, seed)
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
