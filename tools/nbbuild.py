"""Write a notebook from a list of (cell type, source) pairs: no outputs, the first code cell tagged
``parameters``. Used to (re)generate the committed notebooks, e.g. ``python notebooks/_sources/02.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def write_notebook(path: str | Path, cells: list[tuple[str, str]]) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    tagged = False
    for kind, source in cells:
        source = source.strip("\n")
        if kind == "md":
            notebook.cells.append(nbformat.v4.new_markdown_cell(source))
            continue
        cell = nbformat.v4.new_code_cell(source)
        if not tagged:
            cell.metadata["tags"] = ["parameters"]
            tagged = True
        notebook.cells.append(cell)
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number:02d}"
    nbformat.validate(notebook)
    Path(path).write_text(nbformat.writes(notebook) + "\n")
    print(f"wrote {path}", file=sys.stderr)
