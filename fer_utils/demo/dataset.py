"""The demo set on disk: RAVDESS naming and layout (``OUT/Actor_XX/02-01-EE-II-SS-RR-XX.mp4``), which clips
each actor gets, the mp4 writer, the manifest that lets a rebuild be skipped, and ``fer demo-data``."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fer_utils.data.synthetic import MANIFEST_NAME
from fer_utils.demo.actors import make_actor
from fer_utils.demo.clips import render_clip
from fer_utils.demo.expressions import EXPRESSIONS
from fer_utils.progress import progress_bar

#: RAVDESS emotion codes (the third field of a RAVDESS file name).
RAVDESS_EMOTION_CODES = {
    "neutral": 1,
    "calm": 2,
    "happy": 3,
    "sad": 4,
    "angry": 5,
    "fearful": 6,
    "disgust": 7,
    "surprised": 8,
}

#: Emotions the demo renders by default: all eight RAVDESS emotions.
DEMO_EMOTIONS = tuple(RAVDESS_EMOTION_CODES)


def ravdess_name(emotion: str, intensity: int, statement: int, repetition: int, actor: int) -> str:
    """RAVDESS file name of a video-only speech clip: ``02-01-EE-II-SS-RR-AA.mp4``."""
    code = RAVDESS_EMOTION_CODES[emotion]
    return f"02-01-{code:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.mp4"


def clip_variants(emotion: str, clips_per_emotion: int) -> list[tuple[int, int, int]]:
    """(intensity, statement, repetition) of an emotion's clips per actor, in RAVDESS order of preference:
    both intensities first, then repetition 2, then statement 2. Neutral has only normal intensity, as in
    RAVDESS, so it gets at most 4 clips.

    Args:
        emotion: emotion name.
        clips_per_emotion: clips wanted per actor and emotion (1 to 8).

    Returns:
        Up to ``clips_per_emotion`` (intensity, statement, repetition) triples.
    """
    if not 1 <= clips_per_emotion <= 8:
        raise ValueError(f"clips_per_emotion must be between 1 and 8, got {clips_per_emotion}")
    intensities = (1,) if emotion == "neutral" else (1, 2)
    variants = [
        (intensity, statement, repetition)
        for statement in (1, 2)
        for repetition in (1, 2)
        for intensity in intensities
    ]
    return variants[:clips_per_emotion]


def _write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    """Write BGR frames to an mp4 (MPEG-4 part 2) atomically: a temp name, then a rename."""
    import cv2

    height, width = frames.shape[1:3]
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    writer = cv2.VideoWriter(str(temporary), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4 video to {temporary}")
    for frame in frames:
        writer.write(frame)
    writer.release()
    os.replace(temporary, path)


def make_demo_dataset(
    out_dir: str | os.PathLike,
    actors: int = 6,
    clips_per_emotion: int = 2,
    emotions: Sequence[str] = DEMO_EMOTIONS,
    seed: int = 0,
    size: tuple[int, int] = (320, 240),
    fps: float = 15.0,
    seconds: float = 1.6,
    progress: bool = False,
) -> Path:
    """Write the synthetic RAVDESS-layout demo set (``OUT/Actor_XX/02-01-EE-II-SS-RR-XX.mp4``).

    Reuses an existing set built with the same parameters (recorded in ``demo_manifest.json``).

    Args:
        out_dir: output folder (created).
        actors: number of synthetic actors (at least 4, so a subject-independent split is possible).
        clips_per_emotion: clips per actor and emotion (see :func:`clip_variants`).
        emotions: emotions to render (names of :data:`EXPRESSIONS`).
        seed: seed of identities, head motion and noise; the same seed gives the same frames.
        size: (width, height) of the frames.
        fps: frame rate.
        seconds: clip length.
        progress: show a progress bar.

    Returns:
        ``out_dir`` as a Path.
    """
    width, height, frame_count = _check_demo_arguments(
        actors, clips_per_emotion, emotions, size, fps, seconds
    )
    out_dir = Path(out_dir)
    parameters = {
        "actors": actors,
        "clips_per_emotion": clips_per_emotion,
        "emotions": list(emotions),
        "seed": seed,
        "size": [width, height],
        "fps": fps,
        "seconds": seconds,
    }
    plan = demo_plan(out_dir, actors, clips_per_emotion, emotions)
    manifest_path = out_dir / MANIFEST_NAME
    if _already_built(manifest_path, [path for *_, path in plan], parameters):
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)
    _write_clips(plan, seed, frame_count, (width, height), fps, progress)
    manifest = {
        "synthetic": True,
        "note": "Synthetic demo set made from skimage.data.astronaut() with drawn-on expressions; "
        "it says nothing about accuracy on real faces.",
        "parameters": parameters,
        "clips": len(plan),
        "frames_per_clip": frame_count,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return out_dir


def _check_demo_arguments(
    actors: int,
    clips_per_emotion: int,
    emotions: Sequence[str],
    size: tuple[int, int],
    fps: float,
    seconds: float,
) -> tuple[int, int, int]:
    """ValueError for arguments that cannot make a usable demo set; else ``(width, height, frames per clip)``."""
    if not 4 <= actors <= 24:
        raise ValueError(f"actors must be between 4 and 24 (RAVDESS has 24), got {actors}")
    unknown = [e for e in emotions if e not in EXPRESSIONS]
    if unknown or not emotions:
        raise ValueError(f"unknown or no demo emotions {unknown}; known: {list(EXPRESSIONS)}")
    width, height = (int(v) for v in size)
    if width < 160 or height < 120:
        raise ValueError(
            f"frame size must be at least 160x120 so faces stay detectable, got {width}x{height}"
        )
    frame_count = int(round(seconds * fps))
    if frame_count < 6:
        raise ValueError(f"clips need at least 6 frames (seconds × fps), got {frame_count}")
    clip_variants(emotions[0], clips_per_emotion)  # validates the count
    return width, height, frame_count


def demo_plan(
    out_dir: Path, actors: int, clips_per_emotion: int, emotions: Sequence[str]
) -> list[tuple[int, str, int, int, int, Path]]:
    """Every clip of the set: ``(actor, emotion, intensity, statement, repetition, path)``."""
    return [
        (number, emotion, intensity, statement, repetition, out_dir / f"Actor_{number:02d}" / name)
        for number in range(1, actors + 1)
        for emotion in emotions
        for intensity, statement, repetition in clip_variants(emotion, clips_per_emotion)
        for name in [ravdess_name(emotion, intensity, statement, repetition, number)]
    ]


def _already_built(manifest_path: Path, paths: list[Path], parameters: dict) -> bool:
    """Whether every clip exists and the manifest records the same parameters."""
    if not (manifest_path.exists() and all(path.exists() for path in paths)):
        return False
    return json.loads(manifest_path.read_text()).get("parameters") == parameters


def _write_clips(
    plan: list, seed: int, frame_count: int, size: tuple[int, int], fps: float, progress: bool
) -> None:
    """Render and write every clip of ``plan`` (:func:`demo_plan`)."""
    cast = {number: make_actor(number, seed) for number in sorted({clip[0] for clip in plan})}
    for number, emotion, intensity, statement, repetition, path in progress_bar(
        plan, desc="demo clips", unit="clip", enabled=progress
    ):
        clip_seed = (seed, number, RAVDESS_EMOTION_CODES[emotion], intensity, statement, repetition)
        frames = render_clip(cast[number], emotion, intensity, clip_seed, frame_count, size, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_video(path, frames, fps)


def ensure_demo_dataset(
    root: str | os.PathLike, seed: int = 0, actors: int | None = None, progress: bool = True, **options
) -> tuple[Path, bool]:
    """The demo set under ``root``, generated first when the folder holds no clip, with a progress bar
    over its clips (``progress``; none in a kernel no one watches, :mod:`fer_utils.progress`): rendering
    takes tens of seconds. ``options``: further :func:`make_demo_dataset` settings.

    Returns:
        ``(root, made)``: ``made`` is True when this call generated the clips.
    """
    root = Path(root)
    if any(root.glob("Actor_*/*.mp4")):
        return root, False
    make_demo_dataset(root, seed=seed, progress=progress, **({"actors": actors} if actors else {}), **options)
    return root, True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write short synthetic RAVDESS-layout clips made from skimage's astronaut photo with "
        "warped expressions. Synthetic: for seeing the pipeline work, not for measuring accuracy."
    )
    parser.add_argument("out", help="output folder (gets Actor_XX/ subfolders)")
    parser.add_argument("--actors", type=int, default=6, help="synthetic actors (4–24; default 6)")
    parser.add_argument(
        "--clips-per-emotion", type=int, default=2, help="clips per actor and emotion (1–8; default 2)"
    )
    parser.add_argument(
        "--emotions", default=",".join(DEMO_EMOTIONS), help="comma-separated emotions (default: all eight)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed (same seed, same frames)")
    parser.add_argument("--size", default="320x240", help="frame size WIDTHxHEIGHT (default 320x240)")
    parser.add_argument("--fps", type=float, default=15.0, help="frame rate (default 15)")
    parser.add_argument("--seconds", type=float, default=1.6, help="clip length in seconds (default 1.6)")
    parser.set_defaults(func=_run_cli)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 320x240, got {text!r}") from None
    return width, height


def _run_cli(args: argparse.Namespace) -> int:
    emotions = [name.strip() for name in args.emotions.split(",") if name.strip()]
    started = time.perf_counter()
    out_dir = make_demo_dataset(
        args.out,
        actors=args.actors,
        clips_per_emotion=args.clips_per_emotion,
        emotions=emotions,
        seed=args.seed,
        size=_parse_size(args.size),
        fps=args.fps,
        seconds=args.seconds,
        progress=True,
    )
    elapsed = time.perf_counter() - started
    manifest = json.loads((out_dir / MANIFEST_NAME).read_text())
    width, height = manifest["parameters"]["size"]
    print(
        f"wrote {manifest['clips']} clips ({manifest['frames_per_clip']} frames of {width}x{height} at "
        f"{args.fps:g} fps) for {args.actors} actors × {len(emotions)} emotions ({', '.join(emotions)}) "
        f"to {out_dir} in {elapsed:.1f} s"
    )
    print(
        "SYNTHETIC data (one photographed face, drawn-on expressions): it says nothing about accuracy on real faces."
    )
    return 0
