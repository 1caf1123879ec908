"""One shard of a face cache on disk: its json record read back and its ``.npy`` checked (size as
recorded, sha256); :class:`CacheDamaged` and the repair every cache error ends with (:data:`REPAIR`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

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


def npy_record(path: Path) -> dict:
    """What a shard's json records about its ``.npy``: byte size and sha256 of the file."""
    return {"npy_bytes": path.stat().st_size, "npy_sha256": _file_sha256(path)}


def read_shard_meta(meta_path: Path) -> dict:
    """One shard's json record (with its ``name``); :class:`CacheDamaged` when unreadable or not a record."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as error:
        raise CacheDamaged(f"{meta_path} is unreadable ({error}); {REPAIR}") from None
    if not isinstance(meta, dict) or not all(key in meta for key in ("items", "index", "skipped")):
        raise CacheDamaged(f"{meta_path} is not a shard record (items, index, skipped); {REPAIR}")
    meta["name"] = meta_path.stem
    return meta


def read_shard_metas(shard_dir: Path) -> Iterable[dict]:
    """Every shard record of ``shard_dir``, in name order."""
    for meta_path in sorted(shard_dir.glob("shard-*.json")):
        yield read_shard_meta(meta_path)


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
