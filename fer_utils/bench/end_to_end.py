"""End-to-end prediction speed and memory: what ``fer predict`` costs per frame and whether its memory
stays flat with the clip's length.

* :func:`benchmark_end_to_end` — decode + detect + classify per frame with the bundled int8 model on one
  core (OpenCV, the face detector and TFLite each on 1 thread): every frame of ``single_face.mp4`` (640×360, one face)
  and the still ``multi_face.jpg`` (several faces), with the time of each stage, beside the peers'
  published figures.
* :func:`predict_memory` — peak resident memory of ``fer predict --fps 25`` on a short and a long clip
  made from ``single_face.mp4`` (each run in a fresh process that reports its own ``VmHWM``, and whether
  TensorFlow was imported).

Peak memory is read from ``/proc/self/status`` (``VmHWM``, the process's own high-water mark), not from
``getrusage``: Linux carries ``ru_maxrss`` across ``fork`` + ``exec``, so a child started by a large
parent (``fer bench`` after its training section, ~1.4 GB) reported the parent's peak as its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: Published CPU figures of peer toolkits (per frame, batch 1), for context only: not measured here.
PEER_FIGURES = [
    {
        "tool": "py-feat v2 (Detector, CPU, batch 1)",
        "ms_per_frame": 111.0,
        "source": "as quoted in the project's issue 12; not re-measured here (no torch in this suite)",
    },
]
#: Target of the suite: decode + detect + classify of a one-face 640×360 frame on one core.
TARGET_MS_PER_FRAME = 30.0


def _one_core() -> None:
    import cv2

    cv2.setNumThreads(1)


def _stage_times(path: Path, predictor, options: dict, repeats: int) -> dict:
    """Median ms per frame of each stage over every frame of a clip (or an image ``repeats`` times)."""
    import cv2

    from fer_utils.faces.detection import extract_faces
    from fer_utils.faces.frames import is_image

    decode, detect, classify, faces = [], [], [], 0
    for _ in range(repeats if is_image(path) else 1):
        capture = None if is_image(path) else cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        while True:
            started = time.perf_counter()
            if capture is None:
                image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            else:
                ok, frame = capture.read()
                if not ok:
                    break
                image = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            decoded = time.perf_counter()
            crops = extract_faces(image, predictor.image_size, **options)
            detected = time.perf_counter()
            if crops:
                predictor.predict_proba(np.stack([c.face for c in crops]))
            classified = time.perf_counter()
            decode.append(decoded - started)
            detect.append(detected - decoded)
            classify.append(classified - detected)
            faces += len(crops)
            if capture is None:
                break
        if capture is not None:
            capture.release()
    total = [a + b + c for a, b, c in zip(decode, detect, classify, strict=True)]
    return {
        "media": path.name,
        "frames": len(total),
        "faces_per_frame": faces / max(1, len(total)),
        "ms_per_frame": 1000 * float(np.median(total)),
        "stages_ms": {
            "decode": 1000 * float(np.median(decode)),
            "detect_and_crop": 1000 * float(np.median(detect)),
            "classify": 1000 * float(np.median(classify)),
        },
    }


def benchmark_end_to_end(media_dir: Path, model: str | os.PathLike | None = None, repeats: int = 20) -> dict:
    """ms per frame per core of decode + detect + classify (see the module doc)."""
    from fer_utils.deploy.bundled import bundled_model_path
    from fer_utils.deploy.media_prediction import model_face_options
    from fer_utils.deploy.predictors import load_predictor

    clips = {
        "one face, video 640×360": media_dir / "single_face.mp4",
        "five people, still": media_dir / "multi_face.jpg",
    }
    missing = [str(p) for p in clips.values() if not p.exists()]
    if missing:
        return {"skipped": f"media not found: {', '.join(missing)}"}
    _one_core()
    model = model or bundled_model_path()
    predictor = load_predictor(model, num_threads=1)
    options = model_face_options(predictor, None)
    predictor.predict_proba(np.zeros((1, predictor.image_size, predictor.image_size), np.uint8))  # warm-up
    rows = []
    for name, path in clips.items():
        _stage_times(path, predictor, options, 2)  # warm-up: detector models, decoder
        rows.append({"case": name, **_stage_times(path, predictor, options, repeats)})
    one_face = rows[0]["ms_per_frame"]
    return {
        "model": Path(model).name,
        "threads": 1,
        "face_options": options,
        "rows": rows,
        "peers": PEER_FIGURES,
        "target_ms_per_frame": TARGET_MS_PER_FRAME,
        "met": one_face <= TARGET_MS_PER_FRAME,
    }


# ------------------------------------------------------------------------------------------------ memory


def make_long_clip(source: Path, out: Path, seconds: float, fps: int = 25, size=(320, 180)) -> Path:
    """A clip of ``seconds`` at ``fps`` made by looping ``source``'s frames resized to ``size``."""
    import cv2

    capture = cv2.VideoCapture(str(source))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    capture.release()
    if not frames:
        raise ValueError(f"{source} gives no frame")
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    total = round(seconds * fps)
    for i in range(total):
        # Forward then backward, so the face moves smoothly and the clip has no jump at the loop.
        cycle = i % (2 * len(frames) - 2) if len(frames) > 1 else 0
        writer.write(frames[cycle if cycle < len(frames) else 2 * len(frames) - 2 - cycle])
    writer.release()
    return out


_MEASURE = """
import sys
from fer_utils.bench.end_to_end import own_peak_rss_kb
from fer_utils.cli import main
code = main(sys.argv[1:])
heavy = ",".join(name for name in ("tensorflow", "keras", "onnxruntime", "ai_edge_litert") if name in sys.modules)
print("PEAK_RSS_KB", own_peak_rss_kb(), "EXIT", code, "MODULES", heavy or "-")
"""
#: Target of the suite: peak resident memory of ``fer predict`` with the bundled model.
TARGET_PREDICT_MIB = 300.0


def own_peak_rss_kb() -> int:
    """This process's peak resident memory in kB (``VmHWM``; ``ru_maxrss`` where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def peak_memory_of_predict(clip: Path, out_dir: Path, fps: float, model: str | None = None) -> dict:
    """Peak RSS (MiB) and wall time of ``fer predict CLIP --fps FPS`` in a fresh process (after the face
    detector's one-time conversion into the user's cache, a first-use cost that is not predicting)."""
    from fer_utils.faces.centerface import any_size_model

    any_size_model()
    args = [sys.executable, "-c", _MEASURE, "predict", str(clip), "--fps", str(fps), "--out", str(out_dir)]
    if model:
        args += ["--model", str(model)]
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("PEAK_RSS_KB")), None)
    if line is None:
        raise RuntimeError(f"fer predict failed on {clip}: {done.stderr[-2000:]}")
    parts = line.split()
    peak_kb, code, modules = int(parts[1]), int(parts[3]), parts[5]
    return {
        "clip": clip.name,
        "peak_rss_mib": peak_kb / 1024,
        "seconds": round(seconds, 1),
        "exit": code,
        "heavy_modules": [] if modules == "-" else modules.split(","),
    }


def predict_memory(media_dir: Path, short_s: float = 10, long_s: float = 600, fps: float = 25) -> dict:
    """Peak memory of ``fer predict --fps`` on a ``short_s`` and a ``long_s`` clip (ratio long/short)."""
    source = media_dir / "single_face.mp4"
    if not source.exists():
        return {"skipped": f"{source} not found"}
    with tempfile.TemporaryDirectory(prefix="fer-predict-memory-") as folder:
        folder = Path(folder)
        rows = []
        for seconds in (short_s, long_s):
            clip = make_long_clip(source, folder / f"clip_{int(seconds)}s.mp4", seconds)
            out = folder / f"out_{int(seconds)}s"  # one folder per run: predict refuses to mix batches
            rows.append({"seconds_of_video": seconds, **peak_memory_of_predict(clip, out, fps)})
    ratio = rows[1]["peak_rss_mib"] / rows[0]["peak_rss_mib"]
    peak = max(row["peak_rss_mib"] for row in rows)
    return {
        "fps": fps,
        "rows": rows,
        "ratio_long_to_short": ratio,
        "target_ratio": 1.2,
        "met": ratio <= 1.2,
        "peak_rss_mib": peak,
        "target_peak_mib": TARGET_PREDICT_MIB,
        "peak_met": peak <= TARGET_PREDICT_MIB,
        "measured_as": "VmHWM of the fresh process (ru_maxrss would include the parent's peak)",
    }


def markdown_sections(end_to_end: dict | None, memory: dict | None) -> list[str]:
    """Markdown tables of both measurements (for ``benchmarks.md``)."""
    lines: list[str] = []
    if end_to_end and "rows" in end_to_end:
        lines += [
            "## End to end (decode + detect + classify, 1 core)",
            "",
            f"Model `{end_to_end['model']}`; face options {end_to_end['face_options']}.",
            "",
            "| case | frames | faces/frame | ms/frame | decode | detect + crop | classify |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in end_to_end["rows"]:
            stages = row["stages_ms"]
            lines.append(
                f"| {row['case']} | {row['frames']} | {row['faces_per_frame']:.1f} | {row['ms_per_frame']:.1f} | "
                f"{stages['decode']:.1f} | {stages['detect_and_crop']:.1f} | {stages['classify']:.1f} |"
            )
        lines += ["", "Published peer figures (not measured here):", ""]
        lines += [
            f"- {p['tool']}: {p['ms_per_frame']:.0f} ms/frame ({p['source']})" for p in end_to_end["peers"]
        ]
        lines.append("")
    if memory and "rows" in memory:
        lines += [
            f"## Memory of `fer predict --fps {memory['fps']:g}`",
            "",
            "| clip | seconds of video | peak RSS (MiB) | wall (s) | heavy modules loaded |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['clip']} | {r['seconds_of_video']:g} | {r['peak_rss_mib']:.0f} | {r['seconds']} | "
            f"{', '.join(r.get('heavy_modules') or []) or '—'} |"
            for r in memory["rows"]
        ]
        lines += [
            "",
            f"Long / short peak memory: {memory['ratio_long_to_short']:.3f} (target ≤ 1.2). "
            f"Peak {memory.get('peak_rss_mib', 0):.0f} MiB (target ≤ {TARGET_PREDICT_MIB:.0f} MiB; "
            f"{memory.get('measured_as', 'ru_maxrss')}).",
            "",
        ]
    return lines
