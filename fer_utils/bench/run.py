"""Measured speed of the paper CNN on this machine: ``fer bench [--quick]``.

Writes ``benchmarks.json`` and ``benchmarks.md`` (default folder ``reports/benchmarks``). Every timing
is the median of repeated runs after warm-up, with min and max (:mod:`fer_utils.bench.timing`). This
module drives the sections, each measured by its own module:

* **floor** (:mod:`~fer_utils.bench.floor`) — the model's multiply-adds per face, counted from its layers,
  and this machine's measured fp32 matrix-multiply rate (1 thread, all threads) → the compute floor in
  ms/face. Latencies are also given as a ratio to that floor.
* **inference** (:mod:`~fer_utils.bench.inference`) — batch 1 and 64, 1 thread and all threads: Keras
  (``model(x, training=False)`` in a ``tf.function``, each thread count in its own process), TFLite fp32
  and int8 (XNNPACK), ONNX Runtime fp32 and int8; the agreement of each exported model with Keras on the
  same real test faces.
* **int8** (same module) — why int8 is (or is not) faster here: the CPU's int8 dot-product features, the
  ops of each TFLite model, whether XNNPACK runs them (timings with and without the delegate) and which
  ONNX Runtime kernels run (its profiler).
* **rescale folding** (same module) — the 1/255 rescaling folded into the first convolution vs kept as an op.
* **preprocessing** — from :func:`fer_utils.bench.preprocessing.benchmark_preprocessing` on the real clips.
* **training** (:mod:`~fer_utils.bench.training`) — images/s of steady ``model.fit`` epochs: a default
  ``model.fit`` on NumPy arrays vs the suite's tuned settings fed from in-memory tensors and from the
  suite's ``tf.data`` pipeline.
* **end to end**, **predict memory** — from :mod:`fer_utils.bench.end_to_end` on the real clips.
* **keyframes**, **detect scale** — from :mod:`fer_utils.bench.keyframes`: keyframe detection + tracking vs
  detection on every frame, and faces found on downscaled frames, on the real clips and photos.
* **detectors** — from :mod:`fer_utils.bench.detectors`: HOG, CenterFace and dlib's CNN, faces found on the
  real photos and clips and ms/frame (detection, and ``fer predict``'s face loop) as ratios to HOG.
* **engine choice** — what ``fer predict --engine auto`` picks (:mod:`fer_utils.deploy.engines`) against
  each engine measured afresh.

The speed targets are judged in :mod:`~fer_utils.bench.targets`; the Markdown is written by
:mod:`~fer_utils.bench.markdown_tables`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fer_utils.bench.family_training import benchmark_family_training
from fer_utils.bench.floor import flop_floor
from fer_utils.bench.inference import (
    benchmark_accuracy,
    benchmark_inference,
    export_all,
    int8_investigation,
    rescale_folding,
)
from fer_utils.bench.markdown_tables import markdown_report
from fer_utils.bench.targets import evaluate_targets
from fer_utils.bench.timing import IMAGE_SIZE, cpu_info, versions
from fer_utils.bench.training import add_training_floor, benchmark_training
from fer_utils.deploy.export import write_model_spec
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
#: The sections ``fer bench --sections`` can choose from.
SECTIONS = (
    "floor",
    "inference",
    "preprocessing",
    "training",
    "family_training",
    "end_to_end",
    "predict_memory",
    "keyframes",
    "detect_scale",
    "detectors",
    "engine_choice",
)
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
    if "family_training" in sections:
        print("family training: img/s per family and batch size on one thread …", file=sys.stderr)
        results["family_training"] = benchmark_family_training(quick)
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
            "versions": versions(),
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
        add_training_floor(results.get("training"), results["floor"])
    if "inference" in sections:
        print("inference: exporting and timing engines …", file=sys.stderr)
        if not model_path.exists():
            model.save(model_path)
        write_model_spec(  # the faces timed carry the step of their cache: the model declares it
            model_path,
            {
                "format": "keras",
                "labels": labels,
                "image_size": int(model.input_shape[1]),
                "preprocessing": {"equalize": _faces_pixel_step(run_dir, data)},
            },
        )
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
    if "engine_choice" in sections:
        print("engine choice: fer predict --engine auto vs each engine measured afresh …", file=sys.stderr)
        results["engine_choice"] = engine_choice_section()
    if "keyframes" in sections:
        print("keyframes: detection every k frames + tracking vs every frame …", file=sys.stderr)
        from fer_utils.bench.keyframes import benchmark_keyframes

        if quick:
            results["keyframes"] = benchmark_keyframes(media, ks=(5, 10), rounds=2, max_frames=150)
        else:
            results["keyframes"] = benchmark_keyframes(media, rounds=5)
    if "detect_scale" in sections:
        print("detect scale: faces found on downscaled frames …", file=sys.stderr)
        from fer_utils.bench.keyframes import benchmark_detect_scale

        results["detect_scale"] = benchmark_detect_scale(media, step=8 if quick else 2)
    if "detectors" in sections:
        print("detectors: faces found and ms/frame, HOG vs CenterFace vs dlib CNN …", file=sys.stderr)
        from fer_utils.bench.detectors import benchmark_detectors

        results["detectors"] = benchmark_detectors(media, quick)


def engine_choice_section(threads: int = 1) -> dict:
    """What ``fer predict --engine auto`` picks (cached or by features) and each engine measured afresh
    in a fresh process: the pick's ratio to the fastest."""
    from fer_utils.deploy.engines import choose_engine, measure_in_fresh_process

    choice = choose_engine(threads)
    measured = measure_in_fresh_process(threads)
    if measured is None:
        return {"skipped": "the engines could not be measured", "engine": choice["engine"]}
    return {
        **measured,
        "engine": choice["engine"],
        "how": choice["how"],
        "fastest_now": measured["engine"],
        "chosen_ratio_to_fastest": measured["ratio_to_fastest"][choice["engine"]],
    }


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
        if result.get("decode_floor"):
            naive = settings["naive"]["clips_per_second_per_core"]
            result["ceiling_vs_naive"] = result["decode_floor"]["clips_per_second_per_core"] / naive
    result["markdown"] = format_benchmark(result)
    return result


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


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _faces_pixel_step(run_dir, data) -> str:
    """The pixel step the benchmark's faces carry: the run's cache's, the FER2013 cache's, or none (random)."""
    if run_dir:
        return (rundir.read_config(Path(run_dir)).get("preprocessing") or {}).get("equalize", "none")
    return data[0].config.get("equalize", "none") if data is not None else "none"


def _benchmark_model(run_dir, data, model_path: Path):
    """The model to benchmark, its labels, test faces (and labels) and int8 calibration faces."""
    from fer_utils.training.model import build_paper_cnn, load_keras_model

    if run_dir:
        from fer_utils.deploy import as_batch, run_calibration_faces
        from fer_utils.faces.cache import FaceCache

        run_dir = Path(run_dir)
        config = rundir.read_config(run_dir)
        model = load_keras_model(rundir.model_path(run_dir))
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
        model = load_keras_model(model_path)
    else:
        model = build_paper_cnn(len(labels), IMAGE_SIZE)
    rng = np.random.default_rng(0)
    calibration_ids = np.sort(rng.choice(train_ids, size=min(256, len(train_ids)), replace=False))
    faces = np.asarray(cache.faces(test_ids))
    test_labels = cache.index.set_index("face_id").loc[test_ids, "label"].to_numpy()
    return model, labels, faces, test_labels, np.asarray(cache.faces(calibration_ids))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a reduced run (a few minutes on 2 idle cores)")
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
