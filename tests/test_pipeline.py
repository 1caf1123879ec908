"""The main job end to end (`fer run` on the synthetic demo set), at a reduced size."""

import json

import nbformat
import pandas as pd
import pytest

from fer_utils.experiments.notebook_pipeline import PipelineConfig, run_pipeline


@pytest.mark.slow
def test_main_job_makes_every_artifact_and_learns_the_demo(tmp_path):
    result = run_pipeline(
        PipelineConfig(
            out_dir=str(tmp_path / "demo"),
            protocols=("subject",),
            ablation_dropouts=(0.3, 0.5),
            ablation_l1s=(0.0,),
            ablation_epochs=3,
        )
    )
    out = tmp_path / "demo"
    notebooks = sorted(p.name for p in (out / "notebooks").glob("*.ipynb"))
    assert notebooks == [
        "01_preprocessing.ipynb",
        "02_training-subject.ipynb",
        "03_regularization_ablation.ipynb",
        "04_results.ipynb",
    ]
    for name in notebooks:
        executed = nbformat.read(out / "notebooks" / name, as_version=4)
        assert executed.metadata["papermill"]["exception"] is None, name
        assert all(o.get("output_type") != "error" for c in executed.cells for o in c.get("outputs", [])), (
            name
        )

    cache_index = pd.read_csv(result["cache_dir"] / "index.csv")
    assert cache_index["subject"].nunique() == 6 and cache_index["label"].nunique() == 8

    run_dir = out / "runs" / "subject"
    for artifact in (
        "config.json",
        "history.csv",
        "model.keras",
        "split.csv",
        "metrics.json",
        "predictions.csv",
    ):
        assert (run_dir / artifact).exists(), artifact
    metrics = json.loads((out / "runs" / "subject" / "metrics.json").read_text())
    chance = 1 / len(metrics["labels"])
    print(f"demo, subject protocol: best validation accuracy {metrics['best_val_accuracy']:.3f}, "
          f"test accuracy {metrics['frame']['accuracy']:.3f}, chance {chance:.3f}")  # fmt: skip
    assert metrics["best_val_accuracy"] >= 3 * chance
    assert metrics["video"] is not None  # six faces per clip → video-level scores

    table = pd.read_csv(out / "runs" / "ablation" / "table.csv")
    assert len(table) == 2
    assert result["report"] == out / "report.html"
    html = result["report"].read_text()
    assert "subject" in html and "plotly" in html.lower()


@pytest.mark.slow  # runs the whole job (papermill kernels)
def test_main_job_shows_its_progress_and_leaves_no_stderr_in_the_notebooks(tmp_path, capfd):
    """`fer run` at its smallest: one line per notebook with the cell it is on and the elapsed time;
    executed notebooks without TensorFlow / absl / warning boxes."""
    result = run_pipeline(
        PipelineConfig(
            out_dir=str(tmp_path / "demo"),
            demo_actors=4,
            protocols=("paper",),
            ablation_dropouts=(0.3,),
            ablation_l1s=(0.0,),
            ablation_epochs=1,
            training={"epochs": 2},
        )
    )
    printed = capfd.readouterr()
    notebooks = result["notebooks"]
    assert [path.name for path in notebooks] == [
        "01_preprocessing.ipynb",
        "02_training-paper.ipynb",
        "03_regularization_ablation.ipynb",
        "04_results.ipynb",
    ]
    for path in notebooks:
        total = len(nbformat.read(path, as_version=4).cells)
        assert f"{path.stem}: cell {total}/{total} [" in printed.err, path.name  # counter + elapsed
    stderr = {
        path.name: [
            output.get("text", "")
            for cell in nbformat.read(path, as_version=4).cells
            for output in cell.get("outputs", [])
            if output.get("name") == "stderr"
        ]
        for path in [*notebooks, *sorted((result["runs_dir"] / "ablation").rglob("02_training.ipynb"))]
    }
    assert len(stderr) == 5
    assert all(boxes == [] for boxes in stderr.values()), stderr
    assert "without encryption" not in printed.out + printed.err
    assert "oneDNN" not in printed.out + printed.err
