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
