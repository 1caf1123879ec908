"""Measured speed of the paper CNN on this machine: ``fer bench [--quick]``.

Writes ``benchmarks.json`` and ``benchmarks.md`` (default folder ``reports/benchmarks``). Every timing
is the median of repeated runs after warm-up, with min and max. Sections:

* **floor** — the model's multiply-adds per face, counted from its layers, and this machine's measured
  fp32 matrix-multiply rate (1 thread, all threads) → the compute floor in ms/face. Latencies are also
  given as a ratio to that floor.
* **inference** — batch 1 and 64, 1 thread and all threads: Keras (``model(x, training=False)`` in a
  ``tf.function``, each thread count in its own process), TFLite fp32 and int8 (XNNPACK), ONNX Runtime
  fp32 and int8; the agreement of each exported model with Keras on the same real test faces.
* **int8** — why int8 is (or is not) faster here: the CPU's int8 dot-product features, the ops of each
  TFLite model, whether XNNPACK runs them (timings with and without the delegate) and which ONNX Runtime
  kernels run (its profiler).
* **rescale folding** — the 1/255 rescaling folded into the first convolution vs kept as an op.
* **preprocessing** — from :func:`fer_utils.bench.preprocessing.benchmark_preprocessing` on the real clips.
* **training** — images/s of steady ``model.fit`` epochs: a default ``model.fit`` on NumPy arrays vs the
  suite's tuned settings fed from in-memory tensors and from the suite's ``tf.data`` pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fer_utils.training import rundir

#: Rates of the benchmark in each mode: (warm-up calls, timed calls) per batch size, matmul repeats,
#: training faces per class and epochs.
MODES = {
    "quick": {
        "warmup": {1: 5, 64: 1},
        "repeats": {1: 25, 64: 4},
        "matmul_repeats": 5,
        "faces_per_class": 16,
        "epochs": 2,
        "test_faces": 210,
    },
    "full": {
        "warmup": {1: 20, 64: 3},
        "repeats": {1: 200, 64: 20},
        "matmul_repeats": 15,
        "faces_per_class": 120,
        "epochs": 4,
        "test_faces": 700,
    },
}
IMAGE_SIZE = 180
BATCH_SIZES = (1, 64)
#: The suite's tuned training settings (measured by the training section).
TUNED_TRAINING_ENV = {"TF_ENABLE_ONEDNN_OPTS": "1"}


# ------------------------------------------------------------------------------------------ utilities


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


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("tensorflow-cpu", "tensorflow", "keras", "onnxruntime", "tf2onnx", "onnx", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


# ------------------------------------------------------------------------------------------ FLOP floor


def count_multiply_adds(model) -> list[dict]:
    """Multiply-adds per face of each Conv2D / Dense layer (conv: H·W·k·k·Cin·Cout; dense: in·out).

    Args:
        model: a built Keras model.

    Returns:
        One dict per counted layer: name, kind, output shape, multiply-adds.
    """
    from keras import layers

    counted = []
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
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


# ---------------------------------------------------------------------------------- inference engines


def _keras_worker(
    model_path: str, threads: int, warmup: dict, repeats: dict, faces: np.ndarray
) -> list[dict]:
    """In a fresh process: Keras ``model(x, training=False)`` in a ``tf.function`` at ``threads``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    model = keras.saving.load_model(model_path, compile=False)
    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    rows = []
    for batch in BATCH_SIZES:
        data = tf.constant(_tile(faces, batch).astype(np.float32))
        timing = time_calls(lambda data=data: call(data).numpy(), warmup[batch], repeats[batch])
        rows.append(
            {"engine": "keras", "precision": "fp32", "batch": batch, "threads": threads, "ms": timing}
        )
    return rows


def _in_fresh_process(function, *args):
    """Run ``function(*args)`` in a new (spawned) Python process, so TensorFlow's thread pools and
    environment switches take effect from the start."""
    from fer_utils.parallel import process_pool

    with process_pool(1, "spawn") as pool:
        return pool.submit(function, *args).result()


def _tile(faces: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` faces ``(batch, s, s, 1)`` drawn cyclically from ``faces``."""
    index = np.arange(batch) % len(faces)
    return faces[index][..., None] if faces.ndim == 3 else faces[index]


def _tflite_timer(model_path: Path, threads: int, batch: int, faces: np.ndarray, xnnpack: bool = True):
    from fer_utils.deploy import tflite_interpreter

    interpreter = tflite_interpreter(model_path, threads, xnnpack=xnnpack)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], [batch, *detail["shape"][1:]])
    interpreter.allocate_tensors()
    data = _tile(faces, batch).astype(detail["dtype"])
    output = interpreter.get_output_details()[0]["index"]

    def call():
        interpreter.set_tensor(detail["index"], data)
        interpreter.invoke()
        return interpreter.get_tensor(output)

    return call


def _onnx_timer(model_path: Path, threads: int, batch: int, faces: np.ndarray):
    from fer_utils.deploy import onnx_session

    session = onnx_session(model_path, threads)
    name = session.get_inputs()[0].name
    data = _tile(faces, batch).astype(np.float32)
    return lambda: session.run(None, {name: data})


def export_all(model, workdir: Path, calibration: np.ndarray, labels: list[str]) -> dict:
    """Export the benchmark model in every format (plus an ONNX int8 and an unfolded ONNX)."""
    from fer_utils.deploy import export_model, export_onnx

    paths = {
        "tflite-fp32": export_model(model, "tflite", workdir / "model.tflite", labels),
        "tflite-int8": export_model(model, "tflite-int8", workdir / "model_int8.tflite", labels, calibration),
        "onnx-fp32": export_model(model, "onnx", workdir / "model.onnx", labels),
        "onnx-fp32-unfolded": export_onnx(model, workdir / "model_unfolded.onnx"),
    }
    try:
        paths["onnx-int8"] = quantize_onnx(paths["onnx-fp32"], workdir / "model_int8.onnx", calibration)
    except Exception as error:  # onnxruntime.quantization is optional tooling
        print(f"  ONNX int8 quantization unavailable: {error}", file=sys.stderr)
    return paths


def quantize_onnx(fp32_path: Path, out_path: Path, calibration: np.ndarray) -> Path:
    """Static int8 quantization (QDQ, per-channel weights) of an ONNX model with ONNX Runtime's tools."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration[:, :, :, None].astype(np.float32)[:, None])

        def get_next(self):
            item = next(self.items, None)
            return None if item is None else {"face": item}

    quantize_static(
        str(fp32_path),
        str(out_path),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out_path


def benchmark_inference(
    model_path: Path, paths: dict, faces: np.ndarray, mode: dict, floor: dict
) -> list[dict]:
    """Latency of every engine × batch × thread count, with per-face figures and floor ratios."""
    cores = os.cpu_count() or 1
    thread_counts = sorted({1, cores})
    rows = []
    for threads in thread_counts:
        rows += _in_fresh_process(
            _keras_worker, str(model_path), threads, mode["warmup"], mode["repeats"], faces
        )
    engines = [
        ("tflite", "fp32", "tflite-fp32"),
        ("tflite", "int8", "tflite-int8"),
        ("onnxruntime", "fp32", "onnx-fp32"),
        ("onnxruntime", "int8", "onnx-int8"),
    ]
    for engine, precision, key in engines:
        if key not in paths:
            continue
        for threads in thread_counts:
            for batch in BATCH_SIZES:
                if engine == "tflite":
                    call = _tflite_timer(paths[key], threads, batch, faces)
                else:
                    call = _onnx_timer(paths[key], threads, batch, faces)
                timing = time_calls(call, mode["warmup"][batch], mode["repeats"][batch])
                rows.append(
                    {
                        "engine": engine,
                        "precision": precision,
                        "batch": batch,
                        "threads": threads,
                        "ms": timing,
                    }
                )
    for row in rows:
        per_face = row["ms"]["median"] / row["batch"]
        floor_ms = floor["floor_ms_per_face"]["1" if row["threads"] == 1 else "all"]
        row["ms_per_face"] = per_face
        row["faces_per_s"] = 1e3 / per_face
        row["ratio_to_floor"] = per_face / floor_ms
    return rows


def benchmark_accuracy(
    model_path: Path, paths: dict, faces: np.ndarray, labels_true: np.ndarray, labels: list[str]
) -> dict:
    """Agreement (same predicted class) and accuracy of each exported model vs Keras on test faces."""
    from fer_utils.deploy import load_predictor

    keras_predictor = load_predictor(model_path)
    reference = keras_predictor.predict_proba(faces)
    names = np.array(labels)
    keras_accuracy = float((names[reference.argmax(axis=1)] == labels_true).mean())
    rows = [{"model": "keras", "agreement": 1.0, "accuracy": keras_accuracy, "accuracy_delta": 0.0}]
    for key in ("tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8"):
        if key not in paths:
            continue
        probabilities = load_predictor(paths[key], num_threads=1).predict_proba(faces)
        accuracy = float((names[probabilities.argmax(axis=1)] == labels_true).mean())
        rows.append(
            {
                "model": key,
                "agreement": float((probabilities.argmax(axis=1) == reference.argmax(axis=1)).mean()),
                "accuracy": accuracy,
                "accuracy_delta": accuracy - keras_accuracy,
                "max_probability_difference": float(np.abs(probabilities - reference).max()),
            }
        )
    return {"test_faces": int(len(faces)), "rows": rows}


# ---------------------------------------------------------------------------------- int8 investigation


def tflite_ops(model_path: Path) -> list[str]:
    """The operators of a TFLite model's main graph, in execution order (``DELEGATE`` = XNNPACK)."""
    from fer_utils.deploy import tflite_interpreter

    interpreter = tflite_interpreter(model_path, 1)
    interpreter.allocate_tensors()
    return [op["op_name"] for op in interpreter._get_ops_details()]


def onnx_kernel_profile(model_path: Path, faces: np.ndarray, runs: int = 20) -> list[dict]:
    """Time per ONNX Runtime node kind at batch 1, one thread (from ORT's profiler), largest first."""
    from fer_utils.deploy import onnx_session

    with tempfile.TemporaryDirectory() as folder:
        session = onnx_session(model_path, 1, profile_prefix=str(Path(folder) / "ort"))
        name = session.get_inputs()[0].name
        data = _tile(faces, 1).astype(np.float32)
        for _ in range(runs):
            session.run(None, {name: data})
        profile = json.loads(Path(session.end_profiling()).read_text())
    totals: dict[str, dict] = {}
    for event in profile:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        args = event.get("args", {})
        key = args.get("op_name", "?")
        entry = totals.setdefault(key, {"op": key, "provider": args.get("provider"), "us": 0.0, "calls": 0})
        entry["us"] += float(event.get("dur", 0))
        entry["calls"] += 1
    rows = sorted(totals.values(), key=lambda row: -row["us"])
    for row in rows:
        row["us_per_inference"] = row.pop("us") / runs
        row["calls"] = row["calls"] // runs
    return rows


def int8_investigation(paths: dict, faces: np.ndarray, mode: dict, cpu: dict) -> dict:
    """Why int8 is (or is not) faster: ops, delegate coverage, kernels, and the CPU's int8 features."""
    findings = {"cpu_int8_features": cpu["features"]}
    warmup, repeats = mode["warmup"][1], mode["repeats"][1]
    for key in ("tflite-fp32", "tflite-int8"):
        ops = tflite_ops(paths[key])
        timings = {
            "xnnpack": time_calls(_tflite_timer(paths[key], 1, 1, faces), warmup, repeats),
            "builtin_kernels": time_calls(
                _tflite_timer(paths[key], 1, 1, faces, xnnpack=False), warmup, repeats
            ),
        }
        findings[key] = {
            "ops": [op for op in ops if op != "DELEGATE"],
            "xnnpack_partitions": ops.count("DELEGATE"),
            "batch1_1thread_ms": timings,
        }
    for key in ("onnx-fp32", "onnx-int8"):
        if key in paths:
            findings[key] = {"kernels": onnx_kernel_profile(paths[key], faces)}
    return findings


def rescale_folding(paths: dict, faces: np.ndarray, mode: dict) -> dict:
    """ONNX Runtime batch-1, one-thread latency with the 1/255 rescaling folded vs kept as an op."""
    warmup, repeats = mode["warmup"][1], mode["repeats"][1]
    kept = time_calls(_onnx_timer(paths["onnx-fp32-unfolded"], 1, 1, faces), warmup, repeats)
    folded = time_calls(_onnx_timer(paths["onnx-fp32"], 1, 1, faces), warmup, repeats)
    return {
        "engine": "onnxruntime fp32, batch 1, 1 thread",
        "rescale_kept_ms": kept,
        "rescale_folded_ms": folded,
        "saved_ms": kept["median"] - folded["median"],
        "note": "the TFLite converter already fuses the rescaling multiply into the first convolution",
    }


# ------------------------------------------------------------------------------------------ training


def _configure_training_threads(tuned: bool):
    """TensorFlow with the suite's tuned settings (oneDNN on, intra-op threads = cores, inter-op 1) or its
    defaults; returns the ``tensorflow`` module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if tuned:
        os.environ.update(TUNED_TRAINING_ENV)
    else:
        os.environ.pop("TF_ENABLE_ONEDNN_OPTS", None)
    import tensorflow as tf

    if tuned:
        tf.config.threading.set_intra_op_parallelism_threads(os.cpu_count() or 1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf


def _training_feed(cache, train_ids, targets, feed: str, tuned: bool, batch_size: int) -> tuple:
    """``(fit data, fit kwargs)`` for one feeding style (see :func:`_train_worker`)."""
    import tensorflow as tf

    from fer_utils.training.train import make_dataset

    if feed == "numpy":
        faces = np.asarray(cache.faces(train_ids))[..., None].astype(np.float32)
        return faces, {"y": targets, "batch_size": batch_size, "shuffle": True}
    if feed == "memory":
        faces = tf.constant(np.asarray(cache.faces(train_ids))[..., None])
        dataset = tf.data.Dataset.from_tensor_slices((faces, tf.constant(targets)))
        data = dataset.shuffle(len(targets), seed=0).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    else:
        augment = feed == "augmented"
        data = make_dataset(cache, train_ids, targets, batch_size, shuffle=True, seed=0, augment=augment)
    if tuned:
        options = tf.data.Options()
        options.threading.private_threadpool_size = os.cpu_count() or 1
        options.threading.max_intra_op_parallelism = 1
        data = data.with_options(options)
    return data, {}


def _timed_fit(model, data, kwargs: dict, epochs: int) -> list[float]:
    """Seconds of each epoch of ``model.fit``."""
    import keras

    seconds: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    model.fit(data, epochs=epochs, verbose=0, callbacks=[EpochTimer()], **kwargs)
    return seconds


def _train_worker(
    cache_dir: str,
    train_ids,
    targets,
    feed: str,
    tuned: bool,
    epochs: int,
    batch_size: int,
    save_to: str | None,
) -> dict:
    """In a fresh process: images/s of each ``model.fit`` epoch for one feeding style.

    ``feed``: ``"numpy"`` (arrays in RAM, Keras' own adapter), ``"memory"`` (a ``tf.data`` pipeline over
    in-memory tensors), ``"pipeline"`` (the suite's :func:`fer_utils.training.train.make_dataset` from the
    cache) or ``"augmented"`` (the same with the recipes' on-the-fly augmentation).
    ``tuned``: the suite's settings (oneDNN on, intra-op threads = cores, inter-op 1, tf.data's private
    thread pool) instead of TensorFlow's defaults.
    """
    _configure_training_threads(tuned)
    import keras

    from fer_utils.faces.cache import FaceCache
    from fer_utils.training.model import build_paper_cnn

    keras.utils.set_random_seed(0)
    cache = FaceCache(cache_dir)
    train_ids, targets = np.asarray(train_ids), np.asarray(targets, dtype=np.int32)
    model = build_paper_cnn(int(targets.max()) + 1, cache.image_size)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    data, kwargs = _training_feed(cache, train_ids, targets, feed, tuned, batch_size)
    epoch_seconds = _timed_fit(model, data, kwargs, epochs)
    if save_to:
        model.save(save_to)
    rates = [len(train_ids) / seconds for seconds in epoch_seconds]
    steady = rates[1:] or rates
    return {
        "feed": feed,
        "tuned": tuned,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "images": int(len(train_ids)),
        "epochs": epochs,
        "first_epoch_images_per_s": rates[0],
        "steady_images_per_s": timing_stats(steady),
    }


def benchmark_training(cache_dir: Path, train_ids, targets, mode: dict, save_to: Path) -> dict:
    """Default ``model.fit`` vs the suite's tuned settings (in-memory tensors and the tf.data pipeline)."""
    variants = [("numpy", False), ("memory", True), ("pipeline", True), ("augmented", True)]
    rows = []
    for feed, tuned in variants:
        save = str(save_to) if (feed, tuned) == ("pipeline", True) else None
        rows.append(
            _in_fresh_process(
                _train_worker, str(cache_dir), train_ids, targets, feed, tuned, mode["epochs"], 32, save
            )
        )
    by = {row["feed"]: row["steady_images_per_s"]["median"] for row in rows}
    return {
        "batch_size": 32,
        "image_size": IMAGE_SIZE,
        "rows": rows,
        "pipeline_overhead": by["memory"] / by["pipeline"] - 1.0,
        "speedup_vs_default_fit": by["pipeline"] / by["numpy"],
        "augmented_throughput_ratio": by["augmented"] / by["pipeline"],
    }


# ------------------------------------------------------------------------------------- preprocessing


def benchmark_preprocessing_section(media_dir: Path, quick: bool) -> dict:
    """The preprocessing figures of :func:`fer_utils.bench.preprocessing.benchmark_preprocessing` (default
    pipeline vs the naive one on the real clips), plus its Markdown table and the target's figures."""
    if not media_dir.is_dir():
        return {"skipped": f"media folder {media_dir} not found"}
    try:
        from fer_utils.bench.preprocessing import benchmark_preprocessing, format_benchmark
    except ImportError as error:
        return {"skipped": f"fer_utils.bench.preprocessing is not available ({error})"}
    result = benchmark_preprocessing(media_dir, quick=quick)
    settings = result.get("settings", {})
    if "default" in settings and "naive" in settings:
        result["speedup"] = result["speedup_vs_naive"]["default"]
        result["faces_default"] = settings["default"]["faces"]
        result["faces_naive"] = settings["naive"]["faces"]
    result["markdown"] = format_benchmark(result)
    return result


# ------------------------------------------------------------------------------------------ data


def benchmark_data(cache_root: Path, faces_per_class: int, test_faces: int):
    """A FER2013 face cache at 180×180 (real faces) or, without the data, None.

    Returns:
        (cache, train_ids, train_targets, test_ids, labels) or None.
    """
    from fer_utils.faces.preprocess import image_folder_cache
    from fer_utils.paths import shared_data_root

    root = shared_data_root() / "fer2013"
    if not root.is_dir():
        return None
    cache = image_folder_cache(
        root, cache_root, IMAGE_SIZE, split_dirs=True, max_per_class=faces_per_class, progress=False
    )
    index = cache.index
    labels = cache.labels
    class_of = {label: i for i, label in enumerate(labels)}
    is_test = index["split"].astype(str) == "test"
    train_ids = index.loc[~is_test, "face_id"].to_numpy()
    test_ids = index.loc[is_test, "face_id"].to_numpy()[:test_faces]
    targets = index.set_index("face_id").loc[train_ids, "label"].map(class_of).to_numpy(np.int32)
    return cache, train_ids, targets, test_ids, labels


# ------------------------------------------------------------------------------------------ targets


def evaluate_targets(results: dict) -> list[dict]:
    """The speed targets (benchmarks/README.md, "targets") as measured ratios: met (True/False) or None when not measured."""
    return (
        _inference_targets(results)
        + _int8_targets(results)
        + _preprocessing_targets(results)
        + _training_targets(results)
        + _prediction_targets(results)
    )


def _inference_targets(results: dict) -> list[dict]:
    """The best batch-1 one-thread inference against the fp32 floor."""
    inference = [row for row in results.get("inference", []) if row["batch"] == 1 and row["threads"] == 1]
    if not inference:
        return []
    best = min(inference, key=lambda row: row["ratio_to_floor"])
    best_fp32 = min((r for r in inference if r["precision"] == "fp32"), key=lambda r: r["ratio_to_floor"])
    return [
        {
            "target": "best batch-1 one-thread path ≤ 1.1 × the fp32 floor",
            "measured": f"{best['engine']} {best['precision']}: {best['ratio_to_floor']:.2f} × "
            f"(best fp32: {best_fp32['engine']} {best_fp32['ratio_to_floor']:.2f} ×)",
            "met": best["ratio_to_floor"] <= 1.1,
        },
        {
            "target": "stretch: below the floor",
            "measured": f"{best['ratio_to_floor']:.2f} ×",
            "met": best["ratio_to_floor"] < 1.0,
        },
    ]


def _int8_targets(results: dict) -> list[dict]:
    """The int8 model's accuracy against the float model's."""
    accuracy = {row["model"]: row for row in results.get("accuracy", {}).get("rows", [])}
    if "tflite-int8" not in accuracy:
        return []
    delta = accuracy["tflite-int8"]["accuracy_delta"]
    return [
        {
            "target": "int8 accuracy within 1 point of float",
            "measured": f"{100 * delta:+.2f} points (agreement {100 * accuracy['tflite-int8']['agreement']:.1f} %)",
            "met": abs(delta) <= 0.01,
        }
    ]


def _preprocessing_targets(results: dict) -> list[dict]:
    """The default preprocessing's speed-up over the naive one, finding at least as many faces."""
    preprocessing = results.get("preprocessing", {})
    speedup = preprocessing.get("speedup") if isinstance(preprocessing, dict) else None
    if speedup is None:
        return []
    faces_ok = preprocessing.get("faces_default", 0) >= preprocessing.get("faces_naive", 0)
    return [
        {
            "target": "preprocessing default ≥ 10 × naive clips/s, at least as many faces",
            "measured": f"{speedup:.1f} × · faces {preprocessing.get('faces_default')} vs "
            f"{preprocessing.get('faces_naive')}",
            "met": speedup >= 10 and faces_ok,
        }
    ]


def _training_targets(results: dict) -> list[dict]:
    """Input-pipeline overhead, speed-up over a default ``model.fit`` and the cost of augmentation."""
    training = results.get("training")
    if not (training and "rows" in training):
        return []
    overhead = training["pipeline_overhead"]
    speedup = training["speedup_vs_default_fit"]
    targets = [
        {
            "target": "training input-pipeline overhead ≤ 10 % over in-memory tensors",
            "measured": f"{100 * overhead:+.1f} %",
            "met": overhead <= 0.10,
        },
        {
            "target": "steady training ≥ 1.5 × a default model.fit",
            "measured": f"{speedup:.2f} ×",
            "met": speedup >= 1.5,
        },
    ]
    ratio = training.get("augmented_throughput_ratio")
    if ratio is not None:
        targets.append(
            {
                "target": "training with on-the-fly augmentation ≥ 85 % of the plain pipeline's img/s",
                "measured": f"{100 * ratio:.1f} %",
                "met": ratio >= 0.85,
            }
        )
    return targets


def _prediction_targets(results: dict) -> list[dict]:
    """End-to-end ms per one-face frame and the memory of long vs short clips."""
    targets = []
    end_to_end = results.get("end_to_end") or {}
    if "rows" in end_to_end:
        row = end_to_end["rows"][0]
        targets.append(
            {
                "target": f"decode + detect + classify ≤ {end_to_end['target_ms_per_frame']:.0f} ms per one-face "
                "640×360 frame on 1 core",
                "measured": f"{row['ms_per_frame']:.1f} ms ({row['media']})",
                "met": end_to_end["met"],
            }
        )
    memory = results.get("predict_memory") or {}
    if "rows" in memory:
        short, long = memory["rows"]
        targets.append(
            {
                "target": "fer predict --fps 25: peak memory of a long clip ≤ 1.2 × a short one",
                "measured": f"{long['peak_rss_mib']:.0f} vs {short['peak_rss_mib']:.0f} MiB "
                f"({long['seconds_of_video']:g} s vs {short['seconds_of_video']:g} s): "
                f"{memory['ratio_long_to_short']:.3f} ×",
                "met": memory["met"],
            }
        )
    return targets


# ------------------------------------------------------------------------------------------ report


def _fmt_ms(timing: dict) -> str:
    return f"{timing['median']:.2f} ({timing['min']:.2f}–{timing['max']:.2f})"


def _engine_sections(results: dict) -> list[str]:
    """FLOP floor and inference-engine tables."""
    lines: list[str] = []
    floor = results.get("floor")
    if floor:
        rates = floor["matmul_gflops"]
        lines += [
            "## FLOP floor",
            "",
            f"{floor['multiply_adds_per_face']:,} multiply-adds per face ({floor['parameters']:,} parameters); "
            f"fp32 matmul {rates['1']['median']:.1f} GFLOP/s on 1 thread, {rates['all']['median']:.1f} on "
            f"{floor['threads_all']} → floor {floor['floor_ms_per_face']['1']:.2f} ms/face (1 thread), "
            f"{floor['floor_ms_per_face']['all']:.2f} ms/face (all threads).",
            "",
            "| layer | multiply-adds |",
            "| --- | ---: |",
            *[
                f"| {layer['layer']} ({layer['kind']}) | {layer['multiply_adds']:,} |"
                for layer in floor["layers"]
            ],
            "",
        ]
    if results.get("inference"):
        lines += [
            "## Inference",
            "",
            "| engine | precision | batch | threads | ms per batch | ms/face | faces/s | × floor |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in results["inference"]:
            lines.append(
                f"| {row['engine']} | {row['precision']} | {row['batch']} | {row['threads']} | "
                f"{_fmt_ms(row['ms'])} | {row['ms_per_face']:.2f} | {row['faces_per_s']:.0f} | "
                f"{row['ratio_to_floor']:.2f} |"
            )
        lines.append("")
    return lines


def _accuracy_sections(results: dict) -> list[str]:
    """Exported models' agreement, the int8 investigation and the rescale folding."""
    lines: list[str] = []
    accuracy = results.get("accuracy")
    if accuracy and accuracy.get("rows"):
        lines += [
            f"## Exported models vs Keras ({accuracy['test_faces']} FER2013 test faces)",
            "",
            "| model | agreement | accuracy | Δ accuracy (points) |",
            "| --- | ---: | ---: | ---: |",
            *[
                f"| {row['model']} | {100 * row['agreement']:.1f} % | {100 * row['accuracy']:.1f} % | "
                f"{100 * row['accuracy_delta']:+.2f} |"
                for row in accuracy["rows"]
            ],
            "",
        ]
    int8 = results.get("int8")
    if int8:
        lines += ["## int8 investigation", ""]
        for key in ("tflite-fp32", "tflite-int8"):
            if key in int8:
                item = int8[key]
                lines.append(
                    f"- {key}: ops {' '.join(item['ops'])}; XNNPACK partitions {item['xnnpack_partitions']}; "
                    f"batch 1, 1 thread: XNNPACK {_fmt_ms(item['batch1_1thread_ms']['xnnpack'])} ms, "
                    f"built-in kernels {_fmt_ms(item['batch1_1thread_ms']['builtin_kernels'])} ms"
                )
        for key in ("onnx-fp32", "onnx-int8"):
            if key in int8:
                kernels = ", ".join(
                    f"{row['op']} {row['us_per_inference'] / 1e3:.2f} ms" for row in int8[key]["kernels"][:6]
                )
                lines.append(f"- {key} kernels (batch 1, 1 thread): {kernels}")
        lines.append("")
    folding = results.get("rescale_folding")
    if folding:
        lines += [
            "## Rescale folding",
            "",
            f"{folding['engine']}: rescaling kept {_fmt_ms(folding['rescale_kept_ms'])} ms, folded into conv1 "
            f"{_fmt_ms(folding['rescale_folded_ms'])} ms (saves {folding['saved_ms']:.2f} ms); {folding['note']}.",
            "",
        ]
    return lines


def _pipeline_sections(results: dict) -> list[str]:
    """Preprocessing, training feeds and the speed targets."""
    lines: list[str] = []
    preprocessing = results.get("preprocessing")
    if preprocessing:
        lines += ["## Preprocessing", ""]
        if preprocessing.get("markdown"):
            lines += [preprocessing["markdown"], ""]
        elif preprocessing.get("skipped"):
            lines += [f"Skipped: {preprocessing['skipped']}", ""]
        else:
            lines += ["```json", json.dumps(preprocessing, indent=1, default=str)[:4000], "```", ""]
    training = results.get("training")
    if training and training.get("rows"):
        lines += [
            f"## Training ({training['image_size']}×{training['image_size']}, batch {training['batch_size']})",
            "",
            "| feed | settings | images | first epoch img/s | steady img/s |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for row in training["rows"]:
            steady = row["steady_images_per_s"]
            lines.append(
                f"| {row['feed']} | {'tuned' if row['tuned'] else 'default'} (oneDNN {row['onednn']}) | "
                f"{row['images']} | {row['first_epoch_images_per_s']:.1f} | "
                f"{steady['median']:.1f} ({steady['min']:.1f}–{steady['max']:.1f}) |"
            )
        lines += [
            "",
            f"Pipeline overhead vs in-memory tensors: {100 * training['pipeline_overhead']:+.1f} %; "
            f"speed-up vs a default model.fit: {training['speedup_vs_default_fit']:.2f} ×; "
            f"with augmentation: {100 * training.get('augmented_throughput_ratio', float('nan')):.1f} % "
            "of the plain pipeline's img/s.",
            "",
        ]
    elif training and training.get("skipped"):
        lines += ["## Training", "", f"Skipped: {training['skipped']}", ""]
    if results.get("targets"):
        lines += ["## Targets", "", "| target | measured | met |", "| --- | --- | --- |"]
        for target in results["targets"]:
            met = {True: "yes", False: "**no**", None: "not measured"}[target["met"]]
            lines.append(f"| {target['target']} | {target['measured']} | {met} |")
        lines.append("")
    return lines


def markdown_report(results: dict) -> str:
    """The benchmark results as Markdown tables."""
    machine = results["machine"]
    features = ", ".join(name for name, on in machine["cpu"]["features"].items() if on) or "none"
    lines = [
        f"# Benchmarks ({results['mode']})",
        "",
        f"Machine: {machine['cpu']['model']}, {machine['cpu']['cores']} cores; features: {features}. "
        f"Load average at start: {machine['load_average_start']}. Created {results['created']}.",
        "Timings: median (min–max) of repeated runs after warm-up.",
        "",
    ]
    for section in (_engine_sections, _accuracy_sections, _pipeline_sections):
        lines += section(results)
    from fer_utils.bench.end_to_end import markdown_sections

    lines += markdown_sections(results.get("end_to_end"), results.get("predict_memory"))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ driver


SECTIONS = ("floor", "inference", "preprocessing", "training", "end_to_end", "predict_memory")
#: Clip lengths (s) of the memory section: short and long clip per mode.
MEMORY_CLIPS = {"quick": (5, 60), "full": (10, 600)}


def run_benchmarks(
    out_dir: str | os.PathLike,
    quick: bool = False,
    run_dir: str | os.PathLike | None = None,
    media_dir: str | os.PathLike | None = None,
    sections: tuple[str, ...] = SECTIONS,
) -> dict:
    """Run the benchmarks and write ``benchmarks.json`` and ``benchmarks.md`` into ``out_dir``.

    Args:
        out_dir: output folder.
        quick: a reduced run (fewer repeats, fewer faces, 2 training epochs, shorter clips).
        run_dir: benchmark this trained run's model (its test faces for agreement) instead of the model
            the training section trains.
        media_dir: real clips for the preprocessing and end-to-end sections (default
            ``<shared data>/pyfeat_media``).
        sections: which of :data:`SECTIONS` to run.

    Returns:
        The results dict (as written to ``benchmarks.json``).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from fer_utils.paths import shared_data_root

    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown benchmark sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    mode_name = "quick" if quick else "full"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = _machine_record(mode_name)
    media = Path(media_dir) if media_dir else shared_data_root() / "pyfeat_media"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fer-bench-") as folder:
        _model_sections(results, sections, Path(folder), run_dir, MODES[mode_name])
    _media_sections(results, sections, media, quick)
    results["targets"] = evaluate_targets(results)
    results["seconds"] = round(time.perf_counter() - started, 1)
    (out_dir / "benchmarks.json").write_text(json.dumps(results, indent=2, default=_json_default))
    (out_dir / "benchmarks.md").write_text(markdown_report(results))
    return results


def _machine_record(mode_name: str) -> dict:
    """The head of ``benchmarks.json``: schema, mode, machine and the mode's settings."""
    return {
        "schema": 1,
        "mode": mode_name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_info(),
            "platform": platform.platform(),
            "load_average_start": [round(v, 2) for v in os.getloadavg()],
            "versions": _versions(),
        },
        "settings": {
            key: {str(k): v for k, v in value.items()} if isinstance(value, dict) else value
            for key, value in MODES[mode_name].items()
        },
    }


def _model_sections(results: dict, sections, workdir: Path, run_dir, mode: dict) -> None:
    """The training, floor and inference sections (they share the model and the FER2013 faces)."""
    if not {"training", "floor", "inference"} & set(sections):
        return
    data = benchmark_data(workdir / "cache", mode["faces_per_class"], mode["test_faces"])
    model_path = workdir / rundir.MODEL_FILE
    if "training" in sections:
        if data is None:
            results["training"] = {"skipped": "FER2013 not found under the shared data root"}
        else:
            print("training: default model.fit vs tuned tf.data / in-memory …", file=sys.stderr)
            cache, train_ids, targets, _, _ = data
            results["training"] = benchmark_training(cache.cache_dir, train_ids, targets, mode, model_path)
    model, labels, test_faces, test_labels, calibration = _benchmark_model(run_dir, data, model_path)
    if "floor" in sections or "inference" in sections:
        print("floor: multiply-adds and matmul rate …", file=sys.stderr)
        results["floor"] = flop_floor(model, mode["matmul_repeats"])
    if "inference" in sections:
        print("inference: exporting and timing engines …", file=sys.stderr)
        if not model_path.exists():
            model.save(model_path)
        paths = export_all(model, workdir / "export", calibration, labels)
        timing_faces = test_faces[:64]
        results["inference"] = benchmark_inference(model_path, paths, timing_faces, mode, results["floor"])
        if test_labels is not None:
            results["accuracy"] = benchmark_accuracy(model_path, paths, test_faces, test_labels, labels)
        results["int8"] = int8_investigation(paths, timing_faces, mode, results["machine"]["cpu"])
        results["rescale_folding"] = rescale_folding(paths, timing_faces, mode)


def _media_sections(results: dict, sections, media: Path, quick: bool) -> None:
    """The sections on real clips: preprocessing, end-to-end prediction speed and its memory."""
    from fer_utils.bench.end_to_end import benchmark_end_to_end, predict_memory

    if "preprocessing" in sections:
        print("preprocessing: default vs naive pipeline …", file=sys.stderr)
        results["preprocessing"] = benchmark_preprocessing_section(media, quick)
    if "end_to_end" in sections:
        print("end to end: decode + detect + classify per frame, 1 core …", file=sys.stderr)
        results["end_to_end"] = benchmark_end_to_end(media, repeats=5 if quick else 20)
    if "predict_memory" in sections:
        short_s, long_s = MEMORY_CLIPS["quick" if quick else "full"]
        print(f"predict memory: fer predict --fps 25 on {short_s} s and {long_s} s clips …", file=sys.stderr)
        results["predict_memory"] = predict_memory(media, short_s, long_s)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _benchmark_model(run_dir, data, model_path: Path):
    """The model to benchmark, its labels, test faces (and labels) and int8 calibration faces."""
    import keras

    from fer_utils.training.model import build_paper_cnn

    if run_dir:
        from fer_utils.deploy import as_batch, run_calibration_faces
        from fer_utils.faces.cache import FaceCache

        run_dir = Path(run_dir)
        config = rundir.read_config(run_dir)
        model = keras.saving.load_model(rundir.model_path(run_dir), compile=False)
        split = rundir.read_split(run_dir)
        test_ids = split.loc[split["part"] == "test", "face_id"].to_numpy()[: MODES["full"]["test_faces"]]
        cache = FaceCache(config["cache_dir"])
        faces = as_batch(np.asarray(cache.faces(test_ids)), int(config["image_size"]))[..., 0]
        test_labels = cache.index.set_index("face_id").loc[test_ids, "label"].to_numpy()
        model.save(model_path)
        return model, list(config["labels"]), faces, test_labels, run_calibration_faces(run_dir)
    if data is None:
        # No real faces: random pixels still time every engine (no accuracy figures).
        rng = np.random.default_rng(0)
        labels = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
        model = build_paper_cnn(len(labels), IMAGE_SIZE)
        faces = rng.integers(0, 256, (64, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        return model, labels, faces, None, faces
    cache, train_ids, _, test_ids, labels = data
    if model_path.exists():
        model = keras.saving.load_model(model_path, compile=False)
    else:
        model = build_paper_cnn(len(labels), IMAGE_SIZE)
    rng = np.random.default_rng(0)
    calibration_ids = np.sort(rng.choice(train_ids, size=min(256, len(train_ids)), replace=False))
    faces = np.asarray(cache.faces(test_ids))
    test_labels = cache.index.set_index("face_id").loc[test_ids, "label"].to_numpy()
    return model, labels, faces, test_labels, np.asarray(cache.faces(calibration_ids))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a reduced run (under 3 minutes on 2 cores)")
    parser.add_argument(
        "--out", default="reports/benchmarks", help="output folder (default reports/benchmarks)"
    )
    parser.add_argument(
        "--run", help="benchmark this run's model and test faces (default: train a short one)"
    )
    parser.add_argument("--media", help="clips for the preprocessing section (default: shared pyfeat_media)")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    parser.set_defaults(func=_bench_cli)


def _bench_cli(args) -> int:
    sections = tuple(part.strip() for part in args.sections.split(",") if part.strip())
    results = run_benchmarks(args.out, args.quick, args.run, args.media, sections)
    print(markdown_report(results))
    print(f"wrote {Path(args.out) / 'benchmarks.json'} and benchmarks.md ({results['seconds']} s)")
    return 0
