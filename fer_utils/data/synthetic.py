"""What marks media, a face cache or a run as the synthetic demo set (rendered by
:mod:`fer_utils.demo`): the manifest beside the clips and the key a cache's config carries."""

from __future__ import annotations

import os
from pathlib import Path

MANIFEST_NAME = ".demo_manifest.json"  # hidden: dataset specs skip hidden files
#: Key a face cache's ``config.json`` (and so every run's ``preprocessing``) carries when its media are
#: this synthetic demo set, so reports and the dashboard can say "synthetic demo" wherever it is shown.
SYNTHETIC_MARKER = "synthetic_demo"


def is_demo_media(media_path: str | os.PathLike, levels: int = 3) -> bool:
    """Whether a media file lies in a demo set folder (its manifest sits at most ``levels`` folders up)."""
    parents = Path(media_path).resolve().parents
    return any((parent / MANIFEST_NAME).exists() for parent in list(parents)[:levels])


def is_synthetic_config(config: dict) -> bool:
    """Whether a run's or a face cache's config says its data is the synthetic demo set (see
    :func:`is_synthetic_data`)."""
    return is_synthetic_data(config.get("preprocessing") or config, config.get("cache_dir"))


def is_synthetic_data(preprocessing: dict, cache_dir: str | os.PathLike | None = None) -> bool:
    """Whether a face cache's config (a run's ``preprocessing``) carries :data:`SYNTHETIC_MARKER`. Runs made
    before the marker existed are recognised by ``fer run``'s layout: their ``cache_dir``
    (``<out>/cache/<key>``) beside ``<out>/data`` holding the demo manifest."""
    if (preprocessing or {}).get(SYNTHETIC_MARKER):
        return True
    return bool(cache_dir) and (Path(cache_dir).parent.parent / "data" / MANIFEST_NAME).exists()
