"""Training speed: images/s of steady ``model.fit`` epochs, a default ``model.fit`` on NumPy arrays vs the
suite's tuned settings fed from in-memory tensors and from the suite's ``tf.data`` pipeline (plain and
augmented), each in a fresh process."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from fer_utils.bench.timing import IMAGE_SIZE, in_fresh_process, timing_stats

#: The suite's tuned training settings (measured by the training section).
TUNED_TRAINING_ENV = {"TF_ENABLE_ONEDNN_OPTS": "1"}


def _configure_training_threads(tuned: bool):
    """TensorFlow with the suite's tuned settings (oneDNN on, intra-op threads = cores, inter-op 1) or its
    defaults; returns the ``tensorflow`` module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if tuned:
        os.environ.update(TUNED_TRAINING_ENV)
    else:
        os.environ.pop("TF_ENABLE_ONEDNN_OPTS", None)
    import tensorflow as tf

    if tuned:
        tf.config.threading.set_intra_op_parallelism_threads(os.cpu_count() or 1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf


def _training_feed(cache, train_ids, targets, feed: str, tuned: bool, batch_size: int) -> tuple:
    """``(fit data, fit kwargs)`` for one feeding style (see :func:`_train_worker`)."""
    import tensorflow as tf

    from fer_utils.training.feed import make_dataset

    if feed == "numpy":
        faces = np.asarray(cache.faces(train_ids))[..., None].astype(np.float32)
        return faces, {"y": targets, "batch_size": batch_size, "shuffle": True}
    if feed == "memory":
        faces = tf.constant(np.asarray(cache.faces(train_ids))[..., None])
        dataset = tf.data.Dataset.from_tensor_slices((faces, tf.constant(targets)))
        data = dataset.shuffle(len(targets), seed=0).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    else:
        augment = feed == "augmented"
        data = make_dataset(cache, train_ids, targets, batch_size, shuffle=True, seed=0, augment=augment)
    if tuned:
        options = tf.data.Options()
        options.threading.private_threadpool_size = os.cpu_count() or 1
        options.threading.max_intra_op_parallelism = 1
        data = data.with_options(options)
    return data, {}


def _timed_fit(model, data, kwargs: dict, epochs: int) -> list[float]:
    """Seconds of each epoch of ``model.fit``."""
    import keras

    seconds: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    model.fit(data, epochs=epochs, verbose=0, callbacks=[EpochTimer()], **kwargs)
    return seconds


def _train_worker(
    cache_dir: str,
    train_ids,
    targets,
    feed: str,
    tuned: bool,
    epochs: int,
    batch_size: int,
    save_to: str | None,
) -> dict:
    """In a fresh process: images/s of each ``model.fit`` epoch for one feeding style.

    ``feed``: ``"numpy"`` (arrays in RAM, Keras' own adapter), ``"memory"`` (a ``tf.data`` pipeline over
    in-memory tensors), ``"pipeline"`` (the suite's :func:`fer_utils.training.feed.make_dataset` from the
    cache) or ``"augmented"`` (the same with the recipes' on-the-fly augmentation).
    ``tuned``: the suite's settings (oneDNN on, intra-op threads = cores, inter-op 1, tf.data's private
    thread pool) instead of TensorFlow's defaults.
    """
    _configure_training_threads(tuned)
    import keras

    from fer_utils.faces.cache import FaceCache
    from fer_utils.training.model import build_paper_cnn

    keras.utils.set_random_seed(0)
    cache = FaceCache(cache_dir)
    train_ids, targets = np.asarray(train_ids), np.asarray(targets, dtype=np.int32)
    model = build_paper_cnn(int(targets.max()) + 1, cache.face_size)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    data, kwargs = _training_feed(cache, train_ids, targets, feed, tuned, batch_size)
    epoch_seconds = _timed_fit(model, data, kwargs, epochs)
    if save_to:
        model.save(save_to)
    rates = [len(train_ids) / seconds for seconds in epoch_seconds]
    steady = rates[1:] or rates
    import tensorflow as tf

    intra = tf.config.threading.get_intra_op_parallelism_threads()
    return {
        "feed": feed,
        "tuned": tuned,
        "threads": intra or (os.cpu_count() or 1),
        "threads_setting": intra or "TensorFlow default (all cores)",
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "images": int(len(train_ids)),
        "epochs": epochs,
        "first_epoch_images_per_s": rates[0],
        "steady_images_per_s": timing_stats(steady),
    }


def benchmark_training(cache_dir: Path, train_ids, targets, mode: dict, save_to: Path) -> dict:
    """Default ``model.fit`` vs the suite's tuned settings (in-memory tensors and the tf.data pipeline)."""
    variants = [("numpy", False), ("memory", True), ("pipeline", True), ("augmented", True)]
    rows = []
    for feed, tuned in variants:
        save = str(save_to) if (feed, tuned) == ("pipeline", True) else None
        rows.append(
            in_fresh_process(
                _train_worker, str(cache_dir), train_ids, targets, feed, tuned, mode["epochs"], 32, save
            )
        )
    by = {row["feed"]: row["steady_images_per_s"]["median"] for row in rows}
    return {
        "batch_size": 32,
        "image_size": IMAGE_SIZE,
        "rows": rows,
        "pipeline_overhead": by["memory"] / by["pipeline"] - 1.0,
        "speedup_vs_default_fit": by["pipeline"] / by["numpy"],
        "augmented_throughput_ratio": by["augmented"] / by["pipeline"],
    }


#: A training step costs about 3 forward passes: the forward, and the backward's gradients with respect to
#: the activations and to the weights (each as many multiply-adds as the forward).
TRAINING_PASSES = 3


def add_training_floor(training: dict, floor: dict) -> None:
    """Give the training section its floor: the images/s at the measured matmul rate for
    :data:`TRAINING_PASSES` × the forward multiply-adds, at each row's thread count, and each row's steady
    img/s as a ratio to it (1.0 = the floor)."""
    if not (training and "rows" in training and floor and "floor_ms_per_face" in floor):
        return
    cores = os.cpu_count() or 1
    floors = {}
    for row in training["rows"]:
        key = "1" if row.get("threads", cores) == 1 else "all"
        floor_ms = TRAINING_PASSES * floor["floor_ms_per_face"][key]
        row["floor_images_per_s"] = 1000.0 / floor_ms
        row["ratio_to_floor"] = row["steady_images_per_s"]["median"] / row["floor_images_per_s"]
        floors[str(row.get("threads"))] = row["floor_images_per_s"]
    training["floor_images_per_s"] = floors
    training["floor_passes"] = TRAINING_PASSES
