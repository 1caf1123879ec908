"""One TrainConfig, three ways to run it (`fer train`, notebook 02 under papermill, the ablation): the same
numbers, and an executed notebook without stderr output."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pandas as pd
import pytest

from fer_utils.data.datasets import dataset_samples
from fer_utils.demo import make_demo_dataset
from fer_utils.experiments.ablation import GridConfig, run_grid
from fer_utils.experiments.notebook_pipeline import DEMO_PREPROCESS
from fer_utils.faces.preprocess import preprocess
from fer_utils.faces.preprocess_config import PreprocessConfig
from fer_utils.notebook_execution import execute_notebook
from fer_utils.paths import NOTEBOOKS_DIR
from fer_utils.training.rundir import load_run
from fer_utils.training.train import TrainConfig

#: The shared config: the ablation's one cell (dropout 0.3/0.3/0.3, no L1) equals TrainConfig's defaults.
SETTINGS = {
    "protocol": "paper",
    "epochs": 2,
    "batch_size": 16,
    "learning_rate": 5e-4,
    "seed": 0,
    "threads": 1,
}


pytestmark = pytest.mark.slow  # papermill kernels and three trainings: the slow tier


@pytest.fixture(scope="module")
def tiny_demo_cache(tmp_path_factory):
    """The demo set at its smallest: 4 actors × 8 emotions × 1 clip, 6 faces each, at the demo's 64×64
    (where one and two threads already differ in the loss's last digits)."""
    root = make_demo_dataset(
        tmp_path_factory.mktemp("demo") / "data", actors=4, clips_per_emotion=1, seconds=0.6, fps=10.0
    )
    samples, skipped = dataset_samples("ravdess", root)
    config = PreprocessConfig(**DEMO_PREPROCESS)
    return preprocess(
        samples, root.parent / "cache", config, skipped=skipped, dataset="ravdess", progress=False
    )


def stderr_outputs(notebook_path) -> list[str]:
    notebook = nbformat.read(notebook_path, as_version=4)
    return [
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("name") == "stderr"
    ]


def test_fer_train_notebook_and_ablation_give_identical_metrics(tiny_demo_cache, tmp_path):
    cache_dir = str(tiny_demo_cache.cache_dir)
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in SETTINGS.items()]
    command = [
        sys.executable,
        "-m",
        "fer_utils.cli",
        "train",
        "--cache",
        cache_dir,
        "--out",
        str(tmp_path / "cli"),
    ]
    completed = subprocess.run([*command, *flags], capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr

    notebook = tmp_path / "02_training.ipynb"
    execute_notebook(
        NOTEBOOKS_DIR / "02_training.ipynb",
        notebook,
        {"cache_dir": cache_dir, "run_dir": str(tmp_path / "notebook"), **SETTINGS},
        cwd=tmp_path,
    )
    ablation = run_grid(
        cache_dir,
        tmp_path / "ablation",
        grid=GridConfig(dropouts=(0.3, 0.5), l1s=(0.0,), n_seeds=1),  # two runs at once, as in a real grid
        training=TrainConfig(**{k: v for k, v in SETTINGS.items() if k != "seed"}),
        progress=False,
    )
    assert list(ablation.runs["status"]) == ["complete", "complete"]
    twin = ablation.runs.set_index("run_name").loc["dropout0.3-0.3-0.3_l1-0-seed0"]

    runs = {
        "fer train": load_run(tmp_path / "cli"),
        "notebook 02": load_run(tmp_path / "notebook"),
        "ablation": load_run(twin["run_dir"]),
    }
    reference = runs["fer train"]
    assert reference.setup.numerics.to_json() == {
        **reference.setup.numerics.to_json(),
        "intra_op_threads": 1,
        "inter_op_threads": 1,
        "op_determinism": True,
    }
    assert reference.setup.threads_used == 1
    for way, run in runs.items():
        assert run.setup.numerics == reference.setup.numerics, way
        assert run.setup.split == reference.setup.split, way
        assert run.outcome.frame == reference.outcome.frame, way
        assert run.outcome.best_epoch == reference.outcome.best_epoch, way
        pd.testing.assert_frame_equal(run.history, reference.history, check_exact=True, obj=way)
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["epochs_run"] == 2

    # the executed notebook: epoch lines instead of Keras' logs, and no stderr box
    assert stderr_outputs(notebook) == []
    executed = nbformat.read(notebook, as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "epoch 1/2 · loss" in printed and "epoch 2/2 · loss" in printed
    assert stderr_outputs(twin["notebook"]) == []
