"""Static results report: papermill executes ``notebooks/04_results.ipynb`` in report mode
(``interactive=False``) and nbconvert turns it into one self-contained HTML file.

The HTML hides the code cells (a research report shows results, not plumbing; the notebook itself
holds the code) and inlines plotly.js once, so the file opens offline.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from fer_utils.locks import output_lock
from fer_utils.notebook_execution import execute_notebook
from fer_utils.paths import NOTEBOOKS_DIR

RESULTS_NOTEBOOK = NOTEBOOKS_DIR / "04_results.ipynb"
#: Relative to the current folder (the CLI's rule), not to the checkout fer_utils was imported from.
DEFAULT_REPORT = Path("reports") / "results.html"


#: nbconvert's lab template without what it loads from a CDN (require.js, MathJax): the report opens
#: offline with no failed request (plotly.js is inlined; the report has no formulas).
OFFLINE_TEMPLATE = "fer_offline.html.j2"
OFFLINE_TEMPLATE_TEXT = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
"""


def execute_results_notebook(
    runs_dir: str | os.PathLike,
    output_notebook: str | os.PathLike,
    notebook: str | os.PathLike = RESULTS_NOTEBOOK,
    timeout_s: int = 1800,
    progress: bool = False,
) -> Path:
    """Run the results notebook with papermill in report mode.

    Args:
        runs_dir: folder of run directories.
        output_notebook: where the executed notebook is written.
        notebook: the results notebook.
        timeout_s: per-cell execution limit.
        progress: show the cell being executed and the elapsed time.

    Returns:
        The executed notebook's path.
    """

    runs_dir = Path(runs_dir).expanduser().resolve()
    if not runs_dir.is_dir():
        raise ValueError(f"runs folder {runs_dir} does not exist")
    notebook = Path(notebook)
    if not notebook.exists():
        raise ValueError(f"results notebook {notebook} is missing")
    output_notebook = Path(output_notebook)
    execute_notebook(
        notebook,
        output_notebook,
        {"runs_dir": str(runs_dir), "initial_run": "", "interactive": False},
        cwd=notebook.parent,
        accepted=(),
        progress=f"  {output_notebook.stem}" if progress else None,
        timeout=timeout_s,
    )
    return output_notebook


def notebook_to_html(
    executed_notebook: str | os.PathLike, html_path: str | os.PathLike, hide_code: bool = True
) -> Path:
    """Convert an executed notebook to a standalone HTML file.

    Args:
        executed_notebook: a notebook with outputs.
        html_path: the HTML file to write (folders are created).
        hide_code: leave out code cells' input and prompts (outputs and markdown stay).

    Returns:
        The HTML file's path.
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(str(executed_notebook), as_version=4)
    exporter = HTMLExporter(
        exclude_input=hide_code,
        exclude_input_prompt=hide_code,
        exclude_output_prompt=hide_code,
        extra_loaders=[jinja2.DictLoader({OFFLINE_TEMPLATE: OFFLINE_TEMPLATE_TEXT})],
        template_file=OFFLINE_TEMPLATE,
    )
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": "FER results"}})
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = html_path.with_name(f".{html_path.name}.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, html_path)
    return html_path


def write_report(
    runs_dir: str | os.PathLike,
    html_path: str | os.PathLike = DEFAULT_REPORT,
    keep_notebook: bool = False,
    hide_code: bool = True,
) -> Path:
    """Execute the results notebook on ``runs_dir`` and write the HTML report.

    Args:
        runs_dir: folder of run directories.
        html_path: the report to write (default ``reports/results.html``).
        keep_notebook: also keep the executed notebook beside the report (same name, ``.ipynb``).
        hide_code: hide code cells in the HTML.

    Returns:
        The report's path.
    """
    html_path = Path(html_path).expanduser().resolve()
    if html_path.suffix.lower() not in {".html", ".htm"}:
        raise ValueError(f"the report must be an .html file, got {html_path}")
    with output_lock(html_path.parent, "fer report"):  # one report writer per folder
        if keep_notebook:
            executed = execute_results_notebook(runs_dir, html_path.with_suffix(".ipynb"))
            return notebook_to_html(executed, html_path, hide_code)
        with tempfile.TemporaryDirectory(prefix="fer-report-") as folder:
            executed = execute_results_notebook(runs_dir, Path(folder) / "04_results.executed.ipynb")
            return notebook_to_html(executed, html_path, hide_code)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Executes notebooks/04_results.ipynb on a runs folder and writes one HTML file "
        "(code cells hidden, plotly inlined so it opens offline)."
    )
    parser.add_argument("runs_dir", help="folder of run directories (searched at any depth)")
    parser.add_argument(
        "--out",
        default=str(DEFAULT_REPORT.parent),
        help=f"folder the report goes into, as {DEFAULT_REPORT.name} (default: {DEFAULT_REPORT.parent})",
    )
    parser.add_argument(
        "--keep-notebook", action="store_true", help="keep the executed notebook beside the HTML"
    )
    parser.add_argument("--show-code", action="store_true", help="keep the code cells in the HTML")
    parser.set_defaults(func=_cli_report)


def _cli_report(args) -> int:
    path = write_report(
        args.runs_dir,
        Path(args.out) / DEFAULT_REPORT.name,
        keep_notebook=args.keep_notebook,
        hide_code=not args.show_code,
    )
    print(path)
    return 0
