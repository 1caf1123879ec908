"""Issue 14, second half: workers that die with their parent, full disks as one message, every input
accounted for, duplicate content flagged, and tracebacks turned into messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

psutil = pytest.importorskip("psutil", reason="psutil lists a process's workers")


def _fer_process(*args, cwd):
    """``fer ARGS`` in its own process group (so the test can only ever signal what it started)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "fer_utils.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _living(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_for_workers(process, count, timeout=120.0) -> list[int]:
    """Pids of ``process``'s descendants once at least ``count`` exist (pool workers)."""
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"fer ended (rc {process.returncode}) before its workers were seen")
        children = parent.children(recursive=True)
        if len(children) >= count:
            time.sleep(1.0)  # let them start working
            return [child.pid for child in parent.children(recursive=True)]
        time.sleep(0.2)
    pytest.fail(f"fer did not start {count} workers in {timeout} s")


def _assert_gone_within(pids, seconds=5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _living(pids):
        time.sleep(0.1)
    left = _living(pids)
    for pid in left:  # clean up after a failure: only the processes this test started
        os.kill(pid, signal.SIGKILL)
    assert not left, f"orphaned workers still alive {seconds} s after their parent ended: {left}"


@pytest.fixture()
def ravdess_tree(pyfeat_media, tmp_path):
    from fer_utils.data.datasets import pyfeat_ravdess_tree

    return pyfeat_ravdess_tree(tmp_path / "ravdess", pyfeat_media)


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_preprocess_workers_die_with_their_parent(ravdess_tree, tmp_path, signal_number):
    """kill -9 (or Ctrl-C) of `fer preprocess` leaves no worker process alive after 5 s."""
    process = _fer_process(
        "preprocess", "--dataset", "ravdess", "--root", str(ravdess_tree), "--cache-root",
        str(tmp_path / "cache"), "--workers", "2", "--no-progress", "--candidates", "6", cwd=tmp_path,
    )  # fmt: skip
    try:
        workers = _wait_for_workers(process, 2)
        os.kill(process.pid, signal_number)
        process.wait(timeout=30)
        _assert_gone_within(workers)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _sleep_item(seconds):
    time.sleep(seconds)
    return seconds


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_pool_workers_end_with_their_parent_even_mid_item(tmp_path, signal_number):
    """parallel_map's workers die with a kill -9'd parent; Ctrl-C ends parent and workers at once
    (no waiting for the items they run)."""
    script = (
        "import time\n"
        "from fer_utils.parallel import parallel_map\n"
        "from test_integrity_faults import _sleep_item\n"
        "for method in ('fork', 'spawn'):\n"
        "    list(parallel_map(_sleep_item, [0.0, 0.0], workers=2, start_method=method))\n"
        "print('ready', flush=True)\n"
        "list(parallel_map(_sleep_item, [600.0] * 2, workers=2, start_method='spawn'))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), *sys.path])}
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        workers = _wait_for_workers(process, 2)
        os.kill(process.pid, signal_number)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("the parent was still waiting for its workers' items 10 s after the signal")
        _assert_gone_within(workers)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
