"""The bundled model's card: scores measured from the shipped files (FER2013 PrivateTest per file,
:func:`score_fer2013_test`; the served raw-face scores of the default file,
:mod:`fer_utils.experiments.served_scores`), ``model_card.json`` and the generated tables of
``docs/model_card.md``. ``fer bundle-model`` (:mod:`fer_utils.experiments.bundle_model`) writes them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fer_utils.data.datasets import LAYOUTS
from fer_utils.deploy.bundled import DEFAULT_FORMAT, FER2013_CLASSES, IMAGE_SIZE, PREDICT_MARGIN
from fer_utils.deploy.predictors import load_predictor
from fer_utils.experiments.served_scores import served_lines, served_scores
from fer_utils.faces.detection import faces_for_model
from fer_utils.files import atomic_write_text
from fer_utils.paths import shared_data_root
from fer_utils.training.calibration import apply_temperature, expected_calibration_error, reliability_bins
from fer_utils.training.evaluate import classification_metrics

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


def score_fer2013_test(model_path: str | os.PathLike, fer2013_root: str | os.PathLike) -> dict:
    """Accuracy, macro F1, per-class scores and confusion matrix of a model on FER2013 PrivateTest, and
    its calibration there: ECE of the raw softmax and of the temperature-scaled one the model ships with
    (``calibration``: temperature, ece_before, ece_after, the reliability bins after)."""

    faces, truth, _ = fer2013_test_faces(fer2013_root)
    predictor = load_predictor(model_path, num_threads=1)
    faces = faces_for_model(faces, predictor.pixel_step, FER2013_JPEG_STEP)
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


# ------------------------------------------------------------------------------------------------ build


def model_card_numbers(summary: dict, run, shipped: dict[str, Path], images: Path) -> dict:
    """``model_card.json``: the seed distribution, the shipped run and each shipped file's test scores."""
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "training": {
            "data": "FER2013 train (28,709 faces), PublicTest (3,589) for epoch selection",
            "recipe": run.config.get("recipe"),
            "recipe_settings": run.config.get("recipe_settings"),
            "epochs": run.config.get("epochs"),
            "image_size": int(run.config.get("image_size") or IMAGE_SIZE),
            "architecture": run.config.get("architecture", "paper"),
            "cost": run.metrics.get("cost"),
            "calibration": {
                key: (run.metrics.get("calibration") or {}).get(key)
                for key in ("temperature", "test_ece_before", "test_ece_after")
            },
            "num_params": run.metrics.get("num_params"),
            "threads": run.config.get("threads_used"),
        },
        "seeds": summary,
        "shipped_seed": run.config.get("seed"),
        "shipped_run": str(run.path),
        "shipped_run_test_accuracy": run.metrics["frame"]["accuracy"],
        "test": {fmt: score_fer2013_test(path, images) for fmt, path in shipped.items()},
        "served": served_or_none(shipped[DEFAULT_FORMAT]),
        "files": {fmt: {"name": path.name, "bytes": path.stat().st_size} for fmt, path in shipped.items()},
        "predict_margin": PREDICT_MARGIN,
    }


def served_or_none(model_path: Path) -> dict | None:
    """:func:`served_scores` of the default file, or None (said in one line) without the FER+ copy."""
    root = shared_data_root() / "fer2013plus"
    if not root.is_dir():
        print(f"served scores skipped: no FER+ copy (FER2013's raw pixels) at {root}")
        return None
    return served_scores(model_path, root)


def card_tables(card: dict) -> str:
    """The generated part of ``docs/model_card.md``: test scores of each shipped file and per class."""
    seeds = card["seeds"]
    accuracy = seeds["scores"]["test_accuracy"]
    lines = [
        f"Seeds trained: {seeds['runs']} ({seeds['converged']} converged); test accuracy "
        f"{100 * accuracy['mean']:.1f} ± {100 * accuracy['sd']:.1f} % "
        f"(min {100 * accuracy['min']:.1f} %, max {100 * accuracy['max']:.1f} %). "
        f"Shipped: seed {card['shipped_seed']}, the median.",
        "",
        "| shipped file | size | PrivateTest accuracy | macro F1 |",
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
    return "\n".join(lines + calibration_lines(scores.get("calibration")) + served_lines(card.get("served")))


def calibration_lines(calibration: dict | None) -> list[str]:
    """The card's calibration paragraph and reliability table (the default file on PrivateTest)."""
    if not calibration:
        return ["", "Calibration: not recorded for this model (shipped before calibration existed)."]
    temperature = calibration["temperature"]
    lines = [
        "",
        f"Calibration (the default file on PrivateTest, {len(calibration['reliability_after'])} equal-width "
        "confidence bins): "
        + (
            f"temperature {temperature:.3f} fitted on PublicTest; expected calibration error "
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


def fill_card(markdown_path: Path, card: dict) -> None:
    """Replace the text between ``<!-- card-numbers -->`` and ``<!-- /card-numbers -->``."""
    text = markdown_path.read_text()
    start, end = "<!-- card-numbers -->", "<!-- /card-numbers -->"
    if start not in text or end not in text:
        raise ValueError(f"{markdown_path} lacks the {start} … {end} markers")
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    atomic_write_text(markdown_path, f"{head}{start}\n{card_tables(card)}\n{end}{tail}")
