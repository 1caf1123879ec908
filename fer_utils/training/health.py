"""Did a run learn? Baselines on the test part, the ``stalled`` / ``underfit`` flags, and whether its
epoch selection meant anything (``selection_saturated``)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

#: A run is stalled when its test accuracy is less than this far above always predicting the test
#: part's majority class.
STALL_MARGIN = 0.05
#: A run is underfit when its test macro F1 falls below this fraction of its test accuracy (it scores
#: on a few classes and ignores the rest).
UNDERFIT_F1_RATIO = 0.75


def majority_baselines(true_labels: Sequence[str], labels: Sequence[str]) -> dict:
    """What a classifier that always answers the test part's majority class scores."""
    from sklearn.metrics import f1_score

    counts = pd.Series(list(true_labels)).value_counts()
    majority = str(counts.index[0])
    constant = [majority] * len(true_labels)
    return {
        "majority_label": majority,
        "majority_rate": float(counts.iloc[0] / counts.sum()),
        "majority_macro_f1": float(
            f1_score(list(true_labels), constant, labels=list(labels), average="macro", zero_division=0)
        ),
    }


def stall_reason(test_accuracy: float, baselines: dict) -> str | None:
    """Why the run counts as not having learned, or None when it clearly beats the majority baseline."""
    rate = baselines["majority_rate"]
    if test_accuracy >= rate + STALL_MARGIN:
        return None
    return (
        f"test accuracy {test_accuracy:.1%} is not {STALL_MARGIN * 100:.0f} points above always answering "
        f"{baselines['majority_label']!r} ({rate:.1%}): the network did not learn "
        "(more epochs or training faces, another seed, or the 'robust' recipe may help)"
    )


def underfit_reason(
    test_accuracy: float,
    test_macro_f1: float,
    labels: Sequence[str],
    validation_present: Sequence[str],
    validation_predicted: Sequence[str],
) -> str | None:
    """Why the run learned only part of the classes, or None.

    Underfit: a class present in the validation part is never predicted there by the selected model,
    or the test macro F1 is below :data:`UNDERFIT_F1_RATIO` × test accuracy.
    """
    never = [label for label in labels if label in set(validation_present) - set(validation_predicted)]
    reasons = []
    if never:
        reasons.append(f"never predicts {', '.join(never)} on the validation part")
    if test_macro_f1 < UNDERFIT_F1_RATIO * test_accuracy:
        reasons.append(
            f"test macro F1 {test_macro_f1:.3f} is below {UNDERFIT_F1_RATIO:g} × accuracy {test_accuracy:.3f}"
        )
    if not reasons:
        return None
    return "learned only part of the classes: " + "; ".join(reasons)


def health_flags(
    frame_metrics: dict,
    baselines: dict,
    labels: Sequence[str],
    validation_present: Sequence[str],
    validation_predicted: Sequence[str],
) -> dict:
    """``stalled``, ``stalled_reason``, ``underfit``, ``underfit_reason`` and ``converged`` (neither)."""
    stalled = stall_reason(frame_metrics["accuracy"], baselines)
    underfit = None
    if stalled is None:
        underfit = underfit_reason(
            frame_metrics["accuracy"],
            frame_metrics["macro_f1"],
            labels,
            validation_present,
            validation_predicted,
        )
    return {
        "stalled": stalled is not None,
        "stalled_reason": stalled,
        "underfit": underfit is not None,
        "underfit_reason": underfit,
        "converged": stalled is None and underfit is None,
    }


#: The selection score counts as saturated at this value (a perfect validation part).
SATURATED_SCORE = 1.0 - 1e-9


def selection_saturation(validation_scores: Sequence[float], metric: str) -> dict:
    """``selection_saturated`` and its reason: the validation score reached its ceiling (1.0) before the
    last epoch, so the kept epoch is merely the first to touch it and model selection is arbitrary
    (a validation part too small or too easy to choose between epochs).

    Args:
        validation_scores: the selection metric per epoch (``history[selection_metric]``).
        metric: its name, for the reason.
    """
    scores = pd.Series(list(validation_scores), dtype=float)
    at_ceiling = scores.index[scores >= SATURATED_SCORE]
    saturated = len(at_ceiling) > 0 and at_ceiling[0] < len(scores) - 1
    reason = None
    if saturated:
        first = int(at_ceiling[0]) + 1
        reason = (
            f"{metric} reached 1.0 at epoch {first} of {len(scores)} ({len(at_ceiling)} epochs at 1.0): the kept "
            f"epoch is simply the first to touch it, so model selection is arbitrary "
            "(use a larger validation part, e.g. a higher validation_size)"
        )
    return {"selection_saturated": bool(saturated), "selection_saturated_reason": reason}
