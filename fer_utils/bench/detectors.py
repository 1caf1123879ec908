"""Face detectors side by side on the real media: faces found per file and ms per frame on one core.

:func:`benchmark_detectors` runs every detector of :data:`DETECTORS_COMPARED` on each photo and on every
``step``-th frame of each clip of ``pyfeat_media`` (gray frames, as ``fer predict`` gives them), then times
detection on frames of the one-face clip with the detectors interleaved round by round, and ``fer
predict``'s whole face loop (keyframes + tracking + the bundled model) per detector: ratios to dlib's HOG
measured in the same rounds, so a loaded machine slows all alike.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

#: The detectors compared (``fer predict``'s default among them, HOG as the reference).
DETECTORS_COMPARED = ("hog", "centerface", "cnn")
PHOTOS = (
    "multi_face.jpg",
    "single_face.jpg",
    "0-f1-su-ph.jpg",
    "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg",
    "45-m7-di-ph.jpg",
    "free-mountain-vector-01.jpg",
)
CLIPS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "no_face.mp4", "face_noface.mov", "noface_face.mov")
#: The clip timed (640×360, one face).
TIMED_CLIP = "single_face.mp4"


def faces_found(media_dir: Path, detectors=DETECTORS_COMPARED, step: int = 8) -> list[dict]:
    """Per photo the faces each detector finds; per clip the sampled frames with a face and the most faces."""
    import cv2

    from fer_utils.bench.keyframes import decoded_frames
    from fer_utils.faces.detection import detect_faces

    rows = []
    for name in PHOTOS:
        if (media_dir / name).exists():
            image = cv2.imread(str(media_dir / name), cv2.IMREAD_GRAYSCALE)
            rows.append({"media": name, **{d: len(detect_faces(image, d)) for d in detectors}})
    for name in CLIPS:
        if not (media_dir / name).exists():
            continue
        frames = [frame.image for frame in decoded_frames(media_dir / name, None)[0][::step]]
        row = {"media": name, "frames": len(frames)}
        for detector in detectors:
            counts = [len(detect_faces(frame, detector)) for frame in frames]
            row[detector] = f"{sum(c > 0 for c in counts)}/{len(frames)} frames, ≤ {max(counts)}"
        rows.append(row)
    return rows


def detection_ms(frames: list[np.ndarray], detectors=DETECTORS_COMPARED, rounds: int = 3) -> dict:
    """Median ms per frame of each detector and its ratio to HOG (median of per-round ratios)."""
    from fer_utils.faces.detection import detect_faces

    times: dict = {d: [] for d in detectors}
    for detector in detectors:
        detect_faces(frames[0], detector)  # built and warmed up outside the timing
    for _ in range(rounds):
        for detector in detectors:
            started = time.perf_counter()
            for frame in frames:
                detect_faces(frame, detector)
            times[detector].append(1000 * (time.perf_counter() - started) / len(frames))
    hog = np.array(times["hog"])
    return {
        d: {"ms": float(np.median(v)), "ratio_to_hog": float(np.median(np.array(v) / hog)), "rounds": v}
        for d, v in times.items()
    }


def predict_ms(frames, detectors=("hog", "centerface"), rounds: int = 3) -> dict:
    """``fer predict``'s face loop (default keyframes and tracker, bundled model, one core) per detector."""
    from fer_utils.deploy.engines import bundled_predictor
    from fer_utils.deploy.media_prediction import model_face_options, predict_frames
    from fer_utils.faces.keyframes import DEFAULT_DETECT_EVERY

    predictor = bundled_predictor("auto", threads=1)
    times: dict = {d: [] for d in detectors}
    for _ in range(rounds):
        for detector in detectors:
            options = model_face_options(predictor, detector)
            started = time.perf_counter()
            predict_frames(frames, predictor, options, detect_every=DEFAULT_DETECT_EVERY)
            times[detector].append(1000 * (time.perf_counter() - started) / len(frames))
    hog = np.array(times["hog"])
    return {
        d: {"ms": float(np.median(v)), "ratio_to_hog": float(np.median(np.array(v) / hog)), "rounds": v}
        for d, v in times.items()
    }


def benchmark_detectors(media_dir: Path, quick: bool = False) -> dict:
    """The detector comparison of ``fer bench`` (see the module doc)."""
    import cv2

    from fer_utils.bench.keyframes import decoded_frames

    if not (media_dir / TIMED_CLIP).exists():
        return {"skipped": f"{TIMED_CLIP} not in {media_dir}"}
    cv2.setNumThreads(1)
    frames, decode_ms = decoded_frames(media_dir / TIMED_CLIP, None)
    timed = [frame.image for frame in frames[:: 12 if quick else 6]]
    return {
        "threads": 1,
        "faces": faces_found(media_dir, step=16 if quick else 8),
        "detection": detection_ms(timed, rounds=2 if quick else 3),
        "predict": predict_ms(frames, rounds=2 if quick else 3),
        "decode_ms": decode_ms,
        "timed_frames": len(timed),
    }


def markdown_section(results: dict | None) -> list[str]:
    """The comparison as Markdown tables (for ``benchmarks.md``)."""
    if not results or "faces" not in results:
        return []
    detectors = list(results["detection"])
    lines = [
        "## Face detectors (1 core)",
        "",
        "Faces found on gray frames, as `fer predict` gives them (photos: faces; clips: sampled frames with "
        f"a face, most faces in one). Time: {results['timed_frames']} frames of `{TIMED_CLIP}` (640×360), "
        "detectors interleaved round by round; `fer predict`: its face loop on every frame of the clip "
        "(keyframes + tracking + the bundled model, decode excluded).",
        "",
        "| media | " + " | ".join(detectors) + " |",
        "|---" * (len(detectors) + 1) + "|",
    ]
    lines += [
        f"| {row['media']} | " + " | ".join(str(row[d]) for d in detectors) + " |" for row in results["faces"]
    ]
    lines += ["", "| | " + " | ".join(detectors) + " |", "|---" * (len(detectors) + 1) + "|"]
    detection = results["detection"]
    lines.append(
        "| detection ms/frame | " + " | ".join(f"{detection[d]['ms']:.1f}" for d in detectors) + " |"
    )
    lines.append(
        "| ratio to hog | " + " | ".join(f"{detection[d]['ratio_to_hog']:.2f}" for d in detectors) + " |"
    )
    predict = results["predict"]
    lines.append(
        "| `fer predict` ms/frame | "
        + " | ".join(f"{predict[d]['ms']:.1f}" if d in predict else "—" for d in detectors)
        + " |"
    )
    lines.append(
        "| ratio to hog | "
        + " | ".join(f"{predict[d]['ratio_to_hog']:.2f}" if d in predict else "—" for d in detectors)
        + " |"
    )
    return [*lines, ""]
