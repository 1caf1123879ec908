"""The static results report: papermill executes notebook 04 in report mode, nbconvert writes HTML."""

from __future__ import annotations

import json
import re

import pytest
from test_dashboard import real_runs_dir  # noqa: F401  (session fixture: real training runs)

from fer_utils.cli import main
from fer_utils.viz import html_report


def test_report_refuses_a_missing_runs_folder_and_a_non_html_path(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"\.html"):
        html_report.write_report(tmp_path, tmp_path / "report.pdf")


@pytest.mark.slow
def test_report_of_an_empty_runs_folder_says_so(tmp_path):
    (tmp_path / "runs").mkdir()
    page = html_report.write_report(tmp_path / "runs", tmp_path / "empty.html").read_text()
    assert "No finished runs" in page
    assert "Traceback" not in page


@pytest.mark.slow
def test_report_of_real_runs_shows_every_run_without_code(real_runs_dir, tmp_path):  # noqa: F811
    report = tmp_path / "out" / "results.html"
    assert main(["report", str(real_runs_dir), "--out", str(report.parent), "--keep-notebook"]) == 0
    page = report.read_text()
    executed = report.with_suffix(".ipynb")
    assert executed.exists()
    for name in ("fer2013-base", "fer2013-reg"):
        metrics = json.loads((real_runs_dir / name / "metrics.json").read_text())
        assert f"{metrics['num_params']:,}" in page
        assert f"test accuracy <b>{metrics['frame']['accuracy']:.1%}</b>" in page
        for label, scores in metrics["frame"]["per_class"].items():
            assert re.search(rf"<td>{label}</td><td class=\"fer-num\">{scores['precision']:.3f}</td>", page)
    assert "drop(.3,.5,.5) l1=1e-3" in page and "Training curves" in page
    assert "The paper's Table I / II on fer2013" in page
    assert page.count("plotly.js v") <= 2  # plotly.js inlined once (its banner may appear twice)
    assert "build_dashboard" not in page and "display_report" not in page  # code cells hidden
    # a results section: title block, contents, one row per protocol, runs collapsible, faces embedded
    assert "Facial emotion recognition: results" in page and 'class="fer-toc"' in page
    assert 'id="protocols"' in page and 'id="runs"' in page and 'id="literature"' in page
    assert '<td>fer2013 · paper</td><td class="fer-num">2</td>' in page  # two seeds, one row
    assert page.count('<details class="fer-run"') == 2
    assert page.count('<figure class="fer-thumb"') >= 2 and "data:image/png;base64," in page
    assert "click a cell" not in page.lower()  # the static report has nothing to click
    assert "synthetic demo" not in page  # FER2013 is real data
    shown = html_report.notebook_to_html(executed, tmp_path / "with_code.html", hide_code=False).read_text()
    assert "display_report" in shown and "build_dashboard" in shown
