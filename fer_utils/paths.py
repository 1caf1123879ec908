"""Path constants and canonical labels shared by every stage."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: The checkout ``fer_utils`` was imported from: home of the code's own files (notebook templates, the
#: model card), never of a user's outputs (see :func:`work_root`).
PROJECT_ROOT = PACKAGE_DIR.parent
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
#: What marks a project folder: the nearest folder at or above the current one holding one of these.
PROJECT_MARKERS = ("pyproject.toml", ".git")

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
    """Folder of real test/benchmark data: ``$FER_DATA_ROOT``, else ``../shared/data`` beside the project
    the user works in (:func:`work_root`), else beside the checkout ``fer_utils`` came from."""
    env = os.environ.get("FER_DATA_ROOT")
    if env:
        return Path(env)
    beside_work = work_root().parent / "shared" / "data"
    return beside_work if beside_work.is_dir() else PROJECT_ROOT.parent / "shared" / "data"


def user_cache_dir() -> Path:
    """The package's cache folder for this user (``$XDG_CACHE_HOME/fer_utils``): derived files kept across
    runs (the engine choice, the detector model made any-size, the one shared plotly.js)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fer_utils"


def ordered_labels(labels) -> list[str]:
    """Sort label names canonically (unknown names last, alphabetically)."""
    rank = {name: i for i, name in enumerate(CANONICAL_LABELS)}
    return sorted(set(labels), key=lambda name: (rank.get(name, len(rank)), name))


def work_root(folder: str | os.PathLike | None = None) -> Path:
    """Where the user works: the project holding ``folder`` (default: the current folder, which is the
    notebook's own folder in JupyterLab, Voila and papermill), i.e. the nearest folder at or above it with
    ``pyproject.toml`` or ``.git``; ``folder`` itself when no such folder exists. Never the checkout
    ``fer_utils`` was imported from, which may be another one (an editable install)."""
    start = Path(folder if folder is not None else Path.cwd()).expanduser().resolve()
    for candidate in (start, *start.parents):
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    return start


def project_path(path: str | os.PathLike) -> Path:
    """``path`` as given when absolute, else relative to the project the user works in
    (:func:`work_root`): a notebook in ``notebooks/`` and the CLI at the project's top agree on where
    ``cache/`` or ``runs/`` are."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else work_root() / path


def output_path(path: str | os.PathLike, what: str = "output") -> Path:
    """:func:`project_path` for something a notebook writes, with a one-line note when it lands outside
    the project the user works in (an absolute path or ``..`` elsewhere), so no file goes astray unsaid."""
    resolved = project_path(path).resolve()
    root = work_root()
    if not resolved.is_relative_to(root):
        print(f"note: the {what} goes to {resolved}, outside this project ({root})")
    return resolved
