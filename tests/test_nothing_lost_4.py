"""Issue 30, nothing lost round 4: the model study, ``fer bundle-model``, teachers and the notebooks' parameters
follow the suite's rules: one writer per folder and nothing of another writer erased, a family that could not
train is a row and an exit code, a bundled model is only a run its study made and its files are replaced
together, an unreadable ablation is one problem of a report, sources are never overwritten by what is built
from them, every notebook refuses a misspelled parameter, and labels are data."""

from __future__ import annotations

import json

import pytest
from test_nothing_lost import _refusal

from fer_utils.training.config import TrainConfig

# ----------------------------------------------------------------------------------------------------
# 1. The model study: one writer for the whole call, families accumulate, failures are rows
# ----------------------------------------------------------------------------------------------------


def _fake_study_training(monkeypatch, failures: dict | None = None):
    """``run_model_study`` without training: each family's seeds folder gets its ``seeds.json`` (with
    ``failures``: {architecture: error} for each seed) and the tables are written from what is there."""
    from fer_utils.experiments import model_study
    from fer_utils.training.seeds import write_seed_summary

    trained = []

    def train_seed_sets(cache_dir, configs, seeds, workers=None, progress=True):
        for folder, config in configs.items():
            folder.mkdir(parents=True, exist_ok=True)
            error = (failures or {}).get(config.architecture)
            write_seed_summary(folder, [], {seed: error for seed in seeds} if error else {})
            trained.append(config.architecture)

    monkeypatch.setattr(model_study, "train_seed_sets", train_seed_sets)
    monkeypatch.setattr(model_study, "int8_latency_ms", lambda run_dir: 1.0)
    return trained


def test_a_study_folder_has_one_writer_whatever_the_architectures(tmp_path, monkeypatch):
    from fer_utils.experiments.model_study import run_model_study

    trained = _fake_study_training(monkeypatch)
    out = tmp_path / "study"
    _refusal(
        lambda: run_model_study(
            tmp_path / "cache", out, TrainConfig(), ["mini_xception"], [0], progress=False
        ),
        out,
        "fer study-models",
    )
    assert trained == [] and not (out / "study.json").exists()


def test_a_second_study_with_other_architectures_adds_its_families(tmp_path, monkeypatch):
    from fer_utils.experiments.model_study import STUDY_FILE, TABLE_FILE, run_model_study

    _fake_study_training(monkeypatch)
    out = tmp_path / "study"
    run_model_study(tmp_path / "cache", out, TrainConfig(epochs=2), ["paper"], [0, 1], progress=False)
    run_model_study(tmp_path / "cache", out, TrainConfig(epochs=2), ["mini_xception"], [0], progress=False)
    study = json.loads((out / STUDY_FILE).read_text())
    assert list(study["architectures"]) == ["paper", "mini_xception"]
    assert study["architectures"]["paper"]["seeds"] == [0, 1] and study["seeds"] == [0, 1]
    table = (out / TABLE_FILE).read_text()
    assert "paper" in table and "mini_xception" in table
    with pytest.raises(ValueError, match="other settings \\(epochs 2 → 3\\); choose another --out"):
        run_model_study(tmp_path / "cache", out, TrainConfig(epochs=3), ["paper_bn"], [0], progress=False)
    with pytest.raises(ValueError, match="cache .* → "):
        run_model_study(tmp_path / "other", out, TrainConfig(epochs=2), ["paper_bn"], [0], progress=False)
    assert list(json.loads((out / STUDY_FILE).read_text())["architectures"]) == ["paper", "mini_xception"]


def test_a_family_that_could_not_train_is_a_row_and_a_nonzero_exit(tmp_path, monkeypatch, capsys):
    import pandas as pd

    from fer_utils.cli import main
    from fer_utils.experiments.model_study import MARKDOWN_FILE, TABLE_FILE

    error = "ValueError: architecture mobilenet_v3_small needs faces of at least 32 px, got 24"
    _fake_study_training(monkeypatch, {"mobilenet_v3_small": error})
    out = tmp_path / "study"
    argv = ["study-models", "--cache", str(tmp_path / "cache"), "--out", str(out), "--seeds", "0"]
    code = main([*argv, "--architectures", "paper", "mobilenet_v3_small", "--input-size", "24"])
    err = capsys.readouterr().err
    assert code == 1
    assert "fer study-models: mobilenet_v3_small: seed 0: " + error in err
    table = pd.read_csv(out / TABLE_FILE).set_index("architecture")
    assert list(table.index) == ["paper", "mobilenet_v3_small"]
    assert "needs faces of at least 32 px" in table.loc["mobilenet_v3_small", "problem"]
    assert "| mobilenet_v3_small | 24 | FAILED: seed 0: " in (out / MARKDOWN_FILE).read_text()
