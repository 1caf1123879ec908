"""Predict emotions on new media.

``fer predict MEDIA --model PATH`` runs a Keras model (``model.keras`` or a run folder) or an exported
one on a video, an image or a folder of them, through the same frame sampling and face pipeline as
training, and writes per-frame class probabilities (CSV), a video-level label and an emotion-over-time
figure (HTML).

This module is the command and its inputs (:func:`media_in`); the prediction of one media file is
:mod:`~fer_utils.deploy.media_prediction`, its figures :mod:`~fer_utils.deploy.prediction_figures`, the files
written :mod:`~fer_utils.deploy.prediction_outputs`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fer_utils.data.samples import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from fer_utils.deploy.media_prediction import (
    DEFAULT_FPS,
    MAX_TRACKING_GAP_S,
    PREDICT_DETECTOR,
    predict_media,
)
from fer_utils.deploy.prediction_outputs import output_names, summary_row, summary_table, write_prediction
from fer_utils.deploy.predictors import TTA_MODES, load_predictor
from fer_utils.faces.detection import DETECTORS
from fer_utils.files import atomic_write_csv
from fer_utils.locks import output_lock

#: The batch's table (several inputs) and the ending of each input's own record.
SUMMARY_FILE = "summary.csv"
SUMMARY_SUFFIX = "_summary.json"


def collect_media(items) -> tuple[list[Path], list[tuple[str, str]]]:
    """The media of every given path (:func:`media_in`) and, for a path that gives none (missing, or a
    folder without media), ``(path, reason)``: reported and skipped, the rest goes on."""
    media, skipped = [], []
    for item in items:
        try:
            media.extend(media_in(item))
        except ValueError as error:
            skipped.append((str(item), str(error)))
    return list(dict.fromkeys(media)), skipped  # a file given twice is done once


def media_in(path: str | os.PathLike) -> list[Path]:
    """The media files to predict: the file itself, or the videos and images of a folder (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"media {path} does not exist")
    suffixes = set(IMAGE_SUFFIXES) | set(VIDEO_SUFFIXES)
    found = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes)
    if not found:
        raise ValueError(f"folder {path} holds no video or image")
    return found


def add_arguments(predict: argparse.ArgumentParser) -> None:
    predict.add_argument("media", nargs="+", help="videos, images or folders of them")
    predict.add_argument(
        "--model",
        help="run folder, model.keras, .tflite or .onnx, or a bundled candidate by name, e.g. fer2013_robust_48 "
        "or ferplus_vgg_bn_48 (paper: the paper CNN's FER2013 model; default: the default candidate, see "
        "docs/model_card.md and `fer bundle-model`)",
    )
    predict.add_argument(
        "--fps", type=float, help=f"frames per second sampled of a video (default {DEFAULT_FPS:g})"
    )
    predict.add_argument(
        "--frames-per-video",
        "--frames",
        dest="frames",
        type=int,
        help="evenly spaced frames per video instead of --fps (e.g. 6, as the training caches)",
    )
    predict.add_argument(
        "--detector",
        choices=DETECTORS,
        help=f"face detector (default {PREDICT_DETECTOR}: a CNN; hog: the paper's, misses some faces)",
    )
    predict.add_argument(
        "--max-faces", type=int, help="at most this many faces per frame, the largest (default: all)"
    )
    predict.add_argument(
        "--min-face-size", type=int, default=0, help="ignore faces smaller than this many pixels (box side)"
    )
    predict.add_argument(
        "--annotate",
        action="store_true",
        help="also write <video>_annotated.mp4: every frame with the faces' boxes, track ids and labels",
    )
    predict.add_argument("--threads", type=int, help="CPU threads of TFLite / ONNX Runtime (default: all)")
    predict.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="none",
        help="test-time augmentation of each face: none (one crop, default), flip (the mean with the "
        "mirrored face, twice the classifier's cost) or tencrop; the model card scores each",
    )
    add_speed_arguments(predict)
    predict.add_argument("--out", default="predictions", help="output folder (default: ./predictions)")
    predict.add_argument(
        "--append",
        action="store_true",
        help="--out already holds predictions: add this batch to them (summary.csv lists both; a file of "
        "the same name is replaced, with its row). Without it such a folder is refused",
    )
    predict.set_defaults(func=_predict_cli)


def add_speed_arguments(predict: argparse.ArgumentParser) -> None:
    """``--detect-every``, ``--tracker`` and ``--engine``: how fast faces are found and classified."""
    from fer_utils.deploy.engines import ENGINES
    from fer_utils.faces.keyframes import DEFAULT_DETECT_EVERY, DEFAULT_TRACKER, TRACKERS

    predict.add_argument(
        "--detect-every",
        type=int,
        default=DEFAULT_DETECT_EVERY,
        help=f"full face detection on every k-th sampled frame, faces tracked between (default "
        f"{DEFAULT_DETECT_EVERY}; 1 = every frame; only for frames ≤ {MAX_TRACKING_GAP_S} s apart)",
    )
    predict.add_argument(
        "--tracker", choices=TRACKERS, default=DEFAULT_TRACKER, help="tracker between keyframes"
    )
    predict.add_argument(
        "--engine",
        choices=("auto", *ENGINES),
        default="auto",
        help="engine of the bundled model (default auto: the fastest on this CPU, measured once and cached)",
    )


def _check_arguments(args) -> None:
    if args.frames is not None and args.frames < 1:
        raise ValueError(f"--frames must be ≥ 1, got {args.frames}")
    if args.fps is not None and args.fps <= 0:
        raise ValueError(f"--fps must be > 0, got {args.fps}")
    if args.max_faces is not None and args.max_faces < 1:
        raise ValueError(f"--max-faces must be ≥ 1, got {args.max_faces}")
    if args.min_face_size < 0:
        raise ValueError(f"--min-face-size must be ≥ 0, got {args.min_face_size}")
    if args.detect_every < 1:
        raise ValueError(f"--detect-every must be ≥ 1, got {args.detect_every}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a file, not a folder")


def earlier_predictions(out: str | os.PathLike) -> list[Path]:
    """The prediction records (``summary.csv``, ``*_summary.json``) an earlier batch left in ``out``."""
    out = Path(out)
    if not out.is_dir():
        return []
    return sorted([*out.glob(f"*{SUMMARY_SUFFIX}"), *out.glob(SUMMARY_FILE)])


def check_earlier_predictions(out: str | os.PathLike, append: bool) -> None:
    """ValueError (one line) when ``out`` holds an earlier batch's predictions and ``append`` is off: its
    ``summary.csv`` would be replaced by this batch's, its other files left unlisted."""
    earlier = earlier_predictions(out)
    if earlier and not append:
        media = sum(path.name.endswith(SUMMARY_SUFFIX) for path in earlier)
        raise ValueError(
            f"--out {out} already holds the predictions of {media} file(s); --append adds this batch to "
            "them, or give another --out"
        )


def merged_summary(out: Path, rows: list[dict]):
    """``summary.csv`` of ``rows`` after the earlier batch's rows in ``out`` (a row of the same media path
    or output name is this batch's)."""
    import pandas as pd

    table = summary_table(rows)
    if not (out / SUMMARY_FILE).exists():
        return table
    earlier = pd.read_csv(out / SUMMARY_FILE, dtype=str, keep_default_na=False)
    replaced = earlier["media_path"].isin(table["media_path"].astype(str)) | (
        earlier["output_name"].isin(table["output_name"].dropna().astype(str))
        & (earlier["output_name"] != "")
    )
    kept = summary_table(earlier[~replaced].replace("", None).to_dict("records"))
    return pd.concat([kept, table], ignore_index=True)[table.columns]


def _predict_cli_predictor(args):
    """The predictor of ``fer predict``: ``--model`` (a file, a run folder, or a bundled candidate by name
    such as ``ferplus_vgg_bn_48`` or ``paper``), else the bundled default, in ``--engine``'s format."""
    from fer_utils.deploy.bundled import is_bundled_name
    from fer_utils.deploy.engines import bundled_predictor

    if args.model and not is_bundled_name(args.model):
        if args.engine != "auto":
            raise ValueError("--engine chooses among the bundled model's files; drop it with --model FILE")
        return load_predictor(args.model, args.threads), str(args.model)
    predictor = bundled_predictor(args.engine, args.threads, args.model)
    return predictor, str(predictor.path)


def _predict_cli(args) -> int:
    _check_arguments(args)
    media, skipped = collect_media(args.media)
    with output_lock(args.out, "fer predict"):  # one writer per output folder
        check_earlier_predictions(args.out, args.append)
        return _predict_into(args, media, skipped)


def _predict_into(args, media: list[Path], skipped: list[tuple[str, str]]) -> int:
    predictor, model = _predict_cli_predictor(args)
    rows = []
    for item, reason in skipped:
        print(f"{item}: skipped ({reason})")
        rows.append(summary_row(item, None, {}, message=f"skipped: {reason}"))
    for path, name in zip(media, output_names(media), strict=True):
        prediction = predict_media(
            path,
            predictor,
            args.frames,
            args.fps,
            args.detector,
            args.max_faces,
            args.min_face_size,
            args.detect_every,
            args.tracker,
            args.tta,
        )
        outputs = write_prediction(prediction, args.out, str(model), name, args.annotate)
        print(prediction.message())
        rows.append(summary_row(path, prediction, outputs, output_name=name))
    out = Path(args.out)
    if len(rows) > 1 or (out / SUMMARY_FILE).exists():  # one input alone: its _summary.json says it all
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_csv(out / SUMMARY_FILE, merged_summary(out, rows))
    print(f"outputs in {args.out}")
    return _exit_status(rows)


def _exit_status(rows: list[dict]) -> int:
    """1 (after saying which) when any input was missing or unreadable, else 0."""
    unreadable = sum(row["status"] == "unreadable" for row in rows)
    missing = sum(row["status"] == "missing" for row in rows)
    if unreadable:
        print(f"{unreadable} of {len(rows)} file(s) could not be read (see their _summary.json)")
    if missing:
        print(f"{missing} of {len(rows)} path(s) skipped: they do not exist or hold no video or image")
    return 1 if unreadable or missing else 0
