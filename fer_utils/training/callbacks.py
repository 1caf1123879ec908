"""Keras callbacks of a training run: per-epoch evaluation and diagnostics, and a progress bar."""

from __future__ import annotations

import re

import numpy as np

from fer_utils.progress import progress_bar, report_step
from fer_utils.training.model import BOTTLENECK_LAYER, HEAD_LAYER


def epoch_scores(probabilities: np.ndarray, targets: np.ndarray, regularization: float = 0.0) -> dict:
    """Loss (cross-entropy + regularization), accuracy, macro F1 and the number of classes predicted."""
    from sklearn.metrics import f1_score

    predicted = probabilities.argmax(axis=1)
    picked = np.clip(probabilities[np.arange(len(targets)), targets], 1e-7, 1.0)
    return {
        "loss": float(-np.log(picked).mean()) + regularization,
        "accuracy": float((predicted == targets).mean()),
        "macro_f1": float(f1_score(targets, predicted, average="macro", zero_division=0)),
        "classes_predicted": int(len(np.unique(predicted))),
    }


class ProbeHealth:
    """Health of the network on a fixed probe of training faces (inference mode), measured in one compiled
    pass: the bottleneck's activations and the loss gradient come from the same forward pass.

    ``dead_units``: fraction of the bottleneck's ReLUs that output 0 for every probe face (they pass no
    gradient, so they rarely recover); ``grad_norm``: global norm of the loss gradient over the trainable
    weights. One measurement per epoch serves the logs and the recycling (:func:`recycle_callback`).
    """

    def __init__(self, probe_faces: np.ndarray, probe_targets: np.ndarray):
        self.probe_faces = np.asarray(probe_faces, dtype="float32")
        self.probe_targets = np.asarray(probe_targets)
        self._step = self._step_key = None
        self._measured: tuple | None = None  # (epoch, diagnostics, dead mask) of the current weights

    def measure(self, model, epoch: int | None = None) -> tuple[dict, np.ndarray]:
        """``(diagnostics, dead-unit mask)`` of ``model`` now; ``epoch`` keeps it for that epoch's
        other readers (:meth:`dead_mask`)."""
        peaks, gradient_norm = self._compiled(model)(self.probe_faces, self.probe_targets)
        dead = np.asarray(peaks) <= 0
        diagnostics = {"dead_units": float(dead.mean()), "grad_norm": float(gradient_norm)}
        self._measured = None if epoch is None else (epoch, diagnostics, dead)
        return diagnostics, dead

    def dead_mask(self, model, epoch: int) -> np.ndarray:
        """The dead-unit mask at the end of ``epoch``: this epoch's measurement if the weights have not
        changed since (:meth:`forget`), else a new one."""
        if self._measured is not None and self._measured[0] == epoch:
            return self._measured[2]
        return self.measure(model, epoch)[1]

    def forget(self) -> None:
        """The weights changed: the kept measurement no longer holds."""
        self._measured = None

    def _compiled(self, model):
        import keras
        import tensorflow as tf

        # A traced function keeps the variables it differentiates: trace again when the trainable set
        # changes (frozen convolutions unfrozen) or the model is another.
        key = (id(model), tuple(id(variable) for variable in model.trainable_variables))
        if key != self._step_key:
            outputs = keras.Model(model.input, [model.output, model.get_layer(BOTTLENECK_LAYER).output])
            variables = list(model.trainable_variables)

            @tf.function(reduce_retracing=True)
            def step(faces, targets):
                with tf.GradientTape() as tape:
                    probabilities, activations = outputs(faces, training=False)
                    loss = tf.reduce_mean(
                        keras.losses.sparse_categorical_crossentropy(targets, probabilities)
                    )
                gradients = [g for g in tape.gradient(loss, variables) if g is not None]
                return tf.reduce_max(activations, axis=0), tf.linalg.global_norm(gradients)

            self._step, self._step_key = step, key
        return self._step


def bottleneck_diagnostics(model, probe_faces: np.ndarray, probe_targets: np.ndarray) -> dict:
    """``dead_units`` and ``grad_norm`` of ``model`` on a probe of faces (:class:`ProbeHealth`)."""
    return ProbeHealth(probe_faces, probe_targets).measure(model)[0]


def bottleneck_model(model):
    """A model sharing ``model``'s layers that outputs the bottleneck's activations."""
    import keras

    return keras.Model(model.input, model.get_layer(BOTTLENECK_LAYER).output)


def evaluation_callback(datasets: dict, targets: dict, health: ProbeHealth):
    """Callback adding, after each epoch, ``<part>_loss/_accuracy/_macro_f1/_classes_predicted`` for each
    named dataset (``val`` for validation, ``test`` for the held-out part) and the bottleneck diagnostics.

    It replaces Keras' own validation pass (one prediction per part and epoch) and must come before the
    checkpoint callbacks that monitor its keys. The test scores only draw the paper's curves; they never
    choose a model.
    """
    import keras

    class EpochEvaluation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            regularization = float(sum(float(loss) for loss in self.model.losses))
            for part, dataset in datasets.items():
                probabilities = self.model.predict(dataset, verbose=0)
                scores = epoch_scores(probabilities, targets[part], regularization)
                logs.update({f"{part}_{name}": value for name, value in scores.items()})
            logs.update(health.measure(self.model, epoch)[0])

    return EpochEvaluation()


def exchange_averaged_weights(model) -> None:
    """Swap ``model``'s trainable weights with its optimizer's moving average of them (Adam's
    ``use_ema``): after one call the model holds the average, after a second its training weights again."""
    averages = model.optimizer._model_variables_moving_average  # Keras keeps them under this name only
    for variable, average in zip(model.trainable_variables, averages, strict=True):
        current = np.array(variable.numpy())
        variable.assign(average.numpy())
        average.assign(current)


def averaged_weights_callback(health: ProbeHealth):
    """Callback that exchanges the model's weights with their moving average after each epoch
    (:func:`exchange_averaged_weights`). Two bracket the callbacks that judge and keep a model (evaluation,
    best-epoch checkpoint): the first puts the average in, the second the training weights back, before
    dead-unit recycling and the resume checkpoint, so training goes on from its own weights."""
    import keras

    class ExchangeAveragedWeights(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            exchange_averaged_weights(self.model)
            health.forget()

    return ExchangeAveragedWeights()


#: Logged scores the progress display shows, under short names.
PROGRESS_SCORES = {"loss": "loss", "accuracy": "acc", "val_accuracy": "val_acc", "val_macro_f1": "val_f1"}


def run_display_name(folder_name: str) -> str:
    """The run a folder is written for: ``.fer2013-base.partial-1a2b3c4d`` (where a run is written before
    it is swapped in) → ``fer2013-base``; other names unchanged."""
    match = re.fullmatch(r"\.(.+)\.partial-[0-9a-f]+", folder_name)
    return match.group(1) if match else folder_name


def progress_callback(epochs: int, description: str, position: int | None = None, lines: bool = False):
    """One tqdm bar per run (epochs done, ETA, the last epoch's key scores), or with ``lines`` one
    printed line per epoch, which reads well in an executed notebook or a log. ``description`` is the run
    folder's name (the hidden work folder's name is shown as the run's, :func:`run_display_name`)."""
    import time

    import keras

    class EpochProgress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if not hasattr(self, "started"):
                self.started = time.perf_counter()
                if not lines:
                    self.bar = progress_bar(
                        total=epochs,
                        desc=run_display_name(description),
                        unit="epoch",
                        position=position,
                        leave=True,
                    )

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            scores = {short: f"{logs[key]:.3f}" for key, short in PROGRESS_SCORES.items() if key in logs}
            if lines:
                shown = " · ".join(f"{name} {value}" for name, value in scores.items())
                elapsed = time.perf_counter() - self.started
                print(f"epoch {epoch + 1}/{epochs} · {shown} · {elapsed:.0f} s", flush=True)
                return
            self.bar.set_postfix(scores, refresh=False)
            self.bar.update(1)

        def close(self):
            if hasattr(self, "bar"):
                self.bar.close()

    return EpochProgress()


#: The scores of an epoch's step line (:func:`step_report_callback`), under short names.
STEP_SCORES = {"val_accuracy": "val_acc", "val_macro_f1": "val_f1"}


def epoch_step_line(run: str, epoch: int, epochs: int, logs: dict) -> str:
    """``paper-seed0 · epoch 3/15 · val_acc 0.412 · val_f1 0.380``: one epoch of one run, in a line."""
    scores = [f"{short} {logs[key]:.3f}" for key, short in STEP_SCORES.items() if key in logs]
    return " · ".join([run, f"epoch {epoch}/{epochs}", *scores])


def step_report_callback(epochs: int, description: str):
    """Callback appending one line per epoch (:func:`epoch_step_line`) to the progress file of the parent
    that shows this process's progress (:func:`fer_utils.progress.report_step`): a kernel's training seen
    on ``fer run``'s and ``fer ablate``'s progress line. ``description``: the run folder's name."""
    import keras

    run = run_display_name(description)

    class EpochStepReport(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            report_step(epoch_step_line(run, epoch + 1, epochs, logs or {}))

    return EpochStepReport()


def dead_units(model, probe_faces: np.ndarray) -> np.ndarray:
    """Boolean mask of the bottleneck's ReLUs that output 0 for every probe face."""
    activations = bottleneck_model(model)(probe_faces, training=False)
    return np.asarray(activations).max(axis=0) <= 0


def recycle_callback(health: ProbeHealth, seed: int, log: list):
    """Revive dead bottleneck units after each epoch (ReDo, Sokar et al. 2023): a unit that outputs 0 on
    every probe face gets fresh Glorot-uniform input weights and a zero bias, and its outgoing weights
    are zeroed so the revival does not disturb the current predictions. The architecture and parameter
    count are unchanged. Each revival is appended to ``log`` as ``(epoch, units)``."""
    import keras

    class RecycleDeadUnits(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            dead = health.dead_mask(self.model, epoch)
            if not dead.any():
                return
            bottleneck, head = self.model.get_layer(BOTTLENECK_LAYER), self.model.get_layer(HEAD_LAYER)
            kernel, bias = bottleneck.get_weights()
            head_kernel, head_bias = head.get_weights()
            fresh = keras.initializers.GlorotUniform(seed=seed * 1000 + epoch)(kernel.shape)
            kernel[:, dead] = np.asarray(fresh)[:, dead]
            bias[dead] = 0.0
            head_kernel[dead, :] = 0.0
            bottleneck.set_weights([kernel, bias])
            head.set_weights([head_kernel, head_bias])
            health.forget()
            log.append((epoch + 1, int(dead.sum())))

    return RecycleDeadUnits()
