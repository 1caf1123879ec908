"""Fitting a run: the optimiser and loss of the recipe, class weights, callbacks, phases and ``model.fit``."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.files import format_literal
from fer_utils.progress import steps_watched
from fer_utils.training.callbacks import (
    ProbeHealth,
    averaged_weights_callback,
    evaluation_callback,
    progress_callback,
    recycle_callback,
    step_report_callback,
)
from fer_utils.training.config import TrainConfig
from fer_utils.training.distill import accuracy_metric, distillation_loss
from fer_utils.training.plan import RunPlan
from fer_utils.training.resume import TrainingState, checkpoint_callback, restore_variables


def compile_model(model, plan: RunPlan, steps_per_epoch: int, epochs: int) -> None:
    """Adam with the recipe's learning rate, warm-up and schedule over ``epochs`` (and its moving average
    of the weights with ``ema_momentum``); cross-entropy with the recipe's label smoothing."""
    import keras

    config, settings = plan.config, plan.recipe
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
    averaging = {"use_ema": True, "ema_momentum": settings.ema_momentum} if settings.ema_momentum else {}
    optimizer = keras.optimizers.Adam(rate, **averaging)
    if config.teacher:
        loss = distillation_loss(
            model.output_shape[-1],
            config.distill_temperature,
            config.distill_weight,
            settings.label_smoothing,
        )
        model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy_metric()])
        return
    soft = config.targets == "distribution"
    model.compile(
        optimizer=optimizer,
        loss=_loss(settings.label_smoothing, soft),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy") if soft else "accuracy"],
    )


def _loss(label_smoothing: float, soft: bool = False):
    """Cross-entropy on class indices, or on distributions: one-hot targets when smoothing them, or the
    crowd's votes (``soft``)."""
    import keras

    if label_smoothing or soft:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def class_weights(train_targets: np.ndarray, classes: int, weighting: str) -> dict | None:
    """Loss weight per class index: None, inverse frequency (``balanced``) or its square root (``sqrt``),
    either normalised so that the mean weight over the training faces is 1."""
    if weighting == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present, counts = np.unique(train_targets, return_counts=True)
    weights = compute_class_weight("balanced", classes=present, y=train_targets)
    if weighting == "sqrt":
        weights = np.sqrt(weights)
        weights *= counts.sum() / (counts * weights).sum()
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
    plan: RunPlan,
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
    config, settings = plan.config, plan.recipe
    state = resume.state if resume else TrainingState()
    recycled: list = [tuple(item) for item in state.recycled]
    health = ProbeHealth(*probe)
    callbacks = training_callbacks(datasets, targets, health, plan, model_path, verbose, recycled)
    selection = _callback(callbacks, "ModelCheckpoint")
    if state.best is not None:
        selection.best = state.best
    weights = class_weights(targets["train"], model.output_shape[-1], settings.class_weighting)
    steps = math.ceil(len(targets["train"]) / config.batch_size)
    initial = state.initial_diagnostics or health.measure(model)[0]
    state.initial_diagnostics = initial
    started = time.perf_counter() - state.seconds
    saver = None
    if resume:
        state.recycled = recycled  # the recycling callback appends here; the checkpoint saves it
        saver = _resume_saver(resume, model_path, lambda: time.perf_counter() - started, callbacks)
        callbacks.insert(len(callbacks) - (1 if verbose else 0), saver)  # before the progress bar
    try:
        _run_phases(
            model,
            datasets["train"],
            plan,
            state,
            callbacks,
            saver,
            steps,
            class_weight=None if config.teacher else weights,  # distillation weighs in the feed
        )
    finally:  # a bar left open would glue the error message to it
        for callback in callbacks:
            getattr(callback, "close", lambda: None)()
    seconds = time.perf_counter() - started
    history = pd.DataFrame(state.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    return FitResult(history, seconds, initial, recycled, settings.selection_metric)


def _callback(callbacks: list, kind: str):
    """The callback of class ``kind`` (``ModelCheckpoint``, ``EarlyStopping``) among ``callbacks``, or None."""
    return next((c for c in callbacks if type(c).__name__ == kind), None)


def _resume_saver(resume, model_path: Path, elapsed, callbacks: list):
    """The per-epoch checkpoint of a resumable run: ``resume.state`` (with the time ``elapsed()`` so far)
    and the state of the best-epoch checkpoint and early stopping among ``callbacks``."""
    selection, stopper = _callback(callbacks, "ModelCheckpoint"), _callback(callbacks, "EarlyStopping")
    return checkpoint_callback(
        resume.work_path, resume.state, resume.settings, model_path, elapsed, selection, stopper
    )


def _run_phases(
    model,
    train,
    plan: RunPlan,
    state,
    callbacks: list,
    saver,
    steps: int,
    class_weight: dict | None,
) -> None:
    """Every phase of :func:`training_phases` not yet done: from ``state.epoch`` (a resumed run's next
    epoch) to each phase's last epoch, until one stops early. Without a ``saver`` (not resumable) each
    phase's history is added to ``state.history`` (with one, the checkpoint adds every epoch's)."""
    done = state.epoch
    phase_start = 0
    for until, convolutions_trainable in training_phases(plan.config):
        if until <= done or state.stopped:
            phase_start = until
            continue
        _start_phase(model, plan, steps, (phase_start, until), convolutions_trainable)
        if state.variables is not None:
            _restore_checkpoint(model, state, saver, mid_phase=done > phase_start)
        fit = _fit_epochs(model, train, (done, until), steps, callbacks, class_weight)
        if saver is None:
            state.history.extend(pd.DataFrame(fit.history).to_dict("records"))
        done = phase_start = until
        if model.stop_training:
            break


def _start_phase(
    model, plan: RunPlan, steps: int, epochs: tuple[int, int], convolutions_trainable: bool
) -> None:
    """Freeze or unfreeze the convolutions and compile with a schedule over the phase's ``(first, last)``
    epochs."""
    for layer in model.layers:
        if layer.name.startswith("conv"):
            layer.trainable = convolutions_trainable
    first, last = epochs
    compile_model(model, plan, steps, last - first)


def _restore_checkpoint(model, state, saver, mid_phase: bool) -> None:
    """Put a resumed run's saved variables back (once, after its phase is compiled); ``mid_phase``: the
    optimizer's too, and early stopping's state when ``fit`` begins."""
    restore_variables(model, state.variables, state.model_variable_count, restore_optimizer=mid_phase)
    state.variables = None
    if mid_phase and saver is not None:
        saver.restore_early_stopping = state.early_stopping


def _fit_epochs(model, train, epochs: tuple[int, int], steps: int, callbacks: list, class_weight):
    """``model.fit`` from epoch ``first`` to ``last``; a ``train`` that is a function gives those epochs'
    batches (a streamed feed, ``steps`` per epoch)."""
    first, last = epochs
    fit_options = {}
    if callable(train):
        train, fit_options = train(first, last), {"steps_per_epoch": steps}
    return model.fit(
        train,
        initial_epoch=first,
        epochs=last,
        callbacks=callbacks,
        class_weight=class_weight,
        shuffle=False,  # the tf.data pipeline shuffles (seeded)
        verbose=0,
        **fit_options,
    )


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
    health: ProbeHealth,
    plan: RunPlan,
    model_path: Path,
    verbose: int,
    recycled: list,
) -> list:
    """Evaluation and diagnostics first (the others read its keys), then the best-epoch checkpoint,
    dead-unit recycling, early stopping and the progress bar, as the config asks. With ``ema_momentum``
    the evaluation and the checkpoint see the weights' moving average (swapped in before, out after)."""
    import keras

    config, settings = plan.config, plan.recipe
    monitor = settings.selection_metric
    callbacks = [
        evaluation_callback(
            {"val": datasets["validation"], "test": datasets["test"]},
            {"val": targets["validation"], "test": targets["test"]},
            health,
        ),
        keras.callbacks.ModelCheckpoint(  # Keras formats the path: braces in a folder name stay braces
            format_literal(model_path), monitor=monitor, mode="max", save_best_only=True
        ),
    ]
    if settings.ema_momentum:  # the average is evaluated and kept; training goes on from its own weights
        callbacks = [averaged_weights_callback(health), *callbacks, averaged_weights_callback(health)]
    if settings.recycle_dead_units:
        callbacks.append(recycle_callback(health, config.seed, recycled))
    if config.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode="max", patience=config.early_stopping_patience
            )
        )
    if verbose:
        callbacks.append(progress_callback(config.epochs, Path(model_path).parent.name, lines=verbose == 2))
    if steps_watched():  # a parent shows this kernel's progress: one line per epoch for it
        callbacks.append(step_report_callback(config.epochs, Path(model_path).parent.name))
    return callbacks
