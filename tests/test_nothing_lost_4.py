"""Issue 30, nothing lost round 4: the model study, ``fer bundle-model``, teachers and the notebooks' parameters
follow the suite's rules: one writer per folder and nothing of another writer erased, a family that could not
train is a row and an exit code, a bundled model is only a run its study made and its files are replaced
together, an unreadable ablation is one problem of a report, sources are never overwritten by what is built
from them, every notebook refuses a misspelled parameter, and labels are data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_dashboard import make_cache, make_run
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


# ----------------------------------------------------------------------------------------------------
# 2. fer bundle-model: only a run the study made, classes first, the shipped files replaced together
# ----------------------------------------------------------------------------------------------------

FER2013_LABELS = ["angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]


def _study_with_runs(tmp_path: Path, labels=FER2013_LABELS, seeds=(0, 1)) -> Path:
    """A ``fer study-models`` folder (protocol fixed, FER2013, 2 epochs) with finished ``paper`` runs."""
    import dataclasses

    import numpy as np

    from fer_utils.experiments.model_study import STUDY_FILE
    from fer_utils.training.seeds import finished_seed_runs, write_seed_summary

    cache = make_cache(tmp_path / "cache", 12)
    study = tmp_path / "study"
    for seed in seeds:
        probabilities = np.random.default_rng(seed).dirichlet(np.ones(len(labels)), size=12)
        make_run(
            study / "paper" / f"seed-{seed}",
            cache,
            probabilities,
            labels,
            seed=seed,
            dataset="fer2013",
            protocol="fixed",
        )
    write_seed_summary(study / "paper", finished_seed_runs(study / "paper"))
    shared = json.loads(json.dumps(dataclasses.asdict(TrainConfig(protocol="fixed", epochs=2)), default=str))
    record = {
        "cache_dir": str(cache.cache_dir),
        "seeds": list(seeds),
        "architectures": {"paper": {"input_size": None, "seeds": list(seeds)}},
        "shared": shared,
    }
    (study / STUDY_FILE).write_text(json.dumps(record))
    return study


def _shipping_records(monkeypatch):
    """``ship_run`` and the card without TensorFlow: which run was shipped, and a file in the staged folder."""
    from fer_utils.experiments import bundle_model

    shipped = []

    def ship_run(run, out_dir):
        shipped.append(run.path)
        (out_dir / "model.keras").write_text(str(run.path))
        return {"keras": out_dir / "model.keras"}

    monkeypatch.setattr(bundle_model, "ship_run", ship_run)
    monkeypatch.setattr(
        bundle_model,
        "model_card_numbers",
        lambda summary, run, files, images: {
            "shipped_seed": run.setup.seed,
            "shipped_run": str(run.path),
        },
    )
    return shipped


def test_from_study_ships_only_a_run_the_study_made(tmp_path, monkeypatch, capsys):
    import shutil

    import numpy as np
    import pandas as pd

    from fer_utils.experiments.bundle_model import build_bundled_model

    study = _study_with_runs(tmp_path)
    outside = make_run(
        tmp_path / "outside",
        make_cache(tmp_path / "cache2", 12),
        np.eye(7)[[0] * 12],
        FER2013_LABELS,
        dataset="fer2013",
        protocol="paper",
    )
    table = pd.read_csv(study / "paper" / "seeds.csv")
    table["run"] = "../../outside"  # a crafted seeds.csv naming a run outside the study
    table.to_csv(study / "paper" / "seeds.csv", index=False)
    shipped = _shipping_records(monkeypatch)
    out = tmp_path / "shipped"
    card = build_bundled_model(
        tmp_path, tmp_path / "work", [0], out_dir=out, card_markdown=None, from_study=study
    )
    assert shipped and shipped[0] != outside and shipped[0].parent == study / "paper"
    assert card["shipped_run"] == str(shipped[0]) and f"shipping {shipped[0]}" in capsys.readouterr().out
    assert (out / "model.keras").read_text() == str(shipped[0])

    # a run of the study's folder made with other settings (protocol paper) is not the study's
    shutil.rmtree(study / "paper" / "seed-1")
    make_run(
        study / "paper" / "seed-1",
        make_cache(tmp_path / "cache3", 12),
        np.eye(7)[[0] * 12],
        FER2013_LABELS,
        seed=1,
        dataset="fer2013",
        protocol="paper",
    )
    with pytest.raises(ValueError, match="other settings than the study .*protocol 'paper' ≠ 'fixed'"):
        build_bundled_model(
            tmp_path, tmp_path / "work", [0], out_dir=out, card_markdown=None, from_study=study
        )


def test_from_study_checks_the_classes_before_any_work_and_leaves_no_staging(tmp_path, monkeypatch):
    from fer_utils.experiments import bundle_model

    study = _study_with_runs(tmp_path, labels=["neutral", "happy", "sad"])

    def built(*args):
        raise AssertionError("built files before checking the classes")

    monkeypatch.setattr(bundle_model, "ship_run", built)
    out = tmp_path / "shipped"
    with pytest.raises(ValueError, match="predicts neutral, happy, sad, not FER2013's angry, disgust"):
        bundle_model.build_bundled_model(
            tmp_path, tmp_path / "work", [0], out_dir=out, card_markdown=None, from_study=study
        )

    # a failure after the files are built (scoring them) leaves neither a staging folder nor a changed folder
    study = _study_with_runs(tmp_path / "seven")
    _shipping_records(monkeypatch)
    out.mkdir()
    (out / "other_model.keras").write_text("kept")

    def scoring_fails(*args):
        raise ValueError("'disgust' is not in list")

    monkeypatch.setattr(bundle_model, "model_card_numbers", scoring_fails)
    with pytest.raises(ValueError, match="'disgust' is not in list"):
        bundle_model.build_bundled_model(
            tmp_path, tmp_path / "work", [0], out_dir=out, card_markdown=None, from_study=study
        )
    assert [path.name for path in out.iterdir()] == ["other_model.keras"]
    assert not [path for path in tmp_path.iterdir() if "staging" in path.name]


def test_recalibrating_on_a_full_disk_leaves_every_shipped_file_as_it_was(tmp_path, monkeypatch):
    import errno
    import shutil

    import numpy as np

    from fer_utils.deploy import bundled
    from fer_utils.experiments import bundle_model

    models = tmp_path / "models"
    shutil.copytree(bundled.BUNDLED_DIR, models)
    before = {path.name: path.read_bytes() for path in models.iterdir()}
    faces = np.random.default_rng(0).integers(0, 256, (14, 48, 48), dtype=np.uint8)
    from fer_utils.experiments import model_card

    for module in (bundle_model, model_card):
        monkeypatch.setattr(
            module, "fer2013_test_faces", lambda root, split="test": (faces, FER2013_LABELS * 2, [])
        )
    monkeypatch.setattr(bundle_model, "served_or_none", lambda path: None)
    write_json = bundle_model.atomic_write_json

    def full_disk(path, *args, **kwargs):
        if Path(path).name == "model_card.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_json(path, *args, **kwargs)

    monkeypatch.setattr(bundle_model, "atomic_write_json", full_disk)
    with pytest.raises(OSError, match="No space left"):
        bundle_model.recalibrate_shipped(tmp_path, "paper", models)
    assert {path.name: path.read_bytes() for path in models.iterdir()} == before
    assert not [path.name for path in tmp_path.iterdir() if "staging" in path.name]


# ----------------------------------------------------------------------------------------------------
# 3. fer report: an unreadable ablation is one problem; figure paths stay inside the ablation
# ----------------------------------------------------------------------------------------------------


def test_an_ablation_whose_figures_lie_outside_it_is_drawn_without_them(tmp_path):
    import plotly.graph_objects as go

    from fer_utils.viz.dashboard.static import ablation_section_html

    folder = tmp_path / "ablation"
    folder.mkdir()
    go.Figure(go.Scatter(x=[1], y=[2])).write_json(tmp_path / "outside.json")
    go.Figure(go.Scatter(x=[1], y=[2])).write_json(folder / "curves.json")
    summary = {
        "report_table": [{"configuration": "baseline", "test accuracy": "50.0 %"}],
        "verdict": {"text": "**no** effect"},
        "figures": {"curves": "/etc/passwd", "gap_heatmap": "../outside.json"},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    text, figures = ablation_section_html(folder)
    assert figures == [] and "baseline" in text and "<b>no</b> effect" in text
    assert "&#x27;/etc/passwd&#x27; is not a file name inside the ablation folder" in text
    assert "&#x27;../outside.json&#x27; lies outside the ablation folder" in text
    summary["figures"] = {"curves": "curves.json", "gap_heatmap": "summary.json"}  # not a figure: a problem
    (folder / "summary.json").write_text(json.dumps(summary))
    text, figures = ablation_section_html(folder)
    assert len(figures) == 1 and "Not drawn: figure gap_heatmap" in text


def test_an_ablation_that_cannot_be_drawn_is_listed_and_the_next_one_drawn(tmp_path, monkeypatch):
    from fer_utils.viz.dashboard import static

    def section(folder):
        if folder.name == "bad":
            raise json.JSONDecodeError("Expecting value", "root:x:0:0", 0)
        return f"<h3>{folder.name}</h3>", []

    monkeypatch.setattr(static, "ablation_section_html", section)
    monkeypatch.setattr(static, "ablation_folders", lambda choices: [tmp_path / "bad", tmp_path / "good"])
    parts = static.ablation_parts([])
    assert "could not be drawn (JSONDecodeError: Expecting value" in parts[1][0]
    assert parts[2] == ("<h3>good</h3>", [])


# ----------------------------------------------------------------------------------------------------
# 4. A source is never overwritten by what is built from it
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ["--teacher", "{run}"],
        ["--init-from", "{run}/model.keras"],
        ["--teacher", "{run}/seed-0", "--seeds", "0"],
    ],
)
def test_fer_train_refuses_to_write_over_its_teacher_or_initial_weights(flags, tmp_path, capsys):
    import numpy as np

    from fer_utils.cli import main

    cache = make_cache(tmp_path / "cache", 12)
    run = make_run(tmp_path / "run", cache, np.full((12, 3), 1 / 3))
    if "--seeds" in flags:
        make_run(run / "seed-0", cache, np.full((12, 3), 1 / 3))
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    argv = ["train", "--cache", str(cache.cache_dir), "--out", str(run), "--overwrite", "--epochs", "1"]
    code = main(argv + [flag.format(run=run) for flag in flags])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.count("\n") == 0
    assert f"is inside the run being written ({run}): training would replace it" in error
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before


# ----------------------------------------------------------------------------------------------------
# 5. Every notebook refuses a misspelled parameter: one mechanism, from its file, not papermill's header
# ----------------------------------------------------------------------------------------------------

#: Per notebook: a misspelled parameter and the name it should have been.
MISSPELLED = {
    "01_preprocessing.ipynb": ("face_sise", "face_size"),
    "02_training.ipynb": ("learnig_rate", "learning_rate"),
    "03_regularization_ablation.ipynb": ("n_seed", "n_seeds"),
    "04_results.ipynb": ("runs_dri", "runs_dir"),
    "05_model_frontier.ipynb": ("study_dri", "study_dir"),
}


def _kernel_namespace(notebook: str) -> dict:
    """What a kernel holds at the notebook's first call as opened: its parameters cell's values, IPython's
    own names and the imports of the cell."""
    import nbformat
    import pandas

    from fer_utils.paths import NOTEBOOKS_DIR

    cells = nbformat.read(NOTEBOOKS_DIR / notebook, as_version=4).cells
    namespace: dict = {"In": ["", "x = 1"], "Out": {}, "get_ipython": print, "_i1": "x = 1", "pd": pandas}
    exec(next(cell.source for cell in cells if "parameters" in cell.metadata.get("tags", [])), namespace)
    namespace.pop("__builtins__")
    return namespace


@pytest.mark.parametrize("notebook", sorted(MISSPELLED))
def test_each_notebook_refuses_a_misspelled_parameter_from_inside_its_kernel(notebook):
    from fer_utils.experiments.notebook_pipeline import check_notebook_parameters

    typo, meant = MISSPELLED[notebook]
    namespace = _kernel_namespace(notebook)
    check_notebook_parameters(namespace, notebook)  # as opened: nothing to refuse
    with pytest.raises(
        ValueError, match=rf"^{notebook}: unknown notebook parameter '{typo}' \(did you mean '{meant}'\?\)$"
    ):
        check_notebook_parameters(namespace | {typo: 48}, notebook)


@pytest.mark.parametrize("notebook", sorted(MISSPELLED))
def test_the_host_refuses_a_misspelled_parameter_of_any_notebook_before_its_kernel(
    notebook, tmp_path, monkeypatch
):
    import sys

    from fer_utils.experiments import notebook_pipeline

    monkeypatch.setitem(sys.modules, "papermill", None)  # importing it would fail: no kernel may start
    typo, meant = MISSPELLED[notebook]
    with pytest.raises(
        ValueError, match=rf"^{notebook}: unknown notebook parameter '{typo}' \(did you mean '{meant}'"
    ):
        notebook_pipeline._execute(notebook, tmp_path / "out.ipynb", {typo: 48}, tmp_path)
    assert not (tmp_path / "out.ipynb").exists()


def test_the_report_checks_notebook_04s_parameters_before_its_kernel(tmp_path, monkeypatch):
    import sys

    from fer_utils.notebook_execution import check_parameters
    from fer_utils.viz import html_report

    monkeypatch.setitem(sys.modules, "papermill", None)
    checked = []
    monkeypatch.setattr(
        html_report,
        "execute_notebook",
        lambda notebook, output, parameters, **options: checked.append(
            check_parameters(notebook, parameters, options["accepted"]) or options["accepted"]
        ),
    )
    html_report.execute_results_notebook(tmp_path, tmp_path / "out.ipynb")
    assert checked == [()]


@pytest.mark.slow
def test_papermill_by_hand_stops_notebook_05_at_a_misspelled_parameter(tmp_path):
    """The kernel's own check: papermill run by hand (no host check), whatever header it gives its cell."""
    from fer_utils.notebook_execution import execute_notebook
    from fer_utils.paths import NOTEBOOKS_DIR

    study = tmp_path / "study"
    with pytest.raises(
        Exception, match="unknown notebook parameter 'study_dri' \\(did you mean 'study_dir'\\?\\)"
    ):
        execute_notebook(
            NOTEBOOKS_DIR / "05_model_frontier.ipynb",
            tmp_path / "out.ipynb",
            {"study_dri": str(study)},
            tmp_path,
        )
    assert not study.exists() and not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------------------------------
# 6. Labels are data, never identifiers
# ----------------------------------------------------------------------------------------------------


def test_fer_predict_of_a_model_whose_classes_are_not_identifiers(tmp_path, monkeypatch, capsys):
    import cv2
    import keras
    import pandas as pd
    from fixture_media import face_frame

    from fer_utils.cli import main
    from fer_utils.deploy.export import write_model_spec
    from fer_utils.training.model import build_paper_cnn

    labels = ["../../x", "happy", "not a name", "class"]
    keras.utils.set_random_seed(0)
    model_path = tmp_path / "model" / "m.keras"
    model_path.parent.mkdir()
    build_paper_cnn(len(labels), image_size=24).save(model_path)
    spec = {"format": "keras", "labels": labels, "image_size": 24, "preprocessing": {"equalize": "none"}}
    write_model_spec(model_path, spec)
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.resize(face_frame(), (480, 360)))
    out = tmp_path / "work" / "out"
    monkeypatch.chdir(tmp_path)
    code = main(["predict", str(photo), "--model", str(model_path), "--out", str(out), "--detector", "hog"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    faces = pd.read_csv(next(out.glob("*faces.csv")))
    assert len(faces) >= 1 and faces["predicted_label"].isin(labels).all()
    assert [f"prob_{label}" for label in labels] == [c for c in faces.columns if c.startswith("prob_")]
    written = {path.relative_to(tmp_path) for path in tmp_path.rglob("*") if path.is_file()}
    assert all(path.parts[0] in {"work", "model", "photo.png"} for path in written), written
