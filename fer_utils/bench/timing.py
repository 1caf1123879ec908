"""What every ``fer bench`` section shares: how calls are timed, the fresh process a measurement runs in,
the face size it measures at, and the description of the machine (CPU features, package versions)."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

#: Face size (pixels) the benchmark trains and times the paper CNN at.
IMAGE_SIZE = 180


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


def cpu_info() -> dict:
    """CPU model, core count and the SIMD / int8 dot-product features that matter for inference."""
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine()):
                model = line.split(":", 1)[1].strip()
            if line.startswith(("flags", "Features")):
                flags.update(line.split(":", 1)[1].split())
    except OSError:
        pass
    features = {
        "avx2": "avx2" in flags,
        "fma": "fma" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "avx_vnni": "avx_vnni" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_int8": "amx_int8" in flags,
        "arm_dotprod": "asimddp" in flags,
        "arm_i8mm": "i8mm" in flags,
    }
    features["int8_dot_product"] = any(
        features[name] for name in ("avx512_vnni", "avx_vnni", "amx_int8", "arm_dotprod", "arm_i8mm")
    )
    return {"model": model, "cores": os.cpu_count(), "machine": platform.machine(), "features": features}


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
