"""Start a run from a model trained elsewhere (``--init-from``): same architecture and image size,
the classifier head carried over for the classes both label sets share."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from fer_utils.training.model import HEAD_LAYER


def resolve_source(source: str | os.PathLike) -> tuple[Path, list[str] | None]:
    """The ``.keras`` file behind a run folder or model path, and its class names when known."""
    path = Path(source)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise ValueError(f"--init-from {source}: no model there (give a run folder or a .keras file)")
    labels = None
    for candidate in (path.parent / "metrics.json", path.with_suffix(".json")):
        if candidate.is_file():
            try:
                labels = json.loads(candidate.read_text()).get("labels")
            except (json.JSONDecodeError, AttributeError):
                labels = None
            if labels:
                break
    return path, labels


def transfer_weights(source_model, target_model, source_labels, target_labels) -> dict:
    """Copy every layer's weights from ``source_model`` into ``target_model`` where the shapes agree;
    the head keeps the rows of shared class names and starts fresh for the others.

    Returns:
        ``{"copied": [layer names], "head_classes_copied": [...], "head_classes_new": [...]}``.

    Raises:
        ValueError: when the two models differ in a layer other than the head (another image size).
    """
    source_layers = {layer.name: layer for layer in source_model.layers}
    copied = []
    for layer in target_model.layers:
        weights = layer.get_weights()
        if not weights or layer.name == HEAD_LAYER:
            continue
        source = source_layers.get(layer.name)
        if source is None:
            raise ValueError(
                f"--init-from: the source model has no layer {layer.name!r} (another --architecture? "
                "train with the source's architecture)"
            )
        source_weights = source.get_weights()
        shapes = [w.shape for w in source_weights]
        if shapes != [w.shape for w in weights]:
            raise ValueError(
                f"--init-from: layer {layer.name!r} has shapes {shapes} in the source model and "
                f"{[w.shape for w in weights]} here; train at the source model's image size"
            )
        layer.set_weights(source_weights)
        copied.append(layer.name)
    kernel, bias = target_model.get_layer(HEAD_LAYER).get_weights()
    source_kernel, source_bias = source_layers[HEAD_LAYER].get_weights()
    source_labels = list(source_labels or [])
    shared = [label for label in target_labels if label in source_labels]
    if source_kernel.shape[0] == kernel.shape[0]:
        for label in shared:
            kernel[:, target_labels.index(label)] = source_kernel[:, source_labels.index(label)]
            bias[target_labels.index(label)] = source_bias[source_labels.index(label)]
    else:
        shared = []
    target_model.get_layer(HEAD_LAYER).set_weights([kernel, np.asarray(bias)])
    return {
        "copied": copied,
        "head_classes_copied": shared,
        "head_classes_new": [label for label in target_labels if label not in shared],
    }
