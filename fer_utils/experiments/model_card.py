"""The bundled candidates' card: scores measured from the shipped files (the test split of the data each
was trained on per file, :func:`score_test`: FER2013 PrivateTest of the JPEG export, FER+ test with majority
labels, PrivateTest's raw pixels; the served raw-face scores of the default file,
:mod:`fer_utils.experiments.served_scores`; int8 ms per face), ``model_card*.json`` and the generated block
of ``docs/model_card.md`` (:func:`card_block`: the default rule, then every shipped candidate). ``fer
bundle-model`` (:mod:`fer_utils.experiments.bundle_model`) writes them.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fer_utils.bench.inference import tflite_timer
from fer_utils.bench.timing import time_calls
from fer_utils.data.datasets import LAYOUTS
from fer_utils.deploy.bundled import (
    BUNDLED_DIR,
    DEFAULT_CHOICE_FILE,
    DEFAULT_FORMAT,
    FER2013_CLASSES,
    IMAGE_SIZE,
    PREDICT_MARGIN,
    card_file_name,
    shipped_candidates,
)
from fer_utils.deploy.predictors import as_batch, load_predictor
from fer_utils.experiments.bundle_data import bundle_dataset, run_dataset
from fer_utils.experiments.default_rule import default_lines
from fer_utils.experiments.served_scores import ferplus_copy, raw_test_faces, served_lines, served_scores
from fer_utils.experiments.shipped_files import run_architecture, run_folder_name
from fer_utils.faces.detection import faces_for_model
from fer_utils.files import atomic_write_text
from fer_utils.training.calibration import (
    apply_temperature,
    expected_calibration_error,
    reliability_bins,
    temperature_decision,
)
from fer_utils.training.evaluate import classification_metrics
from fer_utils.training.model_files import spec_path
from fer_utils.training.plan import recorded_settings

#: The pixel step FER2013's JPEG export already carries (see the ``fer2013`` layout).
FER2013_JPEG_STEP = LAYOUTS["fer2013"].source_pixel_step


def fer2013_test_faces(
    fer2013_root: str | os.PathLike, split: str = "test"
) -> tuple[np.ndarray, list[str], list[str]]:
    """FER2013's PrivateTest faces (``test/<class>/*.jpg``; ``split="validation"``: PublicTest): uint8
    ``(n, 48, 48)``, canonical labels, paths."""
    import cv2

    root = Path(fer2013_root) / split
    if not root.is_dir():
        raise ValueError(f"{root} is missing: expected FER2013 as <root>/{split}/<class>/*.jpg")
    faces, labels, paths = [], [], []
    for folder, label in sorted(FER2013_CLASSES.items()):
        for path in sorted((root / folder).glob("*.jpg")):
            faces.append(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
            labels.append(label)
            paths.append(str(path))
    return np.stack(faces), labels, paths


def class_indices(truth: list[str], labels: list[str]) -> np.ndarray:
    """Each true label's index in a model's ``labels`` (the targets of its softmax rows)."""
    return np.asarray([labels.index(label) for label in truth])


def dataset_faces(
    dataset: str, root: str | os.PathLike, split: str = "test"
) -> tuple[np.ndarray, list[str], str]:
    """The ``split`` (``test``, ``validation``) faces of the bundle ``dataset`` read from ``root``: faces,
    labels and the pixel step they already carry (the JPEG export's for ``fer2013``, none for raw pixels)."""
    spec = bundle_dataset(dataset)
    if spec.label_source is None:
        faces, truth, _ = fer2013_test_faces(root, split)
        return faces, truth, FER2013_JPEG_STEP
    faces, truth = raw_test_faces(root, spec.label_source, split)
    return faces, truth, "none"


def score_fer2013_test(model_path: str | os.PathLike, fer2013_root: str | os.PathLike) -> dict:
    """:func:`score_test` on FER2013 PrivateTest (the JPEG export)."""
    return score_test(model_path, fer2013_root, "fer2013")


def score_test(model_path: str | os.PathLike, root: str | os.PathLike, dataset: str = "fer2013") -> dict:
    """Accuracy, macro F1, per-class scores and confusion matrix of a model on the test split of the bundle
    ``dataset`` (read from ``root``), and its calibration there: ECE of the raw softmax and of the
    temperature-scaled one the model ships with (``calibration``: temperature, ece_before, ece_after, the
    reliability bins after)."""

    faces, truth, carried = dataset_faces(dataset, root)
    predictor = load_predictor(model_path, num_threads=1)
    faces = faces_for_model(faces, predictor.pixel_step, carried)
    raw = predictor.predict_proba(faces, calibrated=False)
    predicted = np.asarray(predictor.labels)[raw.argmax(axis=1)]
    targets = class_indices(truth, predictor.labels)
    scaled = apply_temperature(raw, predictor.temperature) if predictor.temperature else raw
    calibration = {
        "temperature": predictor.temperature,
        "ece_before": expected_calibration_error(raw, targets),
        "ece_after": expected_calibration_error(scaled, targets),
        "reliability_after": reliability_bins(scaled, targets),
    }
    return {
        "labels": predictor.labels,
        **classification_metrics(truth, predicted, predictor.labels),
        "calibration": calibration,
    }


def validation_temperature(model_path: str | os.PathLike, dataset: str, root: str | os.PathLike) -> dict:
    """The temperature of a model's Keras file fitted on the validation faces of the bundle ``dataset``
    (PublicTest / FER+ valid read at ``root``: the faces that chose its epoch; the test faces stay unseen),
    kept only where it lowers their calibration error (:func:`temperature_decision`); 1 otherwise."""
    faces, truth, carried = dataset_faces(dataset, root, "validation")
    predictor = load_predictor(model_path, num_threads=1)
    faces = faces_for_model(faces, predictor.pixel_step, carried)
    targets = class_indices(truth, predictor.labels)
    fitted_on = (
        "FER2013 PublicTest (the epoch-selection faces)"
        if dataset == "fer2013"
        else f"{bundle_dataset(dataset).title} validation, raw pixels (the epoch-selection faces)"
    )
    decision = temperature_decision(predictor.predict_proba(faces, calibrated=False), targets, fitted_on)
    return {**decision, "fitted_on": fitted_on}


# ------------------------------------------------------------------------------------------------ build


def served_root(dataset: str, images: str | os.PathLike) -> Path | None:
    """Where the served raw faces come from for a candidate trained on ``dataset`` read at ``images``: that
    very FER+ layout for raw-pixel datasets, else None (the shared ``fer2013plus``)."""
    return Path(images) if bundle_dataset(dataset).label_source is not None else None


def int8_ms_per_face(model_path: str | os.PathLike, faces: np.ndarray, repeats: int = 200) -> float:
    """Median ms per face of an int8 TFLite file at one thread, batch 1 (``fer study-models``' measure)."""
    faces = as_batch(np.asarray(faces[:16]), load_predictor(model_path, num_threads=1).image_size)
    return float(
        time_calls(tflite_timer(Path(model_path), 1, 1, faces), warmup=20, repeats=repeats)["median"]
    )


def model_card_numbers(
    summary: dict, run, shipped: dict[str, Path], images: Path, ensemble: dict | None = None
) -> dict:
    """``model_card*.json``: the seed distribution, the shipped run, each shipped file's test scores (the
    test split of the data ``run`` learned from, read at ``images``), the served raw-face scores and int8
    ms/face of the default file. With ``ensemble`` (the ensembles' record, ``fer bundle-model
    --ensemble``; ``run`` is then its first member) the card says the ensembles' distribution, the
    shipped ensemble's seeds, and its own parameters, cost and calibration."""
    card = _run_card_numbers(summary, run, shipped, images)
    if ensemble:
        spec = json.loads(spec_path(shipped["keras"]).read_text())
        card["training"] |= {
            "members": ensemble["size"],
            "num_params": spec["num_params"],
            "cost": spec["cost"],
            "calibration": {"temperature": spec["calibration"]["temperature"]},
        }
        shipped_row = next(row for row in ensemble["ensembles"] if row["seeds"] == ensemble["shipped_seeds"])
        card |= {"ensemble": ensemble, "shipped_seed": None, "shipped_seeds": ensemble["shipped_seeds"]}
        card |= {"shipped_run": shipped_row["file"], "shipped_run_test_accuracy": shipped_row["accuracy"]}
    return card


def study_settings(run) -> dict:
    """What a seed run's outcome depends on besides its seed, as the card records it: every checked
    training setting as applied, the face cache's key and the input size. Training is deterministic, so
    two seeds with these settings equal are draws from one recipe, whenever and wherever they ran."""
    return _without_seed(recorded_settings(run.setup))


def planned_study_settings(plan) -> dict:
    """:func:`study_settings` of the runs a :class:`~fer_utils.training.plan.RunPlan` will train, known
    before they train (a finished run records its plan's checked settings)."""
    return _without_seed(plan.checked_settings())


def _without_seed(settings: dict) -> dict:
    settings = {key: value for key, value in settings.items() if key != "seed"}
    return json.loads(json.dumps(settings, default=str))


def _run_card_numbers(summary: dict, run, shipped: dict[str, Path], images: Path) -> dict:
    dataset = run_dataset(run) or "fer2013"
    spec = bundle_dataset(dataset)
    root = served_root(dataset, images)
    faces = dataset_faces(dataset, images)[0]
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "name": shipped[DEFAULT_FORMAT].name.removesuffix("_int8.tflite"),
        "dataset": dataset,
        "dataset_title": spec.title,
        "test_set": spec.test_name,
        "labels": list(run.setup.labels),
        "targets": run.setup.setting("targets", "label"),
        "int8_ms_per_face": int8_ms_per_face(shipped[DEFAULT_FORMAT], faces),
        "training": {
            "data": spec.training,
            "recipe": run.setup.setting("recipe"),
            "recipe_settings": run.setup.recipe_settings,
            "epochs": run.setup.setting("epochs"),
            "image_size": int(run.setup.image_size or IMAGE_SIZE),
            "architecture": run_architecture(run),
            "cost": run.outcome.cost and run.outcome.cost.to_json(),
            "calibration": {
                key: getattr(run.outcome.calibration, key, None)
                for key in ("temperature", "test_ece_before", "test_ece_after")
            },
            "num_params": run.outcome.num_params,
            "threads": run.setup.threads_used,
        },
        "seeds": summary,
        "study_settings": study_settings(run),
        "shipped_seed": run.setup.seed,
        "shipped_run": run_folder_name(run),
        "shipped_run_test_accuracy": run.outcome.frame.accuracy,
        "test": {fmt: score_test(path, images, dataset) for fmt, path in shipped.items()},
        "served": served_or_none(shipped[DEFAULT_FORMAT])
        if root is None
        else served_or_none(shipped[DEFAULT_FORMAT], root),
        "files": {fmt: {"name": path.name, "bytes": path.stat().st_size} for fmt, path in shipped.items()},
        "predict_margin": PREDICT_MARGIN,
    }


def served_or_none(model_path: Path, root: str | os.PathLike | None = None) -> dict | None:
    """:func:`served_scores` of the default file on the FER+ copy at ``root`` (default the shared one), or
    None (said in one line) without it."""
    root = ferplus_copy(root)
    if not root.is_dir():
        print(f"served scores skipped: no FER+ copy (FER2013's raw pixels) at {root}")
        return None
    return served_scores(model_path, root)


def card_tables(card: dict) -> str:
    """One candidate's part of ``docs/model_card.md``: what it is (data, classes, parameters, int8 ms per
    face), the seeds, test scores of each shipped file and per class, calibration, served raw faces."""
    seeds = card["seeds"]
    accuracy = seeds["scores"]["test_accuracy"]
    test_set = card.get("test_set", "PrivateTest")
    training = card.get("training", {})
    labels = card.get("labels") or card["test"][DEFAULT_FORMAT]["labels"]
    ms = card.get("int8_ms_per_face")
    members = training.get("members")
    lines = [
        f"`{training.get('architecture', 'paper')}`"
        + (f" × {members} seeds (one file: the softmax of their mean logits)" if members else "")
        + f" trained on {card.get('dataset_title', 'FER2013')} "
        f"(`{card.get('dataset', 'fer2013')}`, targets `{card.get('targets') or 'label'}`), {len(labels)} "
        f"classes ({', '.join(labels)}); {training.get('num_params') or 0:,} parameters; int8 "
        + (f"{ms:.3f} ms per face (one thread, batch 1)." if ms is not None else "ms per face not measured.")
        + distillation_text(card.get("study_settings") or {}),
        "",
        f"Seeds trained: {seeds['runs']} ({seeds['converged']} converged); test accuracy "
        f"{100 * accuracy['mean']:.1f} ± {100 * accuracy['sd']:.1f} % "
        f"(min {100 * accuracy['min']:.1f} %, max {100 * accuracy['max']:.1f} %). "
        + (
            ensemble_text(card["ensemble"])
            if card.get("ensemble")
            else f"Shipped: seed {card['shipped_seed']}, the median."
        ),
        "",
        f"| shipped file | size | {test_set} accuracy | macro F1 |",
        "|---|---|---|---|",
    ]
    for fmt, scores in card["test"].items():
        size = card["files"][fmt]["bytes"] / 1024
        lines.append(
            f"| `{card['files'][fmt]['name']}` | {size:.0f} kB | {100 * scores['accuracy']:.1f} % | "
            f"{scores['macro_f1']:.3f} |"
        )
    scores = card["test"][DEFAULT_FORMAT]
    lines += ["", f"Per class (`{card['files'][DEFAULT_FORMAT]['name']}`, the default):", ""]
    lines += ["| class | precision | recall | F1 | test faces |", "|---|---|---|---|---|"]
    for label in scores["labels"]:
        row = scores["per_class"][label]
        lines.append(
            f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |"
        )
    calibration = calibration_lines(scores.get("calibration"), test_set, card.get("dataset", "fer2013"))
    return "\n".join(lines + calibration + served_lines(card.get("served")))


def distillation_text(settings: dict) -> str:
    """The card's clause on the teacher a candidate was distilled from (empty without one): the teacher's
    file or run folder by name, not by this machine's path, and the distillation's temperature and weight."""
    teacher = settings.get("teacher")
    if not teacher:
        return ""
    path = Path(teacher)
    name = path.name if path.suffix == ".keras" else "/".join(path.parts[-2:])
    return (
        f" Distilled from `{name}` (temperature {settings.get('distill_temperature'):g}, teacher term "
        f"weight {settings.get('distill_weight'):g})."
    )


def ensemble_text(ensemble: dict) -> str:
    """The card's sentence on the ensembles: each one's test accuracy (those an earlier bundle scored
    marked with its date), their distribution, which ships."""
    here = ensemble.get("trained_here")

    def described(row: dict) -> str:
        seeds = "–".join(map(str, row["seeds"][:: len(row["seeds"]) - 1]))
        earlier = here is not None and row["seeds"] not in here
        return f"seeds {seeds} {100 * row['accuracy']:.1f} %" + (
            f" (scored {str(row.get('scored'))[:10]}, an earlier bundle)" if earlier else ""
        )

    rows = ", ".join(described(row) for row in ensemble["ensembles"])
    shipped = ", ".join(map(str, ensemble["shipped_seeds"]))
    accuracy = ensemble["scores"]["accuracy"]
    balanced = ensemble["scores"].get("balanced_accuracy")
    if len(ensemble["ensembles"]) == 1:
        return (
            f"Ensembles of {ensemble['size']} ({ensemble['grouping']}), test accuracy: {rows} (one ensemble: "
            f"no distribution over ensembles yet). Shipped: the ensemble of seeds {shipped}."
        )
    text = (
        f"Ensembles of {ensemble['size']} ({ensemble['grouping']}), test accuracy: {rows}; "
        f"{100 * accuracy['mean']:.1f} ± {100 * accuracy['sd']:.1f} % (min {100 * accuracy['min']:.1f} %)"
        + (
            f", balanced accuracy {100 * balanced['mean']:.1f} ± {100 * balanced['sd']:.1f} % "
            f"(min {100 * balanced['min']:.1f} %)"
            if balanced
            else ""
        )
    )
    if here is None:
        return text + f". Shipped: the ensemble of seeds {shipped}, the median."
    unverified = ensemble.get("unverified_settings") or []
    return (
        text
        + f". Shipped: the ensemble of seeds {shipped}, "
        + ("the one" if len(here) == 1 else f"the median of the {len(here)}")
        + " trained for this bundle (the earlier ones' files are not at hand); the earlier card's training "
        "settings were checked against this study's"
        + (f", except those it did not record ({', '.join(unverified)})" if unverified else "")
        + "."
    )


def calibration_lines(
    calibration: dict | None, test_set: str = "PrivateTest", dataset: str = "fer2013"
) -> list[str]:
    """The card's calibration paragraph and reliability table (the default file on ``test_set``)."""
    if not calibration:
        return ["", "Calibration: not recorded for this model (shipped before calibration existed)."]
    temperature = calibration["temperature"]
    lines = [
        "",
        f"Calibration (the default file on {test_set}, {len(calibration['reliability_after'])} equal-width "
        "confidence bins): "
        + (
            f"temperature {temperature:.3f} fitted on {'PublicTest' if dataset == 'fer2013' else 'the validation faces'}; expected calibration error "
            f"{calibration['ece_before']:.3f} before scaling, {calibration['ece_after']:.3f} after "
            f"({'better' if calibration['ece_after'] < calibration['ece_before'] else 'worse'}; what "
            "`fer predict` reports)."
            if temperature and temperature != 1.0
            else "no temperature applied (fitting one did not lower the expected calibration error of the "
            f"faces that fitted it, or none was fitted): `fer predict` reports the raw softmax; expected "
            f"calibration error {calibration['ece_before']:.3f}."
        ),
        "",
        "| confidence | faces | mean confidence | accuracy |",
        "|---|---|---|---|",
    ]
    for row in calibration["reliability_after"]:
        if row["faces"]:
            lines.append(
                f"| {row['low']:.2f} – {row['high']:.2f} | {row['faces']} | {row['confidence']:.3f} | "
                f"{row['accuracy']:.3f} |"
            )
    return lines


def card_block(models_dir: str | os.PathLike | None = None) -> str:
    """The generated block of ``docs/model_card.md``: the default and the rule that chose it
    (``default_model.json``), then every candidate shipped in ``models_dir`` (default the package's), the
    default first, under its own heading."""
    models_dir = Path(models_dir or BUNDLED_DIR)
    try:
        choice = json.loads((models_dir / DEFAULT_CHOICE_FILE).read_text())
    except (OSError, ValueError):
        choice = None
    candidates = shipped_candidates(models_dir)
    chosen = (choice or {}).get("model")
    candidates.sort(key=lambda name: name != chosen)
    lines = default_lines(choice)
    for name in candidates:
        card = json.loads((models_dir / card_file_name(name)).read_text())
        lines += ["", f"#### `{name}`{' (the default)' if name == chosen else ''}", "", card_tables(card)]
    return "\n".join(lines)


def fill_card(markdown_path: Path, models_dir: str | os.PathLike | None = None) -> None:
    """Replace the text between ``<!-- card-numbers -->`` and ``<!-- /card-numbers -->`` with
    :func:`card_block` of ``models_dir``."""
    text = markdown_path.read_text()
    start, end = "<!-- card-numbers -->", "<!-- /card-numbers -->"
    if start not in text or end not in text:
        raise ValueError(f"{markdown_path} lacks the {start} … {end} markers")
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    atomic_write_text(markdown_path, f"{head}{start}\n{card_block(models_dir)}\n{end}{tail}")
