"""Tiny real-face media for the preprocessing tests: short videos written with OpenCV from
``skimage.data.astronaut()`` (a real face photo), and dataset trees in RAVDESS/SAVEE/MEAD layouts."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

FACE_CENTRE = (223, 127)  # centre of the astronaut's face in the 512×512 photo


def _astronaut() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def face_frame(shift: int = 0, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """A BGR frame filled by the astronaut's face (found by dlib HOG at default settings)."""
    photo = _astronaut()
    cx, cy = FACE_CENTRE[0] + shift, FACE_CENTRE[1]
    crop = photo[cy - 60 : cy + 60, cx - 80 : cx + 80]
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)


def noface_frame(size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """A BGR frame of a real photo without a face (a coffee cup)."""
    from skimage import data

    return cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), size, interpolation=cv2.INTER_AREA)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """Write BGR frames as an mp4v video (``.avi`` gets MJPG)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def face_video(path: Path, frames: int = 12, face_every: int = 1, size=(160, 120)) -> Path:
    """A short clip of the moving face; with ``face_every=k`` only every k-th frame shows it."""
    images = [
        face_frame(i % 7 - 3, size) if i % face_every == 0 else noface_frame(size) for i in range(frames)
    ]
    return write_video(path, images)


def noface_video(path: Path, frames: int = 12) -> Path:
    return write_video(path, [noface_frame() for _ in range(frames)])


def place(source: Path, target: Path) -> Path:
    """Put a real file into a tree (symlink, or copy where links are not allowed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.symlink_to(Path(source).resolve())
    except OSError:
        shutil.copy(source, target)
    return target


def touch(path: Path, content: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path
