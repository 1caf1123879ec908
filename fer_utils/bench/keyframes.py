"""Keyframe detection + tracking and detection on downscaled frames, against detection on every frame.

* :func:`benchmark_keyframes` — every frame of each real clip through ``fer predict``'s face loop
  (:func:`fer_utils.deploy.media_prediction.predict_frames`, bundled model, one core) with detection on every
  frame (the reference) and with keyframes every k frames (each tracker): ms per frame (decode
  included), its ratio to the reference measured in the same rounds (configurations interleaved, so a
  loaded machine slows all alike), and per reference face the box IoU of the matched face and whether
  its label agrees.
* :func:`benchmark_detect_scale` — faces found on the real clips and photos when ``--min-face-size``
  lets the detector run on a downscaled frame, against full resolution, with the detection time ratio.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fer_utils.deploy.tracking import box_iou

#: Clips of the keyframe section (the real clips that hold faces).
KEYFRAME_CLIPS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov", "noface_face.mov")
#: Target of the issue: keyframe tracking against detection on every frame.
TARGET_LABEL_AGREEMENT = 0.95
TARGET_MEAN_IOU = 0.8


def decoded_frames(path: Path, limit: int | None):
    """The frames of a clip (at most ``limit``) decoded once, and the milliseconds decoding took."""
    import cv2

    from fer_utils.faces.frames import Frame

    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames, started = [], time.perf_counter()
    while limit is None or len(frames) < limit:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(
            Frame(len(frames), capture.get(cv2.CAP_PROP_POS_MSEC), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        )
    capture.release()
    decode_ms = 1000 * (time.perf_counter() - started) / max(1, len(frames))
    return frames, decode_ms


def compare_to_reference(reference, candidate) -> dict:
    """Per reference face: IoU of the best-overlapping candidate face of the same frame and label
    agreement (a missing face counts IoU 0, disagreeing). Tables as ``predict_frames`` returns them."""
    columns = ["frame_index", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "predicted_label"]
    found = candidate[candidate["status"] == "face"][columns]
    by_frame = {index: rows.to_numpy() for index, rows in found.groupby("frame_index")}
    ious, agree = [], []
    for row in reference[reference["status"] == "face"][columns].itertuples(index=False):
        box = (int(row.bbox_x), int(row.bbox_y), int(row.bbox_w), int(row.bbox_h))
        best_iou, best_label = 0.0, None
        for other in by_frame.get(row.frame_index, []):
            iou = box_iou(box, tuple(int(v) for v in other[1:5]))
            if iou > best_iou:
                best_iou, best_label = iou, other[5]
        ious.append(best_iou)
        agree.append(best_label == row.predicted_label)
    extra = len(found) - sum(iou > 0 for iou in ious)
    return {
        "reference_faces": len(ious),
        "mean_iou": float(np.mean(ious)) if ious else None,
        "min_iou": float(np.min(ious)) if ious else None,
        "label_agreement": float(np.mean(agree)) if agree else None,
        "extra_faces": int(max(0, extra)),
    }


def benchmark_keyframes(
    media_dir: Path,
    ks: tuple[int, ...] = (5, 10, 20),
    trackers: tuple[str, ...] = ("window", "correlation"),
    rounds: int = 3,
    max_frames: int | None = None,
) -> dict:
    """Keyframe detection + tracking vs detection on every frame on the real clips (see the module doc)."""
    import cv2

    from fer_utils.deploy.engines import bundled_predictor
    from fer_utils.deploy.media_prediction import model_face_options, predict_frames

    clips = [media_dir / name for name in KEYFRAME_CLIPS if (media_dir / name).exists()]
    if not clips:
        return {"skipped": f"none of {', '.join(KEYFRAME_CLIPS)} in {media_dir}"}
    cv2.setNumThreads(1)
    predictor = bundled_predictor("auto", threads=1)
    options = model_face_options(predictor, None)
    configs = [(1, "window")] + [(k, tracker) for tracker in trackers for k in ks]
    rows = []
    for clip in clips:
        frames, decode_ms = decoded_frames(clip, max_frames)
        times: dict = {config: [] for config in configs}
        tables: dict = {}
        for _ in range(rounds):
            for k, tracker in configs:
                started = time.perf_counter()
                table, _, _ = predict_frames(
                    frames, predictor, dict(options), detect_every=k, tracker=tracker
                )
                times[(k, tracker)].append(1000 * (time.perf_counter() - started) / len(frames))
                tables[(k, tracker)] = table
        reference_ms = np.array(times[(1, "window")])
        reference = tables[(1, "window")]
        labels = reference[reference["status"] == "face"].groupby("frame_index")["predicted_label"].first()
        self_agreement = (
            float(np.mean(labels.to_numpy()[1:] == labels.to_numpy()[:-1])) if len(labels) > 1 else None
        )
        for k, tracker in configs:
            ms = np.array(times[(k, tracker)])
            row = {
                "clip": clip.name,
                "frames": len(frames),
                "detect_every": k,
                "tracker": "—" if k == 1 else tracker,
                "ms_per_frame": float(np.median(ms)) + decode_ms,
                "decode_ms": decode_ms,
                "ratio_to_every_frame": float(np.median((ms + decode_ms) / (reference_ms + decode_ms))),
                "reference_self_agreement": self_agreement,
                **compare_to_reference(reference, tables[(k, tracker)]),
            }
            rows.append(row)
    return {
        "model": predictor.path.name,
        "engine": predictor.engine,
        "threads": 1,
        "rounds": rounds,
        "face_options": options,
        "rows": rows,
        "target_label_agreement": TARGET_LABEL_AGREEMENT,
        "target_mean_iou": TARGET_MEAN_IOU,
    }


#: Media of the detection-scale section: clips (every 4th frame) and photos.
SCALE_MEDIA = (
    "single_face.mp4",
    "WolfgangLanger_Pexels.mp4",
    "face_noface.mov",
    "noface_face.mov",
    "single_face.jpg",
    "multi_face.jpg",
    "0-f1-su-ph.jpg",
    "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg",
    "45-m7-di-ph.jpg",
)


def benchmark_detect_scale(media_dir: Path, min_face_sizes=(0, 100, 120, 160), step: int = 4) -> dict:
    """Faces found (box side ≥ the minimum) at full resolution vs on the frame downscaled as that minimum
    allows (:func:`fer_utils.faces.detection.detect_width_for`), and the detection time ratio (interleaved)."""
    import cv2

    from fer_utils.faces.detection import detect_faces, detect_width_for
    from fer_utils.faces.frames import is_image

    images = []
    for name in SCALE_MEDIA:
        path = media_dir / name
        if not path.exists():
            continue
        if is_image(path):
            images.append((name, cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)))
            continue
        frames, _ = decoded_frames(path, None)
        images += [(name, frame.image) for frame in frames[::step]]
    if not images:
        return {"skipped": f"no media of {', '.join(SCALE_MEDIA)} in {media_dir}"}
    cv2.setNumThreads(1)
    rows = []
    for min_face in min_face_sizes:
        full = scaled = 0
        full_s = scaled_s = 0.0
        widths = set()
        for _, image in images:
            width = detect_width_for(image.shape[1], min_face)
            widths.add(width or image.shape[1])
            started = time.perf_counter()
            full += sum(min(b.w, b.h) >= min_face for b in detect_faces(image))
            middle = time.perf_counter()
            scaled += sum(min(b.w, b.h) >= min_face for b in detect_faces(image, detect_width=width))
            full_s += middle - started
            scaled_s += time.perf_counter() - middle
        rows.append(
            {
                "min_face_size": min_face,
                "images": len(images),
                "detect_widths": sorted(widths),
                "faces_full_resolution": int(full),
                "faces_downscaled": int(scaled),
                "ms_full": 1000 * full_s / len(images),
                "ms_downscaled": 1000 * scaled_s / len(images),
                "time_ratio": scaled_s / full_s if full_s else None,
            }
        )
    return {"step": step, "media": sorted({name for name, _ in images}), "rows": rows}


def markdown_sections(keyframes: dict | None, scale: dict | None) -> list[str]:
    """Markdown tables of both measurements (for ``benchmarks.md``)."""
    lines: list[str] = []
    if keyframes and "rows" in keyframes:
        lines += [
            "## Keyframes + tracking vs detection on every frame (1 core)",
            "",
            f"Model `{keyframes['model']}` ({keyframes.get('engine')}); every frame of each clip through `fer predict`'s face loop; "
            f"{keyframes['rounds']} interleaved rounds; ratio = median of per-round ratios to detection "
            "on every frame (decode included). IoU and label agreement per face detected on every frame; "
            "'self' = how often the reference's label of a frame equals the previous frame's (its own jitter).",
            "",
            "| clip | frames | detect every | tracker | ms/frame | ratio | mean IoU | min IoU | labels agree | self | extra faces |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in keyframes["rows"]:
            iou = "—" if r["mean_iou"] is None else f"{r['mean_iou']:.3f}"
            low = "—" if r["min_iou"] is None else f"{r['min_iou']:.2f}"
            agree = "—" if r["label_agreement"] is None else f"{100 * r['label_agreement']:.1f} %"
            lines.append(
                f"| {r['clip']} | {r['frames']} | {r['detect_every']} | {r['tracker']} | "
                f"{r['ms_per_frame']:.1f} | {r['ratio_to_every_frame']:.2f} | {iou} | {low} | {agree} | "
                f"{_percent(r['reference_self_agreement'])} | {r['extra_faces']} |"
            )
        lines.append("")
    if scale and "rows" in scale:
        lines += [
            "## Detection on a downscaled frame (`--min-face-size`)",
            "",
            f"{scale['rows'][0]['images']} images (every {scale['step']}th frame of the clips, and the photos); "
            "faces with box side ≥ the minimum; time ratio measured interleaved on the same images.",
            "",
            "| min face (px) | detect widths | faces, full resolution | faces, downscaled | ms full | ms downscaled | ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in scale["rows"]:
            lines.append(
                f"| {r['min_face_size']} | {', '.join(map(str, r['detect_widths']))} | "
                f"{r['faces_full_resolution']} | {r['faces_downscaled']} | {r['ms_full']:.1f} | "
                f"{r['ms_downscaled']:.1f} | {r['time_ratio']:.2f} |"
            )
        lines.append("")
    return lines


def _percent(value) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"
