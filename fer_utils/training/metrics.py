"""The metric registry: every score a run records per level (``frame``, ``video``) in ``metrics.json``, and
how every table shows it (heading, format, which way is better).

One :class:`Metric` per score. :func:`level_scores` fills a level of ``metrics.json`` from the registry
(:func:`fer_utils.training.evaluate.classification_metrics`); the run header, the dashboard and report
tables, the ablation table, the seed summary and the model / recipe study tables iterate
:func:`registered` (read at call time, so a test can patch :data:`METRICS`). **Adding a metric** = one entry
in :data:`METRICS` (plus, for a new kind of score, its function of ``(y_true, y_pred, labels,
average_over)``); see ARCHITECTURE.md, "Adding a metric".
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fer_utils import formatting

LEVELS = ("frame", "video")
#: The class whose over-use :func:`neutral_rate` measures.
NEUTRAL = "neutral"

#: ``(y_true, y_pred, labels, average_over) → value``, or None when the score does not exist for this test
#: part (then the key is left out of ``metrics.json``).
ScoreFunction = Callable[[Sequence[str], Sequence[str], list[str], list[str]], float | None]


@dataclass(frozen=True)
class Metric:
    """One score: its key in a level of ``metrics.json`` (``name``), how it is computed and shown."""

    name: str
    heading: str  # how tables name it ("macro F1")
    compute: ScoreFunction
    unit: str = "percent"  # "percent": a fraction written 71.6%; "score": three decimals, 0.654
    higher_is_better: bool = True
    levels: tuple[str, ...] = LEVELS

    @property
    def column(self) -> str:
        """The column of tables that hold one value per run of the test part's frame level (seeds.csv, the
        ablation's runs table, the model study): ``test_<name>``."""
        return f"test_{self.name}"

    @property
    def title(self) -> str:
        """The heading with the direction when lower is better (``neutral rate (lower is better)``)."""
        return self.heading if self.higher_is_better else f"{self.heading} (lower is better)"

    def format(self, value) -> str:
        """``value`` as every table writes it; ``—`` when the run has no such score (older files)."""
        if not formatting.is_number(value):
            return "—"
        return formatting.percent(value) if self.unit == "percent" else formatting.score(value)

    def format_mean_sd(self, mean, sd) -> str:
        """A mean over seeds with its sd, in this metric's unit (``—`` without a mean)."""
        written = formatting.percent if self.unit == "percent" else formatting.score
        return formatting.mean_sd(mean, sd, written)


def accuracy(y_true, y_pred, labels, average_over) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y_true, y_pred))


def macro_f1(y_true, y_pred, labels, average_over) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, labels=average_over, average="macro", zero_division=0))


def weighted_f1(y_true, y_pred, labels, average_over) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, labels=average_over, average="weighted", zero_division=0))


def balanced_accuracy(y_true, y_pred, labels, average_over) -> float | None:
    """The mean recall over the classes the test part has (scikit-learn's ``balanced_accuracy_score``)."""
    from sklearn.metrics import balanced_accuracy_score

    if not len(y_true):
        return None
    with warnings.catch_warnings():  # answers of classes no test face has: not a recall, only a miss
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(list(y_true), list(y_pred)))


def neutral_rate(y_true, y_pred, labels, average_over) -> float | None:
    """The share of the test faces whose true label is not ``neutral`` that the model answered ``neutral``
    (None when ``neutral`` is not a class or every face is neutral)."""
    if NEUTRAL not in labels:
        return None
    not_neutral = [pred for true, pred in zip(y_true, y_pred, strict=True) if true != NEUTRAL]
    if not not_neutral:
        return None
    return sum(pred == NEUTRAL for pred in not_neutral) / len(not_neutral)


#: Every recorded score, in the order tables show them. The first three are required in every
#: ``metrics.json`` (:class:`~fer_utils.training.results.Scores` fields); later ones may be missing from
#: older files and are shown as ``—``.
METRICS: tuple[Metric, ...] = (
    Metric("accuracy", "accuracy", accuracy),
    Metric("macro_f1", "macro F1", macro_f1, unit="score"),
    Metric("weighted_f1", "weighted F1", weighted_f1, unit="score"),
    Metric("balanced_accuracy", "balanced accuracy", balanced_accuracy),
    Metric("neutral_rate", "neutral rate", neutral_rate, higher_is_better=False),
)


def registered(level: str | None = None) -> tuple[Metric, ...]:
    """The registry (:data:`METRICS`, read now), or the metrics that exist at ``level``."""
    return tuple(metric for metric in METRICS if level is None or level in metric.levels)


def headline() -> Metric:
    """The metric that stands for a run where one number must (the first registered: accuracy); tables
    show it per video too."""
    return registered()[0]


def metric(name: str) -> Metric:
    """The registered metric called ``name``."""
    for entry in registered():
        if entry.name == name:
            return entry
    raise KeyError(f"no metric {name!r}; registered: {', '.join(entry.name for entry in registered())}")


def level_scores(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str],
    level: str,
    average_over: Sequence[str] | None = None,
) -> dict:
    """Every registered metric of ``level`` as ``name → value``; a metric whose function returns None is
    left out (e.g. the neutral rate without a ``neutral`` class)."""
    labels = list(labels)
    averaged = list(average_over) if average_over is not None else labels
    values = {}
    for entry in registered(level):
        value = entry.compute(y_true, y_pred, labels, averaged)
        if value is not None:
            values[entry.name] = float(value)
    return values


def scores_text(scores, level: str) -> str:
    """A level's :class:`~fer_utils.training.results.Scores` as one line of every registered metric:
    ``accuracy 71.6% · macro F1 0.654 · …`` (``—`` for a score the record lacks)."""
    return " · ".join(
        f"{entry.heading} {entry.format(scores.value(entry.name))}" for entry in registered(level)
    )
