"""The compute floor of the paper CNN: multiply-adds per face counted from its layers, and this machine's
measured fp32 matrix-multiply rate (1 thread, all threads) → the floor in ms/face."""

from __future__ import annotations

import os

import numpy as np

from fer_utils.bench.timing import time_calls


def count_multiply_adds(model) -> list[dict]:
    """Multiply-adds per face of each convolution and Dense layer (conv: H·W·k·k·Cin·Cout; depthwise:
    H·W·k·k·Cin·multiplier; separable: depthwise + H·W·Cin·multiplier·Cout; dense: in·out). Elementwise
    layers (BatchNorm, activations, pooling, additions) are not counted.

    Args:
        model: a built Keras model.

    Returns:
        One dict per counted layer: name, kind, output shape, multiply-adds.
    """
    from keras import layers

    counted = []
    for layer in model.layers:
        if isinstance(layer, layers.SeparableConv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_h, kernel_w, channels_in, multiplier = layer.depthwise_kernel.shape
            depthwise = kernel_h * kernel_w * channels_in * multiplier
            macs = height * width * (depthwise + channels_in * multiplier * channels_out)
        elif isinstance(layer, layers.DepthwiseConv2D):
            _, height, width, _ = layer.output.shape
            kernel_h, kernel_w, channels_in, multiplier = layer.kernel.shape
            macs = height * width * kernel_h * kernel_w * channels_in * multiplier
        elif isinstance(layer, layers.Conv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_h, kernel_w, channels_in, _ = layer.kernel.shape
            macs = height * width * kernel_h * kernel_w * channels_in * channels_out
        elif isinstance(layer, layers.Dense):
            inputs, outputs = layer.kernel.shape
            macs = inputs * outputs
        else:
            continue
        counted.append(
            {
                "layer": layer.name,
                "kind": type(layer).__name__,
                "output_shape": [int(d) for d in layer.output.shape[1:]],
                "multiply_adds": int(macs),
            }
        )
    return counted


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
