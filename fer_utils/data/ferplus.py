"""FER2013's raw pixels with the FER+ crowd votes (Barsoum et al. 2016), in the two layouts people have:

- ``ferplus``: what Microsoft's FER+ script writes, ``FER2013Train|Valid|Test/`` each with 48×48 PNG faces
  and ``label.csv`` (no header: file name, face box, then 10 annotators' votes over :data:`VOTE_COLUMNS`);
- ``fer2013csv``: Kaggle's ``fer2013.csv`` (``emotion, pixels, Usage``) with FER+'s ``fer2013new.csv``
  beside it, whose rows align with it **by position** (the number in FER+'s image name is not the row:
  joining by it mislabels almost every row after the first gaps).

Every face keeps its votes (``votes_<label>`` index columns, :func:`vote_columns`), so a run can train on
the original label, the FER+ majority or the vote distribution (``TrainConfig.targets``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.data.class_folders import canonical_label
from fer_utils.data.downloads import require_dataset_root
from fer_utils.data.samples import IMAGE_SUFFIXES, REASON_NOT_SELECTED, Sample, SkippedItem

#: FER+'s vote columns, in its files' order.
VOTE_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
#: FER+'s emotion names → the suite's labels (its 8 classes; unknown / not-a-face are no class).
FERPLUS_LABELS = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprised",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "contempt": "contempt",
}
#: FER2013's own label codes (``emotion`` of ``fer2013.csv``) → the suite's labels.
FER2013_CODES = ("angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral")
#: FER+ folder → (the suite's split name, FER2013's ``Usage``).
FERPLUS_FOLDERS = {
    "FER2013Train": ("train", "Training"),
    "FER2013Valid": ("validation", "PublicTest"),
    "FER2013Test": ("test", "PrivateTest"),
}
SPLIT_OF_USAGE = {usage: split for split, usage in FERPLUS_FOLDERS.values()}
#: ``label_source``: the FER+ majority, or FER2013's original label.
LABEL_SOURCES = ("majority", "fer2013")
#: The index column holding FER2013's original label (when known).
ORIGINAL_LABEL_COLUMN = "fer2013_label"


def vote_column(name: str) -> str:
    """The index column of one FER+ vote (``votes_happy``, ``votes_unknown``, ``votes_not_face``)."""
    label = FERPLUS_LABELS.get(name, "not_face" if name == "NF" else name)
    return f"votes_{label}"


def vote_columns(labels) -> list[str]:
    """The vote columns of the given class labels (the vote distribution's columns, in their order)."""
    return [f"votes_{label}" for label in labels]


def ferplus_majority(votes: np.ndarray) -> list[str | None]:
    """Each face's FER+ majority label, by the FER+ script's rule: single votes are dropped as outliers,
    a class needs more than half of the remaining votes, and a majority of unknown / not-a-face is no
    label (None)."""
    votes = np.asarray(votes, dtype=float)
    kept = np.where(votes <= 1, 0.0, votes)
    winner, top = kept.argmax(axis=1), kept.max(axis=1)
    emotions = list(FERPLUS_LABELS.values())
    return [
        emotions[w] if t > 0.5 * total and w < len(emotions) else None
        for w, t, total in zip(winner, top, kept.sum(axis=1), strict=True)
    ]


def _vote_extras(votes: np.ndarray) -> list[dict]:
    columns = [vote_column(name) for name in VOTE_COLUMNS]
    return [dict(zip(columns, map(int, row), strict=True)) for row in votes]


def read_label_csv(path: Path) -> pd.DataFrame:
    """One FER+ ``label.csv``: ``file`` and the ten vote columns (ValueError naming the first bad row)."""
    rows = []
    with open(path, newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            if len(row) != 2 + len(VOTE_COLUMNS):
                raise ValueError(
                    f"{path}: row {number} has {len(row)} fields, FER+'s label.csv has "
                    f"{2 + len(VOTE_COLUMNS)} (file, face box, {len(VOTE_COLUMNS)} votes)"
                )
            try:
                rows.append([row[0], *map(int, row[2:])])
            except ValueError:
                raise ValueError(f"{path}: row {number} ({row[0]}) has a vote that is not a number") from None
    return pd.DataFrame(rows, columns=["file", *VOTE_COLUMNS])


def original_labels(root: Path) -> dict[str, str]:
    """FER2013's original label per FER+ file (``fer2013_labels.csv`` beside the folders, when present:
    ``file`` as ``FER2013Test/fer0032220.png``, ``fer2013_label``); empty without it."""
    path = root / "fer2013_labels.csv"
    if not path.exists():
        return {}
    table = pd.read_csv(path, dtype=str).dropna(subset=["fer2013_label"])
    return {
        file: canonical_label(label)
        for file, label in zip(table["file"], table["fer2013_label"], strict=True)
    }


def ferplus_samples(
    root: str | Path, label_source: str = "majority"
) -> tuple[list[Sample], list[SkippedItem]]:
    """The ``ferplus`` layout: one Sample per face listed in a split folder's ``label.csv``.

    Args:
        root: the folder holding ``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/``.
        label_source: ``majority`` (faces without a FER+ majority emotion are skipped with the reason) or
            ``fer2013`` (the original label, from ``fer2013_labels.csv`` beside the folders).

    Raises:
        ValueError: a ``label.csv`` that names a face its folder lacks (one line naming the first), a
            missing split folder, or an unknown ``label_source``.
    """
    if label_source not in LABEL_SOURCES:
        raise ValueError(f"unknown label_source {label_source!r}; choose one of {LABEL_SOURCES}")
    root = require_dataset_root(root, "ferplus")
    originals = original_labels(root)
    if label_source == "fer2013" and not originals:
        raise ValueError(
            f"ferplus: label_source fer2013 needs FER2013's original labels, and {root / 'fer2013_labels.csv'} "
            "is missing; use --dataset fer2013csv (Kaggle's fer2013.csv with fer2013new.csv), or majority"
        )
    samples, skipped = [], []
    for folder, (split, _) in FERPLUS_FOLDERS.items():
        table = _checked_split_table(root, folder)
        listed = set(table["file"])
        skipped += [
            SkippedItem(str(path), f"{REASON_NOT_SELECTED}: not in {folder}/label.csv (no votes)")
            for path in sorted((root / folder).iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES and path.name not in listed
        ]
        votes = table[list(VOTE_COLUMNS)].to_numpy()
        majority = ferplus_majority(votes)
        for row, (file, extras) in enumerate(zip(table["file"], _vote_extras(votes), strict=True)):
            path = root / folder / file
            original = originals.get(f"{folder}/{file}")
            label = majority[row] if label_source == "majority" else original
            if label is None:
                reason = "no FER+ majority (unknown, not a face, or no class above half the votes)"
                if label_source == "fer2013":
                    reason = "no original FER2013 label (duplicates disagree or no pixel match)"
                skipped.append(SkippedItem(str(path), f"{REASON_NOT_SELECTED}: {reason}"))
                continue
            extras = {"split": split, **extras, ORIGINAL_LABEL_COLUMN: original or ""}
            samples.append(Sample("ferplus", str(path), label, None, f"{folder}/{Path(file).stem}", extras))
    return samples, skipped


def _checked_split_table(root: Path, folder: str) -> pd.DataFrame:
    """A split folder's ``label.csv``, after checking that every face it names is in the folder."""
    path = root / folder / "label.csv"
    if not path.exists():
        raise ValueError(
            f"ferplus: {path} is missing; the FER+ layout is <root>/{{{','.join(FERPLUS_FOLDERS)}}}/label.csv "
            "with the faces beside it (see `fer preprocess --help-dataset ferplus`)"
        )
    table = read_label_csv(path)
    present = {entry.name for entry in (root / folder).iterdir()}
    missing = [file for file in table["file"] if file not in present]
    if missing:
        raise ValueError(
            f"ferplus: {path} lists {len(missing)} face(s) that {root / folder} lacks, the first "
            f"{missing[0]!r}; the votes do not match the images"
        )
    return table


# ------------------------------------------------------------------------------------ Kaggle's CSV


def fer2013_csv_table(root: str | Path) -> pd.DataFrame:
    """Kaggle's ``fer2013.csv`` joined with FER+'s ``fer2013new.csv`` **by row position**.

    Returns:
        One row per face: ``row``, ``split``, ``usage``, ``pixels`` (the 2,304 numbers as text),
        ``fer2013_label``, ``ferplus_name``, ``label`` (the FER+ majority or None) and ``votes_*``.

    Raises:
        ValueError: a missing file, or rows that do not align (count, usage of a row): one line naming
            the first mismatch, before any face is decoded.
    """
    root = require_dataset_root(root, "fer2013csv")
    pixels_path, votes_path = root / "fer2013.csv", root / "fer2013new.csv"
    for path in (pixels_path, votes_path):
        if not path.exists():
            raise ValueError(
                f"fer2013csv: {path} is missing; the layout is fer2013.csv with fer2013new.csv beside it"
            )
    faces = pd.read_csv(pixels_path, dtype={"pixels": str})
    votes = pd.read_csv(votes_path, dtype={"Image name": str}, keep_default_na=False)
    for name, table, needed in (
        ("fer2013.csv", faces, {"emotion", "pixels", "Usage"}),
        ("fer2013new.csv", votes, {"Usage", "Image name", *VOTE_COLUMNS}),
    ):
        if not needed <= set(table.columns):
            raise ValueError(f"fer2013csv: {name} lacks the columns {sorted(needed - set(table.columns))}")
    if len(faces) != len(votes):
        raise ValueError(
            f"fer2013csv: fer2013.csv has {len(faces)} rows but fer2013new.csv {len(votes)}; FER+'s votes "
            "align with the faces by row position, so both must come from the same release"
        )
    differs = np.flatnonzero(faces["Usage"].to_numpy() != votes["Usage"].to_numpy())
    if len(differs):
        row = int(differs[0])
        raise ValueError(
            f"fer2013csv: row {row + 2} is {faces['Usage'].iloc[row]} in fer2013.csv but "
            f"{votes['Usage'].iloc[row]} in fer2013new.csv; the files do not align by position"
        )
    vote_values = votes[list(VOTE_COLUMNS)].to_numpy()
    table = pd.DataFrame(
        {
            "row": np.arange(len(faces)),
            "usage": faces["Usage"].to_numpy(),
            "split": faces["Usage"].map(SPLIT_OF_USAGE).to_numpy(),
            "pixels": faces["pixels"].to_numpy(),
            ORIGINAL_LABEL_COLUMN: [FER2013_CODES[int(code)] for code in faces["emotion"]],
            "ferplus_name": votes["Image name"].to_numpy(),
            "majority": ferplus_majority(vote_values),
        }
    )
    return pd.concat([table, pd.DataFrame(_vote_extras(vote_values))], axis=1)


def decode_pixels(text: str) -> np.ndarray:
    """One ``pixels`` cell of ``fer2013.csv`` as a 48×48 uint8 face (ValueError when it is not one)."""
    try:
        values = np.array(str(text).split(), dtype=np.int64)
    except ValueError:
        raise ValueError("not a list of whole numbers") from None
    side = int(round(len(values) ** 0.5))
    if not len(values) or side * side != len(values) or values.min() < 0 or values.max() > 255:
        low, high = (values.min(), values.max()) if len(values) else ("-", "-")
        raise ValueError(f"not a square gray face: {len(values)} values in [{low}, {high}]")
    return values.reshape(side, side).astype(np.uint8)
