"""notebooks/02_training.ipynb under papermill, in a real Jupyter kernel."""

import json

import nbformat
import papermill
import pytest
from paper_cnn import paper_cnn_parameters

from fer_utils.paths import NOTEBOOKS_DIR

pytestmark = pytest.mark.slow  # papermill kernels: the slow tier


def outputs_text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_training_notebook_writes_the_run_it_displays(fer2013_small_cache, tmp_path):
    run_dir = tmp_path / "run"
    executed = tmp_path / "02_training.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / "02_training.ipynb"),
        str(executed),
        parameters={"cache_dir": str(fer2013_small_cache.cache_dir), "epochs": 2, "run_dir": str(run_dir)},
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    text = outputs_text(nbformat.read(executed, as_version=4))
    assert f"test accuracy {100 * metrics['frame']['accuracy']:.1f}%" in text
    assert f"macro F1 {metrics['frame']['macro_f1']:.3f}" in text
    summary_line = next(line for line in text.splitlines() if line.startswith("accuracy (frame)"))
    assert summary_line.split()[-1] == f"{100 * metrics['frame']['accuracy']:.1f}%"
    assert f"{paper_cnn_parameters(7, 48):,}" in text  # the model summary at 48×48, 7 classes
    html_figures = [
        output
        for cell in nbformat.read(executed, as_version=4).cells
        for output in cell.get("outputs", [])
        if "application/vnd.plotly.v1+json" in output.get("data", {})
    ]
    assert len(html_figures) >= 3  # curves + two confusion matrices


def test_training_notebook_over_seeds_shows_the_distribution_and_the_median_seed(
    fer2013_small_cache, tmp_path
):
    run_dir = tmp_path / "seeds"
    executed = tmp_path / "02_seeds.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / "02_training.ipynb"),
        str(executed),
        parameters={
            "cache_dir": str(fer2013_small_cache.cache_dir),
            "epochs": 1,
            "recipe": "robust",
            "seeds": [0, 1],
            "run_dir": str(run_dir),
        },
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    summary = json.loads((run_dir / "seeds.json").read_text())
    notebook = nbformat.read(executed, as_version=4)
    text = outputs_text(notebook)
    markdown = [
        o["data"]["text/markdown"]
        for c in notebook.cells
        for o in c.get("outputs", [])
        if "text/markdown" in o.get("data", {})
    ]
    assert summary["runs"] == 2 and "2 seeds (robust)" in text
    assert any(m.startswith("The rest of this notebook shows the median seed: **seed-") for m in markdown)
    assert "recipe robust" in text
    figures = [
        output["data"]["application/vnd.plotly.v1+json"]
        for cell in nbformat.read(executed, as_version=4).cells
        for output in cell.get("outputs", [])
        if "application/vnd.plotly.v1+json" in output.get("data", {})
    ]
    titles = [
        annotation["text"] for figure in figures for annotation in figure["layout"].get("annotations", [])
    ]
    assert "dead Dense(16) units (fraction)" in titles


@pytest.mark.parametrize("notebook", ["02_training.ipynb", "03_regularization_ablation.ipynb"])
def test_a_misspelled_parameter_stops_the_notebook_naming_the_field(notebook, tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        papermill.execute_notebook(
            str(NOTEBOOKS_DIR / notebook),
            str(tmp_path / notebook),
            parameters={"learnig_rate": 0.01, "epochs": 1},
            kernel_name="python3",
            cwd=str(tmp_path),
            progress_bar=False,
        )
    assert (
        raised.value.evalue
        == f"{notebook}: unknown notebook parameter 'learnig_rate' (did you mean 'learning_rate'?)"
    )
