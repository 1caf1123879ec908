"""Keras callbacks of a training run: per-epoch evaluation and diagnostics, and a progress bar."""

from __future__ import annotations

import re

import numpy as np

from fer_utils.progress import progress_bar
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


def bottleneck_diagnostics(
    model, probe_faces: np.ndarray, probe_targets: np.ndarray, bottleneck=None
) -> dict:
    """Health of the network on a fixed probe of training faces (inference mode).

    ``dead_units``: fraction of the bottleneck's ReLUs that output 0 for every probe face (they pass no
    gradient, so they rarely recover); ``grad_norm``: global norm of the loss gradient over all weights.
    ``bottleneck``: the model's :func:`bottleneck_model`, when the caller keeps one.
    """
    import keras
    import tensorflow as tf

    bottleneck = bottleneck or bottleneck_model(model)
    with tf.GradientTape() as tape:
        probabilities = model(probe_faces, training=False)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(probe_targets, probabilities))
    gradients = tape.gradient(loss, model.trainable_variables)
    return {
        "dead_units": float(dead_units(model, probe_faces, bottleneck).mean()),
        "grad_norm": float(tf.linalg.global_norm([g for g in gradients if g is not None])),
    }


def bottleneck_model(model):
    """A model sharing ``model``'s layers that outputs the bottleneck's activations."""
    import keras

    return keras.Model(model.input, model.get_layer(BOTTLENECK_LAYER).output)


def evaluation_callback(datasets: dict, targets: dict, probe_faces, probe_targets):
    """Callback adding, after each epoch, ``<part>_loss/_accuracy/_macro_f1/_classes_predicted`` for each
    named dataset (``val`` for validation, ``test`` for the held-out part) and the bottleneck diagnostics.

    It replaces Keras' own validation pass (one prediction per part and epoch) and must come before the
    checkpoint callbacks that monitor its keys. The test scores only draw the paper's curves; they never
    choose a model.
    """
    import keras

    class EpochEvaluation(keras.callbacks.Callback):
        def set_model(self, model):
            super().set_model(model)
            self.bottleneck = bottleneck_model(model)

        def on_epoch_end(self, epoch, logs=None):
            regularization = float(sum(float(loss) for loss in self.model.losses))
            for part, dataset in datasets.items():
                probabilities = self.model.predict(dataset, verbose=0)
                scores = epoch_scores(probabilities, targets[part], regularization)
                logs.update({f"{part}_{name}": value for name, value in scores.items()})
            logs.update(bottleneck_diagnostics(self.model, probe_faces, probe_targets, self.bottleneck))

    return EpochEvaluation()


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


def dead_units(model, probe_faces: np.ndarray, bottleneck=None) -> np.ndarray:
    """Boolean mask of the bottleneck's ReLUs that output 0 for every probe face."""
    activations = (bottleneck or bottleneck_model(model))(probe_faces, training=False)
    return np.asarray(activations).max(axis=0) <= 0


def recycle_callback(probe_faces: np.ndarray, seed: int, log: list):
    """Revive dead bottleneck units after each epoch (ReDo, Sokar et al. 2023): a unit that outputs 0 on
    every probe face gets fresh Glorot-uniform input weights and a zero bias, and its outgoing weights
    are zeroed so the revival does not disturb the current predictions. The architecture and parameter
    count are unchanged. Each revival is appended to ``log`` as ``(epoch, units)``."""
    import keras

    class RecycleDeadUnits(keras.callbacks.Callback):
        def set_model(self, model):
            super().set_model(model)
            self.bottleneck = bottleneck_model(model)

        def on_epoch_end(self, epoch, logs=None):
            dead = dead_units(self.model, probe_faces, self.bottleneck)
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
            log.append((epoch + 1, int(dead.sum())))

    return RecycleDeadUnits()
