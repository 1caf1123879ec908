"""Preprocessing throughput: clips per second per core and faces found, per setting.

Each setting runs every clip of a folder in this process, best of ``repeats`` per clip, after a warm-up
that loads the dlib models, so the figures compare settings rather than start-up costs. Throughput per
core is counted in CPU seconds of this process (all its threads), which stays comparable on a busy,
shared machine; wall-clock figures are reported beside it.
The ``naive`` setting decodes and converts every frame and detects at full resolution with one
upsampling pass on the 6 evenly spaced frames; ``default`` is :class:`PreprocessConfig` as shipped.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np

from fer_utils.data.samples import VIDEO_SUFFIXES, Sample
from fer_utils.faces.frames import Frame, SampledFrames, evenly_spaced, is_image, sample_frames
from fer_utils.faces.preprocess_config import PreprocessConfig
from fer_utils.faces.sample_faces import process_sample

#: The paper-like but unoptimised setting used as the benchmark baseline: every frame decoded and
#: converted, detection at full resolution with one upsampling pass, the 6 evenly spaced frames only.
NAIVE_CONFIG = PreprocessConfig(detect_width=None, upsample=1, candidates_per_frame=1)


#: Settings compared by default: name → (config, decode every frame).
DEFAULT_SETTINGS: dict[str, tuple[PreprocessConfig, bool]] = {
    "naive": (NAIVE_CONFIG, True),
    "default": (PreprocessConfig(), False),
    "default, seek sampling": (PreprocessConfig(sampling="seek"), False),
    "6 frames only (no candidates)": (PreprocessConfig(candidates_per_frame=1), False),
    "detect at 400 px": (PreprocessConfig(detect_width=400), False),
    "full resolution, upsample 1": (PreprocessConfig(detect_width=None, upsample=1), False),
}


def benchmark_preprocessing(
    media_dir: str | os.PathLike,
    settings: dict[str, tuple[PreprocessConfig, bool]] | None = None,
    repeats: int = 3,
    workers: int | None = None,
    quick: bool = False,
) -> dict:
    """Time the preprocessing of every video in ``media_dir`` under several settings.

    Args:
        media_dir: folder of video files (e.g. ``../shared/data/pyfeat_media``).
        settings: name → (config, decode every frame); default :data:`DEFAULT_SETTINGS`.
        repeats: runs per clip (the fastest counts: the machine may be shared).
        workers: when > 1, also time a parallel :func:`~fer_utils.faces.preprocess.preprocess` run of the
            default setting with this many processes.
        quick: only ``naive`` and ``default``, one run per clip (for ``fer bench --quick``).

    Returns:
        ``{"clips": [...], "settings": {name: {clips_per_second_per_core, seconds, faces,
        clips_with_faces, per_clip: {clip: {seconds, faces, sampled_frames, face_frames}}}},
        "speedup_vs_naive": {name: x}, "parallel": {...} or None, "environment": {...}}``.
    """
    environment = _environment()
    media_dir = Path(media_dir)
    clips = _video_clips(media_dir)
    if repeats < 1:
        raise ValueError(f"repeats must be ≥ 1, got {repeats}")
    settings = settings or DEFAULT_SETTINGS
    if quick:
        settings = {name: settings[name] for name in ("naive", "default") if name in settings} or settings
        repeats = 1
    _load_detectors(settings)
    samples = [Sample("bench", str(p), "neutral", None, p.name) for p in clips]
    process_sample(samples[0], PreprocessConfig(candidates_per_frame=1))  # warm-up of codecs and caches
    results = {
        name: _time_setting(samples, config, decode_all, repeats)
        for name, (config, decode_all) in settings.items()
    }
    stages = {
        name: stage_times(samples, *settings[name]) for name in ("naive", "default") if name in settings
    }
    floor = decode_floor(samples, settings["default"][0], repeats) if "default" in settings else None
    return {
        "decode_floor": floor,
        "ratio_to_decode_floor": (
            results["default"]["clips_per_second_per_core"] / floor["clips_per_second_per_core"]
            if floor
            else None
        ),
        "media_dir": str(media_dir),
        "clips": [p.name for p in clips],
        "repeats": repeats,
        "settings": results,
        "speedup_vs_naive": _speedup_vs_naive(results),
        "stages": stages,
        "parallel": _parallel_run(samples, workers) if workers and workers > 1 else None,
        "environment": environment,
    }


def _video_clips(media_dir: Path) -> list[Path]:
    clips = sorted(p for p in media_dir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not clips:
        raise ValueError(f"no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) in {media_dir}")
    return clips


def _load_detectors(settings: dict[str, tuple[PreprocessConfig, bool]]) -> None:
    """Load the settings' dlib models before timing: model loading is not preprocessing."""
    from fer_utils.faces.detection import get_detector

    for config, _ in settings.values():
        if config.detector != "none":
            get_detector(config.detector)


def _speedup_vs_naive(results: dict) -> dict:
    if "naive" not in results:
        return {}
    base = results["naive"]["clips_per_second_per_core"]
    return {name: round(r["clips_per_second_per_core"] / base, 2) for name, r in results.items()}


def _environment() -> dict:
    import cv2
    import dlib

    return {
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "dlib": dlib.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }


def _time_clip(sample: Sample, config: PreprocessConfig, decode_all: bool, repeats: int) -> dict:
    """The fastest of ``repeats`` preprocessings of one clip (wall and CPU seconds) and what it found."""
    best_wall = best_cpu = None
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        item = process_sample(sample, config, decode_every_frame if decode_all else None)
        wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
        best_wall = wall if best_wall is None else min(best_wall, wall)
        best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
    return {
        "seconds": round(best_wall, 4),
        "cpu_seconds": round(best_cpu, 4),
        "faces": len(item.rows),
        "sampled_frames": item.stats.get("sampled_frames", 0),
        "face_frames": item.stats.get("face_frames", 0),
        "reason": item.reason,
    }


def _time_setting(samples: list[Sample], config: PreprocessConfig, decode_all: bool, repeats: int) -> dict:
    """One setting over every clip: clips per second (per core and wall), faces, and each clip's figures."""
    per_clip = {Path(s.media_path).name: _time_clip(s, config, decode_all, repeats) for s in samples}
    seconds = sum(clip["seconds"] for clip in per_clip.values())
    cpu_seconds = sum(clip["cpu_seconds"] for clip in per_clip.values())
    return {
        "clips_per_second_per_core": round(len(samples) / cpu_seconds, 3),
        "clips_per_second_wall": round(len(samples) / seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "seconds": round(seconds, 3),
        "faces": sum(clip["faces"] for clip in per_clip.values()),
        "clips_with_faces": sum(clip["faces"] > 0 for clip in per_clip.values()),
        "config": config.to_dict(),
        "decode_all_frames": decode_all,
        "per_clip": per_clip,
    }


def decode_floor(samples: list[Sample], config: PreprocessConfig, repeats: int) -> dict:
    """The floor of a setting: its frame sampling alone (the frames it decodes, nothing detected), best
    of ``repeats`` per clip in CPU seconds → clips/s per core. Preprocessing cannot beat it without
    decoding fewer frames."""
    cpu_seconds = wall_seconds = 0.0
    count = config.frames_per_video * config.candidates_per_frame
    for sample in samples:
        best_cpu = best_wall = None
        for _ in range(repeats):
            started, started_cpu = time.perf_counter(), time.process_time()
            sample_frames(sample.media_path, count, gray=True, method=config.sampling)
            wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
            best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
            best_wall = wall if best_wall is None else min(best_wall, wall)
        cpu_seconds += best_cpu
        wall_seconds += best_wall
    return {
        "what": f"decode only: sample_frames of {count} candidate frames per clip ({config.sampling} walk)",
        "clips_per_second_per_core": round(len(samples) / cpu_seconds, 3),
        "clips_per_second_wall": round(len(samples) / wall_seconds, 3),
        "ms_per_clip": round(1000 * cpu_seconds / len(samples), 1),
    }


def stage_times(samples: list[Sample], config: PreprocessConfig, decode_all: bool) -> dict:
    """Mean milliseconds per clip of each stage, each timed alone: decode (frame sampling), detect
    (the detector on the ``frames_per_video`` evenly spaced frames), crop/resize, and write (one cache
    shard of the crops)."""
    import tempfile

    from fer_utils.faces.cache_writer import FaceCacheWriter
    from fer_utils.faces.detection import crop_face, detect_faces

    totals = {"decode": 0.0, "detect": 0.0, "crop_resize": 0.0, "write": 0.0}
    with tempfile.TemporaryDirectory() as folder:
        writer = FaceCacheWriter(folder, {"benchmark": "stages"})
        for sample in samples:
            started = time.perf_counter()
            if decode_all:
                sampled = decode_every_frame(sample.media_path, config.frames_per_video)
            else:
                count = config.frames_per_video * config.candidates_per_frame
                sampled = sample_frames(sample.media_path, count, method=config.sampling)
            totals["decode"] += time.perf_counter() - started
            if not sampled.frames:
                continue
            picked = [sampled.frames[i] for i in evenly_spaced(len(sampled.frames), config.frames_per_video)]
            started = time.perf_counter()
            found = [
                (frame, detect_faces(frame.image, config.detector, config.upsample, config.detect_width))
                for frame in picked
            ]
            totals["detect"] += time.perf_counter() - started
            started = time.perf_counter()
            crops = [
                crop_face(frame.image, boxes[0], config.face_size, config.margin)
                for frame, boxes in found
                if boxes
            ]
            totals["crop_resize"] += time.perf_counter() - started
            started = time.perf_counter()
            if crops:
                rows = [{"media_path": sample.media_path, "frame_index": i} for i in range(len(crops))]
                writer.add(sample.media_path, np.stack(crops), rows)
                writer.flush()
            totals["write"] += time.perf_counter() - started
    return {
        f"{stage}_ms_per_clip": round(1000 * seconds / len(samples), 2) for stage, seconds in totals.items()
    }


def _parallel_run(samples: list[Sample], workers: int) -> dict:
    import tempfile

    from fer_utils.faces.preprocess import preprocess

    with tempfile.TemporaryDirectory() as cache_root:
        cache = preprocess(samples, cache_root, PreprocessConfig(), workers=workers, progress=False)
        report = cache.report
        return {
            "workers": workers,
            "clips": report.processed,
            "seconds": round(report.seconds, 3),
            "clips_per_second": round(report.clips_per_second, 3),
            "faces": report.faces,
        }


def format_benchmark(result: dict) -> str:
    """The benchmark as a Markdown table for people."""
    lines = [
        f"Preprocessing throughput on {len(result['clips'])} clips of {result['media_dir']} "
        f"(best of {result['repeats']} per clip; per-clip cells: CPU seconds / faces kept)",
        "",
        "| setting | clips/s per core (CPU time) | × naive | clips/s (wall) | faces | clips with faces |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in result["settings"].items():
        speedup = result["speedup_vs_naive"].get(name, float("nan"))
        lines.append(
            f"| {name} | {row['clips_per_second_per_core']:.2f} | {speedup:.1f} "
            f"| {row['clips_per_second_wall']:.2f} | {row['faces']} "
            f"| {row['clips_with_faces']} |"
        )
    lines += [
        "",
        "| clip | " + " | ".join(result["settings"]) + " |",
        "| --- |" + " ---: |" * len(result["settings"]),
    ]
    for clip in result["clips"]:
        cells = [
            f"{row['per_clip'][clip]['cpu_seconds']:.2f} s / {row['per_clip'][clip]['faces']}"
            for row in result["settings"].values()
        ]
        lines.append(f"| {clip} | " + " | ".join(cells) + " |")
    if result.get("stages"):
        lines += ["", "| setting | decode ms/clip | detect ms/clip | crop+resize ms/clip | write ms/clip |"]
        lines.append("| --- | ---: | ---: | ---: | ---: |")
        for name, row in result["stages"].items():
            lines.append(
                f"| {name} | {row['decode_ms_per_clip']:.1f} | {row['detect_ms_per_clip']:.1f} "
                f"| {row['crop_resize_ms_per_clip']:.1f} | {row['write_ms_per_clip']:.1f} |"
            )
    if result.get("decode_floor"):
        floor = result["decode_floor"]
        lines += [
            "",
            f"Floor ({floor['what']}): {floor['clips_per_second_per_core']:.2f} clips/s per core "
            f"({floor['ms_per_clip']:.0f} ms CPU per clip); the default runs at "
            f"{result['ratio_to_decode_floor']:.2f} × that floor (1.0 = nothing but decoding).",
        ]
    if result.get("parallel"):
        par = result["parallel"]
        lines += [
            "",
            f"Parallel default run: {par['clips']} clips on {par['workers']} processes in {par['seconds']} s "
            f"= {par['clips_per_second']} clips/s, {par['faces']} faces.",
        ]
    env = result["environment"]
    lines += ["", f"OpenCV {env['opencv']}, dlib {env['dlib']}, Python {env['python']}, {env['cpus']} CPUs."]
    return "\n".join(lines)


def decode_every_frame(path: str, count: int) -> SampledFrames:
    """Naive baseline: decode and convert every frame, then keep the evenly spaced ones."""
    import cv2

    if is_image(path) or not os.path.isfile(path):
        return sample_frames(path, count)
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(Frame(len(frames), capture.get(cv2.CAP_PROP_POS_MSEC), image))
    capture.release()
    if not frames:
        return SampledFrames(error="no decodable frame")
    picked = [frames[i] for i in evenly_spaced(len(frames), count)]
    for frame in picked:
        frame.image = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
    return SampledFrames(picked, reported_count=len(frames), decoded_count=len(frames))
