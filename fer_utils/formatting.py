"""How numbers are written everywhere (dashboard, report, tables): accuracies as percent with one
decimal, F1 scores with three decimals, counts with thousands separators. One place, so the same run
never reads 71.6% in one table and 71.5 % in another."""

from __future__ import annotations

import math

import numpy as np


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(np.isnan(float(value)))
    except (TypeError, ValueError):
        return False


def percent(fraction, sign: bool = False) -> str:
    """A fraction (0.716) as ``"71.6%"`` (as Python's ``:.1%``); ``sign`` writes ``"+5.2 pp"`` for a difference of rates."""
    if _missing(fraction):
        return "—"
    value = 100 * float(fraction)
    if sign:
        return f"{value:+.1f} pp"
    return f"{value:.1f}%"


def percent_number(fraction) -> str:
    """A fraction as a bare percent number (``"71.6"``) for columns headed "… %"."""
    return "" if _missing(fraction) else f"{100 * float(fraction):.1f}"


def score(value) -> str:
    """An F1 (or precision / recall) score with three decimals: ``"0.654"``."""
    return "" if _missing(value) else f"{float(value):.3f}"


def count(value) -> str:
    """An integer with thousands separators: ``"542,136"``."""
    return "" if _missing(value) else f"{int(value):,}"


def mean_sd(mean, sd, formatter=percent) -> str:
    """A mean over seeds with its sd in the same unit (``"71.6% ± 1.2"``, ``"0.654 ± 0.012"``); the mean
    alone when sd is missing (one seed); ``"—"`` without a mean."""
    if _missing(mean):
        return "—"
    if _missing(sd):
        return formatter(mean)
    return f"{formatter(mean)} ± {formatter(sd).rstrip('%')}"


def is_number(value) -> bool:
    """Whether ``value`` is a real number (not a bool, not NaN)."""
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and not (isinstance(value, float | np.floating) and math.isnan(value))
    )
