"""An ensemble of trained models as one model file (``fer ensemble-model``): one Keras model whose output
is the softmax of its members' mean logits (the normalized geometric mean of their probabilities), with a
spec like any other model's, so ``fer predict``, ``fer evaluate``, ``fer export`` (int8 included: it ends at
the mean logits) and ``--teacher`` take it as they take a run's model.

The members must agree on what they answer and what they are fed: the same labels in the same order, the
same input size and the same pixel step. Their calibration temperatures are not carried.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fer_utils.files import atomic_write_json, atomic_write_with
from fer_utils.training.architectures import model_cost
from fer_utils.training.model import load_keras_model, logits_model
from fer_utils.training.model_files import model_spec, pixel_step, spec_path
from fer_utils.training.transfer import resolve_source

#: Spec keys taken from the first member when it has them (what the members were trained on).
SHARED_SPEC_KEYS = ("trained_on", "dataset", "targets", "training_data", "recipe")


def ensemble_model(sources: list[str | os.PathLike]):
    """The Keras model averaging the logits of ``sources`` (run folders or ``.keras`` files, each ending in
    a softmax) under one softmax, and its spec.

    Raises:
        ValueError: fewer than two members, or one line naming the first member whose labels, input size
            or pixel step differ from the first's.
    """
    import keras

    if len(sources) < 2:
        raise ValueError(f"an ensemble needs at least two models, got {len(sources)}")
    members, first = [], None
    for index, source in enumerate(sources):
        path, labels = resolve_source(source, flag="ensemble member")
        spec = model_spec(path)
        model = load_keras_model(path)
        logits = logits_model(model)
        if logits is model:
            raise ValueError(
                f"ensemble member {source} does not end in a softmax, so it has no logits to average"
            )
        described = {
            "labels": list(labels),
            "image_size": int(model.input_shape[1]),
            "pixel step": pixel_step(spec, path),
        }
        if first is None:
            first = {**described, "spec": spec}
        for key, value in described.items():
            if value != first[key]:
                raise ValueError(
                    f"ensemble member {source} has {key} {value}, the first member ({sources[0]}) {first[key]}"
                )
        logits.name = f"member_{index}"
        members.append((str(Path(path).resolve()), spec.get("architecture") or model.name, logits))
    face = keras.Input(members[0][2].input_shape[1:], name="face")
    mean = keras.layers.Average(name="mean_logits")([model(face) for _, _, model in members])
    ensemble = keras.Model(face, keras.layers.Softmax(name="probabilities")(mean), name="ensemble")
    costs = [model_cost(model) for _, _, model in members]
    spec = {
        "format": "keras",
        "labels": first["labels"],
        "image_size": first["image_size"],
        "preprocessing": first["spec"].get("preprocessing") or {"equalize": first["pixel step"]},
        "architecture": "ensemble",
        "members": [{"model": path, "architecture": architecture} for path, architecture, _ in members],
        "cost": {key: sum(cost[key] for cost in costs) for key in ("parameters", "multiply_adds")},
        "num_params": int(ensemble.count_params()),
        **{key: first["spec"][key] for key in SHARED_SPEC_KEYS if key in first["spec"]},
    }
    return ensemble, spec


def write_ensemble(sources: list[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Write :func:`ensemble_model` of ``sources`` to ``out`` (a ``.keras`` file) and its spec beside it
    (``<out>.json``); returns ``out``."""
    out = Path(out)
    if out.suffix.lower() != ".keras":
        raise ValueError(f"{out}: an ensemble is written as a .keras file")
    ensemble, spec = ensemble_model(sources)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(out, ensemble.save, "the ensemble model", suffix=".tmp.keras")  # Keras wants .keras
    atomic_write_json(spec_path(out), {**spec, "model_file": out.name})
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="the ensemble's .keras file (its spec is written beside it, <out>.json)")
    parser.add_argument(
        "members", nargs="+", help="two or more run folders or .keras models (same labels, size, pixel step)"
    )
    parser.set_defaults(func=_ensemble_cli)


def _ensemble_cli(args) -> int:
    path = write_ensemble(args.members, args.out)
    spec = model_spec(path)
    print(
        f"wrote {path} and {spec_path(path).name}: {len(args.members)} members, "
        f"{spec['cost']['parameters']:,} parameters, {spec['cost']['multiply_adds'] / 1e6:.1f} M multiply-adds"
    )
    return 0
