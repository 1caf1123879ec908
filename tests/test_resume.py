"""Resumable training: checkpoints, resume after kill -9 with identical results, changed settings and
damaged checkpoints."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: A short run that exercises every piece of state: augmentation, dropout, recycling, Adam's moments.
ARGUMENTS = ["--epochs", "5", "--seed", "3", "--recipe", "robust", "--augment", "--input-size", "32"]
#: Fields that measure the machine, not the run.
TIMING_FIELDS = {"train_seconds"}


def _train(cache_dir, out, **popen):
    command = [sys.executable, "-m", "fer_utils.cli", "train", "--cache", str(cache_dir), "--out", str(out)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        command + ARGUMENTS,
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _finished_epochs(out: Path) -> list[int]:
    found = out.parent.glob(f".{out.name}.partial-*/checkpoint/epoch-*")
    return sorted(int(path.name.split("-")[1]) for path in found)


def _metrics(run: Path) -> dict:
    return {
        key: value
        for key, value in json.loads((run / "metrics.json").read_text()).items()
        if key not in TIMING_FIELDS
    }


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(fer2013_small_cache, tmp_path):
    whole = _train(fer2013_small_cache.cache_dir, tmp_path / "whole")
    assert whole.wait(timeout=900) == 0, whole.stderr.read()

    interrupted = tmp_path / "interrupted"
    kill_after = random.Random().randint(1, 4)
    process = _train(fer2013_small_cache.cache_dir, interrupted)
    deadline = time.monotonic() + 900
    while not _finished_epochs(interrupted) or _finished_epochs(interrupted)[-1] < kill_after:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (interrupted / "metrics.json").exists()
    done = _finished_epochs(interrupted)[-1]
    assert done < 5

    resumed = _train(fer2013_small_cache.cache_dir, interrupted)
    assert resumed.wait(timeout=900) == 0, resumed.stderr.read()
    assert f"resuming after epoch {done} of 5" in resumed.stderr.read()
    assert _metrics(interrupted) == _metrics(tmp_path / "whole")
    assert (interrupted / "history.csv").read_text() == (tmp_path / "whole" / "history.csv").read_text()
    pd.testing.assert_frame_equal(
        pd.read_csv(interrupted / "predictions.csv"), pd.read_csv(tmp_path / "whole" / "predictions.csv")
    )
    assert not list(tmp_path.glob(".interrupted.partial-*"))  # the checkpoints went with the partial folder


def _interrupt_after(monkeypatch, epochs: int):
    """Make training die (like a kill) right after ``epochs`` epochs were checkpointed."""
    from fer_utils.training import resume

    original = resume.write_checkpoint

    def write_then_die(work_path, model, state, settings, best_model):
        folder = original(work_path, model, state, settings, best_model)
        if state.epoch == epochs:
            raise KeyboardInterrupt("stopped for the test")
        return folder

    monkeypatch.setattr(resume, "write_checkpoint", write_then_die)


@pytest.mark.slow
def test_a_run_keeping_the_weights_average_resumes_to_the_uninterrupted_result(
    fer2013_small_cache, tmp_path, monkeypatch
):
    """The per-epoch checkpoint holds the training weights and their average apart, so a resumed run
    goes on from the same two."""
    from fer_utils.training.train import train_run

    options = {"epochs": 3, "seed": 1, "input_size": 24, "recipe": "robust", "ema_momentum": 0.9}
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        train_run(fer2013_small_cache.cache_dir, tmp_path / "run", **options)
    monkeypatch.undo()
    resumed = train_run(fer2013_small_cache.cache_dir, tmp_path / "run", **options)
    reference = train_run(fer2013_small_cache.cache_dir, tmp_path / "reference", **options)
    assert resumed.setup.recipe_settings["ema_momentum"] == 0.9
    pd.testing.assert_frame_equal(resumed.history, reference.history)
    assert resumed.outcome.frame == reference.outcome.frame


@pytest.mark.slow
def test_changed_settings_are_refused_and_a_damaged_checkpoint_falls_back(
    fer2013_small_cache, tmp_path, monkeypatch, capsys
):
    from fer_utils.training.train import train_run

    options = {"epochs": 3, "seed": 2, "input_size": 24}
    run = tmp_path / "run"
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        train_run(fer2013_small_cache.cache_dir, run, **options)
    monkeypatch.undo()
    assert _finished_epochs(run) == [1, 2]

    with pytest.raises(ValueError, match=r"^cannot resume run: .*other settings: epochs 3 ≠ 4; rerun with"):
        train_run(fer2013_small_cache.cache_dir, run, **{**options, "epochs": 4})
    assert _finished_epochs(run) == [1, 2]  # the refusal kept the checkpoints

    newest = next(run.parent.glob(".run.partial-*/checkpoint/epoch-0002"))
    (newest / "variables.npz").write_bytes(b"garbage")
    finished = train_run(fer2013_small_cache.cache_dir, run, **options)
    stderr = capsys.readouterr().err
    assert "checkpoint epoch-0002 is damaged" in stderr and "resuming from epoch 1" in stderr
    assert "resuming after epoch 1 of 3" in stderr
    reference = train_run(fer2013_small_cache.cache_dir, tmp_path / "reference", **options)
    assert finished.outcome.frame == reference.outcome.frame
    pd.testing.assert_frame_equal(finished.history, reference.history)


@pytest.mark.slow
def test_model_study_writes_the_frontier_and_resumes(fer2013_small_cache, tmp_path):
    from fer_utils.experiments.model_study import (
        FIGURE_FILE,
        MARKDOWN_FILE,
        RUNS_FILE,
        frontier_figure,
        run_model_study,
    )
    from fer_utils.training.config import TrainConfig

    base = TrainConfig(epochs=1, input_size=32)
    table = run_model_study(fer2013_small_cache.cache_dir, tmp_path, base, ["paper", "mini_xception"], [0])
    assert list(table["architecture"]) == ["paper", "mini_xception"]
    assert (table["int8_ms_per_face"] > 0).all()
    # one epoch may leave a family at chance: a stalled family is never on the front, any other may be
    assert table["pareto_parameters"].any() == (~table["stalled"].astype(bool)).any()
    assert not (table["pareto_parameters"] & table["stalled"].astype(bool)).any()
    assert table.loc[0, "parameters"] == 62_887  # the paper CNN at 32 px, 7 classes
    assert (tmp_path / FIGURE_FILE).stat().st_size > 0
    assert '<a href="paper/seed-0">paper</a>' in frontier_figure(table).data[0].text
    assert "[mini_xception](mini_xception/seed-0)" in (tmp_path / MARKDOWN_FILE).read_text()
    runs = pd.read_csv(tmp_path / RUNS_FILE)
    assert list(runs["architecture"]) == ["paper", "mini_xception"] and (runs["train_seconds"] > 0).all()
    assert list(runs["test_accuracy"]) == list(table["test_accuracy_mean"])  # one seed: the run is the mean
    finished = (tmp_path / "paper" / "seed-0" / "metrics.json").stat().st_mtime
    run_model_study(fer2013_small_cache.cache_dir, tmp_path, base, ["paper", "mini_xception"], [0])
    assert (tmp_path / "paper" / "seed-0" / "metrics.json").stat().st_mtime == finished  # kept, not retrained
