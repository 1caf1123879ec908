"""Training runs: face cache → tf.data → the paper CNN → a run directory (see README, "Run directory")."""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.faces.cache import FaceCache
from fer_utils.faces.preprocess import default_cache_root, image_folder_cache
from fer_utils.settings import add_arguments as add_config_arguments
from fer_utils.settings import config_from_args, setting
from fer_utils.training import rundir
from fer_utils.training.evaluate import evaluate_predictions, predictions_table
from fer_utils.training.splits import PROTOCOLS, Split, make_split, membership_hash

#: A run whose best training accuracy stays below majority rate + this margin is flagged as stalled.
STALL_MARGIN = 0.05


@dataclass
class TrainConfig:
    """Every parameter of a training run (stored in the run's ``config.json``).

    Each field is also a flag of ``fer train`` and ``fer ablate`` (via :mod:`fer_utils.settings`): a new
    field with ``setting(default, help=...)`` is a new option everywhere, with nothing else to edit.
    """

    protocol: str = setting(
        "paper",
        help="which faces are held out: paper (random faces), video (unseen clips), subject (unseen people), "
        "fixed (the dataset's own split)",
        choices=PROTOCOLS,
    )
    epochs: int = setting(30, help="passes over the training part")
    batch_size: int = setting(32, help="faces per gradient step")
    learning_rate: float = setting(1e-3, help="Adam learning rate")
    seed: int = setting(0, help="seed of the split, the weights and the shuffling")
    dropout: tuple[float, float, float] = setting(
        (0.3, 0.3, 0.3), help="dropout after each of the three pooling layers", metavar=("D1", "D2", "D3")
    )
    l1: float = setting(0.0, help="L1 factor on the Dense(16) kernel (0: off)")
    image_size: int | None = setting(
        None, help="train at this face size, resized on the fly (none: the cache's own size)"
    )
    test_size: float = setting(0.2, help="fraction held out as the test part")
    validation_size: float = setting(0.1, help="fraction of the training side used for model selection")
    fold: int = setting(0, help="which fold is the test part under grouped protocols")
    early_stopping_patience: int = setting(
        0, help="stop after this many epochs without a better val_accuracy (0: off)", aliases=("--patience",)
    )
    train_faces_per_class: int | None = setting(
        None, help="class-balanced cap on the training part; the test part is never reduced (none: all)"
    )
    in_memory_limit_mb: int = setting(
        2048,
        help="training parts larger than this stream from the memory-mapped shards (same results)",
        checked=False,  # how faces are fed, not which: a rerun may change it
    )
    extra: dict = setting(
        default_factory=dict, help="free-form tags (e.g. ablation cell) kept with the run", cli=False
    )

    def __post_init__(self):
        self.dropout = tuple(float(rate) for rate in self.dropout)
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be ≥ 1, got {self.epochs}, {self.batch_size}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")


def make_dataset(
    cache: FaceCache,
    face_ids: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    image_size: int | None = None,
    in_memory_limit_mb: int = 2048,
):
    """A batched, prefetched ``tf.data.Dataset`` of ``(faces uint8 (b, s, s, 1), class index)``.

    Small selections are gathered into memory once; larger ones stream batch by batch from the
    memory-mapped shards (one gather per batch), so MEAD-scale caches never need to fit in RAM.
    """
    import tensorflow as tf

    size = cache.image_size
    face_ids = np.asarray(face_ids, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int32)
    if len(face_ids) * size * size <= in_memory_limit_mb * 2**20:
        dataset = tf.data.Dataset.from_tensor_slices((cache.faces(face_ids)[..., None], targets))
        if shuffle:
            dataset = dataset.shuffle(len(face_ids), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size)
    else:
        dataset = tf.data.Dataset.from_tensor_slices((face_ids, targets))
        if shuffle:
            dataset = dataset.shuffle(min(len(face_ids), 100_000), seed=seed, reshuffle_each_iteration=True)

        def gather(ids):
            return cache.faces(ids)[..., None]

        def load(ids, labels):
            faces = tf.numpy_function(gather, [ids], tf.uint8, stateful=False)
            return tf.ensure_shape(faces, [None, size, size, 1]), labels

        dataset = dataset.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if image_size and image_size != size:
        dataset = dataset.map(
            lambda faces, labels: (tf.image.resize(faces, (image_size, image_size), antialias=True), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def _package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in (
        "fer-utils",
        "tensorflow",
        "tensorflow-cpu",
        "keras",
        "numpy",
        "scikit-learn",
        "opencv-python-headless",
        "dlib-bin",
    ):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return versions


def _cap_per_class(index: pd.DataFrame, face_ids: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    if not cap:
        return face_ids
    part = index.set_index("face_id").loc[face_ids]
    kept = part.groupby("label", group_keys=False).apply(
        lambda rows: rows.sample(n=min(cap, len(rows)), random_state=seed)
    )
    return np.sort(kept.index.to_numpy())


def stall_reason(history: pd.DataFrame, majority_rate: float) -> str | None:
    """Why a run counts as not having learned (best training accuracy within :data:`STALL_MARGIN` of
    the majority-class rate), or None when it learned."""
    best = float(history["accuracy"].max())
    if best >= majority_rate + STALL_MARGIN:
        return None
    return (
        f"best training accuracy {best:.3f} stayed within {STALL_MARGIN} of the majority-class rate "
        f"{majority_rate:.3f}: the network did not learn (try another seed, a lower learning rate or more epochs)"
    )


def _held_out_callback(dataset, targets):
    """Keras callback adding ``test_loss`` / ``test_accuracy`` (the paper's curves against the held-out
    20 %) to each epoch's logs; it never influences training or model selection."""
    import keras

    class HeldOutCurve(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            probabilities = self.model.predict(dataset, verbose=0)
            picked = np.clip(probabilities[np.arange(len(targets)), targets], 1e-7, 1.0)
            regularization = float(sum(float(loss) for loss in self.model.losses))
            logs["test_loss"] = float(-np.log(picked).mean()) + regularization
            logs["test_accuracy"] = float((probabilities.argmax(axis=1) == targets).mean())

    return HeldOutCurve()


def train_run(
    cache_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    overwrite: bool = False,
    verbose: int = 2,
    **overrides,
) -> rundir.Run:
    """Train and evaluate the paper CNN on a face cache and write a run directory.

    Args:
        cache_dir: a face cache folder (``fer preprocess`` or :func:`image_folder_cache`).
        run_dir: output folder (see :mod:`fer_utils.training.rundir`); ``metrics.json`` is written
            last and marks the run complete.
        config: the run's parameters; keyword ``overrides`` replace single fields.
        overwrite: replace a complete run already in ``run_dir`` (otherwise ValueError).
        verbose: Keras fit verbosity (2 = one line per epoch).

    Returns:
        The finished :class:`fer_utils.training.rundir.Run`.
    """
    config = TrainConfig(**{**asdict(config or TrainConfig()), **overrides})
    writer = rundir.RunWriter(run_dir, overwrite)
    cache = open_training_cache(cache_dir)
    split, train_ids = split_faces(cache.index, config)
    targets = class_targets(cache)
    image_size = config.image_size or cache.image_size
    keras = _seeded_keras(config.seed)
    parts = {"train": train_ids, "validation": split.validation, "test": split.test}
    datasets = {
        name: make_dataset(
            cache,
            ids,
            targets[ids],
            config.batch_size,
            shuffle=name == "train",
            seed=config.seed,
            image_size=image_size,
            in_memory_limit_mb=config.in_memory_limit_mb,
        )
        for name, ids in parts.items()
    }
    model = compiled_model(len(cache.labels), image_size, config)
    run_config = run_config_record(writer.path, cache, config, image_size, split, train_ids)
    writer.write_config(run_config)
    writer.write_split(split_table(split, train_ids))
    history, train_seconds = fit_model(
        model, datasets, targets[split.test], config, writer.model_path, verbose
    )
    writer.write_history(history)
    best = keras.models.load_model(writer.model_path)
    probabilities = best.predict(datasets["test"], verbose=0)
    faces = cache.index.set_index("face_id")
    predictions = predictions_table(faces.loc[split.test].reset_index(), probabilities, cache.labels)
    writer.write_predictions(predictions)
    majority_rate = float(faces.loc[train_ids, "label"].value_counts(normalize=True).max())
    metrics = run_metrics(
        run_config, history, predictions, int(best.count_params()), majority_rate, train_seconds
    )
    writer.write_metrics(metrics)
    return rundir.load_run(writer.path)


def open_training_cache(cache_dir: str | os.PathLike) -> FaceCache:
    """The face cache a run trains on; ValueError when it cannot train a classifier."""
    cache = FaceCache(cache_dir)
    if not len(cache):
        raise ValueError(f"face cache {cache_dir} holds no faces (see its skipped.csv)")
    if len(cache.labels) < 2:
        raise ValueError(f"a classifier needs at least 2 classes; cache {cache_dir} has only {cache.labels}")
    return cache


def split_faces(index: pd.DataFrame, config: TrainConfig) -> tuple[Split, np.ndarray]:
    """The protocol's split and the (optionally class-capped) training face ids."""
    split = make_split(
        index, config.protocol, config.test_size, config.validation_size, config.seed, config.fold
    )
    train_ids = _cap_per_class(index, split.train, config.train_faces_per_class, config.seed)
    if not len(split.validation):
        raise ValueError("the validation part is empty; set validation_size > 0 (model selection needs it)")
    return split, train_ids


def class_targets(cache: FaceCache) -> np.ndarray:
    """Class index of every face of the cache (by face id = row), in ``cache.labels`` order."""
    class_of = {label: i for i, label in enumerate(cache.labels)}
    return cache.index["label"].map(class_of).to_numpy(np.int32)


def _seeded_keras(seed: int):
    """Import Keras with oneDNN on, seed everything and make TensorFlow ops deterministic."""
    # oneDNN kernels roughly double CPU training speed; TensorFlow leaves them off on CPUs without
    # AVX512-VNNI/BF16 (measured 4–6 vs ~50 img/s). Takes effect only if TensorFlow is not imported yet.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return keras


def compiled_model(classes: int, image_size: int, config: TrainConfig):
    """The paper CNN with the config's dropout and L1, compiled with Adam and cross-entropy."""
    import keras

    from fer_utils.training.model import build_paper_cnn

    model = build_paper_cnn(classes, image_size, config.dropout, config.l1)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    return model


def run_config_record(
    run_dir: Path, cache: FaceCache, config: TrainConfig, image_size: int, split: Split, train_ids: np.ndarray
) -> dict:
    """What ``config.json`` records: the parameters, the data they ran on and the split's sizes."""
    sizes = {
        "train": int(len(train_ids)),
        "validation": int(len(split.validation)),
        "test": int(len(split.test)),
    }
    return {
        "run_name": run_dir.name,
        "dataset": str(cache.config.get("dataset", "")),
        "cache_dir": str(Path(cache.cache_dir).resolve()),
        "cache_key": cache.key,
        "preprocessing": cache.config,
        **asdict(config),
        "image_size": image_size,
        "labels": cache.labels,
        "split": {
            **sizes,
            "fold": split.fold,
            "n_folds": split.n_folds,
            "test_hash": membership_hash(cache.index, split.test),
        },
        "versions": _package_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def split_table(split: Split, train_ids: np.ndarray) -> pd.DataFrame:
    """``split.csv``: face id → part, with the training part as actually used (after the cap)."""
    parts = split.parts()
    parts = parts[parts["part"] != "train"]
    return pd.concat([pd.DataFrame({"face_id": train_ids, "part": "train"}), parts]).sort_values("face_id")


def fit_model(
    model, datasets: dict, test_targets: np.ndarray, config: TrainConfig, model_path: Path, verbose: int
) -> tuple[pd.DataFrame, float]:
    """Fit with the best-validation checkpoint (and early stopping if asked); returns the per-epoch
    history (with the held-out test curve) and the training seconds."""
    import keras

    callbacks = [
        _held_out_callback(datasets["test"], test_targets),
        keras.callbacks.ModelCheckpoint(model_path, monitor="val_accuracy", mode="max", save_best_only=True),
    ]
    if config.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", mode="max", patience=config.early_stopping_patience
            )
        )
    started = time.perf_counter()
    fit = model.fit(
        datasets["train"],
        validation_data=datasets["validation"],
        epochs=config.epochs,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline shuffles (seeded)
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - started
    history = pd.DataFrame(fit.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    return history, train_seconds


def run_metrics(
    run_config: dict,
    history: pd.DataFrame,
    predictions: pd.DataFrame,
    num_params: int,
    majority_rate: float,
    train_seconds: float,
) -> dict:
    """What ``metrics.json`` records: scores, the course of training and the stall flag."""
    stalled = stall_reason(history, majority_rate)
    return {
        "status": "complete",
        "dataset": run_config["dataset"],
        "protocol": run_config["protocol"],
        "labels": run_config["labels"],
        "num_params": num_params,
        "split": run_config["split"],
        "majority_rate": majority_rate,
        "final_train_accuracy": float(history["accuracy"].iloc[-1]),
        "best_train_accuracy": float(history["accuracy"].max()),
        "best_epoch": int(history["val_accuracy"].idxmax()) + 1,
        "best_val_accuracy": float(history["val_accuracy"].max()),
        "epochs_run": int(len(history)),
        "train_seconds": round(train_seconds, 2),
        "stalled": stalled is not None,
        "stalled_reason": stalled,
        **evaluate_predictions(predictions, run_config["labels"]),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fer train``: the data source and output here; every :class:`TrainConfig` field as a flag."""
    source = parser.add_argument_group("data (one of --cache / --images)").add_mutually_exclusive_group(
        required=True
    )
    source.add_argument("--cache", help="face cache folder made by `fer preprocess`")
    source.add_argument("--images", help="class-folder image dataset (turned into a face cache first)")
    images = parser.add_argument_group("with --images")
    images.add_argument("--split-dirs", action="store_true", help="--images has <split>/<class>/ folders")
    images.add_argument("--filename-pattern", help="regex with groups subject/video, or 'ck+'")
    images.add_argument("--max-per-class", type=int, help="at most this many images per split × class")
    images.add_argument(
        "--cache-root", help="where --images puts its face cache (default: $FER_CACHE_ROOT or ./cache)"
    )
    images.add_argument(
        "--cache-image-size",
        type=int,
        help="face size of the --images cache (default: --image-size, else 180)",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--out", "--run-dir", dest="out", required=True, help="the run folder to write")
    output.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    add_config_arguments(parser.add_argument_group("training (TrainConfig)"), TrainConfig)
    parser.set_defaults(func=_cli_train)


def _cli_train(args) -> int:
    cache_dir = args.cache
    if args.images:
        cache = image_folder_cache(
            args.images,
            args.cache_root or default_cache_root(),
            image_size=args.cache_image_size or args.image_size or 180,
            split_dirs=args.split_dirs,
            filename_pattern=args.filename_pattern,
            max_per_class=args.max_per_class,
            seed=args.seed,
        )
        cache_dir = cache.cache_dir
        print(f"face cache: {cache_dir} ({len(cache)} faces, {len(cache.skipped)} skipped)")
    run = train_run(cache_dir, args.out, config_from_args(TrainConfig, args), overwrite=args.overwrite)
    print(run.summary())
    return 0
