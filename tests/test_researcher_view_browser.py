"""What a researcher sees, in headless Chromium (issue 21): the report and the Voila dashboard of a run on
1.5 s clips. Every caption's time lies within the clip, no caption is cut so that a number hides, no
console error, and no request leaves 127.0.0.1 (the report: nothing beyond the file itself); Voila's
terminal shows none of its unactionable warnings.

Set ``FER_SCREENSHOTS=/some/folder`` to keep the screenshots."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import numpy as np
import pytest
from missing_resources import MISSING_BROWSER, skip_without_browser
from test_dashboard import LABELS, make_run
from test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, free_port, wait_for_port

from fer_utils.faces.cache_writer import FaceCacheWriter
from fer_utils.faces.frames import Frame
from fer_utils.faces.sample_faces import _index_row
from fer_utils.viz import dashboard, html_report

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLIP_SECONDS, FPS = 1.5, 15
TIME = re.compile(r"(\d+(?:\.\d+)?) s\b")


@pytest.fixture(scope="module")
def playwright_module():
    if not CHROMIUM.exists():
        skip_without_browser(
            f"{CHROMIUM} is missing: install Debian's Chromium (`apt-get install -y chromium`)"
        )
    return pytest.importorskip(
        "playwright.sync_api", reason=f"{MISSING_BROWSER} python playwright is not installed"
    )


@pytest.fixture(scope="module")
def clip_runs(tmp_path_factory):
    """A run over 24 faces of 8 clips of 1.5 s (frames 0, 11 and 22 at 15 fps, with long clip names)."""
    folder = tmp_path_factory.mktemp("clips")
    box = SimpleNamespace(x=1, y=2, w=10, h=10, score=1.0)
    crop = SimpleNamespace(box=box, angle=0.0)
    writer = FaceCacheWriter(folder / "cache", {"dataset": "toy", "image_size": 16})
    for clip in range(8):
        name = f"Actor_{clip:02d}/01-01-0{clip % 3 + 1}-01-02-02-{clip:02d}_long_take.mp4"
        base = {"dataset": "toy", "media_path": name, "label": LABELS[clip % 3], "subject": f"s{clip % 4}"}
        rows = [
            _index_row({**base, "video_id": name}, Frame(index, index * 1000 / FPS, None), crop, "hog")
            for index in (0, 11, 22)
        ]
        writer.add(name, np.full((3, 16, 16), 30 * clip, np.uint8), rows)
    cache = writer.close()
    probabilities = np.random.default_rng(0).dirichlet(np.ones(3), size=len(cache))
    make_run(folder / "runs" / "clips", cache, probabilities, protocol="video")
    return folder / "runs"


def _watch(page, errors: list[str], requests: list[str]) -> None:
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))


def _check_captions(page, selector: str) -> list[str]:
    """Every caption's text, after checking: whole (not cut by its box), times within the clip."""
    captions = page.evaluate(
        """(selector) => Array.from(document.querySelectorAll(selector)).map((node) => ({
            text: node.innerText, cut: node.scrollWidth > node.clientWidth + 1,
            hidden: getComputedStyle(node).textOverflow === 'ellipsis'}))""",
        selector,
    )
    assert captions, f"no caption matches {selector}"
    for caption in captions:
        assert not caption["cut"] and not caption["hidden"], caption
        for seconds in TIME.findall(caption["text"]):
            assert 0 < float(seconds) <= CLIP_SECONDS, caption
    return [caption["text"] for caption in captions]


def _screenshot(page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("FER_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)


def test_the_report_in_chromium_loads_nothing_and_shows_whole_captions(
    playwright_module, clip_runs, tmp_path
):
    page_path = html_report.write_report(clip_runs, tmp_path / "report.html")
    assert not re.search(r'<script[^>]*src="https?://', page_path.read_text())  # no MathJax, no require.js
    with playwright_module.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1600})
            errors, requests = [], []
            _watch(page, errors, requests)
            page.goto(page_path.as_uri())
            page.wait_for_timeout(1500)
            page.evaluate("document.querySelectorAll('details').forEach((d) => d.open = true)")
            texts = _check_captions(page, "figure.fer-thumb figcaption")
            assert all("p = " in text for text in texts) and any(TIME.search(text) for text in texts)
            _screenshot(page, "report.png", tmp_path)
        finally:
            browser.close()
    assert errors == []
    assert all(urlparse(url).scheme in ("file", "data", "blob", "about") for url in requests), requests


def test_the_dashboard_in_chromium_stays_on_loopback_with_captions_in_seconds(
    playwright_module, clip_runs, tmp_path
):
    port = free_port()
    log = (tmp_path / "voila.log").open("w")
    environment = dashboard.voila_environment({**os.environ, dashboard.RUNS_DIR_ENV: str(clip_runs)})
    command = dashboard.voila_command(dashboard.DASHBOARD_NOTEBOOK, port, "127.0.0.1", open_browser=False)
    process = subprocess.Popen(command, env=environment, cwd=dashboard.NOTEBOOKS_DIR, stdout=log, stderr=log)
    try:
        wait_for_port(port, process)
        with playwright_module.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 2000})
                errors, requests = [], []
                _watch(page, errors, requests)
                page.goto(f"http://127.0.0.1:{port}/", timeout=180_000)
                page.wait_for_selector(".fer-gallery .fer-caption", timeout=180_000)
                page.wait_for_timeout(1000)
                texts = _check_captions(page, ".fer-gallery .fer-caption")
                assert any(TIME.search(text) for text in texts) and any("p = " in text for text in texts)
                _screenshot(page, "dashboard.png", tmp_path)
            finally:
                browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    served = (tmp_path / "voila.log").read_text()
    for noise in ("not trusted", "without encryption", "websocket_ping_timeout"):
        assert noise not in served, served  # `fer dashboard` prints only what asks something of the user
    outside = [url for url in requests if urlparse(url).hostname not in (None, "127.0.0.1")]
    assert outside == [] and [error for error in errors if "favicon" not in error] == [], (outside, errors)
    hosts = {
        urlparse(url).hostname for url in requests if urlparse(url).scheme in ("http", "https", "ws", "wss")
    }
    assert hosts <= {"127.0.0.1"}, hosts
