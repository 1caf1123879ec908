"""Which engine runs the bundled model: the one fastest on this CPU, measured once and cached.

The bundled model ships as TFLite int8, TFLite fp32 and ONNX Runtime fp32 files (:data:`ENGINES`). int8
pays only where the CPU has int8 dot-product instructions (VNNI, ARM dotprod); elsewhere the fp32
engines are faster (``benchmarks/README.md``). :func:`choose_engine` times each engine on the model's
face size, batch 1, at the thread count asked, interleaved (so a loaded machine slows all alike), in a
fresh process (so the engines it does not choose are never loaded into ``fer predict``), and caches the
choice per CPU, engine versions, model files and thread count. Without a measurement (it failed, or
``FER_ENGINE_MEASURE=0``) the rule is the CPU's features: int8 with a dot product, TFLite fp32 otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from fer_utils.deploy.bundled import BUNDLED_DIR, bundled_files, bundled_model_path, default_model
from fer_utils.deploy.predictors import load_predictor
from fer_utils.files import atomic_write_json
from fer_utils.machine import cpu_info

#: Engines of a bundled model → its file format in :func:`fer_utils.deploy.bundled.bundled_files`.
ENGINES = ("tflite-int8", "tflite-fp32", "onnx-fp32")
#: Interleaved rounds × calls per round of the micro-benchmark.
ROUNDS, CALLS = 7, 30


def cache_path() -> Path:
    """Where the choice is cached (``$XDG_CACHE_HOME/fer_utils/engine.json``)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "fer_utils" / "engine.json"


def _machine_key(threads: int | None, model: str | None = None) -> str:
    """What the choice depends on: CPU model and features, engine versions, model files, threads."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("ai-edge-litert", "onnxruntime", "tensorflow-cpu", "tensorflow"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    files = {}
    for engine in ENGINES:
        try:
            path = bundled_model_path(engine, model=model)
            files[engine] = [path.name, path.stat().st_size, int(path.stat().st_mtime)]
        except ValueError:
            pass
    record = {"cpu": cpu_info(), "versions": found, "files": files, "threads": threads}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def available_engines(model: str | None = None) -> list[str]:
    """The engines whose file of the bundled ``model`` (None: the default) is present."""
    files = bundled_files(model or default_model())
    return [engine for engine in ENGINES if (BUNDLED_DIR / files[engine]).exists()]


def engine_by_features(engines: list[str]) -> str:
    """The rule without a measurement: TFLite int8 on CPUs with an int8 dot product, TFLite fp32 elsewhere."""
    wanted = "tflite-int8" if cpu_info()["features"]["int8_dot_product"] else "tflite-fp32"
    return wanted if wanted in engines else engines[0]


def measure_engines(
    engines: list[str] | None = None, threads: int | None = 1, model: str | None = None
) -> dict:
    """ms per face (batch 1) of each engine of the bundled ``model``, median over interleaved rounds, in
    this process."""
    import numpy as np

    engines = engines or available_engines(model)
    predictors = {
        engine: load_predictor(bundled_model_path(engine, model=model), threads) for engine in engines
    }
    size = next(iter(predictors.values())).image_size
    face = np.random.default_rng(0).integers(0, 256, (1, size, size), dtype=np.uint8)
    for predictor in predictors.values():
        for _ in range(5):
            predictor.predict_proba(face)
    rounds: dict[str, list[float]] = {engine: [] for engine in engines}
    for _ in range(ROUNDS):
        for engine, predictor in predictors.items():
            started = time.perf_counter()
            for _ in range(CALLS):
                predictor.predict_proba(face)
            rounds[engine].append(1000 * (time.perf_counter() - started) / CALLS)
    ms = {engine: float(np.median(values)) for engine, values in rounds.items()}
    fastest = min(ms.values())
    return {
        "ms_per_face": ms,
        "ratio_to_fastest": {engine: value / fastest for engine, value in ms.items()},
        "engine": min(ms, key=ms.get),
        "threads": threads,
        "face_size": size,
    }


def choose_engine(threads: int | None = None, refresh: bool = False, model: str | None = None) -> dict:
    """The engine for the bundled ``model`` (None: the default) on this machine: ``{"engine", "how",
    ...}`` (cached per model)."""
    engines = available_engines(model)
    if not engines:
        raise ValueError("no bundled model file found; rebuild it with `fer bundle-model` or pass --model")
    if len(engines) == 1:
        return {"engine": engines[0], "how": "the only bundled file"}
    key = _machine_key(threads, model or default_model())
    path = cache_path()
    if not refresh:
        try:
            cached = json.loads(path.read_text())
            if cached.get("key") == key and cached.get("engine") in engines:
                return {**cached, "how": "measured on this machine (cached)"}
        except (OSError, ValueError):
            pass
    if os.environ.get("FER_ENGINE_MEASURE", "1") == "0":
        return {"engine": engine_by_features(engines), "how": "CPU features (measurement disabled)"}
    measured = measure_in_fresh_process(threads, model)
    if measured is None:
        return {"engine": engine_by_features(engines), "how": "CPU features (measurement failed)"}
    record = {**measured, "key": key, "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, record)
    except OSError:
        pass  # an unwritable cache only costs a measurement next time
    return {**record, "how": "measured on this machine"}


def measure_in_fresh_process(threads: int | None, model: str | None = None) -> dict | None:
    """:func:`measure_engines` in a fresh Python process (None when it fails or takes over 2 minutes)."""
    code = (
        "import json, sys; from fer_utils.deploy.engines import measure_engines; "
        f"print('ENGINES', json.dumps(measure_engines(threads={threads!r}, model={model!r})))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("ENGINES ")), None)
    return json.loads(line.split(" ", 1)[1]) if line else None


def bundled_predictor(engine: str = "auto", threads: int | None = None, model: str | None = None):
    """The predictor of the bundled ``model`` (a candidate or architecture name; None: the default) in ``engine``
    (``auto``: :func:`choose_engine`), with ``predictor.engine`` and ``predictor.engine_choice`` recording
    what was chosen and how."""
    if engine == "auto":
        choice = choose_engine(threads, model=model)
    elif engine in ENGINES:
        choice = {"engine": engine, "how": "forced (--engine)"}
    else:
        raise ValueError(f"unknown engine {engine!r}; choose auto or one of {', '.join(ENGINES)}")
    predictor = load_predictor(bundled_model_path(choice["engine"], model=model), threads)
    predictor.engine = choice["engine"]
    predictor.engine_choice = {k: v for k, v in choice.items() if k != "key"}
    return predictor
