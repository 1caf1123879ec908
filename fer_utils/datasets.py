"""Dataset specs: each turns a dataset's folder layout into Samples (one per media item).

Label names are canonical (see :data:`fer_utils.config.CANONICAL_LABELS`), mapped from each dataset's
own codes in one table per dataset. Files that do not fit a layout become :class:`SkippedItem` rows
rather than vanishing.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import CANONICAL_LABELS

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".flv", ".mpg", ".mpeg", ".m4v"}

#: Folder names of class-folder datasets (e.g. FER2013's) mapped to canonical labels.
FOLDER_LABELS = {
    "neutral": "neutral",
    "calm": "calm",
    "happy": "happy",
    "happiness": "happy",
    "sad": "sad",
    "sadness": "sad",
    "angry": "angry",
    "anger": "angry",
    "fear": "fearful",
    "fearful": "fearful",
    "disgust": "disgust",
    "disgusted": "disgust",
    "surprise": "surprised",
    "surprised": "surprised",
    "contempt": "contempt",
}

#: Named filename patterns giving subject and video ids (regex groups ``subject`` and ``video``).
FILENAME_PATTERNS = {
    "ck+": r"^(?P<video>(?P<subject>S\d+)_\d+)_\d+$",
}


@dataclass(frozen=True)
class Sample:
    """One media item (video or image) of a dataset, with its label and grouping ids."""

    dataset: str
    media_path: str
    label: str
    subject: str | None
    video_id: str
    extras: dict = field(default_factory=dict)

    def row(self) -> dict:
        """Flat dict for the index table (extras become columns)."""
        data = asdict(self)
        extras = data.pop("extras")
        return {**data, **extras}


@dataclass(frozen=True)
class SkippedItem:
    media_path: str
    reason: str


def canonical_label(name: str) -> str:
    """Map a class-folder name to its canonical label, or raise ValueError naming the unknown name."""
    key = name.strip().lower()
    if key in FOLDER_LABELS:
        return FOLDER_LABELS[key]
    if key in CANONICAL_LABELS:
        return key
    raise ValueError(f"unknown emotion folder {name!r}; known: {sorted(FOLDER_LABELS)}")


def require_root(root: str | Path, what: str) -> Path:
    """Return ``root`` as a Path, or raise ValueError if it does not exist."""
    path = Path(root).expanduser()
    if not path.exists():
        raise ValueError(f"{what}: dataset root {path} does not exist")
    if not path.is_dir():
        raise ValueError(f"{what}: dataset root {path} is not a folder")
    return path


def folder_samples(
    root: str | Path,
    dataset: str = "folder",
    split_dirs: bool = False,
    filename_pattern: str | None = None,
    suffixes: set[str] | None = None,
) -> tuple[list[Sample], list[SkippedItem]]:
    """Class-folder dataset: ``root/<emotion>/<file>`` (or ``root/<split>/<emotion>/<file>`` with
    ``split_dirs``, the split kept in ``extras['split']`` as a fixed split, e.g. FER2013's
    train/validation/test).

    Args:
        root: dataset folder.
        dataset: name recorded in each Sample.
        split_dirs: the first folder level is a fixed split.
        filename_pattern: a regex (or a key of :data:`FILENAME_PATTERNS`) with groups ``subject``
            and/or ``video`` matched against the file stem; without it each file is its own video
            and there is no subject.
        suffixes: media suffixes to take (images and videos by default).

    Returns:
        (samples, skipped): skipped holds unknown class folders and names that miss the pattern.
    """
    root = require_root(root, dataset)
    suffixes = suffixes or (IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    pattern = (
        re.compile(FILENAME_PATTERNS.get(filename_pattern, filename_pattern)) if filename_pattern else None
    )
    split_folders = sorted(p for p in root.iterdir() if p.is_dir()) if split_dirs else [root]
    samples: list[Sample] = []
    skipped: list[SkippedItem] = []
    class_folders_seen = 0
    for split_folder in split_folders:
        for class_folder in sorted(p for p in split_folder.iterdir() if p.is_dir()):
            class_folders_seen += 1
            try:
                label = canonical_label(class_folder.name)
            except ValueError as error:
                skipped.append(SkippedItem(str(class_folder), str(error)))
                continue
            files = sorted(p for p in class_folder.iterdir() if p.suffix.lower() in suffixes)
            if not files:
                raise ValueError(
                    f"{dataset}: class folder {class_folder} is empty (no {', '.join(sorted(suffixes))} files); "
                    "remove it or fill it"
                )
            for path in files:
                subject, video_id = None, f"{split_folder.name}/{class_folder.name}/{path.stem}"
                if pattern:
                    match = pattern.match(path.stem)
                    if not match:
                        skipped.append(
                            SkippedItem(str(path), f"name does not match pattern {pattern.pattern}")
                        )
                        continue
                    groups = match.groupdict()
                    subject = groups.get("subject")
                    video_id = groups.get("video") or video_id
                extras = {"split": split_folder.name} if split_dirs else {}
                samples.append(Sample(dataset, str(path), label, subject, video_id, extras))
    if not class_folders_seen:
        raise ValueError(
            f"{dataset}: no class folders under {root}; expected "
            + ("<split>/<emotion>/<files>" if split_dirs else "<emotion>/<files>")
        )
    if not samples:
        raise ValueError(f"{dataset}: no media files ({', '.join(sorted(suffixes))}) under {root}")
    return samples, skipped
