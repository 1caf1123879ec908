"""The dashboard in a real browser: Voila serves notebooks/04_results.ipynb on a free loopback port
against a runs folder made by real training runs, and Debian's Chromium (headless, driven by Python
playwright) checks the heatmap against metrics.json, clicks a cell, counts the gallery's faces and
toggles the normalisation, switches runs, and opens / closes the page ten times to check that the
kernels of closed pages are culled.

Timings (run with ``-s``): the test prints how long the heatmap took to appear after the request and how
long each view switch took. They are printed, not asserted (beyond a generous sanity bound): on a shared
machine they measure the load as much as the dashboard; measure on an idle machine.

Reproduce by hand: ``fer dashboard RUNS_DIR --port 8866`` and open http://127.0.0.1:8866/.
Set ``FER_DASHBOARD_SCREENSHOT=/some/file.png`` to keep a copy of the screenshot outside the temp dir.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from missing_resources import MISSING_BROWSER, skip_without_browser
from test_dashboard import real_runs_dir  # noqa: F401  (session fixture: real training runs)

from fer_utils.training.rundir import load_run
from fer_utils.viz import dashboard

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
HEATMAP = ".fer-heatmap .js-plotly-plot"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout_s: float = 120) -> None:
    """Wait until Voila listens. (Not an HTTP GET of the page: each GET executes the notebook in a new
    kernel, and retried GETs would pile kernels up.)"""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"voila exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"voila did not listen on port {port} within {timeout_s} s")


@pytest.fixture(scope="module")
def playwright_module():
    if not CHROMIUM.exists():
        skip_without_browser(
            f"{CHROMIUM} is missing: install Debian's Chromium (`apt-get install -y chromium`)"
        )
    return pytest.importorskip(
        "playwright.sync_api", reason=f"{MISSING_BROWSER} python playwright is not installed"
    )


#: Culling for the tests: a closed page's kernel goes after 45 s idle, checked every 5 s. (Much shorter
#: and, on a loaded machine, a kernel can be culled between Voila executing the notebook and the browser
#: connecting to it: with 20 s one of ten loads never drew.)
TEST_CULL_IDLE_S, TEST_CULL_INTERVAL_S = 45, 5


@pytest.fixture()
def voila_server(real_runs_dir, tmp_path):  # noqa: F811
    """Voila serving the results notebook for ``real_runs_dir`` (passed as $FER_RUNS_DIR), with the
    command ``fer dashboard`` uses (short culling times); yields ``(url, process)``."""
    port = free_port()
    log = (tmp_path / "voila.log").open("w")
    environment = dashboard.voila_environment(
        {**os.environ, dashboard.RUNS_DIR_ENV: str(real_runs_dir), dashboard.INITIAL_RUN_ENV: "fer2013-base"}
    )
    command = dashboard.voila_command(
        dashboard.DASHBOARD_NOTEBOOK,
        port,
        "127.0.0.1",
        open_browser=False,
        cull_idle_s=TEST_CULL_IDLE_S,
        cull_interval_s=TEST_CULL_INTERVAL_S,
    )
    process = subprocess.Popen(command, env=environment, cwd=dashboard.NOTEBOOKS_DIR, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_port(port, process)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture()
def voila_url(voila_server):
    return voila_server[0]


def kernel_processes(server: subprocess.Popen) -> list:
    """The kernels the Voila server started (its child processes running ipykernel)."""
    import psutil

    kernels = []
    for child in psutil.Process(server.pid).children(recursive=True):
        try:
            if "ipykernel" in " ".join(child.cmdline()):
                kernels.append(child)
        except psutil.NoSuchProcess:
            continue
    return kernels


def open_dashboard(page, url: str, errors: list[str], screenshot: Path) -> None:
    """Load the page and wait for the heatmap. anywidget gives a widget model 2 s to initialise; the
    dashboard's widgets return at once (plotly.js loads in the background), but should a machine be busy
    enough to miss that ("[anywidget] Failed to initialize model"), the page is loaded once more, as a
    person would."""
    for attempt in (1, 2):
        page.goto(url, timeout=180_000)
        try:
            page.wait_for_selector(f"{HEATMAP} .hm", timeout=120_000)
            return
        except Exception:
            page.screenshot(path=str(screenshot.with_name(f"failed-load-{attempt}.png")), full_page=True)
            if attempt == 2 or not any("Failed to initialize model" in error for error in errors):
                raise
            errors.clear()


def heatmap_state(page) -> dict:
    """The heatmap's values, cell texts and each cell's centre in page pixels."""
    return page.evaluate(
        """(selector) => {
            const plot = document.querySelector(selector);
            const trace = plot._fullData[0];
            const xaxis = plot._fullLayout.xaxis, yaxis = plot._fullLayout.yaxis;
            const box = plot.getBoundingClientRect();
            return {
                z: trace.z, text: trace.text, x: trace.x, y: trace.y,
                title: plot._fullLayout.title.text,
                columns: trace.x.map((_, i) => box.left + xaxis._offset + xaxis.l2p(i)),
                rows: trace.y.map((_, i) => box.top + yaxis._offset + yaxis.l2p(i)),
                drawnTexts: Array.from(plot.querySelectorAll('.hm text, g.textpoint text, .heatmaplayer text'))
                    .map((node) => node.textContent),
            };
        }""",
        HEATMAP,
    )


def test_dashboard_in_chromium(playwright_module, voila_url, real_runs_dir, tmp_path):  # noqa: F811
    run = load_run(real_runs_dir / "fer2013-base")
    labels = list(run.outcome.labels)
    matrix = np.asarray(run.outcome.frame.confusion_matrix)
    candidates = [(matrix[i, j], i, j) for i in range(len(labels)) for j in range(len(labels))]
    count, row, column = max(c for c in candidates if 0 < c[0] <= dashboard.GALLERY_PAGE)

    with playwright_module.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            screenshot = tmp_path / "dashboard.png"
            started = time.perf_counter()
            open_dashboard(page, voila_url, errors, screenshot)
            timings = {"heatmap visible after the request": time.perf_counter() - started}
            assert "fer2013-base" not in page.inner_text(".fer-problems")

            state = heatmap_state(page)
            assert len(state["z"]) * len(state["z"][0]) == len(labels) ** 2
            assert state["x"] == labels and state["y"] == labels
            assert state["z"][row][column] == matrix[row, column]
            np.testing.assert_array_equal(state["z"], matrix)
            assert str(count) in state["text"][row][column]
            header = page.inner_text(".fer-run-header")
            assert "fer2013" in header and "paper" in header and f"{run.outcome.num_params:,}" in header

            # the page opens on the run's largest confusion; start from another cell so that the waits
            # below see the click's gallery, not the opening one
            opening = dashboard.largest_confusion(run.outcome)
            page.wait_for_function(
                "(t) => document.querySelector('.fer-gallery-title').innerText.includes(t)",
                arg=f"true {opening[0]} → predicted {opening[1]}",
                timeout=60_000,
            )
            outlined = page.evaluate(
                "(s) => document.querySelector(s)._fullLayout.shapes.map((shape) => [shape.x0, shape.y0])",
                HEATMAP,
            )
            assert outlined == [[labels.index(opening[1]) - 0.5, labels.index(opening[0]) - 0.5]]
            if opening == (labels[row], labels[column]):
                page.mouse.click(state["columns"][row], state["rows"][row])  # its diagonal cell first
                page.wait_for_function(
                    "(t) => document.querySelector('.fer-gallery-title').innerText.includes(t)",
                    arg=f"true {labels[row]} → predicted {labels[row]}",
                    timeout=60_000,
                )
                page.wait_for_timeout(600)  # a second click within plotly's 300 ms is a double click
            page.mouse.click(state["columns"][column], state["rows"][row])
            page.wait_for_function(
                "(t) => document.querySelector('.fer-gallery-title').innerText.includes(t)",
                arg=f"true {labels[row]} → predicted {labels[column]}",
                timeout=60_000,
            )
            page.wait_for_selector(f'.fer-cell-count[data-count="{count}"]', timeout=60_000)
            page.wait_for_function(  # the clicked cell is outlined at once, in the same plot
                """([selector, x0, y0]) => {
                    const shapes = document.querySelector(selector)._fullLayout.shapes;
                    return shapes.length === 1 && shapes[0].x0 === x0 && shapes[0].y0 === y0;
                }""",
                arg=[HEATMAP, column - 0.5, row - 0.5],
                timeout=10_000,
            )
            title = page.inner_text(".fer-gallery-title")
            assert f"true {labels[row]} → predicted {labels[column]}" in title
            page.wait_for_function(
                "(n) => document.querySelectorAll('.fer-gallery .fer-face img').length === n", arg=int(count)
            )
            assert page.locator(".fer-gallery .fer-face").count() == count
            # what the user sees: the clicked cell's faces are exactly its rows of predictions.csv (each
            # face's hover names its media path), wherever the files lie (issue 31, finding 2: FER2013's
            # train / validation / test folders mix in a fixture's test part)
            shown = page.eval_on_selector_all(
                ".fer-gallery .fer-face",
                "faces => faces.map((face) => face.querySelector('.fer-caption[title]').title.split('\\n').pop())",
            )
            predictions = run.predictions
            in_cell = predictions[
                (predictions["true_label"] == labels[row])
                & (predictions["predicted_label"] == labels[column])
            ]
            assert sorted(shown) == sorted(in_cell["media_path"].astype(str))

            started = time.perf_counter()
            page.get_by_role("button", name="recall (row-normalised)").click()
            recall = matrix[row, column] / matrix[row].sum()
            page.wait_for_function(
                """([selector, r, c, value]) => {
                    const plot = document.querySelector(selector);  // null while the new widget renders
                    if (!plot || !plot._fullData || !plot._fullData.length) return false;
                    const z = plot._fullData[0].z;
                    return Math.abs(z[r][c] - value) < 1e-9;
                }""",
                arg=[HEATMAP, int(row), int(column), float(recall)],
                timeout=60_000,
            )
            timings["switch counts → recall"] = time.perf_counter() - started
            state = heatmap_state(page)
            assert state["text"][row][column] == f"{recall:.2f}"
            assert "recall" in state["title"]
            np.testing.assert_allclose(np.asarray(state["z"]).sum(axis=1), 1.0)
            page.wait_for_selector(".fer-curves .js-plotly-plot", timeout=60_000)
            page.wait_for_selector(".fer-compare .js-plotly-plot", timeout=60_000)
            page.wait_for_timeout(1000)
            timings["switch run"] = switch_run(page, real_runs_dir)
            timings["switch frame ↔ video"] = "n/a (FER2013: every face is its own video)"
            print("\n[dashboard timings, seconds; see the module docstring for the conditions]")
            for name, seconds in timings.items():
                print(f"  {name}: {seconds if isinstance(seconds, str) else f'{seconds:.2f}'}")
            assert timings["heatmap visible after the request"] < 120  # sanity only: timings vary with load

            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.stat().st_size > 10_000
            if os.environ.get("FER_DASHBOARD_SCREENSHOT"):
                shutil.copy(screenshot, os.environ["FER_DASHBOARD_SCREENSHOT"])
            assert not [e for e in errors if "Failed to initialize model" in e], errors
        finally:
            browser.close()


def switch_run(page, runs_dir) -> float:
    """Pick the other run in the run menu; wait until the heatmap shows its matrix (counts) and the
    gallery its largest off-diagonal confusion. Returns the seconds it took."""
    other = load_run(runs_dir / "fer2013-reg")
    matrix = np.asarray(other.outcome.frame.confusion_matrix)
    true_label, predicted_label = dashboard.largest_confusion(other.outcome)
    labels = list(other.outcome.labels)
    expected = int(matrix[labels.index(true_label), labels.index(predicted_label)])
    page.get_by_role("button", name="counts").click()
    page.wait_for_function(
        "(s) => { const p = document.querySelector(s); return p && p._fullData && p._fullData[0].zmax !== 1; }",
        arg=HEATMAP,
        timeout=60_000,
    )
    menus = page.evaluate(  # option texts; ipywidgets writes their spaces as no-break spaces
        """() => Array.from(document.querySelectorAll('select')).map(
            (select) => Array.from(select.options).map((option) => option.textContent.replace(/\u00a0/g, ' ')))"""
    )
    # the run menu: every run, no "— none —" entry (that is the comparison menu)
    position = next(
        i for i, texts in enumerate(menus) if len(texts) == 2 and not any("none" in t for t in texts)
    )
    option = next(i for i, text in enumerate(menus[position]) if "seed 1" in text)
    menu = page.locator("select").nth(position)
    started = time.perf_counter()
    menu.select_option(index=option)
    page.wait_for_function(
        """([selector, z]) => {
            const plot = document.querySelector(selector);
            return plot && plot._fullData && JSON.stringify(plot._fullData[0].z) === JSON.stringify(z);
        }""",
        arg=[HEATMAP, matrix.tolist()],
        timeout=60_000,
    )
    page.wait_for_selector(f'.fer-cell-count[data-count="{expected}"]', timeout=60_000)
    seconds = time.perf_counter() - started
    title = page.inner_text(".fer-gallery-title")
    assert f"true {true_label} → predicted {predicted_label}" in title and true_label != predicted_label
    shown = min(expected, dashboard.GALLERY_PAGE)
    page.wait_for_function(  # the thumbnails arrive after the gallery's count and title
        "n => document.querySelectorAll('.fer-gallery .fer-face').length === n", arg=shown, timeout=60_000
    )
    assert page.locator(".fer-gallery .fer-face").count() == shown > 0
    return seconds


def test_closed_pages_leave_at_most_one_kernel(playwright_module, voila_server, tmp_path):
    """Ten page loads, each closed once the dashboard is drawn; the culler shuts the kernels of closed
    pages, so at most one kernel remains (the one culling has not reached yet)."""
    url, server = voila_server
    with playwright_module.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            loads = []
            for _ in range(10):
                page = browser.new_page(viewport={"width": 1400, "height": 1600})
                started = time.perf_counter()
                page.goto(url, timeout=180_000)
                page.wait_for_selector(".fer-run-header", timeout=180_000)
                loads.append(time.perf_counter() - started)
                print(f"  load {len(loads)}: dashboard drawn after {loads[-1]:.1f} s", flush=True)
                page.close()
        finally:
            browser.close()
    peak = len(kernel_processes(server))
    deadline = time.monotonic() + TEST_CULL_IDLE_S + 4 * TEST_CULL_INTERVAL_S + 60
    while len(kernel_processes(server)) > 1 and time.monotonic() < deadline:
        time.sleep(1)
    remaining = len(kernel_processes(server))
    print(
        f"\n[kernels] 10 loads (page drawn after {min(loads):.1f}–{max(loads):.1f} s); kernels right after "
        f"the last close: {peak}; after culling: {remaining}"
    )
    assert remaining <= 1


def test_static_report_renders_offline_in_chromium(playwright_module, real_runs_dir, tmp_path):  # noqa: F811
    from fer_utils.viz.html_report import write_report

    report = write_report(real_runs_dir, tmp_path / "results.html")
    with playwright_module.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(report.as_uri(), wait_until="load", timeout=120_000)
            # per run: counts + recall heatmaps and the curves
            page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 6")
            assert page.evaluate("typeof window.Plotly") == "object"
            assert "build_dashboard" not in page.inner_text("body")
        finally:
            browser.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-m", "browser", "-q"]))
