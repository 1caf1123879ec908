"""Class-folder datasets: ``root/<emotion>/<file>`` (or ``root/<split>/<emotion>/<file>``, FER2013's
layout), folder names mapped to canonical labels, optional file-name patterns for subject and video ids.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from fer_utils.data.samples import (
    IMAGE_SUFFIXES,
    PERMISSION_DENIED_FOLDER,
    REASON_NOT_MEDIA,
    VIDEO_SUFFIXES,
    Sample,
    SkippedItem,
    link_problem,
)
from fer_utils.paths import CANONICAL_LABELS

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


def canonical_label(name: str) -> str:
    """Map a class-folder name to its canonical label, or raise ValueError naming the unknown name."""
    key = name.strip().lower()
    if key in FOLDER_LABELS:
        return FOLDER_LABELS[key]
    if key in CANONICAL_LABELS:
        return key
    raise ValueError(f"unknown emotion folder {name!r}; known: {sorted(FOLDER_LABELS)}")


def label_renaming(samples: Sequence[Sample]) -> dict[str, str]:
    """Class-folder names that became another (canonical) label: ``{"anger": "angry", "fear": "fearful"}``.

    A sample's parent folder counts when :func:`canonical_label` maps it to the sample's label under
    another name (RAVDESS's ``Actor_01`` and the like are not class names and are left alone).
    """
    renamed = {}
    for name, label in sorted({(Path(sample.media_path).parent.name, sample.label) for sample in samples}):
        try:
            canonical = canonical_label(name)
        except ValueError:
            continue
        if canonical == label and name != label:
            renamed[name] = label
    return renamed


def describe_renaming(renamed: dict[str, str]) -> str:
    """One line naming every folder → label renaming (empty when there is none)."""
    if not renamed:
        return ""
    pairs = ", ".join(f"{name}/ → {label}" for name, label in renamed.items())
    return f"class folders renamed to the suite's labels: {pairs} (label maps and reports use the new names)"


def require_root(root: str | Path, what: str) -> Path:
    """Return ``root`` as a Path, or raise ValueError if it does not exist."""
    path = Path(root).expanduser()
    if not path.exists():
        raise ValueError(f"{what}: dataset root {path} does not exist")
    if not path.is_dir():
        raise ValueError(f"{what}: dataset root {path} is not a folder")
    return path


def _listed(folder: Path, skipped: list) -> list[Path] | None:
    """The entries of ``folder``; None (and the folder in ``skipped``) when it cannot be listed."""
    try:
        return list(folder.iterdir())
    except PermissionError:
        skipped.append(SkippedItem(str(folder), PERMISSION_DENIED_FOLDER))
        return None


def _class_folder_files(folder: Path, entries: list[Path], suffixes: set[str], skipped: list) -> list[Path]:
    """The media files among a class folder's entries; every other entry (not hidden) goes to ``skipped``
    with a reason."""
    files = []
    for path in sorted(p for p in entries if not p.name.startswith(".")):
        problem = link_problem(path, folder) if path.is_symlink() else None
        if not problem and path.suffix.lower() not in suffixes:
            kind = "a folder" if path.is_dir() else f"{path.suffix or 'no suffix'}"
            problem = f"{REASON_NOT_MEDIA}: {kind} (media: {', '.join(sorted(suffixes))})"
        if problem:
            skipped.append(SkippedItem(str(path), problem))
        else:
            files.append(path)
    return files


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
        # An unreadable dataset root is an error (OSError); an unreadable split folder is skipped.
        class_folders = (_listed(split_folder, skipped) or []) if split_dirs else split_folder.iterdir()
        for class_folder in sorted(p for p in class_folders if p.is_dir()):
            class_folders_seen += 1
            samples += _class_folder_samples(
                dataset, split_folder, class_folder, split_dirs, pattern, suffixes, skipped
            )
    if not class_folders_seen:
        raise ValueError(
            f"{dataset}: no class folders under {root}; expected "
            + ("<split>/<emotion>/<files>" if split_dirs else "<emotion>/<files>")
        )
    if not samples:
        raise ValueError(f"{dataset}: no media files ({', '.join(sorted(suffixes))}) under {root}")
    return samples, skipped


def _class_folder_samples(
    dataset: str,
    split_folder: Path,
    class_folder: Path,
    split_dirs: bool,
    pattern: re.Pattern | None,
    suffixes: set[str],
    skipped: list[SkippedItem],
) -> list[Sample]:
    """The samples of one class folder; an unknown class name or a file name that misses ``pattern``
    goes to ``skipped``, an empty folder is refused."""
    try:
        label = canonical_label(class_folder.name)
    except ValueError as error:
        skipped.append(SkippedItem(str(class_folder), str(error)))
        return []
    entries = _listed(class_folder, skipped)
    if entries is None:
        return []
    files = _class_folder_files(class_folder, entries, suffixes, skipped)
    if not files:
        raise ValueError(
            f"{dataset}: class folder {class_folder} is empty (no {', '.join(sorted(suffixes))} files); "
            "remove it or fill it"
        )
    samples = []
    for path in files:
        ids = _file_ids(path.stem, f"{split_folder.name}/{class_folder.name}/{path.stem}", pattern)
        if ids is None:
            skipped.append(SkippedItem(str(path), f"name does not match pattern {pattern.pattern}"))
            continue
        extras = {"split": split_folder.name} if split_dirs else {}
        samples.append(Sample(dataset, str(path), label, *ids, extras))
    return samples


def _file_ids(stem: str, video_id: str, pattern: re.Pattern | None) -> tuple[str | None, str] | None:
    """``(subject, video_id)`` of a file: the pattern's groups where it has them, else no subject and
    ``video_id``; None when the name does not match the pattern."""
    if pattern is None:
        return None, video_id
    match = pattern.match(stem)
    if not match:
        return None
    groups = match.groupdict()
    return groups.get("subject"), groups.get("video") or video_id
