"""The write side of a face cache: :class:`FaceCacheWriter` (items appended, shards flushed atomically,
one writer per folder, broken shards removed on opening, tables written on close) and
:func:`write_array_cache` (a cache from in-memory arrays).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fer_utils.faces.cache import (
    DUPLICATES_FILE,
    HASH_COLUMN,
    TIME_COLUMN,
    FaceCache,
    config_key,
    duplicate_faces,
    face_hash,
)
from fer_utils.faces.shards import (
    CacheDamaged,
    npy_record,
    read_shard_meta,
    read_shard_metas,
    shard_problem,
)
from fer_utils.files import atomic_write_csv, atomic_write_text, atomic_write_with
from fer_utils.locks import LOCK_NAME, WriterLock


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    atomic_write_with(
        path, lambda tmp: np.save(tmp, array), "the face shard", ".tmp.npy", needed=array.nbytes + 128
    )


class FaceCacheWriter:
    """Append faces item by item; shards are flushed every ``shard_size`` faces.

    Args:
        cache_dir: the cache folder (created if missing).
        config: the preprocessing config; a folder holding another config is refused.
        shard_size: faces per shard file.

    The writer holds the cache's lock (:mod:`fer_utils.locks`) from opening until :meth:`close` or
    :meth:`release`: a second writer on the same folder raises :class:`~fer_utils.locks.FolderBusy`.
    """

    def __init__(
        self, cache_dir: str | os.PathLike, config: dict, shard_size: int = 512, ingestion: dict | None = None
    ):
        self.cache_dir = Path(cache_dir)
        self.ingestion = dict(ingestion or {})
        self.shard_dir = self.cache_dir / "shards"
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        self.lock = WriterLock(self.cache_dir, self.cache_dir / LOCK_NAME, "fer preprocess").acquire()
        try:
            self._open(config, shard_size)
        except BaseException:
            self.lock.release()
            raise

    def _open(self, config: dict, shard_size: int) -> None:
        self.config = dict(config)
        self.key = config_key(self.config)
        config_path = self.cache_dir / "config.json"
        stored = None
        if config_path.exists():
            stored = json.loads(config_path.read_text())
            if stored.get("key") != self.key:
                raise ValueError(
                    f"{self.cache_dir} holds a cache made with another config (key {stored.get('key')}, "
                    f"this config is {self.key}); use another folder"
                )
        if stored is None or (self.ingestion and stored.get("ingestion") != self.ingestion):
            # What ingestion did to the inputs (e.g. folders renamed to labels) is recorded, not hashed.
            record = {"key": self.key, "config": self.config}
            if self.ingestion:
                record["ingestion"] = self.ingestion
            atomic_write_text(config_path, json.dumps(record, indent=2))
        self.shard_size = shard_size
        self._remove_unfinished_shards()
        #: Why each broken shard was removed on opening (its items are preprocessed again).
        self.repaired: list[str] = self._remove_broken_shards()
        self._faces: list[np.ndarray] = []
        self._rows: list[dict] = []
        self._skipped: list[dict] = []
        self._items: list[str] = []
        self._stats: list[dict] = []

    def _remove_unfinished_shards(self) -> None:
        """Delete what a killed run left half-written: temp files and face arrays whose json never came."""
        for leftover in self.shard_dir.glob(".*.tmp*"):
            leftover.unlink(missing_ok=True)
        for faces in self.shard_dir.glob("shard-*.npy"):
            if not faces.with_suffix(".json").exists():
                faces.unlink(missing_ok=True)

    def _remove_broken_shards(self) -> list[str]:
        """Delete shards whose json is unreadable or whose faces fail the size or checksum test."""
        repaired = []
        for meta_path in sorted(self.shard_dir.glob("shard-*.json")):
            try:
                problem = shard_problem(self.shard_dir, read_shard_meta(meta_path), checksum=True)
            except CacheDamaged as error:
                problem = str(error)
            if problem:
                meta_path.unlink(missing_ok=True)
                meta_path.with_suffix(".npy").unlink(missing_ok=True)
                repaired.append(problem.split("; re-run")[0])
        return repaired

    def done_items(self) -> set[str]:
        """Item keys (media paths) already in a finished shard."""
        done: set[str] = set()
        for meta in read_shard_metas(self.shard_dir):
            done.update(meta["items"])
        return done | set(self._items)

    def add(
        self,
        item: str,
        faces: np.ndarray | None,
        rows: Sequence[dict],
        skipped_reason: str | None = None,
        stats: dict | None = None,
    ):
        """Record one finished item: its faces (n, H, W) with one index row each, or a skip reason;
        ``stats`` (optional) is one row of per-item figures (e.g. frames sampled, frames with a face)."""
        faces = np.zeros((0, 0, 0), np.uint8) if faces is None else np.asarray(faces, dtype=np.uint8)
        if len(faces) != len(rows):
            raise ValueError(f"{item}: {len(faces)} faces but {len(rows)} index rows")
        if len(faces):
            self._faces.extend(faces)
            self._rows.extend(
                {**row, HASH_COLUMN: face_hash(face)} for face, row in zip(faces, rows, strict=True)
            )
        if skipped_reason:
            self._skipped.append({"media_path": item, "reason": skipped_reason})
        if stats:
            self._stats.append({"media_path": item, **stats})
        self._items.append(item)
        if len(self._rows) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Write buffered items as one shard (faces first, then the json that marks it finished)."""
        if not self._items:
            return
        name = f"shard-{uuid.uuid4().hex[:16]}"
        faces = np.stack(self._faces) if self._faces else np.zeros((0, 1, 1), np.uint8)
        _atomic_save_npy(self.shard_dir / f"{name}.npy", faces)
        meta = {
            "items": self._items,
            "index": self._rows,
            "skipped": self._skipped,
            "stats": self._stats,
            **npy_record(self.shard_dir / f"{name}.npy"),
        }
        atomic_write_text(self.shard_dir / f"{name}.json", json.dumps(meta, default=_json_default))
        self._faces, self._rows, self._skipped, self._items, self._stats = [], [], [], [], []

    def release(self) -> None:
        """Give the cache's lock back without finishing (after a failure); finished shards stay."""
        self.lock.release()

    def __enter__(self) -> FaceCacheWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def close(self) -> FaceCache:
        """Flush, write ``index.csv`` / ``skipped.csv``, give the lock back and return the finished cache."""
        try:
            return self._finish()
        finally:
            self.release()

    def _finish(self) -> FaceCache:
        self.flush()
        cache = FaceCache(self.cache_dir, check_index=False)  # index.csv is rewritten from the shards here
        atomic_write_csv(
            self.cache_dir / "index.csv", cache.index.drop(columns=["shard", "offset"], errors="ignore")
        )
        atomic_write_csv(self.cache_dir / "skipped.csv", cache.skipped)
        atomic_write_csv(self.cache_dir / DUPLICATES_FILE, duplicate_faces(cache.index))
        if len(cache.stats):
            atomic_write_csv(self.cache_dir / "stats.csv", cache.stats)
        return cache


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def write_array_cache(
    cache_dir: str | os.PathLike,
    faces: np.ndarray,
    labels: Sequence[str],
    subjects: Sequence[str] | None = None,
    video_ids: Sequence[str] | None = None,
    dataset: str = "arrays",
) -> FaceCache:
    """A face cache from in-memory arrays (faces ``(n, s, s)`` uint8 and their label names), so that
    training runs on data that did not come from files."""
    faces = np.asarray(faces)
    if faces.ndim != 3 or faces.shape[1] != faces.shape[2]:
        raise ValueError(f"faces must have shape (n, size, size), got {faces.shape}")
    if len(labels) != len(faces):
        raise ValueError(f"{len(faces)} faces but {len(labels)} labels")
    writer = FaceCacheWriter(
        cache_dir,
        # the faces as given: no pixel step applied here (models trained on them declare none)
        {"dataset": dataset, "face_size": int(faces.shape[1]), "source": "arrays", "equalize": "none"},
    )
    for number, (face, label) in enumerate(zip(faces, labels, strict=True)):
        item = f"{dataset}/{number:08d}"
        row = {
            "dataset": dataset,
            "media_path": item,
            "label": str(label),
            "subject": None if subjects is None else str(subjects[number]),
            "video_id": item if video_ids is None else str(video_ids[number]),
            "frame_index": number,
            TIME_COLUMN: 0.0,
        }
        writer.add(item, face[None], [row])
    return writer.close()
