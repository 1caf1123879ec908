"""Atomic file writes shared by every on-disk format (face cache, run directory, ablation, benchmarks).

Each writer goes through a temporary name in the same folder and an ``os.replace``, so a reader (or a
resumed run) never sees half a file.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path


def temporary_name(path: Path, suffix: str = ".tmp") -> Path:
    """A hidden, unique sibling of ``path`` to write before renaming onto it."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{suffix}")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file through a temporary name and a rename."""
    path = Path(path)
    tmp = temporary_name(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_write_json(path: str | os.PathLike, data, **dumps_options) -> None:
    """``json.dumps(data, indent=2, **dumps_options)`` written atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, **dumps_options))


def atomic_write_csv(path: str | os.PathLike, table) -> None:
    """A pandas DataFrame as CSV (without its index), written atomically."""
    path = Path(path)
    tmp = temporary_name(path)
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)
