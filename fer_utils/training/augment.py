"""On-the-fly augmentation of face batches inside ``tf.data``: one random affine warp per face
(mirror, rotation, scale, shift) and a brightness/contrast change, applied to whole batches so it
costs a few percent of a training step (``fer bench`` measures it)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random changes; each face draws its own values."""

    flip: bool = True  # mirror left/right with probability 0.5 (facial expressions are near symmetric)
    max_rotation_degrees: float = 10.0
    max_scale: float = 0.1  # zoom factor drawn from [1 − s, 1 + s]
    max_shift: float = 0.1  # fraction of the side, in x and y
    max_brightness: float = 0.15  # fraction of the 0–255 range added
    max_contrast: float = 0.2  # contrast factor drawn from [1 − c, 1 + c]


def augment_batch(faces, labels, config: AugmentConfig = AugmentConfig(), seed=None):
    """Augment a batch ``(b, s, s, 1)`` of faces (any dtype 0–255); returns float32 faces in 0–255.

    One projective-transform call per batch (bilinear, reflected borders) instead of one op per change.
    ``seed``: a ``[2]`` int64 tensor for stateless draws (the same seed, the same changes: what a resumed
    run needs); None draws from TensorFlow's global generator.
    """
    import tensorflow as tf

    faces = tf.cast(faces, tf.float32)
    batch = tf.shape(faces)[0]
    side = tf.cast(tf.shape(faces)[1], tf.float32)
    draws = iter(range(8))
    seeds = None if seed is None else tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=8)

    def draw(low, high):
        if seeds is None:
            return tf.random.uniform([batch], low, high)
        return tf.random.stateless_uniform([batch], seeds[next(draws)], low, high)

    def uniform(limit):
        return draw(-limit, limit)

    mirror = 1.0 - 2.0 * tf.cast(draw(0.0, 1.0) < (0.5 if config.flip else 0.0), tf.float32)
    angle = uniform(config.max_rotation_degrees * math.pi / 180)
    scale = 1.0 + uniform(config.max_scale)
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    # Output pixel (x, y) samples input (a0·x + a1·y + a2, b0·x + b1·y + b2): rotation and zoom about
    # the centre, the mirror folded into the x column, then a shift.
    a0, a1, b0, b1 = cos * mirror, -sin, sin * mirror, cos
    centre = (side - 1.0) / 2.0
    a2 = centre - (a0 + a1) * centre - uniform(config.max_shift) * side
    b2 = centre - (b0 + b1) * centre - uniform(config.max_shift) * side
    zeros = tf.zeros([batch])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    faces = tf.raw_ops.ImageProjectiveTransformV3(
        images=faces,
        transforms=transforms,
        output_shape=tf.shape(faces)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    brightness = tf.reshape(uniform(config.max_brightness) * 255.0, [-1, 1, 1, 1])
    contrast = tf.reshape(1.0 + uniform(config.max_contrast), [-1, 1, 1, 1])
    mean = tf.reduce_mean(faces, axis=[1, 2, 3], keepdims=True)
    faces = tf.clip_by_value((faces - mean) * contrast + mean + brightness, 0.0, 255.0)
    return faces, labels
