"""Fitting a run: the optimiser and loss of the recipe, class weights, callbacks, phases and ``model.fit``."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.training.config import TrainConfig


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
