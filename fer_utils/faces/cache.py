"""The on-disk face cache: uint8 face shards, an index table (one row per face) and a skipped table.

Layout of one cache folder (one per dataset × preprocessing config, named by a hash of the config)::

    config.json              preprocessing config and its key
    shards/<name>.npy        faces, shape (n, size, size), uint8 (memory-mapped when read)
    shards/<name>.json       the shard's index rows, skipped items and finished item keys
    index.csv, skipped.csv   tables written by :meth:`FaceCacheWriter.close` for people and pandas

A shard's ``.json`` is written last, through a temporary name and a rename, so a shard either exists
whole or not at all: an interrupted run resumes with the items no finished shard mentions.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.files import atomic_write_csv, atomic_write_text, atomic_write_with
from fer_utils.locks import LOCK_NAME, WriterLock
from fer_utils.paths import ordered_labels

INDEX_SORT_COLUMNS = ["media_path", "frame_index"]
SKIPPED_COLUMNS = ["media_path", "reason"]
#: The index column holding each face's content hash (see :func:`face_hash`).
HASH_COLUMN = "face_hash"
#: Faces whose pixels also appear in another video (written beside index.csv).
DUPLICATES_FILE = "duplicates.csv"
DUPLICATE_COLUMNS = ["face_hash", "face_id", "media_path", "video_id", "subject", "label"]
#: A face's time in its clip, in seconds (the one name and unit for time in every table: index.csv,
#: predictions.csv, ``fer predict``'s faces.csv). Caches and runs written before it have ``timestamp`` in ms.
TIME_COLUMN = "timestamp_s"
LEGACY_TIME_COLUMN = "timestamp"


def face_hash(face: np.ndarray) -> str:
    """Short content hash of one face's uint8 pixels (16 hex digits of BLAKE2b): equal faces, equal hash."""
    pixels = np.ascontiguousarray(face, dtype=np.uint8)
    return hashlib.blake2b(pixels.tobytes(), digest_size=8).hexdigest()


def duplicate_faces(index: pd.DataFrame) -> pd.DataFrame:
    """Faces whose exact pixels also occur in another video (one row per face, grouped by hash).

    The same clip filed under two names or actors shows up here; repeats inside one video do not.
    """
    if HASH_COLUMN not in index.columns or not len(index):
        return pd.DataFrame(columns=DUPLICATE_COLUMNS)
    video = "video_id" if "video_id" in index.columns else "media_path"
    videos = index.groupby(HASH_COLUMN)[video].transform("nunique")
    shared = index[videos > 1]
    columns = [c for c in DUPLICATE_COLUMNS if c in shared.columns]
    return shared[columns].sort_values([HASH_COLUMN, "media_path", "face_id"]).reset_index(drop=True)


def with_time_in_seconds(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its time as ``timestamp_s`` (seconds): an older table's ``timestamp`` (milliseconds)
    is converted and dropped; a table already in seconds, or without time, comes back unchanged."""
    if LEGACY_TIME_COLUMN not in table.columns:
        return table
    table = table.copy()
    legacy = pd.to_numeric(table.pop(LEGACY_TIME_COLUMN), errors="coerce") / 1000.0
    if TIME_COLUMN not in table.columns:
        table[TIME_COLUMN] = legacy.round(4)
    return table


def config_key(config: dict) -> str:
    """Short stable hash of a preprocessing config (changing any value gives a new cache)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def announce_resize(cache_size: int, model_size: int, purpose: str) -> dict | None:
    """Print once and return the record (``{"from": px, "to": px}``) of resizing a cache's faces to a
    model's input for ``purpose`` (e.g. ``"training"``); None when the sizes agree."""
    if int(cache_size) == int(model_size):
        return None
    direction = "downscaled" if cache_size > model_size else "upscaled"
    print(
        f"{purpose}: faces resized from the cache's {cache_size} px to the model's {model_size} px input "
        f"({direction}; scores can differ from those on a {model_size} px cache of the same faces)"
    )
    return {"from": int(cache_size), "to": int(model_size)}


def cache_dir_for(cache_root: str | os.PathLike, dataset: str, config: dict) -> Path:
    """The cache folder of ``dataset`` under ``cache_root`` for this preprocessing config."""
    return Path(cache_root) / f"{dataset}-{config_key(config)}"


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
                problem = shard_problem(self.shard_dir, _read_shard_meta(meta_path), checksum=True)
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
        for meta in _read_shard_metas(self.shard_dir):
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
            **_npy_record(self.shard_dir / f"{name}.npy"),
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


#: How every cache error ends: the repair.
REPAIR = "re-run `fer preprocess` with the same settings: it redoes only the broken shards"


class CacheDamaged(ValueError):
    """A face cache file is missing, truncated, unreadable or fails its checksum (the message names it)."""


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _npy_record(path: Path) -> dict:
    """What a shard's json records about its ``.npy``: byte size and sha256 of the file."""
    return {"npy_bytes": path.stat().st_size, "npy_sha256": _file_sha256(path)}


def _read_shard_meta(meta_path: Path) -> dict:
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as error:
        raise CacheDamaged(f"{meta_path} is unreadable ({error}); {REPAIR}") from None
    if not isinstance(meta, dict) or not all(key in meta for key in ("items", "index", "skipped")):
        raise CacheDamaged(f"{meta_path} is not a shard record (items, index, skipped); {REPAIR}")
    meta["name"] = meta_path.stem
    return meta


def _read_shard_metas(shard_dir: Path) -> Iterable[dict]:
    for meta_path in sorted(shard_dir.glob("shard-*.json")):
        yield _read_shard_meta(meta_path)


def shard_problem(shard_dir: Path, meta: dict, checksum: bool = False) -> str | None:
    """Why a shard's faces cannot be trusted (missing, size differs from its json, and with ``checksum``
    a sha256 mismatch), or None. Shards written before sizes were recorded pass unchecked."""
    faces = Path(shard_dir) / f"{meta['name']}.npy"
    if not faces.exists():
        return f"{faces} is missing; {REPAIR}"
    size, expected = faces.stat().st_size, meta.get("npy_bytes")
    if expected is not None and size != expected:
        return f"{faces} holds {size} bytes, its json records {expected} (truncated?); {REPAIR}"
    if checksum and meta.get("npy_sha256") and _file_sha256(faces) != meta["npy_sha256"]:
        return f"{faces} fails its sha256 checksum (damaged bytes); {REPAIR}"
    return None


class FaceCache:
    """Read side of a face cache: ``index`` (DataFrame, one row per face, ``face_id`` = row number),
    ``skipped`` (DataFrame) and :meth:`faces` to gather face pixels without loading the whole cache."""

    def __init__(self, cache_dir: str | os.PathLike, check_index: bool = True, checksums: bool = False):
        self.cache_dir = Path(cache_dir)
        #: Check each shard's sha256 the first time it is read (training does: flipped bytes of the same size
        #: pass the size check at opening).
        self.checksums = checksums
        config_path = self.cache_dir / "config.json"
        if not config_path.exists():
            raise ValueError(
                f"{self.cache_dir} is not a face cache (no config.json); run `fer preprocess` first"
            )
        stored = json.loads(config_path.read_text())
        self.key: str = stored["key"]
        self.config: dict = stored["config"]
        #: What ingestion did beside the config, e.g. ``{"label_renaming": {"anger": "angry"}}``.
        self.ingestion: dict = stored.get("ingestion") or {}
        rows, skipped, stats = self._load_shards()
        if check_index:
            self._check_index_agreement(len(rows))
        index = with_time_in_seconds(pd.DataFrame(rows))
        if len(index):
            sort_cols = [c for c in INDEX_SORT_COLUMNS if c in index.columns]
            index = index.sort_values(sort_cols, kind="stable").reset_index(drop=True)
        index.insert(0, "face_id", np.arange(len(index)))
        self.index: pd.DataFrame = index
        self.skipped: pd.DataFrame = (
            pd.DataFrame(skipped, columns=SKIPPED_COLUMNS).sort_values("media_path").reset_index(drop=True)
        )
        #: Per-item figures recorded by the writer (one row per item; empty for caches without them).
        self.stats: pd.DataFrame = pd.DataFrame(stats)
        if len(self.stats):
            self.stats = self.stats.sort_values("media_path", kind="stable").reset_index(drop=True)
        self._mmaps: dict[int, np.ndarray] = {}

    def _load_shards(self) -> tuple[list[dict], list[dict], list[dict]]:
        """Index rows, skipped rows and stats of every shard; CacheDamaged names a broken shard file."""
        rows, skipped, stats = [], [], []
        self._shard_names: list[str] = []
        self._shard_sizes: list[int] = []
        self._shard_metas: list[dict] = []
        shard_dir = self.cache_dir / "shards"
        for meta in _read_shard_metas(shard_dir):
            problem = shard_problem(shard_dir, meta)
            if problem:
                raise CacheDamaged(problem)
            shard_number = len(self._shard_names)
            self._shard_names.append(meta["name"])
            self._shard_sizes.append(len(meta["index"]))
            self._shard_metas.append(meta)
            for offset, row in enumerate(meta["index"]):
                rows.append({**row, "shard": shard_number, "offset": offset})
            skipped.extend(meta["skipped"])
            stats.extend(meta.get("stats", []))
        return rows, skipped, stats

    def _check_index_agreement(self, shard_faces: int) -> None:
        """index.csv (written when preprocessing finished) may not list more faces than the shards hold."""
        index_path = self.cache_dir / "index.csv"
        if not index_path.exists():
            return
        with open(index_path, "rb") as file:
            listed = max(0, sum(1 for _ in file) - 1)
        if listed > shard_faces:
            orphans = sorted(
                str(npy) for npy in (self.cache_dir / "shards").glob("shard-*.npy")
                if not npy.with_suffix(".json").exists()
            )  # fmt: skip
            where = f" ({', '.join(orphans)} lost its .json)" if orphans else " (a shard was removed)"
            raise CacheDamaged(
                f"{index_path} lists {listed} faces but the shards hold {shard_faces}{where}; {REPAIR}"
            )

    def ensure_face_hashes(self) -> pd.DataFrame:
        """The index with its ``face_hash`` column, computed from the pixels for caches written before
        faces carried one (kept in memory; the cache on disk is not changed)."""
        if HASH_COLUMN not in self.index.columns or self.index[HASH_COLUMN].isna().any():
            hashes = []
            for start in range(0, len(self), 4096):
                ids = self.index["face_id"].to_numpy()[start : start + 4096]
                hashes.extend(face_hash(face) for face in self.faces(ids))
            self.index[HASH_COLUMN] = hashes
        return self.index

    def __len__(self) -> int:
        return len(self.index)

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])

    @property
    def labels(self) -> list[str]:
        """Label names present, in canonical order (class index = position)."""
        return ordered_labels(self.index["label"]) if len(self.index) else []

    def _shard(self, number: int) -> np.ndarray:
        if number not in self._mmaps:
            path = self.cache_dir / "shards" / f"{self._shard_names[number]}.npy"
            if self.checksums:
                problem = shard_problem(path.parent, self._shard_metas[number], checksum=True)
                if problem:
                    raise CacheDamaged(problem)
            self._mmaps[number] = self._map_shard(path, self._shard_sizes[number])
        return self._mmaps[number]

    def _map_shard(self, path: Path, faces: int) -> np.ndarray:
        """A shard's faces memory-mapped, or CacheDamaged when the file is not ``faces`` uint8 faces of the
        cache's size (a pickled object array, a link to another file, a truncated header)."""
        size = self.image_size
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise CacheDamaged(f"{path} is not a face cache shard ({error}); {REPAIR}") from None
        faces_shape = array.ndim == 3 and (
            array.shape[1:] == (size, size) or not len(array)
        )  # empty: (0, 1, 1)
        if array.dtype != np.uint8 or not faces_shape:
            found = f"{getattr(array, 'dtype', type(array).__name__)} {getattr(array, 'shape', '')}"
            raise CacheDamaged(
                f"{path} is not a face cache shard (holds {found}, not uint8 faces of {size}×{size} px); {REPAIR}"
            )
        if len(array) < faces:
            raise CacheDamaged(f"{path} holds {len(array)} faces, its json lists {faces}; {REPAIR}")
        return array

    def shard_problems(self) -> list[str]:
        """Why shards cannot be read as faces (each naming its file); empty when every shard maps."""
        problems = []
        for number in range(len(self._shard_names)):
            try:
                self._shard(number)
            except CacheDamaged as error:
                problems.append(str(error))
        return problems

    def id_problem(self, face_ids: Sequence[int] | np.ndarray) -> str | None:
        """Why ``face_ids`` do not all name a face of this cache (the first few offenders), or None."""
        face_ids = np.asarray(face_ids)
        if not len(face_ids):
            return None
        if not np.issubdtype(face_ids.dtype, np.integer):
            return f"face ids are not integers ({face_ids.dtype})"
        outside = face_ids[(face_ids < 0) | (face_ids >= len(self))]
        if not len(outside):
            return None
        shown = ", ".join(str(int(face_id)) for face_id in outside[:3])
        return f"{len(outside)} face id(s) outside its face cache of {len(self)} faces (e.g. {shown})"

    def faces(self, face_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Face pixels (n, size, size) uint8 for the given face ids, in the given order.

        Raises:
            IndexError: an id is negative or past the last face (never wrapped to another face).
            CacheDamaged: a shard's file is not faces of this cache.
        """
        face_ids = np.asarray(face_ids, dtype=np.int64)
        size = self.image_size
        out = np.empty((len(face_ids), size, size), np.uint8)
        if not len(face_ids):
            return out
        problem = self.id_problem(face_ids)
        if problem:
            raise IndexError(f"{self.cache_dir}: {problem}")
        shards = self.index["shard"].to_numpy()[face_ids]
        offsets = self.index["offset"].to_numpy()[face_ids]
        for shard in np.unique(shards):
            where = np.nonzero(shards == shard)[0]
            out[where] = self._shard(int(shard))[offsets[where]]
        return out

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_mmaps"] = {}
        return state


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
        cache_dir, {"dataset": dataset, "image_size": int(faces.shape[1]), "source": "arrays"}
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


def verify_cache(cache_dir: str | os.PathLike) -> tuple[list[str], dict]:
    """Check every shard of a cache (json readable, faces present, size and sha256 as recorded) and that
    index.csv agrees with the shards. Returns the problems (each naming a file and the repair) and counts
    (``shards``, ``faces``, ``unchecked``: shards written before checksums were recorded)."""
    cache_dir = Path(cache_dir)
    if not (cache_dir / "config.json").exists():
        raise ValueError(f"{cache_dir} is not a face cache (no config.json)")
    problems, counts = [], {"shards": 0, "faces": 0, "unchecked": 0}
    for meta_path in sorted((cache_dir / "shards").glob("shard-*.json")):
        counts["shards"] += 1
        try:
            meta = _read_shard_meta(meta_path)
        except CacheDamaged as error:
            problems.append(str(error))
            continue
        counts["faces"] += len(meta["index"])
        counts["unchecked"] += "npy_sha256" not in meta
        problem = shard_problem(meta_path.parent, meta, checksum=True)
        if problem:
            problems.append(problem)
    if not problems:
        try:
            FaceCache(cache_dir)
        except CacheDamaged as error:
            problems.append(str(error))
    return problems, counts


def add_arguments(parser) -> None:
    """``fer cache verify CACHE``: checksums and agreement of a face cache."""
    actions = parser.add_subparsers(dest="cache_action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check every shard's size and sha256 and index.csv")
    verify.add_argument("cache", help="a face cache folder (made by `fer preprocess`)")
    verify.set_defaults(func=_verify_cli)


def _verify_cli(args) -> int:
    problems, counts = verify_cache(args.cache)
    for problem in problems:
        print(f"DAMAGED: {problem}")
    unchecked = f", {counts['unchecked']} without a recorded checksum" if counts["unchecked"] else ""
    verdict = f"{len(problems)} problem(s)" if problems else "ok"
    print(f"{args.cache}: {verdict} — {counts['shards']} shard(s), {counts['faces']} face(s){unchecked}")
    return 1 if problems else 0
