"""What every dataset layout yields and shares: :class:`Sample` (one media item) and :class:`SkippedItem`
(an input left out, with its reason), the media suffixes, the skip reasons, and the walk that finds the
media under a root (dangling symlinks, loops and unreadable entries become skipped items, never vanish).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".flv", ".mpg", ".mpeg", ".m4v"}


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


#: Reason prefixes of entries that cannot be read as media at all.
REASON_UNREADABLE = "unreadable"
REASON_NOT_SELECTED = "not selected"
REASON_NOT_MEDIA = "not a media file"
PERMISSION_DENIED_FOLDER = f"{REASON_UNREADABLE}: permission denied (the folder cannot be listed)"


def link_problem(path: Path, root: Path) -> str | None:
    """Why a symlink cannot be taken (dangling, a loop, a folder link not followed), or None."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        return f"{REASON_UNREADABLE}: dangling symlink (its target {os.readlink(path)} does not exist)"
    except (OSError, RuntimeError):
        return f"{REASON_UNREADABLE}: symlink loop (it points back to itself)"
    if target.is_dir() and path.suffix.lower() not in VIDEO_SUFFIXES:
        if root.resolve().is_relative_to(target) or path.parent.resolve().is_relative_to(target):
            return (
                f"{REASON_UNREADABLE}: folder loop (a symlink to {target}, a folder above it; not followed)"
            )
        return f"{REASON_UNREADABLE}: symlinked folder {target} (not followed)"
    return None


def _walk_layout(root: Path) -> Iterator[tuple[Path, str | None]]:
    """Every entry the layout looks at under ``root`` (hidden entries left out, sorted): ``(path, None)``
    for a regular file or a video-named folder, ``(path, reason)`` for an entry that cannot be media
    (dangling symlink, symlink or folder loop, socket …). Real folders are walked, not yielded."""
    for path in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.is_symlink():
            problem = link_problem(path, root)
            if problem:
                yield path, problem
                continue
        if path.is_file() or (path.is_dir() and path.suffix.lower() in VIDEO_SUFFIXES):
            yield path, None
        elif path.is_dir() and not path.is_symlink() and not _can_list(path):
            yield path, PERMISSION_DENIED_FOLDER  # rglob leaves such a folder out without a word
        elif not path.is_dir():
            yield path, f"{REASON_UNREADABLE}: not a regular file"


def _can_list(folder: Path) -> bool:
    try:
        os.scandir(folder).close()
    except PermissionError:
        return False
    return True


def media_files(root: Path, skipped: list) -> Iterator[Path]:
    """The media candidates of :func:`_walk_layout`; the entries that cannot be media go to ``skipped``."""
    for path, problem in _walk_layout(root):
        if problem:
            skipped.append(SkippedItem(str(path), problem))
        else:
            yield path
