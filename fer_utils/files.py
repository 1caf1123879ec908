"""Atomic file writes shared by every on-disk format (face cache, run directory, ablation, benchmarks).

Each writer goes through a temporary name in the same folder and an ``os.replace``, so a reader (or a
resumed run) never sees half a file.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sys
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


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if sys.platform != "linux":
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0


def replace_directory(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put the finished folder ``source`` at ``target`` and delete what ``target`` held before.

    Readers see the old folder or the new one, never a mix: on Linux the two are exchanged in one
    system call; elsewhere the old folder is renamed aside and back again if the second rename fails.
    """
    source, target = Path(os.path.abspath(source)), Path(os.path.abspath(target))
    if not target.exists():
        os.rename(source, target)
        return
    if _exchange(source, target):
        shutil.rmtree(source, ignore_errors=True)  # now the previous folder
        return
    previous = target.with_name(f".{target.name}.replaced-{uuid.uuid4().hex[:8]}")
    os.rename(target, previous)
    try:
        os.rename(source, target)
    except BaseException:
        os.rename(previous, target)
        raise
    shutil.rmtree(previous, ignore_errors=True)
