"""What a face cache holds, for people: the summary ``fer preprocess`` prints (counts per class, skip
reasons, duplicate content, this run's speed) and notebook 01's tables (detection rate per item, a grid of
faces per class).
"""

from __future__ import annotations

import sys

import numpy as np

from fer_utils.faces.cache import DUPLICATES_FILE, FaceCache, duplicate_faces


def skipped_summary(skipped_table) -> dict[str, int]:
    """Counts of skipped items by reason kind (the text before ``:``)."""
    if not len(skipped_table):
        return {}
    kinds = skipped_table["reason"].astype(str).str.split(":").str[0]
    return kinds.value_counts().to_dict()


def print_summary(cache: FaceCache, stream=None) -> None:
    """Cache folder, counts per class and the skipped summary, for people."""
    stream = stream or sys.stdout
    report = getattr(cache, "report", None)
    print(f"cache: {cache.cache_dir}", file=stream)
    videos = cache.index["video_id"].nunique() if len(cache) else 0
    print(f"faces: {len(cache)} from {videos} videos; skipped: {len(cache.skipped)}", file=stream)
    if len(cache):
        counts = cache.index["label"].value_counts()
        print("per class: " + ", ".join(f"{label} {counts[label]}" for label in cache.labels), file=stream)
    for kind, count in skipped_summary(cache.skipped).items():
        print(f"  skipped ({kind}): {count}", file=stream)
    duplicates = duplicate_faces(cache.index)
    if len(duplicates):
        examples = duplicates.groupby("face_hash")["media_path"].apply(
            lambda paths: " = ".join(sorted(set(paths))[:2])
        )
        print(
            f"duplicate content: {len(duplicates)} faces in {len(examples)} groups have identical pixels in "
            f"different videos, e.g. {examples.iloc[0]} (all in {cache.cache_dir / DUPLICATES_FILE})",
            file=stream,
        )
    if report is not None:
        kept = cache.index["media_path"].nunique() if len(cache) else 0
        print(
            f"inputs: {report.found} found = {kept} kept + {len(cache.skipped)} skipped"
            + (
                ""
                if report.found == kept + len(cache.skipped)
                else " (MISMATCH: some inputs are unaccounted for)"
            ),
            file=stream,
        )
        print(
            f"this run: {report.processed} items in {report.seconds:.1f} s "
            f"({report.clips_per_second:.2f} clips/s on {report.workers} workers), "
            f"{report.resumed} already done",
            file=stream,
        )


def detection_rates(cache: FaceCache):
    """Per-item face-detection figures: one row per processed item with ``sampled_frames`` (frames
    searched), ``face_frames`` (with a face), ``rate`` (their ratio), ``faces`` kept, ``seconds`` and
    ``reason`` (skip reason or empty), worst rate first.

    Args:
        cache: a face cache written by :func:`preprocess` (older caches without stats give an empty table).

    Returns:
        A pandas DataFrame.
    """
    import pandas as pd

    stats = cache.stats.copy()
    if not len(stats):
        return pd.DataFrame(
            columns=["media_path", "sampled_frames", "face_frames", "rate", "faces", "reason"]
        )
    stats["rate"] = (
        stats["face_frames"] / stats["sampled_frames"].where(stats["sampled_frames"] > 0)
    ).fillna(0.0)
    reasons = dict(zip(cache.skipped["media_path"], cache.skipped["reason"], strict=True))
    stats["reason"] = stats["media_path"].map(reasons).fillna("")
    if len(cache):
        labels = cache.index.drop_duplicates("media_path").set_index("media_path")
        for column in ("label", "subject", "video_id"):
            if column in labels:
                stats[column] = stats["media_path"].map(labels[column])
    return stats.sort_values(["rate", "media_path"], kind="stable").reset_index(drop=True)


def face_grid(cache: FaceCache, per_class: int = 6, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """A few faces per class for a picture grid.

    Args:
        cache: the face cache.
        per_class: faces per class (fewer where a class has fewer; the rest of its row stays black).
        seed: which faces (random, reproducible).

    Returns:
        (faces (classes × per_class, size, size) uint8, class labels in canonical order).
    """
    labels = cache.labels
    size = cache.face_size
    grid = np.zeros((len(labels) * per_class, size, size), np.uint8)
    rng = np.random.default_rng(seed)
    for row, label in enumerate(labels):
        ids = cache.index.loc[cache.index["label"] == label, "face_id"].to_numpy()
        picked = np.sort(rng.choice(ids, size=min(per_class, len(ids)), replace=False))
        grid[row * per_class : row * per_class + len(picked)] = cache.faces(picked)
    return grid, labels
