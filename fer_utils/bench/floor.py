"""The compute floor of the paper CNN: multiply-adds per face counted from its layers, and this machine's
measured fp32 matrix-multiply rate (1 thread, all threads) → the floor in ms/face."""

from __future__ import annotations

import os

import numpy as np

from fer_utils.bench.timing import time_calls
from fer_utils.training.architectures import count_multiply_adds  # counted where the models are built


def matmul_rate(threads: int, size: int = 1024, repeats: int = 10) -> dict:
    """Measured fp32 matrix-multiply rate (GFLOP/s; median/min/max) with ``threads`` BLAS threads."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    left = rng.random((size, size), dtype=np.float32)
    right = rng.random((size, size), dtype=np.float32)
    with threadpool_limits(threads):
        timings = time_calls(lambda: left @ right, warmup=2, repeats=repeats)
    flops = 2.0 * size**3
    return {
        "median": flops / (timings["median"] * 1e-3) / 1e9,
        "min": flops / (timings["max"] * 1e-3) / 1e9,
        "max": flops / (timings["min"] * 1e-3) / 1e9,
        "runs": timings["runs"],
        "matrix_size": size,
        "threads": threads,
    }


def flop_floor(model, repeats: int) -> dict:
    """Multiply-adds per face and the resulting compute floor (ms/face) at 1 thread and all threads."""
    layers = count_multiply_adds(model)
    macs = sum(layer["multiply_adds"] for layer in layers)
    cores = os.cpu_count() or 1
    rates = {"1": matmul_rate(1, repeats=repeats), "all": matmul_rate(cores, repeats=repeats)}
    floor_ms = {key: 2.0 * macs / (rate["median"] * 1e9) * 1e3 for key, rate in rates.items()}
    return {
        "multiply_adds_per_face": int(macs),
        "flops_per_face": int(2 * macs),
        "layers": layers,
        "parameters": int(model.count_params()),
        "matmul_gflops": rates,
        "floor_ms_per_face": floor_ms,
        "threads_all": cores,
    }
