"""Start a run from a model trained elsewhere (``--init-from``): same architecture and image size,
the classifier head carried over for the classes both label sets share."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fer_utils.training.model import HEAD_LAYER, load_keras_model
from fer_utils.training.model_files import model_spec, spec_path


def resolve_source(source: str | os.PathLike, flag: str = "--init-from") -> tuple[Path, list[str]]:
    """The ``.keras`` file behind a run folder or model path, and its class names, found by the rule
    every model reader shares (:func:`fer_utils.training.model_files.model_spec`: ``<file>.json``, else the
    run's ``config.json``).

    Raises:
        ValueError: no model there, or no readable spec naming its classes (a head cannot be carried
            over without them, and starting it fresh silently would make any "transfer gain" meaningless).
    """
    path = Path(source)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise ValueError(f"{flag} {source}: no model there (give a run folder or a .keras file)")
    try:
        labels = model_spec(path).get("labels")
    except ValueError as error:
        raise ValueError(f"{flag} {source}: {error}") from None
    if not labels or not all(isinstance(label, str) for label in labels):
        raise ValueError(
            f"{flag} {source}: no class names for its outputs (neither {spec_path(path).name} "
            f"nor a run config.json beside it names them), so its head could not be carried over"
        )
    return path, list(labels)


def initialise_from(source: str | os.PathLike, model, labels: list[str]) -> dict:
    """Load ``source`` (:func:`resolve_source`), copy its weights into ``model`` (:func:`transfer_weights`),
    print what was kept and what starts fresh, and return the record for the run's ``config.json``."""
    path, source_labels = resolve_source(source)
    source_model = load_keras_model(path)
    heads = source_model.get_layer(HEAD_LAYER).get_weights()[1].shape[0]
    if heads != len(source_labels):
        raise ValueError(
            f"--init-from {source}: the model has {heads} outputs but its spec names {len(source_labels)} labels"
        )
    record = {"source": str(path.resolve()), "source_labels": source_labels}
    record |= transfer_weights(source_model, model, source_labels, list(labels))
    print(describe_transfer(record))
    source_range, run_range = _pixel_range(source_model), _pixel_range(model)
    if source_range != run_range:
        record["input_range_differs"] = {"source": source_range, "run": run_range}
        print(
            f"WARNING: --init-from {path.name} scales pixels to {source_range} and this run to {run_range}: "
            "the copied layers see other inputs than they learned on (train with the source's recipe)"
        )
    return record


def _pixel_range(model) -> list[float] | None:
    """``[low, high]`` that a model's input rescaling maps pixels 0 … 255 to (None without one)."""
    try:
        config = model.get_layer("rescale").get_config()
    except ValueError:
        return None
    offset = float(config.get("offset", 0.0))
    return [round(offset, 6), round(offset + 255 * float(config["scale"]), 6)]


def describe_transfer(record: dict) -> str:
    """One line: where the weights came from, which head rows were kept and which start fresh."""
    kept = ", ".join(record["head_classes_copied"]) or "none"
    fresh = ", ".join(record["head_classes_new"]) or "none"
    return (
        f"--init-from {Path(record['source']).name}: layers {', '.join(record['copied'])} copied; "
        f"head rows kept for {kept}; starting fresh: {fresh}"
    )


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
