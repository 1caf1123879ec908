"""What every ``fer bench`` section shares: how calls are timed, the fresh process a measurement runs in,
the face size it measures at, and the description of the machine (CPU features, package versions)."""

from __future__ import annotations

import platform
import statistics
import time

from fer_utils.faces.detection import PAPER_FACE_SIZE
from fer_utils.machine import cpu_info  # noqa: F401 (re-exported: the bench records it)

#: Face size (pixels) the benchmark trains and times the paper CNN at: the paper's.
IMAGE_SIZE = PAPER_FACE_SIZE


def timing_stats(values_ms) -> dict:
    """Median, min and max of a list of timings (ms) and how many there were."""
    values = [float(v) for v in values_ms]
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
    }


def time_calls(function, warmup: int, repeats: int) -> dict:
    """Call ``function`` ``warmup`` times, then time ``repeats`` calls: :func:`timing_stats` in ms."""
    for _ in range(warmup):
        function()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append((time.perf_counter() - start) * 1e3)
    return timing_stats(timings)


def versions() -> dict:
    """Python's and the numerical packages' versions (those installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("tensorflow-cpu", "tensorflow", "keras", "onnxruntime", "tf2onnx", "onnx", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def in_fresh_process(function, *args):
    """Run ``function(*args)`` in a new (spawned) Python process, so TensorFlow's thread pools and
    environment switches take effect from the start."""
    from fer_utils.parallel import process_pool

    with process_pool(1, "spawn") as pool:
        return pool.submit(function, *args).result()
