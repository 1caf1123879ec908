"""Samples → face cache (see :mod:`fer_utils.faces.cache`), in parallel, resumable, memory bounded.

For each sample (video or image) :func:`~fer_utils.faces.sample_faces.process_sample` decodes
``frames_per_video × candidates_per_frame`` evenly spaced candidate frames, looks for a face in them group
by group and keeps ``frames_per_video`` frames that contain one (the paper's 6 frames, minus its face-less
ones). Workers return faces, index rows and a skip reason; one writer in the main process appends them
to the cache, so a killed run resumes where its last finished shard stopped and ends with the same cache.

Default settings (see :class:`PreprocessConfig`): dlib HOG detector without upsampling on a copy
downscaled to 640 px wide, no margin, no alignment, 180×180 gray crops. The paper's detector settings
are not published; upsampling 0 at 640 px finds the faces of RAVDESS/MEAD-sized frames (faces of
150–400 px) several times faster than upsampling 1 at full resolution (``benchmarks/preprocessing.py``).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from fer_utils.data.class_folders import describe_renaming, folder_samples, label_renaming
from fer_utils.data.datasets import (
    LAYOUTS,
    add_layout_arguments,
    dataset_layout,
    dataset_samples,
    layout_options_from_args,
)
from fer_utils.data.downloads import DATASETS, manual_download
from fer_utils.data.samples import Sample, SkippedItem
from fer_utils.data.synthetic import is_demo_media
from fer_utils.faces.cache import FaceCache, cache_dir_for
from fer_utils.faces.cache_overview import print_summary
from fer_utils.faces.cache_writer import FaceCacheWriter
from fer_utils.faces.detection import (
    PAPER_FACE_SIZE,
    to_gray_face,  # noqa: F401  (to_gray_face: re-exported)
)
from fer_utils.faces.origin import CacheOrigin, absolute, inputs_folder, reconcile_origin
from fer_utils.faces.pixel_table import pixel_table_cache
from fer_utils.faces.preprocess_config import PreprocessConfig, cache_config
from fer_utils.faces.sample_faces import ProcessedItem, process_sample
from fer_utils.files import require_folder_path
from fer_utils.parallel import default_workers, parallel_map
from fer_utils.progress import progress_bar
from fer_utils.settings import add_arguments as add_config_arguments
from fer_utils.settings import config_from_args


@dataclass
class PreprocessReport:
    """Figures of one :func:`preprocess` call (what this call did, not the whole cache)."""

    processed: int = 0
    resumed: int = 0
    faces: int = 0
    skipped: int = 0
    seconds: float = 0.0
    workers: int = 1
    reasons: dict = field(default_factory=dict)
    #: Distinct inputs the dataset layout found (samples + items it rejected).
    found: int = 0

    @property
    def clips_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds else 0.0

    def count(self, result: ProcessedItem) -> None:
        """Add one finished item."""
        self.processed += 1
        self.faces += len(result.rows)
        if result.reason:
            self.skipped += 1
            kind = result.reason.split(":")[0]
            self.reasons[kind] = self.reasons.get(kind, 0) + 1


def preprocess(
    samples: Sequence[Sample],
    cache_root: str | os.PathLike,
    config: PreprocessConfig,
    dataset: str | None = None,
    skipped: Sequence[SkippedItem] = (),
    progress: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
    dataset_options: dict | None = None,
    shard_size: int = 512,
    flush_seconds: float = 60.0,
) -> FaceCache:
    """Build (or resume) the face cache of ``samples`` under ``cache_root`` and return it.

    Args:
        samples: media items (from :func:`fer_utils.data.datasets.dataset_samples`).
        cache_root: folder of caches; this one goes to ``<cache_root>/<dataset>-<config hash>``.
        config: the preprocessing config.
        dataset: name of the dataset (default: the samples' own).
        skipped: items the dataset spec already rejected (recorded in the skipped table).
        progress: show a tqdm bar (clips/s, faces found, skipped).
        workers: local worker processes (default all cores; 1 = in this process).
        scheduler: Dask scheduler address (``tcp://…``) to run on a cluster instead.
        dataset_options: the spec options that chose the samples (part of the cache key).
        shard_size: faces per shard file.
        flush_seconds: also write a shard after this long, so a killed run loses little work.

    Returns:
        The finished :class:`~fer_utils.faces.cache.FaceCache`; ``cache.report`` holds a
        :class:`PreprocessReport` of this call.
    """

    if not samples:
        raise ValueError("no samples to preprocess")
    require_folder_path(cache_root, "--cache-root")
    dataset = dataset or samples[0].dataset
    stored = cache_config(
        config,
        dataset,
        dataset_options,
        synthetic=is_demo_media(samples[0].media_path),
        carried_step=source_pixel_step(config, dataset),
    )
    renamed = label_renaming(samples)
    if renamed:
        print(describe_renaming(renamed))
    cache_dir = cache_dir_for(cache_root, dataset, stored)
    paths = [sample.media_path for sample in samples] + [item.media_path for item in skipped]
    origin = reconcile_origin(cache_dir, inputs_folder(paths, os.getcwd()))
    samples, skipped = _spelled_for(origin, samples, skipped)
    ingestion = origin.ingestion()
    if renamed:
        ingestion["label_renaming"] = renamed
    writer = FaceCacheWriter(cache_dir, stored, shard_size=shard_size, ingestion=ingestion)
    for problem in writer.repaired:
        print(f"removed a broken shard, its items are preprocessed again: {problem}")
    todo = _record_skipped_and_list_todo(writer, origin, samples, skipped)
    report = PreprocessReport(resumed=len(samples) - len(todo))
    report.found = len({s.media_path for s in samples} | {item.media_path for item in skipped})
    report.workers = min(workers or default_workers(), max(1, len(todo)))
    started = time.perf_counter()
    _process_into(writer, todo, config, report, progress, scheduler, flush_seconds, dataset)
    report.seconds = time.perf_counter() - started
    cache = writer.close()
    cache.report = report
    return cache


def source_pixel_step(config: PreprocessConfig, dataset: str) -> str:
    """The pixel step a dataset's faces already carry when the config asks for none (the FER2013 JPEG
    export's histogram equalisation), said in one line; "none" otherwise. The cache records it as its
    ``equalize`` without applying it again, so every model trained on it asks for that step on raw faces."""
    layout = LAYOUTS.get(dataset.lower())
    step = layout.source_pixel_step if layout else "none"
    if step == "none" or config.equalize != "none":
        return "none"
    print(
        f"{dataset}: these faces were {step}-equalized by whoever exported them; the cache records "
        f"equalize={step} (not applied again), so models trained on it equalize the raw faces they are given"
    )
    return step


def _spelled_for(
    origin: CacheOrigin, samples: Sequence[Sample], skipped: Sequence[SkippedItem]
) -> tuple[list[Sample], list[SkippedItem]]:
    """The inputs as the cache will record them: relative paths stay relative when spelled from the cache's
    working directory and become absolute otherwise, so every relative path a cache holds reads from one
    directory."""
    here = os.getcwd()
    if os.path.normpath(origin.working_directory) == os.path.normpath(here):
        return list(samples), list(skipped)
    return (
        [replace(sample, media_path=absolute(sample.media_path, here)) for sample in samples],
        [replace(item, media_path=absolute(item.media_path, here)) for item in skipped],
    )


def _record_skipped_and_list_todo(
    writer: FaceCacheWriter, origin: CacheOrigin, samples: Sequence[Sample], skipped: Sequence[SkippedItem]
) -> list[Sample]:
    """Record the layout's rejects the cache lacks; return the samples not done yet (each file once, however
    its path is spelled)."""
    done = {origin.key_of(item) for item in writer.done_items()}
    for item in skipped:
        key = origin.key_of(item.media_path)
        if key not in done:
            writer.add(item.media_path, None, [], item.reason)
            done.add(key)
    todo = []
    for sample in samples:
        key = origin.key_of(sample.media_path)
        if key not in done:
            done.add(key)
            todo.append(sample)
    return todo


def _process_into(writer, todo, config, report, progress, scheduler, flush_seconds, dataset) -> None:
    """Run :func:`process_sample` over ``todo`` in parallel and append each result to ``writer``.

    Whatever happens (a full disk, Ctrl-C), the finished items are flushed when possible and the cache's
    lock is given back, so a rerun resumes.
    """
    bar = progress_bar(
        total=len(todo), desc=f"faces {dataset}", unit="clip", enabled=progress, smoothing=0.05
    )
    worker = functools.partial(process_sample, config=config)
    completed = False
    last_flush = time.perf_counter()
    try:
        for result in parallel_map(worker, todo, workers=report.workers, scheduler=scheduler):
            writer.add(result.media_path, result.faces, result.rows, result.reason, result.stats)
            report.count(result)
            bar.update(1)
            bar.set_postfix(faces=report.faces, skipped=report.skipped, refresh=False)
            if time.perf_counter() - last_flush > flush_seconds:
                writer.flush()
                last_flush = time.perf_counter()
        completed = True
    finally:
        bar.close()
        try:
            writer.flush()  # keep what finished (fails again on a full disk: the rerun redoes it)
        finally:
            if not completed:
                writer.release()


def image_folder_cache(
    image_folder: str | os.PathLike,
    cache_root: str | os.PathLike,
    face_size: int | None = None,
    split_dirs: bool = False,
    filename_pattern: str | None = None,
    detector: str = "none",
    dataset: str | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
    progress: bool = True,
    equalize: str = "none",
) -> FaceCache:
    """Turn a class-folder image dataset into a face cache (``detector='none'`` for already-cropped faces).

    ``face_size`` None: the paper's (:data:`~fer_utils.faces.detection.PAPER_FACE_SIZE`).
    ``max_per_class`` keeps a seeded random subset of at most that many images per (split, class);
    ``equalize`` is the pixel step of every face (FER2013's equalized JPEG export records ``hist`` either way).
    """
    dataset = dataset or Path(image_folder).name
    samples, skipped = folder_samples(image_folder, dataset, split_dirs, filename_pattern)
    if max_per_class:
        rng = np.random.default_rng(seed)
        groups: dict[tuple, list] = {}
        for sample in samples:
            groups.setdefault((sample.extras.get("split"), sample.label), []).append(sample)
        samples = [
            members[i]
            for members in groups.values()
            for i in sorted(rng.permutation(len(members))[:max_per_class])
        ]
    config = PreprocessConfig(face_size=face_size or PAPER_FACE_SIZE, detector=detector, equalize=equalize)
    selection = {"split_dirs": split_dirs, "filename_pattern": filename_pattern}
    if max_per_class:
        selection |= {"max_per_class": max_per_class, "seed": seed}  # another subset is another cache
    return preprocess(
        samples,
        cache_root,
        config,
        dataset=dataset,
        skipped=skipped,
        progress=progress,
        dataset_options=selection,
    )


def default_cache_root() -> Path:
    return Path(os.environ.get("FER_CACHE_ROOT", "cache"))


# ---------------------------------------------------------------------------------------------------------
# fer preprocess
# ---------------------------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1 (``--limit 0`` or ``-1`` is refused, not silently misread)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fer preprocess``: dataset and execution flags here; every :class:`PreprocessConfig` field as a flag."""
    parser.description = (
        "Turn a dataset's videos/images into the face cache that training reads. "
        "Resumable: run it again to finish an interrupted run."
    )
    parser.add_argument(
        "--dataset", choices=DATASETS, default="folder", help="dataset layout (default: folder)"
    )
    parser.add_argument("--root", help="dataset folder")
    parser.add_argument("--cache-root", help="folder of face caches (default: $FER_CACHE_ROOT or ./cache)")
    parser.add_argument("--help-dataset", metavar="NAME", help="print where to download a dataset, then exit")
    add_config_arguments(parser.add_argument_group("faces (PreprocessConfig)"), PreprocessConfig)
    group = parser.add_argument_group("dataset options")
    add_layout_arguments(group)
    group.add_argument("--limit", type=positive_int, help="only the first N samples (quick trials; N ≥ 1)")
    group = parser.add_argument_group("execution")
    group.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    group.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_cli)


def dataset_options_from_args(args) -> dict:
    """Layout options from ``fer preprocess`` arguments (only those given)."""
    return layout_options_from_args(args.dataset, args)


def _run_cli(args) -> int:
    if args.help_dataset:
        print(manual_download(args.help_dataset))
        return 0
    if not args.root:
        raise ValueError(f"--root is required.\n\n{manual_download(args.dataset)}")
    config = config_from_args(PreprocessConfig, args)
    options = dataset_options_from_args(args)
    layout = dataset_layout(args.dataset)
    if layout.pixel_rows is not None:
        cache = pixel_table_cache(
            layout.name,
            args.root,
            args.cache_root or default_cache_root(),
            config,
            **options,
            limit=args.limit,
            progress=not args.no_progress,
        )
        print_summary(cache, sys.stdout)
        return 0
    samples, skipped = dataset_samples(args.dataset, args.root, **options)
    if args.limit is not None:
        samples = samples[: args.limit]
        options["limit"] = args.limit
    cache = preprocess(
        samples,
        args.cache_root or default_cache_root(),
        config,
        dataset=args.dataset,
        skipped=skipped,
        progress=not args.no_progress,
        workers=args.workers,
        scheduler=args.scheduler,
        dataset_options=options,
    )
    print_summary(cache, sys.stdout)
    return 0
