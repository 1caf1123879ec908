"""Say which test was running when pytest itself died (SIGABRT/SIGSEGV in native code).

Pytest's console tail after such a death is the faulthandler dump of every thread plus a 6 kB list of
extension modules, so the test's name scrolls out of a CI log's tail. With ``FER_TEST_CRASH_DIR`` set
(the Makefile sets it), this plugin writes the running test's id and the full dump to files there, and
``python tests/crash_capture.py DIR`` (which ``make test`` runs when pytest fails) prints them compactly.
It prints nothing when pytest ended without a crash.
"""

from __future__ import annotations

import faulthandler
import os
import sys
from pathlib import Path

import pytest

RUNNING_TEST = "running-test.txt"
DUMP = "faulthandler.txt"
FRAMES_PER_THREAD = 12


def _crash_dir() -> Path | None:
    value = os.environ.get("FER_TEST_CRASH_DIR")
    return Path(value) if value else None


@pytest.hookimpl(trylast=True)  # after pytest's own faulthandler plugin, which points the dump at stderr
def pytest_configure(config):
    crash_dir = _crash_dir()
    if crash_dir is None or hasattr(config, "workerinput"):
        return
    crash_dir.mkdir(parents=True, exist_ok=True)
    for stale in (RUNNING_TEST, DUMP):
        (crash_dir / stale).unlink(missing_ok=True)
    config._fer_crash_dump = open(crash_dir / DUMP, "w")  # noqa: SIM115 (stays open for the session)
    faulthandler.enable(file=config._fer_crash_dump, all_threads=True)


def pytest_runtest_logstart(nodeid, location):
    crash_dir = _crash_dir()
    if crash_dir is not None and crash_dir.is_dir():
        (crash_dir / RUNNING_TEST).write_text(nodeid + "\n")


def crash_summary(crash_dir: Path) -> str:
    """The running test and the top frames of each thread from the dump ('' if nothing crashed)."""
    dump_path = crash_dir / DUMP
    dump = dump_path.read_text(errors="replace") if dump_path.exists() else ""
    if not dump.strip():
        return ""
    running = crash_dir / RUNNING_TEST
    test = running.read_text().strip() if running.exists() else "(none started)"
    lines = [f"pytest died while running: {test}"]
    frames = 0
    for line in dump.splitlines():
        if line.startswith("Extension modules:"):
            break
        if line.startswith("  File "):
            frames += 1
            if frames <= FRAMES_PER_THREAD:
                lines.append(line)
            elif frames == FRAMES_PER_THREAD + 1:
                lines.append("  ...")
        elif line.strip():
            frames = 0  # a thread header or the error line
            lines.append(line)
    return "\n".join(lines)


if __name__ == "__main__":
    summary = crash_summary(Path(sys.argv[1] if len(sys.argv) > 1 else ".pytest-crash"))
    if summary:
        print("\n===== crash report =====\n" + summary, file=sys.stderr)
