"""The data feed of a run: face cache → batched ``tf.data`` pipelines, class targets, probe faces."""

from __future__ import annotations

import numpy as np

from fer_utils.faces.cache import FaceCache
from fer_utils.training.augment import augment_batch


def make_dataset(
    cache: FaceCache,
    face_ids: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    image_size: int | None = None,
    in_memory_limit_mb: int = 2048,
    augment: bool = False,
    one_hot_classes: int | None = None,
    epochs: tuple[int, int] | None = None,
    soft_targets: np.ndarray | None = None,
):
    """A batched, prefetched ``tf.data.Dataset`` of ``(faces (b, s, s, 1), class index)`` (or one-hot
    targets of ``one_hot_classes`` classes, which label smoothing needs, or ``soft_targets``: one target
    distribution per face, e.g. the FER+ votes, in place of the class indices).

    Small selections are gathered into memory once; larger ones stream batch by batch from the
    memory-mapped shards (one gather per batch), so MEAD-scale caches never need to fit in RAM. Faces are
    uint8, or float32 0–255 when resized or augmented (:func:`fer_utils.training.augment.augment_batch`).

    ``epochs=(first, last)``: the batches of epochs ``first`` … ``last − 1`` one after the other (fit it
    with ``steps_per_epoch``), each epoch a full permutation and augmentation drawn statelessly from
    ``(seed, epoch)`` only, so a run resumed at any epoch sees exactly the batches an uninterrupted run
    sees. Without it a shuffled dataset reshuffles on each pass (``reshuffle_each_iteration``, buffer of
    at most 100,000 faces).
    """
    import tensorflow as tf

    size = cache.face_size
    face_ids = np.asarray(face_ids, dtype=np.int64)
    if soft_targets is not None:
        targets, one_hot_classes = np.asarray(soft_targets, dtype=np.float32), None
    else:
        targets = np.asarray(targets, dtype=np.int32)
    in_memory = len(face_ids) * size * size <= in_memory_limit_mb * 2**20
    if in_memory:
        faces = tf.constant(cache.faces(face_ids)[..., None])
        base = tf.data.Dataset.from_tensor_slices((faces, targets))
    else:
        base = tf.data.Dataset.from_tensor_slices((face_ids, targets))

        def gather(ids):
            return cache.faces(ids)[..., None]

        def load(ids, labels):
            faces = tf.numpy_function(gather, [ids], tf.uint8, stateful=False)
            return tf.ensure_shape(faces, [None, size, size, 1]), labels

    rows = (faces if in_memory else tf.constant(face_ids)), tf.constant(targets)

    def batches(epoch=None):
        if shuffle and epoch is not None:
            # One permutation per (seed, epoch), stateless: nothing to restore when a run resumes.
            key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
            dataset = (
                tf.data.Dataset.range(len(face_ids))
                .map(lambda index: tf.random.experimental.index_shuffle(index, key, len(face_ids) - 1))
                .batch(batch_size)
                .map(lambda order: (tf.gather(rows[0], order), tf.gather(rows[1], order)))
            )
        elif shuffle:
            dataset = base.shuffle(min(len(face_ids), 100_000), seed=seed, reshuffle_each_iteration=True)
            dataset = dataset.batch(batch_size)
        else:
            dataset = base.batch(batch_size)
        if not in_memory:
            dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return per_batch(dataset, size, image_size, augment, seed, epoch, one_hot_classes)

    if epochs is None:
        dataset = batches()
    else:
        first, last = epochs
        dataset = tf.data.Dataset.range(first, last).flat_map(batches)
    return dataset.prefetch(tf.data.AUTOTUNE)


def per_batch(dataset, size: int, image_size: int | None, augment: bool, seed: int, epoch, one_hot_classes):
    """What every batch of :func:`make_dataset` goes through: the resize to ``image_size``, the
    augmentation seeded by ``(seed, epoch, step)`` and the one-hot targets label smoothing needs."""
    import tensorflow as tf

    if image_size and image_size != size:
        dataset = dataset.map(
            lambda faces, labels: (tf.image.resize(faces, (image_size, image_size), antialias=True), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    if augment:
        batch_seeds = tf.data.Dataset.range(2**62).map(
            lambda step: tf.stack([epoch_seed(seed, -1 if epoch is None else epoch), step])
        )
        dataset = tf.data.Dataset.zip(dataset, batch_seeds).map(
            lambda batch, batch_seed: augment_batch(*batch, seed=batch_seed),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    if one_hot_classes:
        dataset = dataset.map(lambda faces, labels: (faces, tf.one_hot(labels, one_hot_classes)))
    return dataset


def epoch_seed(seed, epoch):
    """The augmentation seed of one epoch (int64; a tensor when ``epoch`` is one)."""
    return tf_int64(seed) * 1_000_003 + tf_int64(epoch)


def tf_int64(value):
    import tensorflow as tf

    return tf.cast(value, tf.int64)


def class_targets(cache: FaceCache) -> np.ndarray:
    """Class index of every face of the cache (by face id = row), in ``cache.labels`` order."""
    class_of = {label: i for i, label in enumerate(cache.labels)}
    return cache.index["label"].map(class_of).to_numpy(np.int32)


def probe_faces(cache: FaceCache, train_ids, targets, image_size: int, seed: int, size: int = 256):
    """A fixed sample of training faces (float32, the run's image size) and their classes, on which the
    diagnostics are measured and dead units are detected."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(train_ids, size=min(size, len(train_ids)), replace=False))
    faces = cache.faces(ids)[..., None].astype(np.float32)
    if image_size != cache.face_size:
        faces = tf.image.resize(faces, (image_size, image_size), antialias=True).numpy()
    return faces, targets[ids]
