"""Real data and the browser belong to the slow tier, and CI must have them.

- A fast test (not ``@pytest.mark.slow``) that requests a real-data fixture (:data:`DATA_FIXTURES`) is refused
  at collection: the fast tier runs on a fresh clone, without ``../shared/data``, and skips nothing for want
  of data.
- A test that skips because the data or the browser is missing says so with :data:`MISSING_DATA` /
  :data:`MISSING_BROWSER` at the start of its reason (:func:`require_data`, :func:`skip_without_browser`).
  With ``CI`` set (any value but empty, ``0``, ``false``, ``no``), such a skip fails the test: CI has
  ``../shared`` and Chromium, so a green run that skipped them would be a run that tested less.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MISSING_DATA = "missing real data:"
MISSING_BROWSER = "missing browser:"
#: The conftest fixtures that read ``../shared/data`` (directly or through another of them).
DATA_FIXTURES = frozenset({"pyfeat_media", "ravdess_actor05", "fer2013_root", "fer2013_small_cache"})


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_data(path: Path, what: str) -> Path:
    """``path``, or skip the test saying which real data is missing (a failure under CI)."""
    if not path.exists():
        pytest.skip(
            f"{MISSING_DATA} {what} not found at {path}: real data lives in ../shared/data beside the "
            "checkout (or set FER_DATA_ROOT); CI has it, a fresh clone may not"
        )
    return path


def skip_without_browser(why: str) -> None:
    """Skip the test because the browser (or its driver) is missing (a failure under CI)."""
    pytest.skip(f"{MISSING_BROWSER} {why}")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
    return reason.removeprefix("Skipped: ")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    fast_with_data = [
        item.nodeid
        for item in items
        if item.get_closest_marker("slow") is None and DATA_FIXTURES & set(getattr(item, "fixturenames", ()))
    ]
    if fast_with_data:
        raise pytest.UsageError(
            "fast tests must run without ../shared/data; mark these @pytest.mark.slow or give them a "
            "stand-in: " + ", ".join(fast_with_data)
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and in_ci()):
        return
    reason = _skip_reason(report)
    if reason.startswith((MISSING_DATA, MISSING_BROWSER)):
        report.outcome = "failed"
        report.longrepr = f"CI is set, and CI must not skip for want of data or a browser: {reason}"
