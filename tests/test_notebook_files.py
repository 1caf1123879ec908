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
