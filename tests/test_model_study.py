"""Notebook 05 and `fer study-models`: what a study shows (front, seed spread, time), what opening it does."""

from __future__ import annotations

import json
import re

import nbformat
import pandas as pd
import pytest

from fer_utils.experiments import model_study
from fer_utils.paths import NOTEBOOKS_DIR
from fer_utils.training.config import TrainConfig


def study_row(name: str, **values) -> dict:
    row = {
        "architecture": name,
        "image_size": 48,
        "parameters": 100_000,
        "multiply_adds": 5e6,
        "seeds": 3,
        "test_accuracy_mean": 0.5,
        "test_accuracy_sd": 0.02,
        "test_accuracy_min": 0.48,
        "test_accuracy_max": 0.52,
        "test_macro_f1_mean": 0.45,
        "int8_ms_per_face": 0.2,
        "train_images_per_s": 900.0,
        "train_minutes_total": 12.5,
        "ece_after_mean": 0.03,
        "stalled": False,
        "median_run": f"{name}/seed-0",
    }
    return row | values


def test_a_stalled_family_gets_no_star_however_cheap():
    table = pd.DataFrame(
        [
            study_row(
                "paper", parameters=60_000, test_accuracy_mean=0.25, stalled=True, int8_ms_per_face=0.05
            ),
            study_row("paper_bn", parameters=120_000, test_accuracy_mean=0.55),
            study_row("mini_xception", parameters=200_000, test_accuracy_mean=0.50, int8_ms_per_face=0.3),
        ]
    )
    assert model_study.front_of(table, "parameters") == [False, True, False]
    assert model_study.front_of(table, "int8_ms_per_face") == [False, True, False]
    markdown = model_study.markdown_frontier(
        table.assign(pareto_parameters=[False, True, False], pareto_ms=False)
    )
    assert "| stalled: not on it |" in markdown.splitlines()[2]
    assert "★" not in markdown.splitlines()[2] and "★ / ·" in markdown.splitlines()[3]


def test_seed_spread_only_with_two_seeds_and_training_time_in_minutes():
    table = pd.DataFrame(
        [
            study_row("paper", seeds=1, test_accuracy_sd=0.0, train_minutes_total=3.25),
            study_row("paper_bn", seeds=2),
        ]
    )
    table["pareto_parameters"] = table["pareto_ms"] = True
    lines = model_study.markdown_frontier(table).splitlines()
    assert "train min (all seeds)" in lines[0]
    assert "| 50.0% | — (1 seed) |" in lines[2] and "±" not in lines[2] and "| 3.2 |" in lines[2]
    assert "| 50.0% ± 2.0 | 48.0% – 52.0% |" in lines[3] and "| 12.5 |" in lines[3]
    error = model_study.frontier_figure(table).data[0].error_y
    assert list(error.array) == [0.0, 2.0]  # no bar for the single seed
    single = model_study.frontier_figure(table.iloc[:1]).data[0].error_y
    assert single.visible is False


def finished_study(folder):
    """A study folder as `fer study-models` leaves it: two families, one finished seed each, its tables."""
    (folder / model_study.STUDY_FILE).write_text(
        json.dumps({"seeds": [0], "architectures": {"paper": {}, "mini_xception": {}}, "shared": {}})
    )
    for name in ("paper", "mini_xception"):
        (folder / name / "seed-0").mkdir(parents=True)
        (folder / name / "seed-0" / "metrics.json").write_text("{}")
    pd.DataFrame([study_row("paper", pareto_parameters=True, pareto_ms=False)]).to_csv(
        folder / model_study.TABLE_FILE, index=False
    )
    pd.DataFrame(
        {"architecture": ["paper", "mini_xception"], "run": ["paper/seed-0", "mini_xception/seed-0"]}
    ).to_csv(folder / model_study.RUNS_FILE, index=False)
    (folder / model_study.MARKDOWN_FILE).write_text("| the recorded table |\n")


def test_opening_a_finished_study_measures_and_rewrites_nothing(tmp_path, monkeypatch):
    finished_study(tmp_path)
    before = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in tmp_path.glob("frontier*")}

    def no_measuring(*args, **kwargs):
        raise AssertionError("a latency was measured on opening")

    monkeypatch.setattr(model_study, "int8_latency_ms", no_measuring)
    monkeypatch.setattr(model_study, "write_frontier", no_measuring)
    study, table = model_study.notebook_study("", str(tmp_path), TrainConfig(), ["paper"], [0])
    assert study == tmp_path and list(table["architecture"]) == ["paper"]
    after = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in tmp_path.glob("frontier*")}
    assert after == before
    assert model_study.study_is_current(tmp_path)
    (tmp_path / "paper" / "seed-1").mkdir()
    (tmp_path / "paper" / "seed-1" / "metrics.json").write_text("{}")
    assert not model_study.study_is_current(tmp_path)  # a new finished seed: the tables are redone


def test_notebook_05_opened_as_shipped_trains_a_small_demo_study(tmp_path, monkeypatch):
    notebook = nbformat.read(NOTEBOOKS_DIR / "05_model_frontier.ipynb", as_version=4)
    parameters: dict = {}
    exec(notebook.cells[1].source, parameters)  # the parameters cell as shipped
    calls = []

    class DemoCache:
        cache_dir = tmp_path / "demo-cache"

    monkeypatch.setattr(model_study, "demo_cache", lambda: DemoCache())
    monkeypatch.setattr(model_study, "run_model_study", lambda *args, **kwargs: calls.append((args, kwargs)))
    monkeypatch.chdir(tmp_path)
    base = TrainConfig(epochs=parameters["epochs"], recipe=parameters["recipe"])
    study, _ = model_study.notebook_study(
        parameters["cache_dir"],
        parameters["study_dir"],
        base,
        parameters["architectures"],
        parameters["seeds"],
    )
    (cache, out, config, architectures, seeds), options = calls[0]
    assert cache == DemoCache.cache_dir and out == study and study.parts[-3:] == ("demo", "runs", "frontier")
    assert len(seeds) >= 2 and config.epochs <= 10 and architectures == parameters["architectures"]
    assert options == {"remeasure": False}


def test_the_readme_lists_every_notebook():
    readme = (NOTEBOOKS_DIR.parent / "README.md").read_text()
    table = readme[readme.index("## Notebooks") :].split("\n\n")[1]
    listed = set(re.findall(r"^\| `(\d\d_\w+)` \|", table, re.MULTILINE))
    assert listed == {path.stem for path in NOTEBOOKS_DIR.glob("*.ipynb")}


@pytest.mark.parametrize("path", sorted(NOTEBOOKS_DIR.glob("*.ipynb")), ids=lambda path: path.name)
def test_every_notebook_figure_has_a_static_fallback_for_exports(path):
    """plotly's default renderer leaves exported HTML blank: a notebook that shows a plotly figure first
    sets the renderer that also embeds it (`figures.setup_notebook_rendering`, as notebooks 02 and 03)."""
    notebook = nbformat.read(path, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    shows = [i for i, source in enumerate(code) if ".show()" in source]
    setup = [i for i, source in enumerate(code) if "setup_notebook_rendering()" in source]
    assert not shows or (setup and setup[0] < shows[0]), (
        f"{path.name}: a figure before setup_notebook_rendering()"
    )


@pytest.mark.slow
def test_notebook_05_as_shipped_runs_a_demo_study_shows_it_in_exports_and_reopening_rewrites_nothing(
    tmp_path,
):
    """The real thing: papermill runs notebook 05 with no parameters in a fresh project (the demo set is
    made, a small study trained), the exported HTML carries the figure, a second opening changes no file."""
    import shutil

    from nbconvert import HTMLExporter

    from fer_utils.notebook_execution import execute_notebook

    (tmp_path / "pyproject.toml").write_text("")  # the project the notebook writes into
    (tmp_path / "notebooks").mkdir()
    shutil.copy(NOTEBOOKS_DIR / "05_model_frontier.ipynb", tmp_path / "notebooks" / "05.ipynb")
    executed = tmp_path / "notebooks" / "executed.ipynb"
    execute_notebook(tmp_path / "notebooks" / "05.ipynb", executed, {}, cwd=tmp_path / "notebooks", threads=1)
    study = tmp_path / model_study.DEMO_STUDY_DIR
    table = pd.read_csv(study / model_study.TABLE_FILE)
    assert len(table) == 4 and (table["seeds"] == 2).all() and (table["int8_ms_per_face"] > 0).all()
    html, _ = HTMLExporter().from_filename(str(executed))
    assert html.count("plotly-graph-div") >= 1 and "Plotly.newPlot" in html  # a figure, not a blank box
    files = {path: path.read_bytes() for path in study.glob("frontier*")}
    execute_notebook(tmp_path / "notebooks" / "05.ipynb", executed, {}, cwd=tmp_path / "notebooks", threads=1)
    assert {path: path.read_bytes() for path in study.glob("frontier*")} == files


@pytest.mark.slow
def test_notebook_01_as_shipped_exports_its_figures_to_html(tmp_path):
    """Notebook 01 opened as shipped (the demo set): every plotly figure it shows is drawn in the exported
    HTML (before, the exports held only empty output areas: plotly's mimetype without a static copy)."""
    import shutil

    from nbconvert import HTMLExporter

    from fer_utils.notebook_execution import execute_notebook

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    shutil.copy(NOTEBOOKS_DIR / "01_preprocessing.ipynb", tmp_path / "notebooks" / "01.ipynb")
    executed = tmp_path / "notebooks" / "executed.ipynb"
    execute_notebook(tmp_path / "notebooks" / "01.ipynb", executed, {}, cwd=tmp_path / "notebooks", threads=1)
    notebook = nbformat.read(executed, as_version=4)
    plotly_outputs = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "application/vnd.plotly.v1+json" in output.get("data", {})
    ]
    assert len(plotly_outputs) >= 3 and all("text/html" in output["data"] for output in plotly_outputs)
    html, _ = HTMLExporter().from_filename(str(executed))
    assert html.count("Plotly.newPlot") >= len(plotly_outputs)
