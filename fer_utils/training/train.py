"""Training runs: face cache → tf.data → the paper CNN → a run directory (see README, "Run directory")."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.faces.cache import FaceCache, atomic_write_text
from fer_utils.training.evaluate import evaluate_predictions, predictions_table
from fer_utils.training.splits import PROTOCOLS, make_split, membership_hash

#: A run whose best training accuracy stays below majority rate + this margin is flagged as stalled.
STALL_MARGIN = 0.05


@dataclass
class TrainConfig:
    """Every parameter of a training run (stored in the run's ``config.json``)."""

    protocol: str = "paper"
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    dropout: tuple[float, float, float] = (0.3, 0.3, 0.3)
    l1: float = 0.0
    image_size: int | None = None  # None: the cache's size; otherwise faces are resized on the fly
    test_size: float = 0.2
    validation_size: float = 0.1
    fold: int = 0
    early_stopping_patience: int = 0  # 0: off (the best-validation checkpoint is still kept)
    train_faces_per_class: int | None = None  # class-balanced cap on the training part (test untouched)
    in_memory_limit_mb: int = 2048  # larger selections stream from the memory-mapped shards
    extra: dict = field(default_factory=dict)  # free-form tags (e.g. ablation cell) kept with the run

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
):
    """Train and evaluate the paper CNN on a face cache and write a run directory.

    Args:
        cache_dir: a face cache folder (``fer preprocess`` or :func:`image_folder_cache`).
        run_dir: output folder (``config.json, history.csv, model.keras, split.csv, metrics.json,
            predictions.csv``); ``metrics.json`` is written last and marks the run complete.
        config: the run's parameters; keyword ``overrides`` replace single fields.
        overwrite: replace a complete run already in ``run_dir`` (otherwise ValueError).
        verbose: Keras fit verbosity (2 = one line per epoch).

    Returns:
        The finished :class:`fer_utils.training.rundir.Run`.
    """
    config = TrainConfig(**{**asdict(config or TrainConfig()), **overrides})
    run_dir = Path(run_dir)
    if (run_dir / "metrics.json").exists() and not overwrite:
        raise ValueError(
            f"{run_dir} already holds a complete run; pass overwrite=True or choose another folder"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").unlink(missing_ok=True)

    cache = FaceCache(cache_dir)
    if not len(cache):
        raise ValueError(f"face cache {cache_dir} holds no faces (see its skipped.csv)")
    index = cache.index
    labels = cache.labels
    if len(labels) < 2:
        raise ValueError(f"a classifier needs at least 2 classes; cache {cache_dir} has only {labels}")
    split = make_split(
        index, config.protocol, config.test_size, config.validation_size, config.seed, config.fold
    )
    train_ids = _cap_per_class(index, split.train, config.train_faces_per_class, config.seed)
    if not len(split.validation):
        raise ValueError("the validation part is empty; set validation_size > 0 (model selection needs it)")
    class_of = {label: i for i, label in enumerate(labels)}
    targets = index["label"].map(class_of).to_numpy(np.int32)
    image_size = config.image_size or cache.image_size

    # oneDNN kernels roughly double CPU training speed; TensorFlow leaves them off on CPUs without
    # AVX512-VNNI/BF16 (measured 4–6 vs ~50 img/s). Takes effect only if TensorFlow is not imported yet.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    from fer_utils.training.model import build_paper_cnn

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
        for name, ids in (("train", train_ids), ("validation", split.validation), ("test", split.test))
    }
    model = build_paper_cnn(len(labels), image_size, config.dropout, config.l1)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    sizes = {
        "train": int(len(train_ids)),
        "validation": int(len(split.validation)),
        "test": int(len(split.test)),
    }
    run_config = {
        "run_name": run_dir.name,
        "dataset": str(cache.config.get("dataset", "")),
        "cache_dir": str(Path(cache_dir).resolve()),
        "cache_key": cache.key,
        "preprocessing": cache.config,
        **asdict(config),
        "image_size": image_size,
        "labels": labels,
        "split": {
            **sizes,
            "fold": split.fold,
            "n_folds": split.n_folds,
            "test_hash": membership_hash(index, split.test),
        },
        "versions": _package_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write_text(run_dir / "config.json", json.dumps(run_config, indent=2, default=str))
    parts = split.parts()
    parts = parts[parts["part"] != "train"]
    parts = pd.concat([pd.DataFrame({"face_id": train_ids, "part": "train"}), parts]).sort_values("face_id")
    parts.to_csv(run_dir / "split.csv", index=False)

    callbacks = [
        _held_out_callback(datasets["test"], targets[split.test]),
        keras.callbacks.ModelCheckpoint(
            run_dir / "model.keras", monitor="val_accuracy", mode="max", save_best_only=True
        ),
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
    history.to_csv(run_dir / "history.csv", index=False)

    best = keras.models.load_model(run_dir / "model.keras")
    probabilities = best.predict(datasets["test"], verbose=0)
    predictions = predictions_table(
        index.set_index("face_id").loc[split.test].reset_index(), probabilities, labels
    )
    predictions.to_csv(run_dir / "predictions.csv", index=False)

    train_labels = index.set_index("face_id").loc[train_ids, "label"]
    majority_rate = float(train_labels.value_counts(normalize=True).max())
    stalled = stall_reason(history, majority_rate)
    metrics = {
        "status": "complete",
        "dataset": run_config["dataset"],
        "protocol": config.protocol,
        "labels": labels,
        "num_params": int(best.count_params()),
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
        **evaluate_predictions(predictions, labels),
    }
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    from fer_utils.training.rundir import load_run

    return load_run(run_dir)


def image_folder_cache(
    image_folder: str | os.PathLike,
    cache_root: str | os.PathLike,
    image_size: int = 180,
    split_dirs: bool = False,
    filename_pattern: str | None = None,
    detector: str = "none",
    dataset: str | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> FaceCache:
    """Turn a class-folder image dataset into a face cache (``detector='none'`` for already-cropped faces).

    ``max_per_class`` keeps a seeded random subset of at most that many images per (split, class).
    """
    from fer_utils.data.datasets import folder_samples
    from fer_utils.faces.preprocess import PreprocessConfig, preprocess

    dataset = dataset or Path(image_folder).name
    samples, skipped = folder_samples(image_folder, dataset, split_dirs, filename_pattern)
    if max_per_class:
        rng = np.random.default_rng(seed)
        groups: dict[tuple, list] = {}
        for sample in samples:
            groups.setdefault((sample.extras.get("split"), sample.label), []).append(sample)
        samples = [
            members[i]
            for members in groups.values()
            for i in sorted(rng.permutation(len(members))[:max_per_class])
        ]
    config = PreprocessConfig(image_size=image_size, detector=detector)
    selection = {"split_dirs": split_dirs, "filename_pattern": filename_pattern}
    if max_per_class:
        selection |= {"max_per_class": max_per_class, "seed": seed}  # another subset is another cache
    return preprocess(
        samples,
        cache_root,
        config,
        dataset=dataset,
        skipped=skipped,
        progress=progress,
        dataset_options=selection,
    )


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train and evaluate the paper CNN, writing a run directory")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--cache", help="face cache folder made by `fer preprocess`")
    source.add_argument("--images", help="class-folder image dataset (turned into a face cache first)")
    parser.add_argument("--split-dirs", action="store_true", help="--images has <split>/<class>/ folders")
    parser.add_argument("--filename-pattern", help="regex with groups subject/video, or 'ck+'")
    parser.add_argument(
        "--max-per-class", type=int, help="with --images: at most this many images per split × class"
    )
    parser.add_argument("--cache-root", default="cache", help="where --images puts its face cache")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--protocol", default="paper", choices=PROTOCOLS)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dropout", type=float, nargs=3, default=(0.3, 0.3, 0.3), metavar=("D1", "D2", "D3"))
    parser.add_argument("--l1", type=float, default=0.0)
    parser.add_argument(
        "--image-size", type=int, help="cache size for --images (default 180); resize for --cache"
    )
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--test-size", type=float, default=0.2)
    parser.add_argument("--validation-size", type=float, default=0.1)
    parser.add_argument(
        "--patience", type=int, default=0, help="early stopping patience on val_accuracy (0: off)"
    )
    parser.add_argument("--train-faces-per-class", type=int, help="class-balanced cap on the training part")
    parser.add_argument("--overwrite", action="store_true")
    parser.set_defaults(func=_cli_train)


def _cli_train(args) -> int:
    cache_dir = args.cache
    if args.images:
        cache = image_folder_cache(
            args.images,
            args.cache_root,
            image_size=args.image_size or 180,
            split_dirs=args.split_dirs,
            filename_pattern=args.filename_pattern,
            max_per_class=args.max_per_class,
            seed=args.seed,
        )
        cache_dir = cache.cache_dir
        print(f"face cache: {cache_dir} ({len(cache)} faces, {len(cache.skipped)} skipped)")
    run = train_run(
        cache_dir,
        args.run_dir,
        protocol=args.protocol,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        dropout=tuple(args.dropout),
        l1=args.l1,
        image_size=None if args.images else args.image_size,
        fold=args.fold,
        test_size=args.test_size,
        validation_size=args.validation_size,
        early_stopping_patience=args.patience,
        train_faces_per_class=args.train_faces_per_class,
        overwrite=args.overwrite,
    )
    print(run.summary())
    return 0
