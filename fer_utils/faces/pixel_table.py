"""Face caches from pixel tables rather than media files: Kaggle's ``fer2013.csv`` joined with FER+'s votes
(:func:`fer_utils.data.ferplus.fer2013_csv_table`). The faces go through the same crop and pixel step as
an image would (:func:`~fer_utils.faces.detection.to_gray_face`, :func:`~fer_utils.faces.detection.equalize_face`),
into a cache keyed like every other (:func:`~fer_utils.faces.preprocess_config.cache_config`), resumable
block by block.
"""

from __future__ import annotations

import os

import numpy as np

from fer_utils.data.datasets import dataset_layout
from fer_utils.data.ferplus import LABEL_SOURCES, ORIGINAL_LABEL_COLUMN, decode_pixels
from fer_utils.data.samples import REASON_NOT_SELECTED, REASON_UNREADABLE
from fer_utils.faces.cache import TIME_COLUMN, FaceCache, cache_dir_for
from fer_utils.faces.cache_writer import FaceCacheWriter
from fer_utils.faces.detection import equalize_face, to_gray_face
from fer_utils.faces.origin import absolute, reconcile_origin
from fer_utils.faces.preprocess_config import PreprocessConfig, cache_config
from fer_utils.progress import progress_bar

#: Rows per resumable item (one shard's worth).
BLOCK_ROWS = 512


def pixel_table_cache(
    dataset: str,
    root: str | os.PathLike,
    cache_root: str | os.PathLike,
    config: PreprocessConfig,
    label_source: str = "majority",
    limit: int | None = None,
    progress: bool = True,
) -> FaceCache:
    """The face cache of a pixel-table layout (``fer2013csv``: ``<root>/fer2013.csv`` + ``fer2013new.csv``,
    rows joined by position).

    Args:
        dataset: the layout's name (its ``pixel_rows`` reads the table).
        root: the folder holding its files.
        cache_root: folder of caches (this one: ``<cache_root>/<dataset>-<key>``).
        config: the crop (``face_size``) and pixel step (``equalize``); the faces are already cropped.
        label_source: ``majority`` (FER+'s; rows without one are skipped with the reason) or ``fer2013``.
        limit: only the first N rows (quick trials; part of the cache key).
        progress: a progress bar over the blocks.
    """
    if label_source not in LABEL_SOURCES:
        raise ValueError(f"unknown label_source {label_source!r}; choose one of {LABEL_SOURCES}")
    layout = dataset_layout(dataset)
    if layout.pixel_rows is None:
        raise ValueError(f"{dataset} is a layout of media files, not a pixel table: use preprocess()")
    table = layout.pixel_rows(root)  # checks the table (e.g. the join) before any face is decoded
    if limit is not None:
        table = table.iloc[:limit]
    options = {"label_source": label_source} | ({"limit": limit} if limit is not None else {})
    stored = cache_config(config, layout.name, options)
    cache_dir = cache_dir_for(cache_root, layout.name, stored)
    # Items are row blocks: only the recorded folder tells one table's blocks from another copy's.
    origin = reconcile_origin(cache_dir, absolute(os.fspath(root), os.getcwd()))
    writer = FaceCacheWriter(cache_dir, stored, shard_size=BLOCK_ROWS, ingestion=origin.ingestion())
    done = writer.done_items()
    label_column = "majority" if label_source == "majority" else ORIGINAL_LABEL_COLUMN
    vote_names = [column for column in table.columns if column.startswith("votes_")]
    completed = False
    try:
        starts = range(0, len(table), BLOCK_ROWS)
        for start in progress_bar(starts, desc=f"faces {layout.name}", unit="block", enabled=progress):
            item = f"{layout.name}#rows={start}-{min(start + BLOCK_ROWS, len(table)) - 1}"
            if item in done:
                continue
            block = table.iloc[start : start + BLOCK_ROWS]
            faces, rows, skipped = [], [], []
            for record in block.itertuples(index=False):
                face, reason = _row_face(record, label_column, label_source, config)
                if reason:
                    skipped.append((f"{layout.name}#{record.row}", reason))
                    continue
                faces.append(face)
                label = getattr(record, label_column)
                rows.append(_index_row(layout.name, record, label, vote_names, config.face_size))
            for name, reason in skipped:  # every row left out is in skipped.csv with its reason
                if name not in done:
                    writer.add(name, None, [], reason)
            stats = {"rows": len(block), "faces": len(rows), "rows_skipped": len(skipped)}
            writer.add(item, np.stack(faces) if faces else None, rows, None, stats)
        completed = True
    finally:
        try:
            writer.flush()  # keep the finished blocks: a rerun resumes after them
        finally:
            if not completed:
                writer.release()
    return writer.close()


def _row_face(record, label_column: str, label_source: str, config: PreprocessConfig):
    """``(face, None)`` for a row with a label of ``label_source`` and readable pixels, else ``(None, reason)``."""
    label = getattr(record, label_column)
    if not isinstance(label, str) or not label:  # None / NaN: no label of this source
        return None, f"{REASON_NOT_SELECTED}: no {label_source} label"
    try:
        pixels = decode_pixels(record.pixels)
    except (ValueError, AttributeError) as error:  # a damaged row: left out, the build goes on
        return None, f"{REASON_UNREADABLE}: pixels of row {record.row + 2}: {error}"
    return equalize_face(to_gray_face(pixels, config.face_size), config.equalize), None


def _index_row(dataset: str, record, label: str, vote_names: list[str], size: int) -> dict:
    name = f"{dataset}#{record.row}"
    return {
        "dataset": dataset,
        "media_path": name,
        "label": label,
        "subject": None,
        "video_id": name,
        "split": record.split,
        ORIGINAL_LABEL_COLUMN: getattr(record, ORIGINAL_LABEL_COLUMN),
        "ferplus_name": record.ferplus_name,
        **{column: int(getattr(record, column)) for column in vote_names},
        "frame_index": 0,
        TIME_COLUMN: 0.0,
        "bbox_x": 0,
        "bbox_y": 0,
        "bbox_w": size,
        "bbox_h": size,
        "detector": "none",
    }
