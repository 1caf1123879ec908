"""The on-disk face cache: uint8 face shards, an index table (one row per face) and a skipped table.

Layout of one cache folder (one per dataset × preprocessing config, named by a hash of the config)::

    config.json              preprocessing config and its key
    shards/<name>.npy        faces, shape (n, size, size), uint8 (memory-mapped when read)
    shards/<name>.json       the shard's index rows, skipped items and finished item keys
    index.csv, skipped.csv   tables written by :meth:`FaceCacheWriter.close` for people and pandas

A shard's ``.json`` is written last, through a temporary name and a rename, so a shard either exists
whole or not at all: an interrupted run resumes with the items no finished shard mentions.

This module is the read side (:class:`FaceCache`), the index's columns and helpers and ``fer cache
verify``; the write side (``FaceCacheWriter``, ``write_array_cache``) is :mod:`~fer_utils.faces.cache_writer`,
one shard's record and checks are :mod:`~fer_utils.faces.shards`.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.faces.shards import REPAIR, CacheDamaged, read_shard_meta, read_shard_metas, shard_problem
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


#: The name a cache's config.json gave its face size before ``face_size`` (still what its key hashes).
LEGACY_FACE_SIZE_KEY = "image_size"


def face_size_of(config: dict) -> int | None:
    """The face size (px) a cache's stored config records: ``face_size``, or ``image_size`` in caches
    written before the rename."""
    size = config.get("face_size", config.get(LEGACY_FACE_SIZE_KEY))
    return None if size is None else int(size)


def config_key(config: dict) -> str:
    """Short stable hash of a preprocessing config (changing any value gives a new cache). ``face_size`` is
    hashed under its former name, so a cache keeps its key (and folder) across the rename."""
    hashed = {LEGACY_FACE_SIZE_KEY if key == "face_size" else key: value for key, value in config.items()}
    text = json.dumps(hashed, sort_keys=True, default=str)
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
        for meta in read_shard_metas(shard_dir):
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
    def face_size(self) -> int:
        """The side (px) of the cache's square faces."""
        return face_size_of(self.config)

    @property
    def image_size(self) -> int:
        """Deprecated name of :attr:`face_size`."""
        warnings.warn(
            "FaceCache.image_size is deprecated; use FaceCache.face_size", DeprecationWarning, stacklevel=2
        )
        return self.face_size

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
        size = self.face_size
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
        size = self.face_size
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
            meta = read_shard_meta(meta_path)
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
