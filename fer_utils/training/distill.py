"""Knowledge distillation (Hinton et al. 2015): a student learns from the labels and from a trained
teacher's softened outputs (``--teacher``, ``distill_temperature``, ``distill_weight``).

The teacher sees the same (augmented) batch as the student: the training feed appends its probabilities
to the one-hot labels (:func:`add_teacher_outputs`), and :func:`distillation_loss` splits them again.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fer_utils.training.model import load_keras_model
from fer_utils.training.transfer import resolve_source


def load_teacher(source: str | os.PathLike, labels: list[str], image_size: int):
    """The teacher model behind a run folder or ``.keras`` file, with its outputs in ``labels`` order.

    Raises:
        ValueError: one line naming the difference when its classes or input size are not the student's.
    """
    path, teacher_labels = resolve_source(source, flag="--teacher")
    model = load_keras_model(path)
    check_teacher(model, teacher_labels, labels, image_size, source)
    order = (
        [list(teacher_labels).index(label) for label in labels]
        if teacher_labels
        else list(range(len(labels)))
    )
    return model, np.asarray(order, np.int32), Path(path)


def check_teacher(model, teacher_labels, labels: list[str], image_size: int, source) -> None:
    """ValueError naming what differs between the teacher and the student (classes, input size)."""
    outputs = int(model.output_shape[-1])
    if teacher_labels is not None and set(teacher_labels) != set(labels):
        missing = sorted(set(labels) - set(teacher_labels))
        extra = sorted(set(teacher_labels) - set(labels))
        raise ValueError(
            f"--teacher {source} has other classes: missing {missing or 'none'}, extra {extra or 'none'} "
            f"(the student trains on {', '.join(labels)})"
        )
    if outputs != len(labels):
        raise ValueError(f"--teacher {source} has {outputs} outputs, the student {len(labels)} classes")
    teacher_size = int(model.input_shape[1])
    if teacher_size != image_size:
        raise ValueError(
            f"--teacher {source} takes {teacher_size} px faces, the student {image_size} px "
            f"(train the student with --image-size {teacher_size})"
        )


def add_teacher_outputs(dataset, teacher, order: np.ndarray, classes: int, class_weights: dict | None = None):
    """Map ``(faces, labels)`` batches to ``(faces, [one-hot labels | teacher probabilities])``, plus each
    face's class weight when ``class_weights`` (Keras cannot weigh these combined targets itself)."""
    import tensorflow as tf

    order = tf.constant(order)
    weights = None
    if class_weights:
        weights = tf.constant([class_weights.get(c, 1.0) for c in range(classes)], tf.float32)

    def with_teacher(faces, labels):
        if labels.shape.rank == 2:
            one_hot, index = tf.cast(labels, tf.float32), tf.argmax(labels, axis=1)
        else:
            one_hot, index = tf.one_hot(labels, classes), labels
        teacher_probabilities = tf.gather(teacher(faces, training=False), order, axis=1)
        targets = tf.concat([one_hot, tf.cast(teacher_probabilities, tf.float32)], axis=1)
        if weights is None:
            return faces, targets
        return faces, targets, tf.gather(weights, index)

    return dataset.map(with_teacher)


def distillation_loss(classes: int, temperature: float, weight: float, label_smoothing: float = 0.0):
    """``(1 − weight) · CE(labels, student) + weight · T² · KL(teacher_T ‖ student_T)``, where ``_T`` is the
    softmax of the log-probabilities divided by ``temperature``; ``y_true`` is ``[one-hot | teacher]``."""
    return _classes()[0](classes, temperature, weight, label_smoothing)


def _distillation_class():
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="fer_utils")
    class DistillationLoss(keras.losses.Loss):
        def __init__(self, classes, temperature, weight, label_smoothing=0.0, name="distillation", **kwargs):
            super().__init__(name=name, **kwargs)
            self.classes, self.temperature, self.weight = int(classes), float(temperature), float(weight)
            self.label_smoothing = float(label_smoothing)

        def call(self, y_true, y_pred):
            labels, teacher = y_true[:, : self.classes], y_true[:, self.classes :]
            hard = keras.losses.categorical_crossentropy(labels, y_pred, label_smoothing=self.label_smoothing)
            log_student = ops.log(ops.clip(y_pred, 1e-7, 1.0)) / self.temperature
            log_teacher = ops.log(ops.clip(teacher, 1e-7, 1.0)) / self.temperature
            soft_teacher = ops.softmax(log_teacher, axis=-1)
            kl = ops.sum(
                soft_teacher
                * (ops.log_softmax(log_teacher, axis=-1) - ops.log_softmax(log_student, axis=-1)),
                axis=-1,
            )
            return (1.0 - self.weight) * hard + self.weight * self.temperature**2 * kl

        def get_config(self):
            return {
                **super().get_config(),
                "classes": self.classes,
                "temperature": self.temperature,
                "weight": self.weight,
                "label_smoothing": self.label_smoothing,
            }

    @keras.saving.register_keras_serializable(package="fer_utils")
    def label_accuracy(y_true, y_pred):
        """Accuracy against the one-hot labels at the front of ``y_true``."""
        classes = ops.shape(y_pred)[-1]
        return ops.cast(ops.argmax(y_true[:, :classes], axis=-1) == ops.argmax(y_pred, axis=-1), "float32")

    return DistillationLoss, label_accuracy


_CLASSES: tuple = ()


def _classes():
    global _CLASSES
    if not _CLASSES:
        _CLASSES = _distillation_class()
    return _CLASSES


def accuracy_metric():
    """The ``accuracy`` metric on ``[one-hot | teacher]`` targets."""
    import keras

    return keras.metrics.MeanMetricWrapper(_classes()[1], name="accuracy")
