"""Progress bars: tqdm's (a widget in JupyterLab, text in a terminal), none in a kernel no one watches.

A kernel papermill runs (:func:`fer_utils.notebook_execution.execute_notebook`: ``fer run``, ``fer ablate``,
``fer report``) gets ``TQDM_DISABLE=1``: its widget bars would be saved in the executed notebook as the text
of their first state ("0/96"), while the printed summary after each step says what was done. What a
kernel's training does reaches the parent's progress line all the same: one line per epoch appended to the
file the parent names in ``FER_PROGRESS_FILE`` (:func:`report_step`, read by :func:`watched_steps`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

#: tqdm's own switch (it reads ``TQDM_*`` variables as defaults); :func:`progress_bar` honours it too.
DISABLE_VARIABLE = "TQDM_DISABLE"


def bars_disabled() -> bool:
    """Whether this process's environment turns progress bars off (``TQDM_DISABLE`` set, not 0/false)."""
    return os.environ.get(DISABLE_VARIABLE, "").strip().lower() not in ("", "0", "false")


def progress_bar(iterable=None, *, enabled: bool = True, **options):
    """``tqdm.auto.tqdm(iterable, **options)``, disabled when ``enabled`` is False or :func:`bars_disabled`."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not enabled or bars_disabled(), **options)


#: The file a kernel's training appends one line per epoch to (:func:`report_step`), named by the parent that
#: shows that kernel's progress (:func:`watched_steps`: ``fer run``'s cell counter, ``fer ablate``'s runs).
STEP_FILE_VARIABLE = "FER_PROGRESS_FILE"


def steps_watched() -> bool:
    """Whether a parent process reads this process's step lines (:data:`STEP_FILE_VARIABLE` is set)."""
    return bool(os.environ.get(STEP_FILE_VARIABLE))


def report_step(text: str) -> None:
    """Append ``text`` as one line to the progress file the parent named; nothing when none is named or it
    cannot be written (progress never stops the work)."""
    path = os.environ.get(STEP_FILE_VARIABLE)
    if not path:
        return
    try:
        with open(
            path, "a", encoding="utf-8"
        ) as file:  # one short append: whole lines, even from several writers
            file.write(" ".join(str(text).split()) + "\n")
    except OSError:
        pass


class StepReader:
    """The lines appended to a progress file since the last read."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._offset = 0

    def latest(self) -> str | None:
        """The last complete line appended since the previous call (None when none was)."""
        try:
            with open(self.path, "rb") as file:
                file.seek(self._offset)
                data = file.read()
        except OSError:
            return None
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        lines = complete.decode("utf-8", errors="replace").splitlines()
        return lines[-1] if lines else None


@contextlib.contextmanager
def watched_steps(on_line: Callable[[str], None], interval_s: float = 0.5):
    """A fresh progress file named in this process's :data:`STEP_FILE_VARIABLE` for the block (the
    processes and kernels started inside inherit it), and a thread that calls ``on_line`` with the last
    new line every ``interval_s`` while lines arrive. Removed, and the variable restored, on exit."""
    folder = tempfile.mkdtemp(prefix="fer-progress-")
    path = Path(folder) / "steps.txt"
    path.touch()
    reader, stop = StepReader(path), threading.Event()

    def show_new_lines() -> None:
        line = reader.latest()
        if line:
            on_line(line)

    def watch() -> None:
        while not stop.wait(interval_s):
            show_new_lines()

    saved = os.environ.get(STEP_FILE_VARIABLE)
    os.environ[STEP_FILE_VARIABLE] = str(path)
    thread = threading.Thread(target=watch, name="fer-progress-steps", daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join()
        show_new_lines()
        if saved is None:
            os.environ.pop(STEP_FILE_VARIABLE, None)
        else:
            os.environ[STEP_FILE_VARIABLE] = saved
        shutil.rmtree(folder, ignore_errors=True)
