"""Samples → face cache (see :mod:`fer_utils.faces.cache`), in parallel, resumable, memory bounded.

For each sample (video or image) :func:`process_sample` decodes ``frames_per_video ×
candidates_per_frame`` evenly spaced candidate frames, looks for a face in them group by group and keeps
``frames_per_video`` frames that contain one (the paper's 6 frames, minus its face-less ones). Workers
return faces, index rows and a skip reason; one writer in the main process appends them to the cache,
so a killed run resumes where its last finished shard stopped and ends with the same cache.

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
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fer_utils.data.datasets import (
    DATASETS,
    Sample,
    SkippedItem,
    dataset_samples,
    describe_renaming,
    folder_samples,
    label_renaming,
    manual_download,
)
from fer_utils.data.synthetic import SYNTHETIC_MARKER, is_demo_media
from fer_utils.faces.cache import (
    DUPLICATES_FILE,
    TIME_COLUMN,
    FaceCache,
    FaceCacheWriter,
    cache_dir_for,
    duplicate_faces,
)
from fer_utils.faces.detection import DETECTORS, EQUALIZATIONS, extract_face, to_gray_face  # noqa: F401  (to_gray_face: re-exported)
from fer_utils.faces.frames import SAMPLING_METHODS, SampledFrames, sample_frames
from fer_utils.files import require_folder_path
from fer_utils.parallel import default_workers, parallel_map
from fer_utils.progress import progress_bar
from fer_utils.settings import add_arguments as add_config_arguments
from fer_utils.settings import config_from_args, setting

#: Bumped when a code change alters the faces, so old caches are not reused.
PIPELINE_VERSION = 1

REASON_NO_FACE = "no face"
REASON_FEWER_FACES = "fewer faces than"
REASON_ERROR = "error"


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything that changes the faces in a cache (its hash names the cache folder).

    Each field is also a flag of ``fer preprocess`` and ``fer run`` (via :mod:`fer_utils.settings`)
    and a parameter of notebook 01; the defaults are the paper's pipeline.
    """

    face_size: int = setting(
        180, help="side of the square gray face crops in pixels (paper: 180)", renamed_from=("image_size",)
    )
    frames_per_video: int = setting(
        6, help="faces kept per video (paper: 6 evenly spaced frames)", aliases=("--frames",)
    )
    detector: str = setting(
        "hog",
        help="face detector: hog (dlib frontal HOG, the paper's), cnn (dlib MMOD, slow on CPU), "
        "none (the whole image is the face: already-cropped images)",
        choices=DETECTORS,
    )
    upsample: int = setting(0, help="dlib upsampling passes (1 finds faces half as small, ~4× slower)")
    detect_width: int | None = setting(
        640, help="detect on a copy downscaled to this width, boxes mapped back (none: full resolution)"
    )
    margin: float = setting(0.0, help="border added around the detector's box, as a fraction of its side")
    align: bool = setting(False, help="level the eyes with dlib's 68-landmark predictor before cropping")
    candidates_per_frame: int = setting(
        3,
        help="candidate frames decoded per kept frame; each kept frame is the candidate with a face nearest "
        "its evenly spaced position (1: exactly the evenly spaced frames)",
        aliases=("--candidates",),
    )
    min_faces: int = setting(1, help="a video with fewer faces is skipped")
    sampling: str = setting(
        "grab", help="frame decoding: grab (frame-accurate, sequential) or seek", choices=SAMPLING_METHODS
    )
    equalize: str = setting(
        "none", help="contrast normalisation of each crop: none (the paper) or clahe", choices=EQUALIZATIONS
    )

    def __post_init__(self):
        if self.detector not in DETECTORS:
            raise ValueError(f"unknown detector {self.detector!r}; choose one of {DETECTORS}")
        if self.equalize not in EQUALIZATIONS:
            raise ValueError(f"unknown equalize {self.equalize!r}; choose one of {EQUALIZATIONS}")
        if self.sampling not in SAMPLING_METHODS:
            raise ValueError(f"unknown sampling {self.sampling!r}; choose one of {SAMPLING_METHODS}")
        for name in ("face_size", "frames_per_video", "candidates_per_frame", "min_faces"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.min_faces > self.frames_per_video:
            raise ValueError(
                f"min_faces ({self.min_faces}) cannot exceed frames_per_video ({self.frames_per_video})"
            )
        if self.upsample < 0 or self.margin < 0:
            raise ValueError("upsample and margin must be ≥ 0")
        if self.detect_width is not None and self.detect_width < 32:
            raise ValueError(f"detect_width must be ≥ 32 pixels or None, got {self.detect_width}")

    def to_dict(self) -> dict:
        """The fields as a face cache's config.json stores (and hashes) them: ``face_size`` under its
        stored name ``image_size`` (the cache's ``FaceCache.image_size``), so existing caches keep their keys."""
        values = asdict(self)
        return {"image_size": values.pop("face_size"), **values}


class ProcessedItem(NamedTuple):
    """What a worker returns for one sample."""

    media_path: str
    faces: np.ndarray | None
    rows: list[dict]
    reason: str | None
    stats: dict


#: A frame source: ``(media path, count) → SampledFrames`` (see :func:`fer_utils.faces.frames.sample_frames`).
FrameSource = Callable[[str, int], SampledFrames]


def process_sample(
    sample: Sample, config: PreprocessConfig, frame_source: FrameSource | None = None
) -> ProcessedItem:
    """One sample → faces, index rows, a skip reason (or None) and per-item stats.

    Args:
        sample: the media item.
        config: the preprocessing config.
        frame_source: how candidate frames are read (default: :func:`~fer_utils.faces.frames.sample_frames`
            in gray with ``config.sampling``); the benchmark passes a naive decoder here.

    Returns:
        A :class:`ProcessedItem`; ``stats`` holds ``sampled_frames`` (frames searched for a face),
        ``face_frames`` (of those, frames with a face), ``faces`` (kept) and ``seconds``.
    """
    started = time.perf_counter()
    try:
        faces, rows, reason, stats = _process(sample, config, frame_source)
    except Exception as error:  # one bad file must not stop a batch of thousands
        detail = traceback.format_exception_only(type(error), error)[-1].strip()
        faces, rows, reason = None, [], f"{REASON_ERROR}: {detail}"
        stats = {"sampled_frames": 0, "face_frames": 0}
    stats = {**stats, "faces": len(rows), "seconds": round(time.perf_counter() - started, 4)}
    return ProcessedItem(sample.media_path, faces, rows, reason, stats)


def _process(sample: Sample, config: PreprocessConfig, frame_source: FrameSource | None):
    sampled = _candidate_frames(sample, config, frame_source)
    if sampled.error:
        return None, [], sampled.error, {"sampled_frames": 0, "face_frames": 0}
    frames = sampled.frames
    found: dict[int, object] = {}  # position in frames → FaceCrop or None

    def look(position: int):
        if position not in found:
            found[position] = _extract(frames[position].image, config)
        return found[position]

    chosen = _choose_positions(len(frames), config.frames_per_video, look)
    stats = {
        "sampled_frames": len(found),
        "face_frames": sum(crop is not None for crop in found.values()),
        "candidate_frames": len(frames),
        "reported_frames": sampled.reported_count,
    }
    reason = _shortfall(len(chosen), len(found), config.min_faces)
    if reason:
        return None, [], reason, stats
    crops = [(frames[position], found[position]) for position in chosen]
    base = sample.row()
    rows = [_index_row(base, frame, crop, config.detector) for frame, crop in crops]
    return np.stack([crop.face for _, crop in crops]).astype(np.uint8), rows, None, stats


def _candidate_frames(
    sample: Sample, config: PreprocessConfig, frame_source: FrameSource | None
) -> SampledFrames:
    candidates = config.frames_per_video * (1 if config.detector == "none" else config.candidates_per_frame)
    if frame_source is None:
        return sample_frames(sample.media_path, candidates, gray=True, method=config.sampling)
    return frame_source(sample.media_path, candidates)


def _extract(image: np.ndarray, config: PreprocessConfig):
    return extract_face(
        image,
        image_size=config.face_size,
        detector=config.detector,
        upsample=config.upsample,
        detect_width=config.detect_width,
        margin=config.margin,
        align=config.align,
        equalize=config.equalize,
    )


def _choose_positions(count: int, wanted: int, look: Callable[[int], object]) -> list[int]:
    """Up to ``wanted`` sorted positions among ``count`` candidates whose ``look`` finds a face."""
    chosen = _nearest_centre_faces(count, wanted, look)
    if len(chosen) < wanted:
        chosen.extend(_spare_faces(count, wanted - len(chosen), chosen, look))
    return sorted(chosen)


def _nearest_centre_faces(count: int, wanted: int, look: Callable[[int], object]) -> list[int]:
    """Per group of consecutive candidates, the face nearest the group's centre."""
    chosen: list[int] = []
    for group in np.array_split(np.arange(count), min(wanted, count)):
        group = list(group)
        centre = (len(group) - 1) / 2
        for position in sorted(group, key=lambda p: (abs(p - group[0] - centre), p)):
            if look(position) is not None:
                chosen.append(position)
                break
    return chosen


def _spare_faces(count: int, missing: int, chosen: list[int], look: Callable[[int], object]) -> list[int]:
    """Up to ``missing`` evenly spread other candidates with a face (fills face-less stretches)."""
    spare = [p for p in range(count) if p not in chosen and look(p) is not None]
    extra = min(missing, len(spare))
    if not extra:
        return []
    picks = np.linspace(0, len(spare) - 1, extra).round().astype(int)
    return [spare[i] for i in sorted(set(picks.tolist()))]


def _shortfall(chosen: int, sampled: int, min_faces: int) -> str | None:
    if not chosen:
        return f"{REASON_NO_FACE}: none in {sampled} sampled frames"
    if chosen < min_faces:
        return f"{REASON_FEWER_FACES} {min_faces}: found {chosen} in {sampled} sampled frames"
    return None


def _index_row(base: dict, frame, crop, detector: str) -> dict:
    return {
        **base,
        "frame_index": frame.index,
        TIME_COLUMN: round(frame.timestamp / 1000.0, 4),
        "bbox_x": crop.box.x,
        "bbox_y": crop.box.y,
        "bbox_w": crop.box.w,
        "bbox_h": crop.box.h,
        "face_score": round(crop.box.score, 4),
        "align_angle": round(crop.angle, 3),
        "detector": detector,
    }


def cache_config(
    config: PreprocessConfig, dataset: str, dataset_options: dict | None = None, synthetic: bool = False
) -> dict:
    """The dict stored beside a cache and hashed into its folder name (``synthetic``: the media are the
    synthetic demo set, recorded as :data:`fer_utils.data.synthetic.SYNTHETIC_MARKER`)."""
    stored = {"dataset": dataset, "pipeline_version": PIPELINE_VERSION, **config.to_dict()}
    if synthetic:
        stored[SYNTHETIC_MARKER] = True
    if dataset_options:
        stored["dataset_options"] = {
            k: _plain(v) for k, v in sorted(dataset_options.items()) if v is not None
        }
    return stored


def _plain(value):
    if isinstance(value, list | tuple | set):
        return sorted(str(v) for v in value)
    return value


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
        samples: media items (from :func:`fer_utils.datasets.dataset_samples`).
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
    stored = cache_config(config, dataset, dataset_options, synthetic=is_demo_media(samples[0].media_path))
    renamed = label_renaming(samples)
    if renamed:
        print(describe_renaming(renamed))
    writer = FaceCacheWriter(
        cache_dir_for(cache_root, dataset, stored),
        stored,
        shard_size=shard_size,
        ingestion={"label_renaming": renamed} if renamed else None,
    )
    for problem in writer.repaired:
        print(f"removed a broken shard, its items are preprocessed again: {problem}")
    todo = _record_skipped_and_list_todo(writer, samples, skipped)
    report = PreprocessReport(resumed=len(samples) - len(todo))
    report.found = len({s.media_path for s in samples} | {item.media_path for item in skipped})
    report.workers = min(workers or default_workers(), max(1, len(todo)))
    started = time.perf_counter()
    _process_into(writer, todo, config, report, progress, scheduler, flush_seconds, dataset)
    report.seconds = time.perf_counter() - started
    cache = writer.close()
    cache.report = report
    return cache


def _record_skipped_and_list_todo(
    writer: FaceCacheWriter, samples: Sequence[Sample], skipped: Sequence[SkippedItem]
) -> list[Sample]:
    """Record the layout's rejects the cache lacks; return the samples not done yet (each path once)."""
    done = writer.done_items()
    for item in skipped:
        if item.media_path not in done:
            writer.add(item.media_path, None, [], item.reason)
            done.add(item.media_path)
    todo = []
    for sample in samples:
        if sample.media_path not in done:
            done.add(sample.media_path)
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
    face_size: int = 180,
    split_dirs: bool = False,
    filename_pattern: str | None = None,
    detector: str = "none",
    dataset: str | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> FaceCache:
    """Turn a class-folder image dataset into a face cache (``detector='none'`` for already-cropped faces).

    ``max_per_class`` keeps a seeded random subset of at most that many images per (split, class).
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
    config = PreprocessConfig(face_size=face_size, detector=detector)
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


def skipped_summary(skipped_table) -> dict[str, int]:
    """Counts of skipped items by reason kind (the text before ``:``)."""
    if not len(skipped_table):
        return {}
    kinds = skipped_table["reason"].astype(str).str.split(":").str[0]
    return kinds.value_counts().to_dict()


def default_cache_root() -> Path:
    return Path(os.environ.get("FER_CACHE_ROOT", "cache"))


# ---------------------------------------------------------------------------------------------------------
# fer preprocess
# ---------------------------------------------------------------------------------------------------------


def _csv(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


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
    group.add_argument("--modality", help="RAVDESS: full-av,video-only (default full-av)")
    group.add_argument("--channel", help="RAVDESS: speech,song (default speech)")
    group.add_argument("--views", help="MEAD: comma-separated views (default front)")
    group.add_argument("--levels", help="MEAD: comma-separated levels (default 1,2,3)")
    group.add_argument("--limit", type=positive_int, help="only the first N samples (quick trials; N ≥ 1)")
    group = parser.add_argument_group("execution")
    group.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    group.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_cli)


def dataset_options_from_args(args) -> dict:
    """Spec options from ``fer preprocess`` arguments (only those given)."""
    options = {}
    if args.dataset == "ravdess":
        options = {"modalities": _csv(args.modality), "channels": _csv(args.channel)}
    elif args.dataset == "mead":
        options = {"views": _csv(args.views), "levels": _csv(args.levels)}
    return {key: value for key, value in options.items() if value is not None}


def _run_cli(args) -> int:
    if args.help_dataset:
        print(manual_download(args.help_dataset))
        return 0
    if not args.root:
        raise ValueError(f"--root is required.\n\n{manual_download(args.dataset)}")
    config = config_from_args(PreprocessConfig, args)
    options = dataset_options_from_args(args)
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


def print_summary(cache: FaceCache, stream=None) -> None:
    """Cache folder, counts per class and the skipped summary, for people."""
    stream = stream or sys.stdout
    report = getattr(cache, "report", None)
    print(f"cache: {cache.cache_dir}", file=stream)
    videos = cache.index["video_id"].nunique() if len(cache) else 0
    print(f"faces: {len(cache)} from {videos} videos; skipped: {len(cache.skipped)}", file=stream)
    if len(cache):
        counts = cache.index["label"].value_counts()
        print("per class: " + ", ".join(f"{label} {counts[label]}" for label in cache.labels), file=stream)
    for kind, count in skipped_summary(cache.skipped).items():
        print(f"  skipped ({kind}): {count}", file=stream)
    duplicates = duplicate_faces(cache.index)
    if len(duplicates):
        examples = duplicates.groupby("face_hash")["media_path"].apply(
            lambda paths: " = ".join(sorted(set(paths))[:2])
        )
        print(
            f"duplicate content: {len(duplicates)} faces in {len(examples)} groups have identical pixels in "
            f"different videos, e.g. {examples.iloc[0]} (all in {cache.cache_dir / DUPLICATES_FILE})",
            file=stream,
        )
    if report is not None:
        kept = cache.index["media_path"].nunique() if len(cache) else 0
        print(
            f"inputs: {report.found} found = {kept} kept + {len(cache.skipped)} skipped"
            + (
                ""
                if report.found == kept + len(cache.skipped)
                else " (MISMATCH: some inputs are unaccounted for)"
            ),
            file=stream,
        )
        print(
            f"this run: {report.processed} items in {report.seconds:.1f} s "
            f"({report.clips_per_second:.2f} clips/s on {report.workers} workers), "
            f"{report.resumed} already done",
            file=stream,
        )


# ---------------------------------------------------------------------------------------------------------
# Tables for notebook 01
# ---------------------------------------------------------------------------------------------------------


def detection_rates(cache: FaceCache):
    """Per-item face-detection figures: one row per processed item with ``sampled_frames`` (frames
    searched), ``face_frames`` (with a face), ``rate`` (their ratio), ``faces`` kept, ``seconds`` and
    ``reason`` (skip reason or empty), worst rate first.

    Args:
        cache: a face cache written by :func:`preprocess` (older caches without stats give an empty table).

    Returns:
        A pandas DataFrame.
    """
    import pandas as pd

    stats = cache.stats.copy()
    if not len(stats):
        return pd.DataFrame(
            columns=["media_path", "sampled_frames", "face_frames", "rate", "faces", "reason"]
        )
    stats["rate"] = (
        stats["face_frames"] / stats["sampled_frames"].where(stats["sampled_frames"] > 0)
    ).fillna(0.0)
    reasons = dict(zip(cache.skipped["media_path"], cache.skipped["reason"], strict=True))
    stats["reason"] = stats["media_path"].map(reasons).fillna("")
    if len(cache):
        labels = cache.index.drop_duplicates("media_path").set_index("media_path")
        for column in ("label", "subject", "video_id"):
            if column in labels:
                stats[column] = stats["media_path"].map(labels[column])
    return stats.sort_values(["rate", "media_path"], kind="stable").reset_index(drop=True)


def face_grid(cache: FaceCache, per_class: int = 6, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """A few faces per class for a picture grid.

    Args:
        cache: the face cache.
        per_class: faces per class (fewer where a class has fewer; the rest of its row stays black).
        seed: which faces (random, reproducible).

    Returns:
        (faces (classes × per_class, size, size) uint8, class labels in canonical order).
    """
    labels = cache.labels
    size = cache.image_size
    grid = np.zeros((len(labels) * per_class, size, size), np.uint8)
    rng = np.random.default_rng(seed)
    for row, label in enumerate(labels):
        ids = cache.index.loc[cache.index["label"] == label, "face_id"].to_numpy()
        picked = np.sort(rng.choice(ids, size=min(per_class, len(ids)), replace=False))
        grid[row * per_class : row * per_class + len(picked)] = cache.faces(picked)
    return grid, labels
