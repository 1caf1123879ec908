"""Inference engines and why int8 is (or is not) faster.

* Latency at batch 1 and 64, 1 thread and all threads: Keras (``model(x, training=False)`` in a
  ``tf.function``, each thread count in its own process), TFLite fp32 and int8 (XNNPACK), ONNX Runtime fp32
  and int8; the agreement of each exported model with Keras on the same test faces.
* The int8 investigation: the ops of each TFLite model, whether XNNPACK runs them (with and without the
  delegate), which ONNX Runtime kernels run (its profiler), and the 1/255 rescaling folded vs kept.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from fer_utils.bench.timing import in_fresh_process, time_calls
from fer_utils.deploy.export import write_model_spec
from fer_utils.training.model_files import read_spec, spec_path

BATCH_SIZES = (1, 64)


def _keras_worker(
    model_path: str, threads: int, warmup: dict, repeats: dict, faces: np.ndarray
) -> list[dict]:
    """In a fresh process: Keras ``model(x, training=False)`` in a ``tf.function`` at ``threads``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from fer_utils.training.model import load_keras_model

    model = load_keras_model(model_path)
    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    rows = []
    for batch in BATCH_SIZES:
        data = tf.constant(_tile(faces, batch).astype(np.float32))
        timing = time_calls(lambda data=data: call(data).numpy(), warmup[batch], repeats[batch])
        rows.append(
            {"engine": "keras", "precision": "fp32", "batch": batch, "threads": threads, "ms": timing}
        )
    return rows


def _tile(faces: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` faces ``(batch, s, s, 1)`` drawn cyclically from ``faces``."""
    index = np.arange(batch) % len(faces)
    return faces[index][..., None] if faces.ndim == 3 else faces[index]


def tflite_timer(model_path: Path, threads: int, batch: int, faces: np.ndarray, xnnpack: bool = True):
    """A call that runs the TFLite model once on a batch of ``faces`` (tiled), for timing."""
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
    # the same labels, input and pixel step as the float model it was quantized from
    write_model_spec(
        out_path, read_spec(spec_path(fp32_path)) | {"model_file": out_path.name, "quantized": "int8"}
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
        rows += in_fresh_process(
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
                    call = tflite_timer(paths[key], threads, batch, faces)
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
            "xnnpack": time_calls(tflite_timer(paths[key], 1, 1, faces), warmup, repeats),
            "builtin_kernels": time_calls(
                tflite_timer(paths[key], 1, 1, faces, xnnpack=False), warmup, repeats
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
