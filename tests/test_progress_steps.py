"""A kernel's training seen on its parent's progress line (finding 5 of issue 31): the step file the parent
names (`progress.watched_steps`), the lines a training callback appends to it (`report_step`), and the
cell counter of `execute_notebook` showing an epoch while the training cell runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from fer_utils.progress import STEP_FILE_VARIABLE, StepReader, report_step, steps_watched, watched_steps


def test_the_reader_returns_the_last_whole_line_appended_since_it_last_read(tmp_path):
    path = tmp_path / "steps.txt"
    path.write_text("")
    reader = StepReader(path)
    assert reader.latest() is None
    with path.open("a") as file:
        file.write("epoch 1/3\nepoch 2/3\nepoch 3")  # the last line is still being written
    assert reader.latest() == "epoch 2/3"
    assert reader.latest() is None
    with path.open("a") as file:
        file.write("/3\n")
    assert reader.latest() == "epoch 3/3"


def test_a_child_process_appending_steps_reaches_the_parents_callback(tmp_path):
    """The parent names the file in the environment; a child (as a kernel would) appends to it while the
    parent waits, and the parent sees each line before the child ends."""
    shown: list[tuple[float, str]] = []
    writer = (
        "import time\nfrom fer_utils.progress import report_step\n"
        "for epoch in range(1, 4):\n    report_step(f'run · epoch {epoch}/3')\n    time.sleep(0.6)\n"
    )
    assert not steps_watched()
    with watched_steps(lambda line: shown.append((time.perf_counter(), line)), interval_s=0.1) as path:
        assert os.environ[STEP_FILE_VARIABLE] == str(path) and steps_watched()
        child = subprocess.Popen(
            [sys.executable, "-c", writer], env={**os.environ, "PYTHONPATH": os.getcwd()}
        )
        child.wait(timeout=60)
        ended = time.perf_counter()
    assert child.returncode == 0
    lines = [line for _, line in shown]
    assert lines == ["run · epoch 1/3", "run · epoch 2/3", "run · epoch 3/3"]
    assert shown[0][0] < ended - 0.5  # seen while the child was still working
    assert STEP_FILE_VARIABLE not in os.environ and not path.exists()  # restored, removed


def test_report_step_writes_nothing_when_no_parent_watches(tmp_path, monkeypatch):
    monkeypatch.delenv(STEP_FILE_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    report_step("epoch 1/2")
    assert list(tmp_path.iterdir()) == []


def test_the_training_callback_writes_one_line_per_epoch(tmp_path, monkeypatch):
    from fer_utils.training.callbacks import step_report_callback

    steps = tmp_path / "steps.txt"
    monkeypatch.setenv(STEP_FILE_VARIABLE, str(steps))
    callback = step_report_callback(15, ".paper-seed0.partial-1a2b3c4d")
    callback.on_epoch_end(2, {"loss": 1.2, "val_accuracy": 0.41234, "val_macro_f1": 0.38})
    callback.on_epoch_end(3, {"val_accuracy": 0.5})
    assert steps.read_text().splitlines() == [
        "paper-seed0 · epoch 3/15 · val_acc 0.412 · val_f1 0.380",
        "paper-seed0 · epoch 4/15 · val_acc 0.500",
    ]


def test_fer_ablates_run_line_shows_the_last_epoch_of_its_kernels(monkeypatch, capsys):
    from fer_utils.experiments.ablation.execute import run_progress
    from fer_utils.progress import DISABLE_VARIABLE

    monkeypatch.delenv(DISABLE_VARIABLE, raising=False)
    writer = (
        "from fer_utils.progress import report_step; report_step('d0.3-seed0 · epoch 2/15 · val_acc 0.412')"
    )
    with run_progress(4) as bar:
        subprocess.run(
            [sys.executable, "-c", writer], check=True, env={**os.environ, "PYTHONPATH": os.getcwd()}
        )
        deadline = time.monotonic() + 10
        while "epoch 2/15" not in (bar.postfix or "") and time.monotonic() < deadline:
            time.sleep(0.1)
    assert "ablation: run 0/4 [" in capsys.readouterr().err
    assert bar.postfix == "d0.3-seed0 · epoch 2/15 · val_acc 0.412"
    monkeypatch.setenv(DISABLE_VARIABLE, "1")  # inside a kernel: the steps go to the kernel's own parent
    with run_progress(4) as bar:
        assert bar is None and not steps_watched()


@pytest.mark.slow  # a papermill kernel trains notebook 02
def test_the_cell_counter_shows_an_epoch_before_the_training_cell_finishes(
    fer2013_small_cache, tmp_path, capfd
):
    import nbformat

    from fer_utils.notebook_execution import execute_notebook
    from fer_utils.paths import NOTEBOOKS_DIR

    output = tmp_path / "02_training.ipynb"
    execute_notebook(
        NOTEBOOKS_DIR / "02_training.ipynb",
        output,
        {"cache_dir": str(fer2013_small_cache.cache_dir), "epochs": 3, "run_dir": str(tmp_path / "run")},
        tmp_path,
        progress="02",
        threads=1,
    )
    printed = capfd.readouterr().err
    total = len(nbformat.read(output, as_version=4).cells)
    during = [
        int(done)
        for done, epoch in re.findall(r"02: cell (\d+)/\d+ \[[^\]]*\], run · epoch (\d)/3", printed)
        if int(epoch) < 3
    ]
    assert during and max(during) < total, printed[-2000:]
