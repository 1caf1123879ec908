"""Training runs: face cache → tf.data → the paper CNN → a run directory (see README, "Run directory")."""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.faces.cache import FaceCache
from fer_utils.faces.preprocess import default_cache_root, image_folder_cache
from fer_utils.files import writing
from fer_utils.parallel import default_workers
from fer_utils.settings import add_arguments as add_config_arguments
from fer_utils.settings import config_from_args, setting
from fer_utils.training import rundir
from fer_utils.training.evaluate import evaluate_predictions, predictions_table
from fer_utils.training.health import health_flags, majority_baselines
from fer_utils.training.model import INPUT_SCALINGS, check_regularisation, load_keras_model
from fer_utils.training.recipes import (
    CLASS_WEIGHTINGS,
    LR_SCHEDULES,
    RECIPE_FIELDS,
    RECIPES,
    SELECTION_METRICS,
    Recipe,
    recipe_label,
    resolve_recipe,
)
from fer_utils.training.splits import PROTOCOLS, Split, make_split, membership_hash


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
    recipe: str = setting(
        "paper",
        help="how to train: paper (as published) or robust (keeps the bottleneck alive; "
        "docs/training_reliability.md). the flags whose default is 'the recipe's' override single ingredients",
        choices=tuple(RECIPES),
    )
    learning_rate: float | None = setting(
        None, help="Adam's (peak) learning rate (default: the recipe's; paper 1e-3)"
    )
    lr_schedule: str | None = setting(
        None,
        help="learning rate over the epochs (default: the recipe's; paper constant)",
        choices=LR_SCHEDULES,
    )
    warmup_epochs: float | None = setting(
        None, help="epochs of linear learning-rate warm-up from 0 (default: the recipe's; paper 0)"
    )
    input_scaling: str | None = setting(
        None,
        help="pixels to [0, 1] (unit) or [-1, 1] (centered) (default: the recipe's; paper unit)",
        choices=INPUT_SCALINGS,
    )
    recycle_dead_units: bool | None = setting(
        None,
        help="re-initialise Dense(16) units that output 0 for every probe face, after each epoch "
        "(default: the recipe's; paper off)",
    )
    augment: bool | None = setting(
        None,
        help="random mirror, rotation, zoom, shift, brightness and contrast of training faces "
        "(default: the recipe's; paper off)",
    )
    label_smoothing: float | None = setting(
        None, help="label smoothing of the loss (default: the recipe's; paper 0)"
    )
    class_weighting: str | None = setting(
        None,
        help="loss weights per class, balanced = inverse frequency (default: the recipe's; paper none)",
        choices=CLASS_WEIGHTINGS,
    )
    selection_metric: str | None = setting(
        None,
        help="which validation score picks the kept epoch (default: the recipe's; paper val_accuracy)",
        choices=SELECTION_METRICS,
    )
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
    allow_duplicate_leakage: bool = setting(
        False,
        help="protocols video/subject: identical faces (same content hash) in the training and test parts "
        "only warn instead of refusing the split (paper/fixed always only warn)",
        checked=False,  # decides whether a run may start, never its numbers
    )
    early_stopping_patience: int = setting(
        0,
        help="stop after this many epochs without a better selection metric (0: off)",
        aliases=("--patience",),
    )
    train_faces_per_class: int | None = setting(
        None, help="class-balanced cap on the training part; the test part is never reduced (none: all)"
    )
    in_memory_limit_mb: int = setting(
        2048,
        help="training parts larger than this stream from the memory-mapped shards (same results)",
        checked=False,  # how faces are fed, not which: a rerun may change it
    )
    init_from: str | None = setting(
        None,
        help="start from this run folder or .keras model (same image size; new head rows for new classes)",
    )
    freeze_epochs: int = setting(0, help="with --init-from: epochs with the convolutions frozen first")
    threads: int | None = setting(
        1,
        help="TensorFlow intra-op threads of this run (none: all cores). The same config and thread count "
        "give identical results; another count sums floats in another order, so scores can differ",
        aliases=("--threads-per-run",),
        checked=False,  # recorded in config.json (numerics); a rerun may train with another count
    )
    extra: dict = setting(
        default_factory=dict, help="free-form tags (e.g. ablation cell) kept with the run", cli=False
    )

    def __post_init__(self):
        self.dropout = check_regularisation(self.dropout, self.l1)
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be ≥ 1, got {self.epochs}, {self.batch_size}")
        self.settings()  # validates the recipe and its overrides
        if self.freeze_epochs < 0 or (self.freeze_epochs and not self.init_from):
            raise ValueError("freeze_epochs needs --init-from and must be ≥ 0")
        if self.freeze_epochs >= self.epochs:
            raise ValueError(f"freeze_epochs ({self.freeze_epochs}) must be below epochs ({self.epochs})")

    def settings(self) -> Recipe:
        """The recipe's ingredients with this run's overrides applied."""
        return resolve_recipe(self.recipe, {name: getattr(self, name) for name in RECIPE_FIELDS})


#: TrainConfig fields that change a run's result (``checked=False`` marks those that cannot, e.g. how faces
#: are fed): a finished run is reused only when it agrees on all of them.
CHECKED_FIELDS = tuple(
    field.name
    for field in fields(TrainConfig)
    if field.metadata.get("cli", True) and field.metadata.get("checked", True)
)


def effective_settings(config: dict) -> dict:
    """The :data:`CHECKED_FIELDS` of a run's settings (a ``config.json`` or ``asdict(TrainConfig)``), with
    each recipe ingredient as applied: an unset learning rate under ``paper`` equals an explicit 1e-3,
    and runs recorded before recipes existed count as ``paper``."""
    known = {field.name for field in fields(TrainConfig)}
    applied = TrainConfig(**{key: value for key, value in config.items() if key in known})
    values = asdict(applied) | asdict(applied.settings())
    return {key: values[key] for key in CHECKED_FIELDS}


def setting_mismatches(recorded: dict, expected: dict) -> list[str]:
    """``"name recorded ≠ expected"`` for each setting where a finished run's ``config.json`` differs
    from what a rerun asks for (floats and sequences compared with a tolerance)."""
    problems = []
    for key, wanted in expected.items():
        stored = recorded.get(key)
        if isinstance(wanted, (list, tuple)) and isinstance(stored, (list, tuple)):
            same = len(wanted) == len(stored) and all(
                math.isclose(float(a), float(b)) for a, b in zip(wanted, stored, strict=True)
            )
        elif isinstance(wanted, float) and isinstance(stored, (int, float)):
            same = math.isclose(wanted, float(stored))
        else:
            same = wanted == stored
        if not same:
            problems.append(f"{key} {stored!r} ≠ {wanted!r}")
    return problems


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
):
    """A batched, prefetched ``tf.data.Dataset`` of ``(faces (b, s, s, 1), class index)`` (or one-hot
    targets of ``one_hot_classes`` classes, which label smoothing needs).

    Small selections are gathered into memory once; larger ones stream batch by batch from the
    memory-mapped shards (one gather per batch), so MEAD-scale caches never need to fit in RAM. Faces are
    uint8, or float32 0–255 when resized or augmented (:func:`fer_utils.training.augment.augment_batch`).
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
    if augment:
        from fer_utils.training.augment import augment_batch

        dataset = dataset.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if one_hot_classes:
        dataset = dataset.map(lambda faces, labels: (faces, tf.one_hot(labels, one_hot_classes)))
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


def train_run(
    cache_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    overwrite: bool = False,
    verbose: int = 0,
    **overrides,
) -> rundir.Run:
    """Train and evaluate the paper CNN on a face cache and write a run directory.

    Args:
        cache_dir: a face cache folder (``fer preprocess`` or :func:`image_folder_cache`).
        run_dir: output folder (see :mod:`fer_utils.training.rundir`); ``metrics.json`` is written
            last and marks the run complete.
        config: the run's parameters; keyword ``overrides`` replace single fields.
        overwrite: replace a complete run already in ``run_dir`` (otherwise ValueError).
        verbose: 0 silent, 1 one progress bar over the epochs with the last epoch's scores, 2 one printed
            line per epoch (for notebooks and logs).

    Returns:
        The finished :class:`fer_utils.training.rundir.Run`.

    The inputs are checked first; the run is written beside ``run_dir`` and swapped in when finished
    (:class:`~fer_utils.training.rundir.RunWriter`), so a failure leaves a previous run untouched.
    """
    config = TrainConfig(**{**asdict(config or TrainConfig()), **overrides})
    cache = open_training_cache(cache_dir)
    with rundir.RunWriter(run_dir, overwrite) as writer:
        _write_training(writer, cache, config, verbose)
    return rundir.load_run(writer.path)


def _write_training(writer: rundir.RunWriter, cache: FaceCache, config: TrainConfig, verbose: int) -> None:
    """Split, fit, evaluate and write every file of the run (``metrics.json`` last)."""
    settings = config.settings()
    split, train_ids = split_faces(cache.index, config)
    targets = class_targets(cache)
    image_size = config.image_size or cache.image_size
    numerics = prepare_tensorflow(config)
    import keras

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
            augment=settings.augment and name == "train",
            one_hot_classes=len(cache.labels) if settings.label_smoothing and name == "train" else None,
        )
        for name, ids in parts.items()
    }
    model, transfer = initial_model(cache.labels, image_size, config)
    run_config = run_config_record(writer.path, cache, config, image_size, split, train_ids) | {
        "numerics": numerics
    }
    writer.write_config({**run_config, "transfer": transfer})
    writer.write_split(split_table(split, train_ids))
    probe = probe_faces(cache, train_ids, targets, image_size, config.seed)
    part_targets = {name: targets[ids] for name, ids in parts.items()}
    with writing("the model checkpoint", writer.model_path):
        fitted = fit_model(model, datasets, part_targets, probe, config, writer.model_path, verbose)
    writer.write_history(fitted.history)
    best = keras.models.load_model(writer.model_path)
    probabilities = best.predict(datasets["test"], verbose=0)
    faces = cache.index.set_index("face_id")
    predictions = predictions_table(faces.loc[split.test].reset_index(), probabilities, cache.labels)
    writer.write_predictions(predictions)
    validation_predicted = best.predict(datasets["validation"], verbose=0).argmax(axis=1)
    validation_labels = {
        "present": sorted(set(faces.loc[split.validation, "label"])),
        "predicted": sorted({cache.labels[i] for i in validation_predicted}),
    }
    metrics = run_metrics(run_config, fitted, predictions, int(best.count_params()), validation_labels)
    writer.write_metrics(metrics)


def open_training_cache(cache_dir: str | os.PathLike) -> FaceCache:
    """The face cache a run trains on; ValueError when it cannot train a classifier."""
    cache = FaceCache(cache_dir)
    if not len(cache):
        raise ValueError(f"face cache {cache_dir} holds no faces (see its skipped.csv)")
    if len(cache.labels) < 2:
        raise ValueError(f"a classifier needs at least 2 classes; cache {cache_dir} has only {cache.labels}")
    cache.ensure_face_hashes()  # the duplicate-content leakage check needs them (older caches lack them)
    return cache


def split_faces(index: pd.DataFrame, config: TrainConfig) -> tuple[Split, np.ndarray]:
    """The protocol's split and the (optionally class-capped) training face ids."""
    split = make_split(
        index,
        config.protocol,
        config.test_size,
        config.validation_size,
        config.seed,
        config.fold,
        config.allow_duplicate_leakage,
    )
    train_ids = _cap_per_class(index, split.train, config.train_faces_per_class, config.seed)
    if not len(split.validation):
        raise ValueError("the validation part is empty; set validation_size > 0 (model selection needs it)")
    return split, train_ids


def class_targets(cache: FaceCache) -> np.ndarray:
    """Class index of every face of the cache (by face id = row), in ``cache.labels`` order."""
    class_of = {label: i for i, label in enumerate(cache.labels)}
    return cache.index["label"].map(class_of).to_numpy(np.int32)


def prepare_tensorflow(config: TrainConfig) -> dict:
    """Threads, determinism and seeds of ``config`` (:func:`fer_utils.training.runtime.configure_numerics`);
    a notebook calls it before building any model, ``train_run`` calls it again. Returns the record."""
    from fer_utils.training.runtime import configure_numerics

    return configure_numerics(config.threads, config.seed)


def initial_model(labels: list[str], image_size: int, config: TrainConfig):
    """The paper CNN for ``labels``, initialised from ``config.init_from`` when given; returns the model
    and what the transfer copied (None without ``init_from``)."""
    from fer_utils.training.model import build_paper_cnn

    settings = config.settings()
    model = build_paper_cnn(len(labels), image_size, config.dropout, config.l1, settings.input_scaling)
    if not config.init_from:
        return model, None

    from fer_utils.training.transfer import resolve_source, transfer_weights

    path, source_labels = resolve_source(config.init_from)
    source = load_keras_model(path)
    report = transfer_weights(source, model, source_labels, list(labels))
    return model, {"source": str(path.resolve()), "source_labels": source_labels, **report}


def compile_model(model, config: TrainConfig, steps_per_epoch: int, epochs: int) -> None:
    """Adam with the recipe's learning rate, warm-up and schedule over ``epochs``; cross-entropy with
    the recipe's label smoothing."""
    import keras

    settings = config.settings()
    rate = settings.learning_rate
    if settings.lr_schedule == "cosine" or settings.warmup_epochs:
        warmup = int(round(settings.warmup_epochs * steps_per_epoch))
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else settings.learning_rate,
            decay_steps=max(1, epochs * steps_per_epoch - warmup),
            alpha=1.0 if settings.lr_schedule == "constant" else 0.0,  # alpha 1: no decay after warm-up
            warmup_target=settings.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    model.compile(
        optimizer=keras.optimizers.Adam(rate),
        loss=_loss(settings.label_smoothing),
        metrics=["accuracy"],
    )


def _loss(label_smoothing: float):
    """Cross-entropy on class indices, or on one-hot targets when smoothing them."""
    import keras

    if label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def class_weights(train_targets: np.ndarray, classes: int, weighting: str) -> dict | None:
    """Loss weight per class index: None, or inverse frequency normalised to mean 1 (``balanced``)."""
    if weighting == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(train_targets)
    weights = compute_class_weight("balanced", classes=present, y=train_targets)
    return {int(c): float(w) for c, w in zip(present, weights, strict=True)} | {
        c: 1.0 for c in range(classes) if c not in present
    }


def probe_faces(cache: FaceCache, train_ids, targets, image_size: int, seed: int, size: int = 256):
    """A fixed sample of training faces (float32, the run's image size) and their classes, on which the
    diagnostics are measured and dead units are detected."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(train_ids, size=min(size, len(train_ids)), replace=False))
    faces = cache.faces(ids)[..., None].astype(np.float32)
    if image_size != cache.image_size:
        faces = tf.image.resize(faces, (image_size, image_size), antialias=True).numpy()
    return faces, targets[ids]


def run_config_record(
    run_dir: Path, cache: FaceCache, config: TrainConfig, image_size: int, split: Split, train_ids: np.ndarray
) -> dict:
    """What ``config.json`` records: the parameters, the recipe as applied, the data and the split."""
    sizes = {
        "train": int(len(train_ids)),
        "validation": int(len(split.validation)),
        "test": int(len(split.test)),
    }
    settings = config.settings()
    return {
        "run_name": run_dir.name,
        "dataset": str(cache.config.get("dataset", "")),
        "cache_dir": str(Path(cache.cache_dir).resolve()),
        "cache_key": cache.key,
        "preprocessing": cache.config,
        **asdict(config),
        "recipe_settings": asdict(settings),
        "recipe_label": recipe_label(config.recipe, settings),
        "threads_used": config.threads or default_workers(),  # TensorFlow's intra-op default: every core
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


@dataclass
class FitResult:
    """What :func:`fit_model` hands on: the per-epoch history and what happened along the way."""

    history: pd.DataFrame
    seconds: float
    initial_diagnostics: dict
    recycled: list  # (epoch, units revived)
    selection_metric: str


def fit_model(
    model,
    datasets: dict,
    targets: dict,
    probe: tuple,
    config: TrainConfig,
    model_path: Path,
    verbose: int = 0,
) -> FitResult:
    """Fit with the recipe; keep the epoch with the best validation score (``selection_metric``).

    Every epoch's logs get the validation and held-out test scores and the bottleneck diagnostics
    (:func:`fer_utils.training.callbacks.evaluation_callback`); the test scores only draw the paper's
    curves. With ``freeze_epochs`` the convolutions stay frozen for the first epochs (transfer).
    """
    from fer_utils.training.callbacks import bottleneck_diagnostics

    settings = config.settings()
    recycled: list = []
    callbacks = training_callbacks(datasets, targets, probe, config, model_path, verbose, recycled)
    weights = class_weights(targets["train"], model.output_shape[-1], settings.class_weighting)
    steps = math.ceil(len(targets["train"]) / config.batch_size)
    initial = bottleneck_diagnostics(model, *probe)
    started = time.perf_counter()
    histories, done = [], 0
    for until, convolutions_trainable in training_phases(config):
        for layer in model.layers:
            if layer.name.startswith("conv"):
                layer.trainable = convolutions_trainable
        compile_model(model, config, steps, until - done)
        fit = model.fit(
            datasets["train"],
            initial_epoch=done,
            epochs=until,
            callbacks=callbacks,
            class_weight=weights,
            shuffle=False,  # the tf.data pipeline shuffles (seeded)
            verbose=0,
        )
        histories.append(pd.DataFrame(fit.history))
        done = until
    seconds = time.perf_counter() - started
    for callback in callbacks:
        getattr(callback, "close", lambda: None)()
    history = pd.concat(histories, ignore_index=True)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    return FitResult(history, seconds, initial, recycled, settings.selection_metric)


def training_phases(config: TrainConfig) -> list[tuple[int, bool]]:
    """``(last epoch, convolutions trainable)`` per ``fit`` call: frozen convolutions first when
    ``freeze_epochs`` is set, then everything."""
    if config.freeze_epochs:
        return [(config.freeze_epochs, False), (config.epochs, True)]
    return [(config.epochs, True)]


def training_callbacks(
    datasets: dict,
    targets: dict,
    probe: tuple,
    config: TrainConfig,
    model_path: Path,
    verbose: int,
    recycled: list,
) -> list:
    """Evaluation and diagnostics first (the others read its keys), then the best-epoch checkpoint,
    dead-unit recycling, early stopping and the progress bar, as the config asks."""
    import keras

    from fer_utils.training.callbacks import evaluation_callback, progress_callback, recycle_callback

    settings = config.settings()
    monitor = settings.selection_metric
    callbacks = [
        evaluation_callback(
            {"val": datasets["validation"], "test": datasets["test"]},
            {"val": targets["validation"], "test": targets["test"]},
            *probe,
        ),
        keras.callbacks.ModelCheckpoint(model_path, monitor=monitor, mode="max", save_best_only=True),
    ]
    if settings.recycle_dead_units:
        callbacks.append(recycle_callback(probe[0], config.seed, recycled))
    if config.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode="max", patience=config.early_stopping_patience
            )
        )
    if verbose:
        callbacks.append(progress_callback(config.epochs, Path(model_path).parent.name, lines=verbose == 2))
    return callbacks


def run_metrics(
    run_config: dict,
    fitted: FitResult,
    predictions: pd.DataFrame,
    num_params: int,
    validation_labels: dict,
) -> dict:
    """What ``metrics.json`` records: scores, baselines on the test part, the health flags and the
    course of training."""
    history = fitted.history
    labels = run_config["labels"]
    scores = evaluate_predictions(predictions, labels)
    baselines = majority_baselines(predictions["true_label"], labels)
    flags = health_flags(
        scores["frame"], baselines, labels, validation_labels["present"], validation_labels["predicted"]
    )
    best_row = int(history[fitted.selection_metric].idxmax())
    return {
        "status": "complete",
        "dataset": run_config["dataset"],
        "protocol": run_config["protocol"],
        "recipe": run_config["recipe"],
        "recipe_label": run_config["recipe_label"],
        "labels": labels,
        "num_params": num_params,
        "split": run_config["split"],
        "baselines": baselines,
        "majority_rate": baselines["majority_rate"],
        "final_train_accuracy": float(history["accuracy"].iloc[-1]),
        "best_train_accuracy": float(history["accuracy"].max()),
        "selection_metric": fitted.selection_metric,
        "best_epoch": best_row + 1,
        "best_val_accuracy": float(history["val_accuracy"].iloc[best_row]),
        "best_val_macro_f1": float(history["val_macro_f1"].iloc[best_row]),
        "epochs_run": int(len(history)),
        "train_seconds": round(fitted.seconds, 2),
        "diagnostics": {
            "initial_dead_units": fitted.initial_diagnostics["dead_units"],
            "initial_grad_norm": fitted.initial_diagnostics["grad_norm"],
            "final_dead_units": float(history["dead_units"].iloc[-1]),
            "max_dead_units": float(history["dead_units"].max()),
            "recycled_units": [{"epoch": epoch, "units": units} for epoch, units in fitted.recycled],
        },
        "validation_classes_predicted": validation_labels["predicted"],
        **flags,
        **scores,
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
    seeds = parser.add_argument_group("seeds")
    seeds.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="SEED",
        help="one run per seed in --out/seed-<k>, in parallel, plus seeds.csv / seeds.json "
        "(mean ± sd, min, max, how many converged); --seed is then ignored",
    )
    seeds.add_argument(
        "--workers", type=int, help="with --seeds: runs at once (default: one per core, 1 thread each)"
    )
    # One `fer train` run uses every core unless --threads says otherwise (the count is recorded);
    # with --seeds each run gets one thread (_cli_train). TrainConfig's own default (1) is what
    # notebooks and the ablation use.
    add_config_arguments(
        parser.add_argument_group("training (TrainConfig)"), TrainConfig, defaults={"threads": None}
    )
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
    config = config_from_args(TrainConfig, args)
    if args.seeds:
        from fer_utils.training.seeds import describe_seeds, train_seeds

        if config.threads is None:
            config = replace(config, threads=1)
        summary = train_seeds(cache_dir, args.out, config, args.seeds, args.workers, args.overwrite)
        print(describe_seeds(summary))
        print(f"runs and summary (seeds.csv, seeds.json) in {args.out}")
        return 1 if summary["failed"] else 0
    run = train_run(cache_dir, args.out, config, overwrite=args.overwrite, verbose=1)
    print(run.summary())
    return 0
