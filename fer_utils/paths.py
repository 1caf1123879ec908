"""Path constants and canonical labels shared by every stage."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
REPORTS_DIR = PROJECT_ROOT / "reports"

#: Canonical emotion names, in the order used for class indices and figure axes.
CANONICAL_LABELS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "contempt",
)


def shared_data_root() -> Path:
    """Folder of real test/benchmark data: ``$FER_DATA_ROOT`` or ``../shared/data`` beside the checkout."""
    env = os.environ.get("FER_DATA_ROOT")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"


def ordered_labels(labels) -> list[str]:
    """Sort label names canonically (unknown names last, alphabetically)."""
    rank = {name: i for i, name in enumerate(CANONICAL_LABELS)}
    return sorted(set(labels), key=lambda name: (rank.get(name, len(rank)), name))


def project_path(path: str | os.PathLike) -> Path:
    """``path`` as given when absolute, else relative to the project root (not to the working folder,
    which is ``notebooks/`` in JupyterLab), so notebooks and the CLI agree on where things are."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path
