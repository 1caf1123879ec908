"""The main job end to end (`fer run` on the synthetic demo set), at a reduced size."""

import json
import re
from dataclasses import asdict

import nbformat
import pandas as pd
import pytest

from fer_utils import cli
from fer_utils.experiments import notebook_pipeline
from fer_utils.experiments.notebook_pipeline import PipelineConfig, run_pipeline
from fer_utils.training import rundir


def finished_protocol_run(out, protocol, config: PipelineConfig, **settings):
    """A finished run as `fer run` leaves it for ``protocol`` (written by the run-directory writer),
    trained with ``config``'s settings and ``settings`` over them, on the face cache ``config`` asks for."""
    training = asdict(config.training_config()) | {"protocol": protocol, **settings}
    setup = rundir.RunConfig.from_json(
        {
            **training,
            "cache_key": notebook_pipeline.expected_cache_key(config),
            "image_size": config.preprocess_config().face_size,
            "labels": ["happy", "sad"],
        }
    )
    scores = rundir.Scores(0.5, 0.4, 0.4, per_class={}, confusion_matrix=[[1, 1], [1, 1]])
    metrics = rundir.RunMetrics(labels=["happy", "sad"], protocol=protocol, num_params=0, frame=scores)
    history = pd.DataFrame(
        {"epoch": [1], "loss": [1.0], "accuracy": [0.5], "val_loss": [1.0], "val_accuracy": [0.5]}
    )
    return rundir.write_run(out / "runs" / protocol, setup, history, metrics)


def test_fer_run_keeps_a_run_with_the_same_settings_and_refuses_one_made_otherwise(tmp_path, capsys):
    """Issue 31, finding 1: `fer run --epochs 3` over a 30-epoch job kept its runs unchecked, then the
    ablation died in a traceback advising a flag `fer run` does not have."""
    out = tmp_path / "demo"
    default = PipelineConfig(out_dir=str(out))
    finished_protocol_run(out, "paper", default)
    assert notebook_pipeline.stale_runs(default, out) == {}  # the same settings: kept

    shorter = PipelineConfig(out_dir=str(out), training={"epochs": 3})
    stale = notebook_pipeline.stale_runs(shorter, out)
    assert stale == {out / "runs" / "paper": ["epochs 30 ≠ 3"]}
    with pytest.raises(ValueError, match="epochs 30 ≠ 3.*fer run --rerun"):
        run_pipeline(shorter)
    assert not (out / "data").exists()  # refused before any step

    code = cli.main(["run", "--out", str(out), "--epochs", "3"])
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1 and "Traceback" not in error
    assert error.startswith("fer run: error: ") and "runs/paper" in error and "--rerun" in error

    other_faces = PipelineConfig(out_dir=str(out), preprocess={"face_size": 48})
    assert any(
        "cache_key" in problem
        for problem in notebook_pipeline.stale_runs(other_faces, out)[out / "runs" / "paper"]
    )


def test_fer_run_rerun_trains_again_only_the_runs_made_otherwise(monkeypatch, tmp_path, capsys):
    out = tmp_path / "demo"
    default = PipelineConfig(out_dir=str(out))
    finished_protocol_run(out, "paper", default)
    finished_protocol_run(out, "video", default, epochs=3)
    executed = []
    monkeypatch.setattr(
        notebook_pipeline, "_execute", lambda notebook, output, parameters, cwd: executed.append(parameters)
    )
    cache = tmp_path / "cache"
    monkeypatch.setattr(notebook_pipeline, "FaceCache", lambda path: FakeCache(default))
    for protocol in ("paper", "video"):
        notebook_pipeline.training_step(
            default.training_config(), protocol, cache, out / "runs" / protocol, out, {}, replace=True
        )
    printed = capsys.readouterr().out
    assert "02_training (paper): finished run with the same settings kept" in printed
    assert "02_training (video): trained again (--rerun; epochs 3 ≠ 30)" in printed
    assert [(parameters["protocol"], parameters["overwrite"]) for parameters in executed] == [("video", True)]
    with pytest.raises(ValueError, match="epochs 3 ≠ 30"):
        notebook_pipeline.training_step(
            default.training_config(), "video", cache, out / "runs" / "video", out, {}, replace=False
        )


class FakeCache:
    """The face cache's key and face size as `fer run`'s preprocessing would leave them."""

    def __init__(self, config: PipelineConfig):
        self.key = notebook_pipeline.expected_cache_key(config)
        self.face_size = config.preprocess_config().face_size


def test_fer_run_passes_rerun_to_the_ablation_as_replace_stale(monkeypatch, tmp_path):
    executed = {}
    monkeypatch.setattr(
        notebook_pipeline, "_execute", lambda notebook, output, parameters, cwd: executed.update(parameters)
    )
    config = PipelineConfig(rerun=True)
    notebook_pipeline.ablation_step(config, tmp_path / "cache", tmp_path / "runs" / "ablation", tmp_path, {})
    assert executed["replace_stale"] is True


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
    # while a notebook trains, its counter shows the kernel's epochs (the ablation's: from its own kernels)
    for stem, epochs in (("02_training-paper", 2), ("03_regularization_ablation", 1)):
        assert re.search(rf"{stem}: cell \d+/\d+ \[[^\]]*\], \S+ · epoch 1/{epochs}", printed.err), stem
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


def test_fer_run_ends_with_each_protocols_headline_result(tmp_path):
    """Issue 31, finding 14: `fer run`'s closing block gave step times and paths, no result."""
    out = tmp_path / "demo"
    config = PipelineConfig(out_dir=str(out))
    finished_protocol_run(out, "paper", config)
    lines = notebook_pipeline.headline_lines(out / "runs", ("paper", "subject"))
    assert lines == ["  paper    test accuracy 50.0%, macro F1 0.400", "  subject  no finished run"]


def test_a_pixel_table_dataset_is_refused_by_fer_run_in_one_line_before_any_step(tmp_path, capsys):
    """fer2013csv has no media files for notebook 01: `fer run` says which commands build and train on it."""
    out = tmp_path / "csv"
    with pytest.raises(ValueError, match=r"fer2013csv holds pixel rows.*fer preprocess --dataset fer2013csv"):
        run_pipeline(PipelineConfig(dataset="fer2013csv", root=str(tmp_path), out_dir=str(out)))
    assert not out.exists()
    with pytest.raises(SystemExit):
        cli.main(["run", "--dataset", "fer2013csv", "--root", str(tmp_path), "--out", str(out)])
    assert "invalid choice: 'fer2013csv'" in capsys.readouterr().err
