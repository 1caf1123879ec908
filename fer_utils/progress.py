"""Progress bars: tqdm's (a widget in JupyterLab, text in a terminal), none in a kernel no one watches.

A kernel papermill runs (:func:`fer_utils.notebook_execution.execute_notebook`: ``fer run``, ``fer ablate``,
``fer report``) gets ``TQDM_DISABLE=1``: its widget bars would be saved in the executed notebook as the text
of their first state ("0/96"), while the printed summary after each step says what was done.
"""

from __future__ import annotations

import os

#: tqdm's own switch (it reads ``TQDM_*`` variables as defaults); :func:`progress_bar` honours it too.
DISABLE_VARIABLE = "TQDM_DISABLE"


def bars_disabled() -> bool:
    """Whether this process's environment turns progress bars off (``TQDM_DISABLE`` set, not 0/false)."""
    return os.environ.get(DISABLE_VARIABLE, "").strip().lower() not in ("", "0", "false")


def progress_bar(iterable=None, *, enabled: bool = True, **options):
    """``tqdm.auto.tqdm(iterable, **options)``, disabled when ``enabled`` is False or :func:`bars_disabled`."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not enabled or bars_disabled(), **options)
