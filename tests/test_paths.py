"""Where relative paths go: from where the user works (the notebook's project, the CLI's current
folder), never from the checkout fer_utils was imported from."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_utils import paths
from fer_utils.viz import dashboard, html_report


@pytest.fixture()
def second_checkout(tmp_path, monkeypatch):
    """A clone elsewhere (pyproject.toml, notebooks/), with the kernel's working folder in its notebooks/,
    as JupyterLab sets it, while fer_utils stays imported from this checkout."""
    clone = tmp_path / "clone"
    (clone / "notebooks").mkdir(parents=True)
    (clone / "pyproject.toml").write_text("[project]\nname = 'fer-utils'\n")
    monkeypatch.chdir(clone / "notebooks")
    assert paths.PROJECT_ROOT != clone
    return clone


def test_a_notebook_in_a_second_checkout_writes_into_that_checkout(second_checkout, capsys):
    assert paths.work_root() == second_checkout.resolve()
    assert paths.project_path("cache") == second_checkout.resolve() / "cache"
    assert not paths.project_path("cache").is_relative_to(paths.PROJECT_ROOT)
    assert paths.output_path("cache/x", "face cache") == second_checkout.resolve() / "cache" / "x"
    assert capsys.readouterr().out == ""  # inside its own project: nothing to say


def test_a_notebook_writing_outside_its_project_says_so(second_checkout, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere" / "cache"
    assert paths.output_path(elsewhere, "face cache") == elsewhere.resolve()
    note = capsys.readouterr().out
    assert note.count("\n") == 1 and "face cache" in note and str(elsewhere) in note and "outside" in note
    paths.output_path("../../outside-too", "run")
    assert "outside this project" in capsys.readouterr().out


def test_without_a_project_marker_the_working_folder_is_the_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if any((parent / marker).exists() for parent in tmp_path.parents for marker in paths.PROJECT_MARKERS):
        pytest.skip("the temporary folder sits inside a project")
    assert paths.work_root() == tmp_path.resolve()
    assert paths.project_path("runs") == tmp_path.resolve() / "runs"


def test_notebook_04_finds_the_projects_runs_from_notebooks(second_checkout):
    (second_checkout / "runs").mkdir()
    assert dashboard.resolve_runs_dir("runs") == (second_checkout / "runs").resolve()


def test_the_report_cli_writes_under_the_current_folder(second_checkout):
    assert not html_report.DEFAULT_REPORT.is_absolute()
    assert html_report.DEFAULT_REPORT.resolve().is_relative_to(Path.cwd())


def test_notebooks_write_through_output_path():
    """Every place a notebook writes (face cache, demo set, run, ablation folder) goes through
    output_path, so the note is given; none resolves from the package's own checkout."""
    import nbformat

    for name, writes in {
        "01_preprocessing": ["notebook_preprocessing(globals())"],  # output_path for cache and demo set
        "02_training": ['output_path(run_dir, "run")'],
        "03_regularization_ablation": ['output_path(out_dir, "ablation folder")'],
    }.items():
        notebook = nbformat.read(paths.NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
        source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
        for call in writes:
            assert call in source, (name, call)
        assert "PROJECT_ROOT" not in source


def test_notebook_04_as_opened_finds_the_demo_runs_or_says_what_to_do(second_checkout, monkeypatch):
    monkeypatch.delenv(dashboard.RUNS_DIR_ENV, raising=False)
    with pytest.raises(dashboard.NoRunsFolder, match=r"Run `fer run`.*set runs_dir"):
        dashboard.resolve_runs_dir("")
    shown = dashboard.build_dashboard("").value  # a message, not a traceback
    assert "No runs to show yet" in shown and "fer run" in shown and "runs_dir" in shown
    demo = second_checkout / "reports" / "demo" / "runs"
    demo.mkdir(parents=True)
    assert dashboard.resolve_runs_dir("") == demo.resolve()
    (second_checkout / "runs").mkdir()
    assert dashboard.resolve_runs_dir("") == (second_checkout / "runs").resolve()


def _opened_parameters(name: str) -> dict:
    """The values of a notebook's parameters cell as committed (the notebook as opened)."""
    import nbformat

    notebook = nbformat.read(paths.NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    cell = next(cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    namespace: dict = {}
    exec(cell.source, namespace)
    return namespace


def test_notebook_02_as_opened_trains_on_the_cache_notebook_01_as_opened_builds(second_checkout, monkeypatch):
    """Both on the demo set, with the demo's preprocessing, into one cache folder (the demo set's
    generation and the preprocessing itself are stubbed: only where the faces go is compared)."""
    from fer_utils.experiments import notebook_pipeline
    from fer_utils.faces.cache import cache_dir_for
    from fer_utils.faces.preprocess_config import cache_config

    monkeypatch.setattr(notebook_pipeline, "ensure_demo_dataset", lambda root, seed=0: (Path(root), False))
    monkeypatch.setattr(notebook_pipeline, "dataset_samples", lambda dataset, root: ([], []))
    built = []
    monkeypatch.setattr(
        notebook_pipeline,
        "preprocess",
        lambda samples, cache_root, config, dataset, **_: built.append(
            cache_dir_for(cache_root, dataset, cache_config(config, dataset, synthetic=True))
        ),
    )
    first = _opened_parameters("01_preprocessing")
    dataset, root, cache_root, config = notebook_pipeline.notebook_preprocessing(first)
    opened_01 = cache_dir_for(
        cache_root, dataset, cache_config(config, dataset, first["dataset_options"], True)
    )
    second = _opened_parameters("02_training")
    notebook_pipeline.notebook_cache(
        second["cache_dir"],
        second["image_folder"],
        second["cache_root"],
        second["face_size"] or second["input_size"],
        seed=second["seed"],
    )
    assert built == [opened_01]
    assert opened_01.parent == second_checkout.resolve() / notebook_pipeline.DEMO_DIR / "cache"
    assert config.face_size == notebook_pipeline.DEMO_PREPROCESS["face_size"]
    assert root.is_relative_to(second_checkout.resolve() / notebook_pipeline.DEMO_DIR)
