"""Exclusive writers: one OS-level lock per face cache and per run directory.

A writer (``fer preprocess`` on a cache, ``fer train`` on a run folder) holds a :class:`WriterLock` for as
long as it writes. A second writer on the same folder — another process, or another thread — is refused at
once with a :class:`FolderBusy` error naming the folder and the holder; it never waits and never interleaves.
The same thread may reopen a folder it holds (an abandoned writer in a notebook kernel does not lock the
kernel out). The operating system drops the lock when its process dies, ``kill -9`` included.

Every command that writes an output folder (``fer ablate``, ``fer study-recipes``, seeds folders, ``fer report``,
``fer predict``) takes that folder's :func:`output_lock` the same way.

Files: the lock itself (``LOCK_NAME`` inside a cache, ``.<run>.lock`` beside a run or output folder) and
``<lock>.json`` naming the holder (pid, host, command, start time); both are hidden and may stay behind.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from fer_utils.files import atomic_write_text

#: The lock file inside a face cache folder.
LOCK_NAME = ".writer.lock"


class FolderBusy(ValueError):
    """Another writer holds the folder (a ValueError, so ``fer`` prints it as a one-line error)."""


def run_lock_path(run_dir: str | os.PathLike) -> Path:
    """The lock of a run folder: a hidden sibling, so it survives the folder being swapped."""
    run_dir = Path(os.path.abspath(run_dir))
    return run_dir.with_name(f".{run_dir.name}.lock")


def output_lock(folder: str | os.PathLike, command: str) -> WriterLock:
    """The (unacquired) writer lock of an output folder (ablation, study, seeds folder, report, predictions):
    the hidden sibling a run folder uses (:func:`run_lock_path`), so one writer per folder, whatever it is."""
    return WriterLock(folder, run_lock_path(folder), command)


def _holder_text(lock_path: Path) -> str:
    try:
        holder = json.loads(Path(f"{lock_path}.json").read_text())
        return f"pid {holder['pid']} on {holder['host']} since {holder['started']} ({holder['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "an unknown process"


class WriterLock:
    """Exclusive, non-blocking write lock on ``folder`` through the lock file ``lock_path``.

    Args:
        folder: the folder being written (named in the refusal).
        lock_path: the lock file (its parent is created).
        command: what writes, e.g. ``"fer train"`` (named in the refusal).
    """

    def __init__(self, folder: str | os.PathLike, lock_path: str | os.PathLike, command: str):
        self.folder = Path(folder)
        self.lock_path = Path(lock_path)
        self.command = command
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.lock_path), timeout=0, is_singleton=True)
        self._held = False

    def acquire(self) -> WriterLock:
        """Take the lock now or raise :class:`FolderBusy`."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise FolderBusy(
                f"another {self.command} is writing {self.folder} (holder: {_holder_text(self.lock_path)}); "
                "wait for it or choose another folder"
            ) from None
        self._held = True
        if self._lock.lock_counter == 1:
            holder = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "command": self.command,
                "argv": " ".join(sys.argv)[:500],
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            atomic_write_text(Path(f"{self.lock_path}.json"), json.dumps(holder))
        return self

    def release(self) -> None:
        """Give this writer's hold back (idempotent; the lock frees when no hold of the process is left)."""
        if self._held:
            self._held = False
            self._lock.release()

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
