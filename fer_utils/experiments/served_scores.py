"""How a model scores on faces as people serve them: FER2013's **raw** pixels (what a camera gives), not
the equalized JPEG export, read from the FER+ copy (``../shared/data/fer2013plus``), each face fed through
the pixel step the model declares, on two public test sets:

- ``fer2013_privatetest``: FER2013 PrivateTest with its original labels (7 classes);
- ``ferplus_test``: the same faces with the FER+ crowd's majority labels (8 classes, contempt included;
  faces without a majority left out, as FER+ does).

Each with one crop and with the mirror averaged in (``flip``): accuracy, balanced accuracy (mean per-class
recall), macro F1, the share of non-neutral faces answered "neutral", per-class recall, ECE. A class the
model lacks (contempt for a FER2013 model) is reported as unscored, never merged into another.

:func:`public_scores` measures the public validation faces the default rule reads
(:mod:`fer_utils.experiments.default_rule`): FER+ valid (PublicTest's raw pixels, FER+ majority labels),
every face counted, a class the model lacks at recall 0.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fer_utils.data.ferplus import ferplus_samples
from fer_utils.deploy.predictors import load_predictor, predict_with_tta
from fer_utils.faces.detection import faces_for_model
from fer_utils.paths import shared_data_root
from fer_utils.training.calibration import expected_calibration_error

#: The served test sets: name → (FER+ label source, what it is).
SERVED_TESTS = {
    "fer2013_privatetest": ("fer2013", "FER2013 PrivateTest, raw pixels, original labels"),
    "ferplus_test": ("majority", "FER+ test (PrivateTest faces), raw pixels, FER+ majority labels"),
}
#: Test-time augmentations reported.
SERVED_TTA = ("none", "flip")


def ferplus_copy(root: str | os.PathLike | None = None) -> Path:
    """The FER+ copy (FER2013's raw pixels with the crowd's votes) the served scores read: ``root``, or
    ``../shared/data/fer2013plus``."""
    return Path(root) if root else shared_data_root() / "fer2013plus"


def data_label(root: str | os.PathLike) -> str:
    """How a card names the data folder it was scored on: ``shared/data/<folder>`` for the shared data
    folder's copy (no machine's path on a shipped card), else the path as given."""
    root = Path(root)
    try:
        return f"shared/data/{root.resolve().relative_to(shared_data_root().resolve()).as_posix()}"
    except ValueError:
        return str(root)


def raw_test_faces(
    ferplus_root: str | os.PathLike, label_source: str, split: str = "test"
) -> tuple[np.ndarray, list[str]]:
    """The raw 48×48 faces of the FER+ layout's ``split`` (``test``, ``validation``) and their labels of
    ``label_source``."""
    import cv2

    samples, _ = ferplus_samples(ferplus_root, label_source)
    test = [sample for sample in samples if sample.extras["split"] == split]
    faces = np.stack([cv2.imread(sample.media_path, cv2.IMREAD_GRAYSCALE) for sample in test])
    return faces, [sample.label for sample in test]


def neutral_rate(truth, predicted) -> float | None:
    """Share of the faces whose true label is not neutral that were answered neutral (None without any)."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    others = truth != "neutral"
    return float((predicted[others] == "neutral").mean()) if others.any() else None


def scores_of(truth: list[str], probabilities: np.ndarray, labels: list[str]) -> dict:
    """The served scores of one set of answers."""
    from sklearn.metrics import f1_score, recall_score

    predicted = np.asarray(labels)[probabilities.argmax(axis=1)]
    present = [label for label in labels if label in set(truth)]
    recalls = recall_score(truth, predicted, labels=present, average=None, zero_division=0)
    return {
        "faces": len(truth),
        "accuracy": float((predicted == np.asarray(truth)).mean()),
        # mean recall over the classes present, as balanced_accuracy_score, without its warning when the
        # model also answers a class the set lacks (contempt on FER2013's labels)
        "balanced_accuracy": float(np.mean(recalls)),
        "macro_f1": float(f1_score(truth, predicted, labels=present, average="macro", zero_division=0)),
        "neutral_rate": neutral_rate(truth, predicted),
        "recall": {label: float(value) for label, value in zip(present, recalls, strict=True)},
        "ece": expected_calibration_error(probabilities, np.array([labels.index(t) for t in truth])),
    }


def served_scores(model_path: str | os.PathLike, ferplus_root: str | os.PathLike | None = None) -> dict:
    """A model's scores on the :data:`SERVED_TESTS` (raw faces through its pixel step), per
    :data:`SERVED_TTA`; faces of classes the model lacks are counted in ``unscored``."""
    root = ferplus_copy(ferplus_root)
    predictor = load_predictor(model_path, num_threads=1)
    results = {"pixel_step": predictor.pixel_step, "data": data_label(root)}
    for name, (label_source, description) in SERVED_TESTS.items():
        faces, truth = raw_test_faces(root, label_source)
        scored = np.array([label in predictor.labels for label in truth])
        faces = faces_for_model(faces[scored], predictor.pixel_step, "none")
        kept = [label for label, keep in zip(truth, scored, strict=True) if keep]
        unscored = {}
        for label, keep in zip(truth, scored, strict=True):
            if not keep:
                unscored[label] = unscored.get(label, 0) + 1
        results[name] = {
            "description": description,
            "unscored": unscored,
            **{
                tta: scores_of(kept, predict_with_tta(predictor, faces, tta), predictor.labels)
                for tta in SERVED_TTA
            },
        }
    return results


#: The public validation set the default rule reads: name, FER+ label source, split, what it is.
PUBLIC_SET = (
    "ferplus_valid",
    "majority",
    "validation",
    "FER+ valid (PublicTest faces), raw pixels, FER+ majority labels",
)


def public_scores(model_path: str | os.PathLike, ferplus_root: str | os.PathLike | None = None) -> dict:
    """A model's one-crop scores on :data:`PUBLIC_SET`, through its pixel step as served: every face
    counted (a class the model lacks is a class it never answers: recall 0), ``balanced_accuracy`` (mean
    recall over the classes the faces have), ``recall`` per class, ``lowest_recall`` (the worst class),
    ``accuracy``, ``neutral_rate``."""
    name, label_source, split, description = PUBLIC_SET
    root = ferplus_copy(ferplus_root)
    predictor = load_predictor(model_path, num_threads=1)
    faces, truth = raw_test_faces(root, label_source, split)
    faces = faces_for_model(faces, predictor.pixel_step, "none")
    predicted = np.asarray(predictor.labels)[predict_with_tta(predictor, faces, "none").argmax(axis=1)]
    truth = np.asarray(truth)
    classes = sorted(set(truth), key=lambda label: (label not in predictor.labels, label))
    recall = {label: float((predicted[truth == label] == label).mean()) for label in classes}
    return {
        "set": name,
        "description": description,
        "faces": len(truth),
        "accuracy": float((predicted == truth).mean()),
        "balanced_accuracy": float(np.mean(list(recall.values()))),
        "recall": recall,
        "lowest_recall": min(recall.values()),
        "neutral_rate": neutral_rate(truth, predicted),
        "labels": list(predictor.labels),
    }


def served_lines(served: dict | None) -> list[str]:
    """The model card's table of :func:`served_scores` (empty when the card has none)."""
    if not served:
        return []
    lines = [
        "",
        f"Served raw faces (FER2013's raw pixels from the FER+ copy, each through the model's pixel step "
        f"`{served['pixel_step']}`; `fer bundle-model --rescore` re-measures them):",
        "",
        "| test set | faces | TTA | accuracy | balanced accuracy | macro F1 | non-neutral answered neutral | ECE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in SERVED_TESTS:
        for tta in SERVED_TTA:
            row = served[name][tta]
            rate = "—" if row["neutral_rate"] is None else f"{100 * row['neutral_rate']:.1f} %"
            lines.append(
                f"| {served[name]['description']} | {row['faces']} | {tta} | {100 * row['accuracy']:.1f} % | "
                f"{100 * row['balanced_accuracy']:.1f} % | {row['macro_f1']:.3f} | {rate} | {row['ece']:.3f} |"
            )
        unscored = served[name]["unscored"]
        if unscored:
            lines.append(
                f"| ↳ unscored (no such class in the model) | {sum(unscored.values())} | | "
                + ", ".join(f"{label} {count}" for label, count in unscored.items())
                + " | | | | |"
            )
    return lines + recall_lines(served)


def recall_lines(served: dict) -> list[str]:
    """Per-class recall on each served test set, one crop and flip (a class the set or the model lacks: —)."""
    columns = [(name, tta) for name in SERVED_TESTS for tta in SERVED_TTA]
    classes = []
    for name, tta in columns:
        classes += [label for label in served[name][tta]["recall"] if label not in classes]
    headings = {"fer2013_privatetest": "PrivateTest raw", "ferplus_test": "FER+ test"}
    lines = [
        "",
        "Per-class recall (served raw faces; one crop / flip):",
        "",
        "| class | " + " | ".join(f"{headings.get(name, name)}, {tta}" for name, tta in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for label in classes:
        cells = []
        for name, tta in columns:
            value = served[name][tta]["recall"].get(label)
            cells.append("—" if value is None else f"{100 * value:.1f} %")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines
