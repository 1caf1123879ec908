"""tests/missing_resources.py: a fast test may not need real data, and under CI a test that skips for want
of data or a browser fails (pytester runs a tiny generated test file with the plugin)."""

from __future__ import annotations

import pytest

TESTS = """
import pytest
from missing_resources import MISSING_BROWSER, require_data, skip_without_browser


@pytest.fixture()
def absent_data(tmp_path):
    return require_data(tmp_path / "nowhere", "toy data")


def test_needs_data(absent_data):
    pass


def test_needs_a_browser():
    skip_without_browser("chromium is missing")


def test_needs_playwright():
    pytest.importorskip("no_such_module_here", reason=f"{MISSING_BROWSER} playwright is not installed")


def test_skips_for_another_reason():
    pytest.skip("only on Windows")


def test_passes():
    pass
"""


@pytest.mark.parametrize("ci", ["", "0", "false"])
def test_without_ci_a_missing_resource_is_a_skip(pytester, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_toy=TESTS)
    result = pytester.runpytest("-p", "missing_resources", "-rs")
    result.assert_outcomes(passed=1, skipped=4)
    result.stdout.fnmatch_lines(["*missing real data: toy data not found at*"])


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_missing_resource_fails_and_other_skips_stay_skips(pytester, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_toy=TESTS)
    result = pytester.runpytest("-p", "missing_resources", "-rs")
    result.assert_outcomes(passed=1, skipped=1, failed=2, errors=1)  # the fixture's skip is a setup error
    result.stdout.fnmatch_lines(["*CI must not skip for want of data or a browser: missing browser:*"])
    assert result.ret != 0


def test_a_fast_test_that_requests_a_data_fixture_is_refused(pytester, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")
    pytester.makepyfile(
        test_toy="""
import pytest

@pytest.fixture()
def fer2013_root(tmp_path):
    return tmp_path

def test_fast(fer2013_root):
    pass

@pytest.mark.slow
def test_slow(fer2013_root):
    pass
"""
    )
    result = pytester.runpytest("-p", "missing_resources")
    result.stderr.fnmatch_lines(["*fast tests must run without ../shared/data*test_toy.py::test_fast"])
    assert "test_slow" not in result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
