"""What a run learns to answer (``TrainConfig.targets``): the cache's label, the FER+ crowd's majority, or
the crowd's whole vote distribution (soft targets: cross-entropy against the votes, which FER+'s authors
found beats majority labels on its noisy faces).

The votes are index columns of caches built from the FER+ layouts (:mod:`fer_utils.data.ferplus`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_utils.data.ferplus import VOTE_COLUMNS, ferplus_majority, vote_column, vote_columns
from fer_utils.faces.cache import FaceCache

#: ``label``: the cache's label; ``majority``: FER+'s majority of the votes; ``distribution``: the votes.
TARGETS = ("label", "majority", "distribution")


@dataclass(frozen=True)
class RunTargets:
    """The faces a run may use (``usable``, by face id) and, for ``distribution``, each face's target
    distribution over the cache's labels (``soft``, rows by face id)."""

    usable: np.ndarray
    soft: np.ndarray | None = None


def run_targets(cache: FaceCache, targets: str) -> RunTargets:
    """Prepare ``cache`` for ``targets``: ``majority`` relabels its index in memory (faces without a
    majority emotion become unusable); ``distribution`` adds the vote distributions.

    Raises:
        ValueError: an unknown ``targets``, or votes asked of a cache without them (one line naming its
            dataset).
    """
    if targets not in TARGETS:
        raise ValueError(f"unknown targets {targets!r}; choose one of {TARGETS}")
    index = cache.index
    usable = np.ones(len(index), dtype=bool)
    if targets == "label":
        return RunTargets(usable)
    all_votes = [vote_column(name) for name in VOTE_COLUMNS]
    if not set(all_votes) <= set(index.columns):
        dataset = cache.config.get("dataset", cache.cache_dir.name)
        raise ValueError(
            f"--targets {targets} needs crowd votes, and dataset {dataset!r} ({cache.cache_dir}) has none; "
            "build the cache from --dataset ferplus or fer2013csv, or use --targets label"
        )
    votes = index[all_votes].to_numpy(dtype=float)
    majority = ferplus_majority(votes)
    if targets == "majority":
        usable = np.array([label is not None for label in majority])
        index["label"] = [label or original for label, original in zip(majority, index["label"], strict=True)]
        return RunTargets(usable)
    class_votes = index[vote_columns(cache.labels)].to_numpy(dtype=np.float32, copy=True)
    class_votes[class_votes <= 1] = 0.0  # FER+'s outlier rule: a single vote is noise
    totals = class_votes.sum(axis=1, keepdims=True)
    one_hot = np.eye(len(cache.labels), dtype=np.float32)[index["label"].map(cache.labels.index).to_numpy()]
    soft = np.where(totals > 0, class_votes / np.maximum(totals, 1e-9), one_hot)
    return RunTargets(usable, soft.astype(np.float32))
