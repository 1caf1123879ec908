"""The writer lock's files (issue 31, finding 14: stale lock files left behind): a holder removes them on
release while it still holds the lock, a writer re-checks the file it locked, and a killed holder's files
are taken over without a word."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from fer_utils.locks import FolderBusy, WriterLock, locked_descriptor, same_file


def _lock_files(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if ".lock" in path.name)


def test_a_released_lock_leaves_no_file(tmp_path):
    lock = WriterLock(tmp_path / "run", tmp_path / ".run.lock", "fer train").acquire()
    assert _lock_files(tmp_path) == [".run.lock", ".run.lock.json"]
    refused = []
    other = threading.Thread(target=lambda: refused.append(_refusal(tmp_path)))
    other.start()
    other.join()
    assert refused == [True]  # another thread is another writer
    again = WriterLock(tmp_path / "run", tmp_path / ".run.lock", "fer train").acquire()  # same thread
    again.release()
    assert _lock_files(tmp_path) == [".run.lock", ".run.lock.json"]  # still held once
    lock.release()
    lock.release()  # idempotent
    assert _lock_files(tmp_path) == []


def _refusal(folder) -> bool:
    try:
        WriterLock(folder / "run", folder / ".run.lock", "fer train").acquire().release()
    except FolderBusy:
        return True
    return False


def test_a_killed_holders_files_are_taken_over(tmp_path):
    code = (
        "import os, sys\nfrom fer_utils.locks import WriterLock\n"
        "WriterLock(sys.argv[1], sys.argv[2], 'fer train').acquire()\nos._exit(0)  # never released"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run"), str(tmp_path / ".run.lock")], check=True
    )
    assert _lock_files(tmp_path) == [".run.lock", ".run.lock.json"]
    with WriterLock(tmp_path / "run", tmp_path / ".run.lock", "fer train"):
        pass
    assert _lock_files(tmp_path) == []


def test_a_lock_on_a_file_no_longer_at_its_path_is_let_go(tmp_path):
    path = tmp_path / ".run.lock"
    descriptor = locked_descriptor(path)
    try:
        assert same_file(descriptor, path)
        path.unlink()
        assert not same_file(descriptor, path)
        path.touch()  # a new file under the same name
        assert not same_file(descriptor, path)
    finally:
        os.close(descriptor)


_CONTENDER = """
import os, sys, time
from fer_utils.locks import FolderBusy, WriterLock
folder, marker, until = sys.argv[1], sys.argv[2], float(sys.argv[3])
held = 0
while time.time() < until:
    try:
        lock = WriterLock(folder, folder + ".lock", "fer train").acquire()
    except FolderBusy:
        continue
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))  # fails when another holder is inside
    except FileExistsError:
        print("overlap"); sys.exit(1)
    os.unlink(marker)
    lock.release()
    held += 1
print(held)
"""


@pytest.mark.parametrize("contenders", [3])
def test_writers_racing_for_a_lock_removed_on_release_never_hold_it_together(tmp_path, contenders):
    until = time.time() + 3
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _CONTENDER, str(tmp_path / "out"), str(tmp_path / "inside"), str(until)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(contenders)
    ]
    outputs = [process.communicate(timeout=120)[0].strip() for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    assert sum(int(output) for output in outputs) > 100, outputs  # they did take turns, many times
