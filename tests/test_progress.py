"""Progress bars: shown to a person, off in the kernels papermill runs (their saved widget read "0/96")."""

from __future__ import annotations

import os

from fer_utils.notebook_execution import cell_progress, kernel_environment
from fer_utils.progress import DISABLE_VARIABLE, progress_bar


def test_a_bar_shows_unless_disabled(monkeypatch):
    monkeypatch.delenv(DISABLE_VARIABLE, raising=False)
    with progress_bar(range(3)) as bar:
        assert not bar.disable
    with progress_bar(range(3), enabled=False) as bar:
        assert bar.disable
    monkeypatch.setenv(DISABLE_VARIABLE, "0")
    with progress_bar(range(3)) as bar:
        assert not bar.disable


def test_kernels_papermill_runs_get_no_bars_but_the_cell_counter_shows(monkeypatch):
    monkeypatch.delenv(DISABLE_VARIABLE, raising=False)
    with kernel_environment():
        assert os.environ[DISABLE_VARIABLE] == "1"
        with progress_bar(total=96, desc="faces ravdess") as bar:  # what a kernel started here does
            assert bar.disable
        from tqdm.auto import tqdm

        with tqdm(total=3, **cell_progress("01_preprocessing")) as counter:  # papermill's, in this process
            assert not counter.disable
    assert DISABLE_VARIABLE not in os.environ
