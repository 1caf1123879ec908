"""Where a face cache's inputs lie. A cache's folder name hashes the preprocessing config, not the data's
location, so without this a second copy of a dataset (another ``--root``) would be appended to the first
one's cache, and the same files spelled from another working directory would be preprocessed twice.

The cache records (in its ``config.json``'s ``ingestion``) the folder holding its inputs and the working
directory its relative paths are spelled from: :func:`reconcile_origin` refuses inputs from an unrelated
folder, and :meth:`CacheOrigin.key_of` names an input by its absolute path, whatever its spelling.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: ``ingestion`` keys of a cache's ``config.json``.
INPUTS_FOLDER = "inputs_folder"
WORKING_DIRECTORY = "working_directory"


def absolute(path: str, working_directory: str) -> str:
    """``path`` made absolute against ``working_directory`` (lexically: no symlinks followed, no disk access)."""
    return os.path.normpath(os.path.join(working_directory, path))


def inputs_folder(paths: Iterable[str], working_directory: str) -> str:
    """The deepest folder holding every one of ``paths``."""
    folders = {os.path.dirname(absolute(path, working_directory)) for path in paths}
    if not folders:
        raise ValueError("no inputs to locate")
    return os.path.commonpath(sorted(folders))


def _contains(outer: str, inner: str) -> bool:
    return inner == outer or Path(outer) in Path(inner).parents


@dataclass(frozen=True)
class CacheOrigin:
    """Where a cache's inputs lie (``folder``), the directory its relative paths are spelled from, and the
    ``ingestion`` record the cache held before (``recorded``: {} for a new cache)."""

    folder: str
    working_directory: str
    recorded: dict = field(default_factory=dict, compare=False)

    def ingestion(self) -> dict:
        """The ``ingestion`` record to write: the cache's former one with this origin."""
        return {**self.recorded, INPUTS_FOLDER: self.folder, WORKING_DIRECTORY: self.working_directory}

    def key_of(self, media_path: str) -> str:
        """``media_path`` (spelled relative to this origin's working directory) as an absolute path."""
        return absolute(media_path, self.working_directory)


def _recorded_ingestion(cache_dir: str | os.PathLike) -> dict:
    """The ``ingestion`` record of the cache in ``cache_dir`` ({} for a new folder or a cache without one)."""
    config_path = Path(cache_dir) / "config.json"
    if not config_path.exists():
        return {}
    return json.loads(config_path.read_text()).get("ingestion") or {}


def reconcile_origin(cache_dir: str | os.PathLike, folder: str) -> CacheOrigin:
    """The origin to record for a cache about to receive inputs from ``folder`` (absolute; for media files
    :func:`inputs_folder` of their paths). ValueError in one line when that folder is unrelated to the cache's
    inputs (a second copy of the dataset, or the same data moved): the two would be mixed in one cache."""
    recorded = _recorded_ingestion(cache_dir)
    working_directory = recorded.get(WORKING_DIRECTORY, os.getcwd())
    old_folder = recorded.get(INPUTS_FOLDER)
    if old_folder is None:
        return CacheOrigin(folder, working_directory, recorded)
    if not (_contains(old_folder, folder) or _contains(folder, old_folder)):
        raise ValueError(
            f"{cache_dir} holds faces of inputs under {old_folder}, and these lie under {folder}: one cache "
            f"would mix two copies of the data; give another --cache-root, or delete {cache_dir} if the data "
            "was moved"
        )
    return CacheOrigin(old_folder if _contains(old_folder, folder) else folder, working_directory, recorded)
