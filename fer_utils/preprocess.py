"""Samples → face cache (see :mod:`fer_utils.cache`).

This first version handles already-cropped face images (``detector='none'``); video sampling and dlib
detection plug into :func:`process_sample`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from .cache import FaceCache, FaceCacheWriter, cache_dir_for
from .datasets import Sample, SkippedItem


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything that changes the faces in a cache (its hash names the cache folder)."""

    image_size: int = 180
    frames_per_video: int = 6
    detector: str = "hog"

    def to_dict(self) -> dict:
        return asdict(self)


def to_gray_face(image: np.ndarray, image_size: int) -> np.ndarray:
    """Grayscale, resized to ``image_size``², uint8."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    interpolation = cv2.INTER_AREA if min(image.shape[:2]) > image_size else cv2.INTER_LINEAR
    return cv2.resize(image, (image_size, image_size), interpolation=interpolation).astype(np.uint8)


def process_sample(
    sample: Sample, config: PreprocessConfig
) -> tuple[np.ndarray | None, list[dict], str | None]:
    """One sample → (faces, index rows, skip reason)."""
    if config.detector != "none":
        raise ValueError(f"detector {config.detector!r} is not available in this version")
    image = cv2.imread(sample.media_path, cv2.IMREAD_UNCHANGED)
    if image is None:
        return None, [], "unreadable image (does not decode)"
    face = to_gray_face(image, config.image_size)
    height, width = image.shape[:2]
    row = {
        **sample.row(),
        "frame_index": 0,
        "timestamp": 0.0,
        "bbox_x": 0,
        "bbox_y": 0,
        "bbox_w": width,
        "bbox_h": height,
        "detector": config.detector,
    }
    return face[None], [row], None


def preprocess(
    samples: Sequence[Sample],
    cache_root: str | os.PathLike,
    config: PreprocessConfig,
    dataset: str | None = None,
    skipped: Sequence[SkippedItem] = (),
    progress: bool = True,
) -> FaceCache:
    """Build (or resume) the face cache of ``samples`` under ``cache_root`` and return it."""
    if not samples:
        raise ValueError("no samples to preprocess")
    dataset = dataset or samples[0].dataset
    cache_dir = cache_dir_for(cache_root, dataset, {"dataset": dataset, **config.to_dict()})
    writer = FaceCacheWriter(cache_dir, {"dataset": dataset, **config.to_dict()})
    done = writer.done_items()
    for item in skipped:
        if item.media_path not in done:
            writer.add(item.media_path, None, [], item.reason)
    todo = [s for s in samples if s.media_path not in done]
    for sample in tqdm(todo, desc=f"faces {dataset}", unit="item", disable=not progress):
        faces, rows, reason = process_sample(sample, config)
        writer.add(sample.media_path, faces, rows, reason)
    return writer.close()


def default_cache_root() -> Path:
    return Path(os.environ.get("FER_CACHE_ROOT", "cache"))


def add_cli(subparsers) -> None:
    """Register ``fer preprocess`` (placeholder until the full dataset options land)."""
    parser = subparsers.add_parser("preprocess", help="media → face cache (datasets, frames, dlib faces)")
    parser.add_argument("--dataset", default="folder")
    parser.add_argument("--root")
    parser.add_argument("--cache-root", default=None)
    parser.set_defaults(func=_run_cli)


def _run_cli(args) -> int:
    from .datasets import folder_samples

    if not args.root:
        raise ValueError("--root is required")
    samples, skipped = folder_samples(args.root, args.dataset)
    cache = preprocess(
        samples, args.cache_root or default_cache_root(), PreprocessConfig(detector="none"), skipped=skipped
    )
    print(cache.cache_dir)
    return 0
