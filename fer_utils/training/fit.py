"""Fitting a run: the optimiser and loss of the recipe, class weights, callbacks, phases and ``model.fit``."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.files import format_literal
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
    if config.teacher:
        from fer_utils.training.distill import accuracy_metric, distillation_loss

        loss = distillation_loss(
            model.output_shape[-1],
            config.distill_temperature,
            config.distill_weight,
            settings.label_smoothing,
        )
        model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss, metrics=[accuracy_metric()])
        return
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
    resume=None,
) -> FitResult:
    """Fit with the recipe; keep the epoch with the best validation score (``selection_metric``).

    Every epoch's logs get the validation and held-out test scores and the bottleneck diagnostics
    (:func:`fer_utils.training.callbacks.evaluation_callback`); the test scores only draw the paper's
    curves. With ``freeze_epochs`` the convolutions stay frozen for the first epochs (transfer).

    ``datasets["train"]`` is a dataset, or a function ``(first epoch, last epoch) → dataset`` of those
    epochs' batches (:func:`fer_utils.training.feed.make_dataset` with ``epochs``). ``resume``: a
    :class:`Resume` — checkpoint after every epoch, and start from its restored state.
    """
    from fer_utils.training.callbacks import bottleneck_diagnostics
    from fer_utils.training.resume import TrainingState, checkpoint_callback, restore_variables

    settings = config.settings()
    state = resume.state if resume else TrainingState()
    recycled: list = [tuple(item) for item in state.recycled]
    callbacks = training_callbacks(datasets, targets, probe, config, model_path, verbose, recycled)
    selection = next(c for c in callbacks if type(c).__name__ == "ModelCheckpoint")
    stopper = next((c for c in callbacks if type(c).__name__ == "EarlyStopping"), None)
    if state.best is not None:
        selection.best = state.best
    weights = class_weights(targets["train"], model.output_shape[-1], settings.class_weighting)
    steps = math.ceil(len(targets["train"]) / config.batch_size)
    initial = state.initial_diagnostics or bottleneck_diagnostics(model, *probe)
    state.initial_diagnostics = initial
    started = time.perf_counter() - state.seconds
    if resume:
        state.recycled = recycled  # the recycling callback appends here; the checkpoint saves it
        saver = checkpoint_callback(
            resume.work_path,
            state,
            resume.settings,
            model_path,
            lambda: time.perf_counter() - started,
            selection,
            stopper,
        )
        callbacks.insert(len(callbacks) - (1 if verbose else 0), saver)
    try:
        done = state.epoch
        phase_start = 0
        for until, convolutions_trainable in training_phases(config):
            if until <= done or state.stopped:
                phase_start = until
                continue
            for layer in model.layers:
                if layer.name.startswith("conv"):
                    layer.trainable = convolutions_trainable
            compile_model(model, config, steps, until - phase_start)
            if state.variables is not None:
                mid_phase = done > phase_start
                restore_variables(
                    model, state.variables, state.model_variable_count, restore_optimizer=mid_phase
                )
                state.variables = None
                if mid_phase and resume:
                    saver.restore_early_stopping = state.early_stopping
            train = datasets["train"]
            fit_options = {}
            if callable(train):
                train, fit_options = train(done, until), {"steps_per_epoch": steps}
            fit = model.fit(
                train,
                initial_epoch=done,
                epochs=until,
                callbacks=callbacks,
                class_weight=None if config.teacher else weights,  # distillation weighs in the feed
                shuffle=False,  # the tf.data pipeline shuffles (seeded)
                verbose=0,
                **fit_options,
            )
            if not resume:
                state.history.extend(pd.DataFrame(fit.history).to_dict("records"))
            done = phase_start = until
            if model.stop_training:
                break
    finally:  # a bar left open would glue the error message to it
        for callback in callbacks:
            getattr(callback, "close", lambda: None)()
    seconds = time.perf_counter() - started
    history = pd.DataFrame(state.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    return FitResult(history, seconds, initial, recycled, settings.selection_metric)


@dataclass
class Resume:
    """Where a resumable run checkpoints (its partial folder), the settings it checks, what it restores."""

    work_path: Path
    settings: dict
    state: object  # fer_utils.training.resume.TrainingState


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
        keras.callbacks.ModelCheckpoint(  # Keras formats the path: braces in a folder name stay braces
            format_literal(model_path), monitor=monitor, mode="max", save_best_only=True
        ),
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
