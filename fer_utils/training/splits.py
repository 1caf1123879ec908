"""Evaluation protocols: which faces train, which validate (model selection) and which test.

- ``paper``: stratified random 80/20 over face images, as the paper did (frames of one video can land
  on both sides, so scores are optimistic);
- ``video``: 80/20 grouped by video id (no video on both sides);
- ``subject``: grouped by subject (actor / speaker / identity), subject-independent;
- ``fixed``: a split given by the dataset (``split`` column, e.g. FER2013 train/validation/test).

The validation part is always carved from the training side, grouped like the protocol, and the test
part is never used for model selection.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

PROTOCOLS = ("paper", "video", "subject", "fixed")
GROUP_COLUMN = {"paper": None, "video": "video_id", "subject": "subject", "fixed": None}
#: Protocols whose promise is "nothing seen in training is tested": identical faces across the split are
#: refused there (unless allowed); elsewhere they are a loud warning.
REFUSE_DUPLICATES = ("video", "subject")


@dataclass(frozen=True)
class Split:
    """Face ids of each part of one split (ids are ``face_id`` values of a cache index)."""

    protocol: str
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    fold: int | None = None
    n_folds: int | None = None

    def parts(self) -> pd.DataFrame:
        """One row per face id: ``face_id, part``."""
        frames = [pd.DataFrame({"face_id": ids, "part": part}) for part, ids in self._named()]
        return pd.concat(frames, ignore_index=True).sort_values("face_id", ignore_index=True)

    def _named(self):
        return (("train", self.train), ("validation", self.validation), ("test", self.test))

    def sizes(self) -> dict[str, int]:
        return {part: int(len(ids)) for part, ids in self._named()}


def membership_hash(index: pd.DataFrame, face_ids: np.ndarray) -> str:
    """Hash of a set of faces by (media path, frame index), independent of cache layout and order."""
    rows = index.set_index("face_id").loc[np.sort(face_ids)]
    keys = sorted(
        f"{path}#{frame}" for path, frame in zip(rows["media_path"], rows["frame_index"], strict=True)
    )
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def _groups(index: pd.DataFrame, protocol: str) -> np.ndarray | None:
    column = GROUP_COLUMN[protocol]
    if column is None:
        return None
    values = index[column] if column in index.columns else pd.Series([None] * len(index))
    if values.isna().any() or (values.astype(str) == "").any():
        missing = int(values.isna().sum())
        raise ValueError(
            f"protocol {protocol!r} needs a {column} for every face, but {missing} faces have none "
            f"(this dataset has no {column} ids; use protocol 'paper' or 'video')"
        )
    groups = values.astype(str).to_numpy()
    if len(np.unique(groups)) < 2:
        raise ValueError(
            f"protocol {protocol!r} needs at least 2 distinct {column} values, found {np.unique(groups)}"
        )
    return groups


def _holdout(
    positions: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray | None,
    size: float,
    seed: int,
    fold: int = 0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Split ``positions`` into (keep, held_out, n_folds); grouped and stratified when groups are given."""
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    if groups is None:
        counts = pd.Series(labels).value_counts()
        smaller_side = len(labels) * min(size, 1 - size)
        stratify = labels if counts.min() >= 2 and smaller_side >= len(counts) else None
        keep, held = train_test_split(positions, test_size=size, random_state=seed, stratify=stratify)
        return np.sort(keep), np.sort(held), round(1 / size)
    n_groups = len(np.unique(groups))
    n_folds = max(2, min(round(1 / size), n_groups))
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for number, (keep, held) in enumerate(splitter.split(positions, labels, groups)):
        if number == fold % n_folds:
            return positions[keep], positions[held], n_folds
    raise AssertionError("unreachable")


def make_split(
    index: pd.DataFrame,
    protocol: str = "paper",
    test_size: float = 0.2,
    validation_size: float = 0.1,
    seed: int = 0,
    fold: int = 0,
    allow_duplicate_leakage: bool = False,
) -> Split:
    """Split a cache index by protocol.

    Args:
        index: face index with ``face_id, label`` and the protocol's group column.
        protocol: one of :data:`PROTOCOLS`.
        test_size: test fraction (grouped protocols use ``round(1/test_size)`` folds, fewer when there
            are fewer groups, e.g. SAVEE's 4 speakers give 4 folds of one speaker each).
        validation_size: fraction of the training side kept for model selection.
        seed: random seed of the split.
        fold: which fold is the test part (grouped protocols; k-fold by subject iterates it).
        allow_duplicate_leakage: identical faces (same ``face_hash``) on both sides only warn, loudly,
            instead of refusing the split.

    Returns:
        The :class:`Split`; :func:`check_leakage` has passed on it.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if not 0 < test_size < 1 or not 0 <= validation_size < 1:
        raise ValueError(
            f"test_size must be in (0, 1) and validation_size in [0, 1), got {test_size}, {validation_size}"
        )
    labels = _class_labels(index)
    face_ids = index["face_id"].to_numpy()
    positions = np.arange(len(index))
    if protocol == "fixed":
        train, validation, test = _fixed_parts(index, positions)
        groups, n_folds = None, None
    else:
        groups = _groups(index, protocol)
        train, test, n_folds = _holdout(positions, labels, groups, test_size, seed, fold)
        validation = np.array([], dtype=int)
    if not len(validation) and validation_size > 0:
        train, validation = _validation_holdout(index, train, labels, groups, validation_size, seed + 1)
    split = Split(
        protocol, face_ids[train], face_ids[validation], face_ids[test], fold if n_folds else None, n_folds
    )
    check_leakage(index, split, allow_duplicate_leakage)
    return split


def _class_labels(index: pd.DataFrame) -> np.ndarray:
    """The faces' labels as strings; refuses an empty index or a single class."""
    if index.empty:
        raise ValueError("the face index is empty: nothing to split")
    labels = index["label"].astype(str).to_numpy()
    if len(np.unique(labels)) < 2:
        raise ValueError(
            f"a classifier needs at least 2 classes, this data has only {np.unique(labels).tolist()}"
        )
    return labels


def _fixed_parts(index: pd.DataFrame, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train, validation, test)`` positions from the index's ``split`` column (protocol ``fixed``)."""
    if "split" not in index.columns:
        raise ValueError(
            "protocol 'fixed' needs a 'split' column (e.g. folder_samples(..., split_dirs=True))"
        )
    parts = index["split"].astype(str).str.lower().to_numpy()
    test = positions[np.isin(parts, ["test", "privatetest"])]
    validation = positions[np.isin(parts, ["validation", "val", "publictest"])]
    train = positions[np.isin(parts, ["train", "training"])]
    if not len(test) or not len(train):
        raise ValueError(f"protocol 'fixed' needs train and test parts, found splits {sorted(set(parts))}")
    return train, validation, test


def _validation_holdout(
    index: pd.DataFrame,
    train: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray | None,
    size: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)``: the validation part held out of the training side, by the protocol's
    groups, or by video when fewer than 3 groups remain there."""
    inner_groups = None
    if groups is not None:
        inner_groups = groups[train]
        if len(np.unique(inner_groups)) < 3:
            inner_groups = index["video_id"].astype(str).to_numpy()[train]
    keep, held, _ = _holdout(train, labels[train], inner_groups, size, seed)
    return keep, held


def subject_folds(index: pd.DataFrame, n_folds: int | None = None, seed: int = 0, **kwargs) -> list[Split]:
    """k-fold by subject: every subject is in the test part of exactly one fold."""
    subjects = _groups(index, "subject")
    n_subjects = len(np.unique(subjects))
    n_folds = n_folds or min(5, n_subjects)
    if not 2 <= n_folds <= n_subjects:
        raise ValueError(
            f"n_folds must be between 2 and the number of subjects ({n_subjects}), got {n_folds}"
        )
    return [
        make_split(index, "subject", test_size=1 / n_folds, seed=seed, fold=fold, **kwargs)
        for fold in range(n_folds)
    ]


def check_leakage(index: pd.DataFrame, split: Split, allow_duplicate_leakage: bool = False) -> None:
    """Raise ValueError if a face, or under ``video``/``subject`` a video/subject, is on two sides, or if
    under ``video``/``subject`` identical faces (same ``face_hash``, when the index has it) sit in the
    training and test parts; with ``allow_duplicate_leakage``, and always under ``paper`` (knowingly
    optimistic) and ``fixed`` (the dataset's own split, e.g. FER2013's, which holds a few duplicates),
    identical faces only warn, loudly."""
    sides = [set(split.train), set(split.validation), set(split.test)]
    if (sides[0] & sides[2]) or (sides[1] & sides[2]) or (sides[0] & sides[1]):
        raise ValueError("leakage: a face id is in more than one part of the split")
    column = GROUP_COLUMN.get(split.protocol)
    if column is not None:
        by_id = index.set_index("face_id")[column].astype(str)
        test_groups = set(by_id.loc[split.test])
        train_groups = set(by_id.loc[np.concatenate([split.train, split.validation])])
        shared = test_groups & train_groups
        if shared:
            raise ValueError(
                f"leakage under protocol {split.protocol!r}: {column} on both sides: {sorted(shared)[:5]}"
            )
    problem = duplicate_leakage(index, split)
    if problem and split.protocol in REFUSE_DUPLICATES and not allow_duplicate_leakage:
        raise ValueError(f"{problem}; remove the duplicates, or pass --allow-duplicate-leakage to only warn")
    if problem:  # one line, once (not also a UserWarning, which repeats it with its source line)
        print(f"WARNING: {problem}", file=sys.stderr, flush=True)


def duplicate_leakage(index: pd.DataFrame, split: Split, examples: int = 3) -> str | None:
    """Why identical faces sit on both sides of the split (test vs training/validation), or None.

    Needs the index's ``face_hash`` column (faces carry it since issue 14; older indexes are not checked).
    """
    if "face_hash" not in index.columns:
        return None
    by_id = index.set_index("face_id")
    held = by_id.loc[np.asarray(split.test)]
    training = by_id.loc[np.concatenate([split.train, split.validation])]
    shared = set(held["face_hash"]) & set(training["face_hash"])
    if not shared:
        return None
    pairs = []
    for value in sorted(shared)[:examples]:
        test_path = held.loc[held["face_hash"] == value, "media_path"].iloc[0]
        train_path = training.loc[training["face_hash"] == value, "media_path"].iloc[0]
        pairs.append(f"{train_path} (train) = {test_path} (test)")
    count = int(held["face_hash"].isin(shared).sum())
    return (
        f"duplicate-content leakage under protocol {split.protocol!r}: {count} test face(s) have "
        f"identical pixels in the training side, e.g. {'; '.join(pairs)}"
    )
