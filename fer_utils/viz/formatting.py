"""Moved to :mod:`fer_utils.formatting` (below every stage); kept so ``fer_utils.viz.formatting`` imports work."""

from fer_utils.formatting import count, is_number, mean_sd, percent, percent_number, score

__all__ = ["count", "is_number", "mean_sd", "percent", "percent_number", "score"]
