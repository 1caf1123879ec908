"""``fer evaluate``: score any model on any face cache, with an explicit, recorded label mapping.

The model's classes are mapped onto the cache's labels: by default a model class maps to the cache label of
the same (canonical) name; ``--label-map FILE`` (JSON ``{"model class": "cache label"}``) overrides single
classes (several model classes may map onto one label: their probabilities are added). A cache label that
no model class maps to (RAVDESS's *calm* for a FER2013 model) cannot be predicted: its faces are left out
of the scores and reported as such, never silently merged. A model class that maps to no cache label wins
a face as ``(unmapped)``, which counts as wrong.

Two scores, both always reported: the **full output** (the model's answer over all its classes; answers on
unmapped classes are wrong) and the **restricted** one (the answer over the mapped classes only, the usual
cross-dataset convention). Macro F1 averages over the scored labels only (``(unmapped)`` has no faces);
``unmapped_answers`` counts the answers that fell on unmapped model classes, per true label. Faces of
another size than the model's input are resized, which is printed and recorded (``evaluation.resized``).

The result is a run-like folder (``config.json`` with ``kind: evaluation``, ``predictions.csv``,
``metrics.json``) that reports and the dashboard open like any run, marked as an evaluation of model X
(trained on Y) on cache Z.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from fer_utils.data.class_folders import FOLDER_LABELS
from fer_utils.deploy.bundled import bundled_model_path, is_bundled_name
from fer_utils.deploy.predictors import TTA_MODES, load_predictor, predict_with_tta, tta_views
from fer_utils.faces.cache import FaceCache, announce_resize
from fer_utils.faces.detection import faces_for_model
from fer_utils.formatting import percent, score
from fer_utils.training import rundir
from fer_utils.training.evaluate import evaluate_predictions, predictions_table
from fer_utils.training.results import EVALUATION_KIND, Evaluation, RunConfig, RunMetrics

UNMAPPED = "(unmapped)"
#: Faces classified per model call.
BATCH = 1024


def read_label_map(path: str | os.PathLike | None) -> dict[str, str | None]:
    """A label-map file: a JSON object ``{model class: cache label or null}``."""
    if not path:
        return {}
    try:
        mapping = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"label map {path}: {error}") from error
    if not isinstance(mapping, dict) or not all(isinstance(v, str | None) for v in mapping.values()):
        raise ValueError(f"label map {path} must be a JSON object of model class → cache label (or null)")
    return mapping


def label_mapping(model_labels: list[str], cache_labels: list[str], overrides: dict | None = None) -> dict:
    """Each model class → the cache label it counts as (None: no counterpart).

    Raises:
        ValueError: ``overrides`` names a model class or a cache label that does not exist.
    """
    overrides = dict(overrides or {})
    unknown_sources = sorted(set(overrides) - set(model_labels))
    unknown_targets = sorted({t for t in overrides.values() if t is not None} - set(cache_labels))
    if unknown_sources or unknown_targets:
        parts = []
        if unknown_sources:
            parts.append(f"model classes {unknown_sources} (the model has {model_labels})")
        if unknown_targets:
            parts.append(
                f"cache labels {unknown_targets} (the cache has {cache_labels}{_renaming_hint(unknown_targets)})"
            )
        raise ValueError("the label map names unknown " + " and ".join(parts))
    return {
        label: overrides[label] if label in overrides else (label if label in cache_labels else None)
        for label in model_labels
    }


def _renaming_hint(names: list[str]) -> str:
    """``"; folder anger/ became label angry at ingestion"`` for names that are class-folder aliases."""

    renamed = [
        f"{name}/ became {FOLDER_LABELS[name]}" for name in names if FOLDER_LABELS.get(name, name) != name
    ]
    return f"; folders renamed at ingestion: {', '.join(renamed)}" if renamed else ""


def mapped_probabilities(
    probabilities: np.ndarray, model_labels: list[str], mapping: dict, labels: list[str]
):
    """Model-class probabilities summed onto the evaluation labels (``labels``, maybe ending in UNMAPPED)."""
    out = np.zeros((len(probabilities), len(labels)), np.float32)
    for i, label in enumerate(model_labels):
        out[:, labels.index(mapping[label] or UNMAPPED)] += probabilities[:, i]
    return out


def evaluation_labels(mapping: dict, cache_labels: list[str]) -> list[str]:
    """The cache labels some model class maps to (cache order), then UNMAPPED if a model class maps to none."""
    targets = [label for label in cache_labels if label in mapping.values()]
    return targets + ([UNMAPPED] if None in mapping.values() else [])


def model_origin(predictor) -> dict:
    """What is known of where a model comes from (its spec or its run's config)."""
    spec = predictor.spec or {}
    origin = {"model": str(predictor.path), "format": predictor.format}
    source_run = spec.get("source_run")
    if source_run and (Path(source_run) / rundir.CONFIG_FILE).exists():
        config = rundir.read_config(source_run)
        origin |= {"trained_on": config.get("dataset"), "protocol": config.get("protocol"), "run": source_run}
    origin.setdefault("trained_on", spec.get("trained_on") or spec.get("dataset") or "unknown")
    return origin


def evaluate_on_cache(
    model: str | os.PathLike,
    cache_dir: str | os.PathLike,
    out: str | os.PathLike,
    label_map: dict | None = None,
    split: str | None = None,
    overwrite: bool = False,
    threads: int | None = None,
    tta: str = "none",
) -> rundir.Run:
    """Score ``model`` on the faces of a cache (all, or those of ``split`` for caches with a split column)
    and write an evaluation folder (see the module doc). Errors in the mapping come before any work.
    The faces get the pixel step the model declares (unless the cache's faces already carry it) and
    ``tta`` (:data:`fer_utils.deploy.predictors.TTA_MODES`: single crop, flip, ten-crop)."""

    predictor = load_predictor(model, threads)
    cache = FaceCache(cache_dir)
    tta_views(np.zeros((1, 4, 4), np.uint8), tta)  # an unknown mode is refused before any work
    index = faces_to_score(cache, split)
    mapping = label_mapping(predictor.labels, cache.labels, label_map)
    labels = evaluation_labels(mapping, cache.labels)
    scored = index[index["label"].isin(labels)]
    if not len(scored):
        raise ValueError(f"no face of {cache_dir} has a label the model's classes map to ({mapping})")
    resized = announce_resize(cache.face_size, predictor.image_size, "evaluation")
    predictions = predict_scored_faces(predictor, cache, scored, mapping, labels, tta)
    scored_labels = [label for label in labels if label != UNMAPPED]
    evaluation = {
        **model_origin(predictor),
        "cache_dir": str(Path(cache_dir).resolve()),
        "dataset": str(cache.config.get("dataset", Path(cache_dir).name)),
        "split": split,
        "label_map": mapping,
        "unscored_faces": {
            str(k): int(v)
            for k, v in index.loc[~index.index.isin(scored.index), "label"].value_counts().items()
        },
        "unscored_reason": "no model class maps to these labels",
        "unmapped_model_classes": [label for label, target in mapping.items() if target is None],
        "resized": resized,
        "label_renaming": cache.ingestion.get("label_renaming") or {},
        "pixel_step": predictor.pixel_step,
        "tta": tta,
    }
    evaluation["description"] = (
        f"evaluation of {Path(str(predictor.path)).name} (trained on {evaluation['trained_on']}) "
        f"on {evaluation['dataset']}" + (f", test-time augmentation {tta}" if tta != "none" else "")
    )
    scores = evaluate_predictions(predictions, labels, average_over=scored_labels)
    scores |= {
        "restricted": restricted_scores(predictions, scored_labels),
        "unmapped_answers": unmapped_answers(predictions, scored_labels),
    }
    write_evaluation(out, evaluation, predictions, scores, predictor, cache, overwrite)
    return rundir.load_run(out)


def restricted_predictions(predictions, scored_labels: list[str]):
    """The answer over the mapped classes only: argmax of the scored labels' probabilities."""
    columns = [f"prob_{label}" for label in scored_labels]
    restricted = predictions.copy()
    restricted["predicted_label"] = np.asarray(scored_labels)[predictions[columns].to_numpy().argmax(axis=1)]
    restricted["correct"] = restricted["true_label"] == restricted["predicted_label"]
    return restricted


def restricted_scores(predictions, scored_labels: list[str]) -> dict:
    """Frame (and video) scores of the answer restricted to the mapped classes."""

    scores = evaluate_predictions(restricted_predictions(predictions, scored_labels), scored_labels)
    return {"frame": scores["frame"], "video": scores["video"]}


def unmapped_answers(predictions, scored_labels: list[str]) -> dict:
    """How many faces the full output answered with an unmapped model class: in all and per true label
    (``count``, ``share``), and which model classes they were (``model_classes``)."""
    unmapped = predictions["predicted_label"] == UNMAPPED
    per_label = {}
    for label in scored_labels:
        of_label = predictions["true_label"] == label
        count = int((unmapped & of_label).sum())
        per_label[label] = {"count": count, "share": float(count / max(1, int(of_label.sum())))}
    model_classes = {}
    if "model_label" in predictions.columns:
        model_classes = {
            str(k): int(v) for k, v in predictions.loc[unmapped, "model_label"].value_counts().items()
        }
    return {
        "count": int(unmapped.sum()),
        "share": float(unmapped.mean()) if len(predictions) else 0.0,
        "per_label": per_label,
        "model_classes": model_classes,
    }


def faces_to_score(cache, split: str | None):
    """The cache's index rows to score: all, or those of ``split``."""
    index = cache.index
    if split is not None:
        if "split" not in index.columns:
            raise ValueError(f"{cache.cache_dir} has no split column; drop --split")
        index = index[index["split"].astype(str) == split]
    if not len(index):
        raise ValueError(f"{cache.cache_dir} holds no faces{f' in split {split!r}' if split else ''}")
    return index


def predict_scored_faces(predictor, cache, scored, mapping: dict, labels: list[str], tta: str = "none"):
    """The predictions table of the scored faces, classified :data:`BATCH` at a time (bounded memory)."""

    face_ids = scored["face_id"].to_numpy()
    carried = cache.config.get("equalize", "none")
    mapped, answers = [], []
    for start in range(0, len(face_ids), BATCH):
        faces = faces_for_model(cache.faces(face_ids[start : start + BATCH]), predictor.pixel_step, carried)
        probabilities = predict_with_tta(predictor, faces, tta)
        mapped.append(mapped_probabilities(probabilities, predictor.labels, mapping, labels))
        answers.append(probabilities.argmax(axis=1))
    table = predictions_table(scored, np.concatenate(mapped), labels)
    table["model_label"] = np.asarray(predictor.labels)[np.concatenate(answers)]
    scored_labels = [label for label in labels if label != UNMAPPED]
    table["restricted_label"] = restricted_predictions(table, scored_labels)["predicted_label"]
    return table


def write_evaluation(
    out, evaluation: dict, predictions, scores: dict, predictor, cache, overwrite: bool
) -> None:
    """The evaluation folder: config.json (``kind: evaluation``), predictions.csv, metrics.json last."""
    labels = list(predictions.filter(like="prob_").columns.str.removeprefix("prob_"))
    record = Evaluation.from_json(evaluation)
    config = RunConfig(
        settings={"protocol": "evaluation"},
        kind=EVALUATION_KIND,
        dataset=record.dataset,
        labels=labels,
        image_size=predictor.image_size,
        cache_dir=record.cache_dir,
        preprocessing=cache.config,
        evaluation=record,
    )
    metrics = RunMetrics.build(
        scores,
        kind=EVALUATION_KIND,
        dataset=record.dataset,
        protocol="evaluation",
        labels=labels,
        num_params=int(predictor.spec.get("num_params") or 0),
        split={"test": int(len(predictions))},
        evaluation=record,
    )
    with rundir.RunWriter(out, overwrite) as writer:
        writer.write_config(config)
        writer.write_predictions(predictions)
        writer.write_metrics(metrics)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        help="run folder, .keras, .tflite or .onnx, or a bundled candidate's name (paper, "
        "ferplus_vgg_bn_48, …; default: the bundled default model)",
    )
    parser.add_argument("--cache", required=True, help="face cache folder (`fer preprocess`)")
    parser.add_argument("--label-map", help='JSON object {"model class": "cache label" or null}')
    parser.add_argument(
        "--split", help="only the faces of this split (caches with a split column, e.g. test)"
    )
    parser.add_argument("--out", required=True, help="the evaluation folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished evaluation in --out")
    parser.add_argument("--threads", type=int, help="CPU threads of TFLite / ONNX Runtime (default: all)")
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="none",
        help="test-time augmentation: none (one crop), flip (+ mirror), tencrop (corners, centre, mirrors)",
    )
    parser.set_defaults(func=_evaluate_cli)


def _evaluate_cli(args) -> int:
    overrides = read_label_map(args.label_map)
    named = args.model is None or is_bundled_name(args.model)
    run = evaluate_on_cache(
        bundled_model_path(model=args.model) if named else args.model,
        args.cache,
        args.out,
        overrides,
        args.split,
        args.overwrite,
        args.threads,
        args.tta,
    )
    print(describe_evaluation(run.outcome))
    print(f"written to {run.path}")
    return 0


def describe_evaluation(outcome: RunMetrics) -> str:
    """The console lines of an evaluation: mapping, unscored faces, full and restricted scores, unmapped
    answers per true label."""
    evaluation, frame = outcome.evaluation, outcome.frame
    scored = [label for label in outcome.labels if label != UNMAPPED]
    lines = [evaluation.description, f"  label map: {json.dumps(evaluation.label_map)}"]
    lines += [
        f"  {count} {label} face(s) not scored: no model class maps to {label!r}"
        for label, count in evaluation.unscored_faces.items()
    ]
    lines.append(
        f"  full output: accuracy {percent(frame.accuracy)}, macro F1 {score(frame.macro_f1)} "
        f"over the {len(scored)} scored classes, on {frame.support} faces"
    )
    restricted = (outcome.restricted or {}).get("frame")
    if restricted:
        lines.append(
            f"  restricted to the mapped classes: accuracy {percent(restricted['accuracy'])}, "
            f"macro F1 {score(restricted['macro_f1'])}"
        )
    unmapped = outcome.unmapped_answers
    if unmapped and not evaluation.unmapped_model_classes:
        lines.append("  every model class maps to a cache label: no answer falls outside them")
    elif unmapped:
        classes = ", ".join(evaluation.unmapped_model_classes or []) or "none"
        line = (
            f"  answers on unmapped model classes ({classes}): {unmapped['count']} of {frame.support} "
            f"({percent(unmapped['share'])})"
        )
        per_label = [
            f"{label} {part['count']}/{frame.per_class[label]['support']}"
            for label, part in unmapped["per_label"].items()
            if part["count"]
        ]
        lines.append(line + (f": {', '.join(per_label)}" if per_label else ""))
    return "\n".join(lines)
