"""The crash reporter names the test that was running when pytest itself died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from crash_capture import crash_summary

TESTS_DIR = Path(__file__).parent

DYING_TESTS = """
import os, threading, time

def test_passes():
    pass

def test_dies_in_native_code():
    threading.Thread(target=time.sleep, args=(30,), name="bystander", daemon=True).start()
    os.abort()

def test_never_reached():
    pass
"""


def _run_pytest(tmp_path: Path, source: str) -> tuple[subprocess.CompletedProcess, Path]:
    (tmp_path / "test_subject.py").write_text(source)
    crash_dir = tmp_path / "crash"
    env = {**os.environ, "FER_TEST_CRASH_DIR": str(crash_dir), "PYTHONPATH": str(TESTS_DIR)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "crash_capture",
            "-p",
            "no:cacheprovider",
            "-q",
            "test_subject.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, crash_dir


def test_a_native_crash_is_reported_with_the_running_test(tmp_path):
    result, crash_dir = _run_pytest(tmp_path, DYING_TESTS)
    assert result.returncode == -signal.SIGABRT, result.stdout + result.stderr
    summary = crash_summary(crash_dir)
    assert summary.startswith("pytest died while running: test_subject.py::test_dies_in_native_code")
    assert "Fatal Python error: Aborted" in summary
    assert "in test_dies_in_native_code" in summary
    assert "Extension modules" not in summary
    assert len(summary) < 4000  # fits a CI log's tail with room to spare


def test_a_clean_run_reports_nothing(tmp_path):
    result, crash_dir = _run_pytest(tmp_path, "def test_passes():\n    pass\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (crash_dir / "running-test.txt").read_text().strip() == "test_subject.py::test_passes"
    assert crash_summary(crash_dir) == ""
