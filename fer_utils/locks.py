"""Exclusive writers: one OS-level lock per face cache and per run directory.

A writer (``fer preprocess`` on a cache, ``fer train`` on a run folder) holds a :class:`WriterLock` for as
long as it writes. A second writer on the same folder — another process, or another thread — is refused at
once with a :class:`FolderBusy` error naming the folder and the holder; it never waits and never interleaves.
The same thread may reopen a folder it holds (an abandoned writer in a notebook kernel does not lock the
kernel out). The operating system drops the lock when its process dies, ``kill -9`` included.

Every command that writes an output folder (``fer ablate``, ``fer study-recipes``, seeds folders, ``fer report``,
``fer predict``) takes that folder's :func:`output_lock` the same way.

Files: the lock itself (``LOCK_NAME`` inside a cache, ``.<run>.lock`` beside a run or output folder) and
``<lock>.json`` naming the holder (pid, host, command, start time), both hidden. A holder removes them when it
releases, while it still holds the lock (``flock``): a writer that opened the file just before it was
removed checks, once it has the lock, that the path still names the file it locked, and else opens the new
one. A holder that was killed leaves them behind: the next writer takes them over (the operating system
freed the lock), and nothing reads them but a refusal, which only a live holder causes.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fer_utils.files import atomic_write_text

#: The lock file inside a face cache folder.
LOCK_NAME = ".writer.lock"
#: How often a writer opens the lock file again when a releasing holder removed the one it locked.
REOPENS = 20


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


@dataclass
class _Hold:
    """This process's hold on one lock file: the locked descriptor, the thread that holds it and how many
    times that thread took it."""

    descriptor: int
    thread: int
    count: int = 1


_holds: dict[str, _Hold] = {}
_holds_guard = threading.Lock()


def _forget_holds_in_child() -> None:
    """A forked child holds nothing itself (a lock it takes is refused while its parent holds it)."""
    global _holds_guard
    _holds.clear()
    _holds_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_holds_in_child)


def same_file(descriptor: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``descriptor`` (False when it was removed or replaced)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def locked_descriptor(path: Path) -> int | None:
    """A descriptor of ``path`` locked exclusively (``flock``), or None when another holder has it. A file
    removed by its releasing holder between our open and our lock is let go and the new one opened."""
    for _ in range(REOPENS):
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(descriptor)
            if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return None
            raise
        if same_file(descriptor, path):
            return descriptor
        os.close(descriptor)  # the lock of a file no longer at ``path``: worth nothing
    return None


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
        self._key = str(self.lock_path.parent.resolve() / self.lock_path.name)
        self._held = False

    def acquire(self) -> WriterLock:
        """Take the lock now or raise :class:`FolderBusy` (the thread that holds it may take it again)."""
        with _holds_guard:
            hold = _holds.get(self._key)
            if hold is not None and hold.thread == threading.get_ident():
                hold.count += 1
                self._held = True
                return self
            descriptor = None if hold is not None else locked_descriptor(self.lock_path)
            if descriptor is None:
                raise FolderBusy(
                    f"another {self.command} is writing {self.folder} (holder: {_holder_text(self.lock_path)}); "
                    "wait for it or choose another folder"
                )
            _holds[self._key] = _Hold(descriptor, threading.get_ident())
        self._held = True
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
        """Give this writer's hold back (idempotent). The last hold of the process removes the holder file
        and the lock file, then frees the lock (see the module)."""
        if not self._held:
            return
        self._held = False
        with _holds_guard:
            hold = _holds.get(self._key)
            if hold is None:
                return
            hold.count -= 1
            if hold.count:
                return
            del _holds[self._key]
            Path(f"{self.lock_path}.json").unlink(missing_ok=True)  # first: a next holder writes its own
            if same_file(hold.descriptor, self.lock_path):
                self.lock_path.unlink(missing_ok=True)
            fcntl.flock(hold.descriptor, fcntl.LOCK_UN)
            os.close(hold.descriptor)

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
