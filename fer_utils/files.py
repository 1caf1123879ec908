"""Atomic file writes shared by every on-disk format (face cache, run directory, ablation, benchmarks).

Each writer goes through a temporary name in the same folder and an ``os.replace``, so a reader (or a
resumed run) never sees half a file; a failed write removes its temporary file. A full disk becomes
:class:`DiskFull`, one message naming what was written, where, and the space needed and free.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: errno values that mean "no space left" (a full disk, or a full quota).
NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
#: Below this much free space a write error without an errno (NumPy's "n requested and m written")
#: counts as a full disk.
NEARLY_FULL_BYTES = 1 << 20


class DiskFull(OSError):
    """No space left while writing a file; the message says what, where, and how much space."""


def human_bytes(count: int | float) -> str:
    """``1536`` → ``"1.5 KiB"``."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _existing_folder(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path("/")


def disk_full_message(what: str, path: str | os.PathLike, needed: int | None = None) -> str:
    """ "disk full: could not write <what> <path> (needed …, free … of … on the disk holding …)"."""
    path = Path(os.path.abspath(path))
    folder = _existing_folder(path.parent)
    try:
        usage = shutil.disk_usage(folder)
        space = f"{human_bytes(usage.free)} free of {human_bytes(usage.total)} on the disk holding {folder}"
    except OSError:
        space = f"free space of {folder} unknown"
    wanted = f"needed {human_bytes(needed)}, " if needed else ""
    return (
        f"disk full: could not write {what} {path} ({wanted}{space}); free some space (or choose "
        "another folder) and run the command again: finished work is kept"
    )


def is_disk_full(error: OSError, path: str | os.PathLike, needed: int | None = None) -> bool:
    """Whether ``error``, raised writing ``path``, means there is no space left."""
    if isinstance(error, DiskFull) or error.errno in NO_SPACE:
        return True
    if error.errno is not None:
        return False
    try:
        free = shutil.disk_usage(_existing_folder(Path(os.path.abspath(path)).parent)).free
    except OSError:
        return False
    return free < max(needed or 0, NEARLY_FULL_BYTES)


@contextmanager
def writing(what: str, path: str | os.PathLike, needed: int | None = None) -> Iterator[None]:
    """Turn a full disk while writing ``path`` into :class:`DiskFull` (other errors pass unchanged)."""
    try:
        yield
    except DiskFull:
        raise
    except OSError as error:
        if is_disk_full(error, path, needed):
            raise DiskFull(errno.ENOSPC, disk_full_message(what, path, needed)) from error
        raise


def describe_os_error(error: OSError) -> str:
    """One line for an OS error that reached the command line (no traceback)."""
    if isinstance(error, DiskFull):
        return error.strerror or str(error)
    if error.errno in NO_SPACE:
        return disk_full_message("a file", error.filename or ".")
    where = f": {error.filename}" if error.filename else ""
    also = f" → {error.filename2}" if getattr(error, "filename2", None) else ""
    if error.errno == errno.ENOTDIR:
        return f"a path component is a file, not a folder{where}{also}"
    return f"{error.strerror or error}{where}{also}"


@contextmanager
def _temporary_for(path: Path, suffix: str = ".tmp", what: str = "", needed: int | None = None):
    """A temporary sibling of ``path`` that is renamed onto it on success and removed on failure."""
    tmp = temporary_name(path, suffix)
    try:
        with writing(what or path.name, path, needed):
            yield tmp
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def require_folder_path(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path, or ValueError when it (or a folder above it) is an existing regular file."""
    path = Path(path)
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            problem = "is a file, not a folder" if candidate == path else f"lies under {candidate}, a file"
            raise ValueError(f"{what} {path} {problem}; choose another path")
    return path


def format_literal(path: str | os.PathLike) -> str:
    """``path`` with its braces doubled, for tools that ``str.format`` the paths they are given (papermill's
    input / output paths, Keras' checkpoint path): formatting gives back exactly ``path``."""
    return str(path).replace("{", "{{").replace("}", "}}")


def temporary_name(path: Path, suffix: str = ".tmp") -> Path:
    """A hidden, unique sibling of ``path`` to write before renaming onto it."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{suffix}")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file through a temporary name and a rename."""
    path = Path(path)
    with _temporary_for(path, needed=len(text.encode())) as tmp:
        tmp.write_text(text)


def atomic_write_with(path: str | os.PathLike, write, what: str = "", suffix: str = ".tmp", needed=None):
    """``write(temporary_path)`` then rename onto ``path`` (NumPy, pandas, any writer of a path)."""
    path = Path(path)
    with _temporary_for(path, suffix, what, needed) as tmp:
        write(tmp)


def deflate_zip(path: str | os.PathLike) -> Path:
    """Rewrite the zip archive at ``path`` with every entry deflated, atomically (a ``.keras`` model file:
    Keras stores its weights uncompressed, and the shipped files must stay small); returns ``path``."""
    import zipfile

    path = Path(path)
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]

    def write(target):
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for info, data in entries:
                archive.writestr(info.filename, data)

    atomic_write_with(path, write, "the deflated archive", suffix=".tmp.zip")
    return path


def atomic_write_json(path: str | os.PathLike, data, **dumps_options) -> None:
    """``json.dumps(data, indent=2, **dumps_options)`` written atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, **dumps_options))


def atomic_write_csv(path: str | os.PathLike, table) -> None:
    """A pandas DataFrame as CSV (without its index), written atomically."""
    atomic_write_with(path, lambda tmp: table.to_csv(tmp, index=False))


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
