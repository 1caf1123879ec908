"""``fer bundle-model``: train (or take from a model study) the FER2013 runs of one architecture, ship the
median seed into ``fer_utils/models/`` (:mod:`fer_utils.deploy.bundled` finds the shipped files) and write
the model card's numbers, measured on the FER2013 PrivateTest faces from the shipped files by
:func:`score_fer2013_test`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fer_utils.deploy.bundled import (
    BUNDLED_DIR,
    BUNDLED_FILES,
    CARD_MARKDOWN,
    DEFAULT_FORMAT,
    DETECT_WIDTH,
    FER2013_CLASSES,
    IMAGE_SIZE,
    PREDICT_MARGIN,
    bundled_files,
    card_file_name,
)
from fer_utils.deploy.export import export_model, run_calibration_faces, write_model_spec
from fer_utils.deploy.predictors import load_predictor
from fer_utils.experiments.model_card import (
    FER2013_JPEG_STEP,
    class_indices,
    fer2013_test_faces,
    fill_card,
    model_card_numbers,
    score_fer2013_test,
    served_or_none,
)
from fer_utils.experiments.model_study import STUDY_FILE
from fer_utils.experiments.served_scores import served_lines
from fer_utils.faces.detection import faces_for_model
from fer_utils.faces.preprocess import default_cache_root, image_folder_cache
from fer_utils.files import atomic_write_json, replace_directory
from fer_utils.locks import output_lock
from fer_utils.paths import shared_data_root
from fer_utils.training.architectures import architecture as family
from fer_utils.training.calibration import (
    temperature_decision,
)
from fer_utils.training.config import TrainConfig
from fer_utils.training.model import load_keras_model
from fer_utils.training.model_files import run_calibration, spec_path
from fer_utils.training.runtime import import_tensorflow, stderr_silenced
from fer_utils.training.seeds import (
    describe_seeds,
    finished_seed_runs,
    median_run,
    read_seed_summary,
    refuse_other_settings,
    train_seeds,
)


def bundled_train_config(epochs: int = 30, architecture: str = "paper", image_size: int | None = None):
    """The shipped model's training: robust recipe, FER2013's own split (PublicTest selects, PrivateTest
    tests); the paper CNN at 48 px (FER2013's own), another family at its intended input size
    (:mod:`fer_utils.training.architectures`) unless ``image_size``."""
    size = image_size or (IMAGE_SIZE if architecture == "paper" else family(architecture).input_size)
    return TrainConfig(
        protocol="fixed", epochs=epochs, recipe="robust", input_size=size, architecture=architecture
    )


def train_bundle_seeds(
    images: Path,
    work: Path,
    seeds: list[int],
    epochs: int,
    workers: int | None,
    architecture: str = "paper",
    image_size: int | None = None,
) -> dict:
    """FER2013 → face cache → one robust run per seed in ``work/seeds`` (finished seeds are kept)."""

    cache = image_folder_cache(
        images, default_cache_root(), face_size=IMAGE_SIZE, split_dirs=True, progress=False
    )
    print(f"face cache: {cache.cache_dir} ({len(cache)} faces)")
    config = bundled_train_config(epochs, architecture, image_size)
    return train_seeds(cache.cache_dir, work / "seeds", config, seeds, workers)


def ship_run(run, out_dir: Path) -> dict[str, Path]:
    """Write a run's model into ``out_dir`` as the bundled files (Keras without optimizer state, int8
    TFLite calibrated on the run's training faces), each with its JSON spec."""

    _, keras = import_tensorflow()
    with stderr_silenced():  # TensorFlow's first op repeats its oneDNN note past absl logging
        return _write_shipped_files(keras, run, out_dir)


def _write_shipped_files(keras, run, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = list(run.config["labels"])
    model = load_keras_model(run.model_path)
    architecture = run.config.get("architecture", "paper")
    files = bundled_files(architecture)
    extra = {
        "trained_on": "FER2013",
        "training_data": "FER2013 train (28,709 faces); PublicTest (3,589) selected the epoch",
        "recipe": run.config.get("recipe"),
        "seed": run.config.get("seed"),
        "num_params": run.metrics.get("num_params"),
        "architecture": architecture,
        "cost": run.metrics.get("cost"),
        "calibration": run_calibration(run.path),
        "preprocessing": {
            "detector": "hog",
            "margin": PREDICT_MARGIN,
            "detect_width": DETECT_WIDTH,
            "frames_per_video": 6,
            # the pixel step of the faces the run learned from: every predictor applies it to raw crops
            "equalize": (run.config.get("preprocessing") or {}).get("equalize", "none"),
        },
    }
    keras_path = out_dir / files["keras"]
    model.save(keras_path)
    write_model_spec(
        keras_path,
        {
            "format": "keras",
            "model_file": keras_path.name,
            "labels": labels,
            "image_size": int(run.config.get("image_size") or IMAGE_SIZE),
            **extra,
        },
    )
    int8_path = export_model(
        model,
        "tflite-int8",
        out_dir / files["tflite-int8"],
        labels,
        run_calibration_faces(run.path),
        extra,
    )
    return {
        "keras": keras_path,
        "tflite-int8": int8_path,
        **write_fp32_exports(model, labels, out_dir, extra, files),
    }


def write_fp32_exports(
    model, labels: list[str], out_dir: Path, extra: dict, files: dict[str, str] | None = None
) -> dict[str, Path]:
    """The shipped model's float32 TFLite and ONNX exports (exact conversions of the Keras model), named
    as ``files`` (:func:`bundled_files`; default the paper CNN's)."""
    files = files or BUNDLED_FILES
    return {
        fmt: export_model(model, export_fmt, out_dir / files[fmt], labels, extra=extra)
        for fmt, export_fmt in (("tflite-fp32", "tflite"), ("onnx-fp32", "onnx"))
    }


def build_bundled_model(
    images: str | os.PathLike,
    work: str | os.PathLike,
    seeds: list[int],
    epochs: int = 30,
    workers: int | None = None,
    out_dir: str | os.PathLike | None = None,
    card_markdown: str | os.PathLike | None = CARD_MARKDOWN,
    architecture: str = "paper",
    image_size: int | None = None,
    from_study: str | os.PathLike | None = None,
) -> dict:
    """Train (resumable: finished seeds are kept, an interrupted seed resumes after its last finished
    epoch), or take the seeds of ``architecture`` from the ``fer study-models`` folder ``from_study``
    (:func:`study_seeds_folder`), pick the median seed, ship its files and write the model card's numbers."""

    images, work = Path(images), Path(work)
    out_dir = Path(out_dir or BUNDLED_DIR)
    if from_study:
        seeds_dir = study_seeds_folder(from_study, architecture)
        summary = read_seed_summary(seeds_dir)
    else:
        seeds_dir = work / "seeds"
        summary = train_bundle_seeds(images, work, seeds, epochs, workers, architecture, image_size)
    print(describe_seeds(summary))
    if summary["failed"]:
        raise ValueError(f"{summary['failed']} seed run(s) failed; see {seeds_dir / 'seeds.json'}")
    run = median_run(seeds_dir)
    require_fer2013_classes(run)
    print(f"shipping {run.path} (seed {run.config.get('seed')}, the median)")
    with staged_folder(out_dir) as staging:
        shipped = ship_run(run, staging)
        card = model_card_numbers(summary, run, shipped, images)
        atomic_write_json(staging / card_file_name(architecture), card, default=str)
    if card_markdown:
        fill_card(Path(card_markdown), card)
    return card


def require_fer2013_classes(run) -> None:
    """ValueError (one line) unless ``run`` predicts FER2013's seven classes, what a bundled model is
    scored on; checked before anything is built."""
    labels, wanted = run.config.get("labels") or [], set(FER2013_CLASSES.values())
    if set(labels) != wanted or len(labels) != len(wanted):
        raise ValueError(
            f"{run.path} predicts {', '.join(map(str, labels)) or 'no classes'}, not FER2013's "
            f"{', '.join(sorted(wanted))}: it cannot be shipped as a FER2013 model"
        )


@contextmanager
def staged_folder(out_dir: str | os.PathLike) -> Iterator[Path]:
    """A hidden copy of ``out_dir`` (its files, if it exists) to write the shipped files into, under the
    folder's writer lock; when the block ends it replaces ``out_dir`` in one swap
    (:func:`fer_utils.files.replace_directory`): every model file, spec and card change together or none
    does. The copy is removed whatever happens."""
    out_dir = Path(os.path.abspath(out_dir))
    staging = out_dir.with_name(f".{out_dir.name}.staging-{uuid.uuid4().hex[:8]}")
    with output_lock(out_dir, "fer bundle-model"):
        try:
            if out_dir.is_dir():
                shutil.copytree(out_dir, staging, symlinks=True)
            else:
                staging.mkdir(parents=True)
            yield staging
            replace_directory(staging, out_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def shipped_paths(
    architecture: str = "paper", models_dir: str | os.PathLike | None = None
) -> dict[str, Path]:
    """The shipped files of ``architecture`` that exist in ``models_dir`` (default the package's), by format."""
    models_dir = Path(models_dir or BUNDLED_DIR)
    files = bundled_files(architecture)
    return {fmt: models_dir / name for fmt, name in files.items() if (models_dir / name).exists()}


def recalibrate_shipped(
    images: str | os.PathLike,
    architecture: str = "paper",
    models_dir: str | os.PathLike | None = None,
    card_markdown: str | os.PathLike | None = None,
) -> dict:
    """Calibrate a shipped model without retraining it: fit its temperature on FER2013 PublicTest (the
    faces that already chose its epoch; PrivateTest stays unseen) from the Keras file's softmax, keep it
    only where it lowers their calibration error, store it in every shipped file's spec (``fer predict``
    then reports scaled probabilities) and re-measure the card from the files. Returns the updated card."""
    paths = shipped_paths(architecture, models_dir)
    if "keras" not in paths:
        keras_name = bundled_files(architecture)["keras"]
        raise ValueError(f"{Path(models_dir or BUNDLED_DIR) / keras_name} is missing; nothing to calibrate")
    faces, truth, _ = fer2013_test_faces(images, "validation")
    predictor = load_predictor(paths["keras"], num_threads=1)
    faces = faces_for_model(faces, predictor.pixel_step, FER2013_JPEG_STEP)
    targets = class_indices(truth, predictor.labels)
    fitted_on = "FER2013 PublicTest (the epoch-selection faces)"
    decision = temperature_decision(predictor.predict_proba(faces, calibrated=False), targets, fitted_on)
    calibration = {**decision, "fitted_on": fitted_on}  # temperature 1 where fitting one did not help
    return rescore_shipped(images, architecture, models_dir, card_markdown, calibration)


def rescore_shipped(
    images: str | os.PathLike,
    architecture: str = "paper",
    models_dir: str | os.PathLike | None = None,
    card_markdown: str | os.PathLike | None = None,
    calibration: dict | None = None,
) -> dict:
    """Re-measure the card's numbers from the shipped files (PrivateTest scores of every file, the served
    raw-face scores of the default one); with ``calibration``, first store it in every file's spec and
    the card. Every spec and the card are replaced together, or none is."""
    models_dir = Path(models_dir or BUNDLED_DIR)
    paths = shipped_paths(architecture, models_dir)
    card_name = card_file_name(architecture)
    if not (models_dir / card_name).exists() or DEFAULT_FORMAT not in paths:
        raise ValueError(
            f"{models_dir} holds no shipped {architecture} model with its card; nothing to rescore"
        )
    card = json.loads((models_dir / card_name).read_text())
    with staged_folder(models_dir) as staging:
        staged = {fmt: staging / path.name for fmt, path in paths.items()}
        if calibration is not None:
            for path in staged.values():
                write_model_spec(path, json.loads(spec_path(path).read_text()) | {"calibration": calibration})
            card["training"]["calibration"] = calibration
        card["test"] = {fmt: score_fer2013_test(path, images) for fmt, path in staged.items()}
        card["served"] = served_or_none(staged[DEFAULT_FORMAT])
        atomic_write_json(staging / card_name, card, default=str)
    if card_markdown:
        fill_card(Path(card_markdown), card)
    return card


def study_seeds_folder(study_dir: str | os.PathLike, architecture: str) -> Path:
    """The seeds folder of ``architecture`` in a ``fer study-models`` folder, checked to be shippable as
    a bundled model: trained on FER2013's own split (``fixed`` protocol: PublicTest selected, PrivateTest
    tested), every seed of the study finished, each run made with the study's settings and predicting
    FER2013's classes. ValueError (one line) naming what is not so, before any work."""
    study_dir = Path(study_dir)
    try:
        study = json.loads((study_dir / STUDY_FILE).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{study_dir} is not a model study folder ({STUDY_FILE}: {error})") from None
    if architecture not in study.get("architectures", {}):
        raise ValueError(
            f"the study {study_dir} has no {architecture!r} runs; it has "
            f"{', '.join(study.get('architectures', {})) or 'none'}"
        )
    protocol = study.get("shared", {}).get("protocol")
    if protocol != "fixed":
        raise ValueError(
            f"the study {study_dir} split FER2013 by protocol {protocol!r}; a bundled model is trained on "
            "FER2013's own split (--protocol fixed) so that PrivateTest stays unseen"
        )
    folder = study_dir / architecture
    runs = finished_seed_runs(folder)
    missing = sorted(set(study.get("seeds", [])) - {run.setup.seed for run in runs})
    if missing:
        raise ValueError(
            f"{folder}: seed(s) {', '.join(map(str, missing))} not finished; rerun the study command to "
            "finish them"
        )
    datasets = {run.outcome.dataset for run in runs}
    if datasets != {"fer2013"}:
        raise ValueError(f"{folder}: runs trained on {', '.join(sorted(datasets))}, not FER2013")
    try:
        refuse_other_settings({folder: study_config(study, architecture)})
    except ValueError as error:
        stale = "; ".join(line.strip() for line in str(error).splitlines()[1:])
        raise ValueError(
            f"made with other settings than the study {study_dir}, not shipped: {stale}"
        ) from None
    for run in runs:
        require_fer2013_classes(run)
    return folder


def study_config(study: dict, architecture: str) -> TrainConfig:
    """The TrainConfig a ``fer study-models`` folder trained ``architecture`` with (its ``study.json``)."""
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    shared = {key: value for key, value in study.get("shared", {}).items() if key in known}
    family = study["architectures"][architecture] or {}
    return dataclasses.replace(
        TrainConfig(**shared), architecture=architecture, input_size=family.get("input_size")
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--images",
        default=str(shared_data_root() / "fer2013"),
        help="FER2013 as <split>/<class>/*.jpg (default: the shared data folder's fer2013)",
    )
    parser.add_argument(
        "--work",
        help="where the seed runs go (resumable; default: runs/bundled-model, with --architecture X "
        "runs/bundled-model-X)",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run per seed (default: 0 1 2)"
    )
    parser.add_argument("--epochs", type=int, default=30, help="epochs per run (default: 30)")
    parser.add_argument(
        "--architecture",
        default="paper",
        help="the family to train and ship (fer_utils/training/architectures.py; default: paper, shipped "
        "as fer2013_robust_48; another as fer2013_<architecture>)",
    )
    parser.add_argument(
        "--image-size", type=int, help="face size (default: 48 for paper, else the family's input size)"
    )
    parser.add_argument("--workers", type=int, help="runs at once (default: one per core)")
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="no training: fit the shipped --architecture's temperature on PublicTest, store it in its "
        "files and re-measure the card from them",
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="no training: re-measure the card's numbers from the shipped --architecture's files "
        "(PrivateTest per file, served raw-face scores of the default file)",
    )
    parser.add_argument(
        "--from-study",
        metavar="STUDY",
        help="ship the median seed of --architecture from this `fer study-models` folder (FER2013, "
        "--protocol fixed) instead of training",
    )
    parser.add_argument("--out", help=f"folder the shipped files go into (default: {BUNDLED_DIR})")
    parser.add_argument(
        "--card",
        help=f"model card whose numbers block is rewritten ('' to skip; default: {CARD_MARKDOWN} for the "
        "paper CNN, none for another architecture)",
    )
    parser.set_defaults(func=_bundle_cli)


def _bundle_cli(args) -> int:
    family(args.architecture)  # an unknown name: one line, before any work
    paper = args.architecture == "paper"
    work = args.work or ("runs/bundled-model" if paper else f"runs/bundled-model-{args.architecture}")
    card_markdown = args.card if args.card is not None else (str(CARD_MARKDOWN) if paper else "")
    if args.rescore:
        card = rescore_shipped(args.images, args.architecture, args.out, card_markdown)
        print("\n".join(served_lines(card.get("served"))[3:]) or "PrivateTest scores re-measured")
        return 0
    if args.recalibrate:
        card = recalibrate_shipped(args.images, args.architecture, args.out, card_markdown)
        calibration = card["test"][DEFAULT_FORMAT]["calibration"]
        print(
            f"temperature {calibration['temperature']:.3f} (PublicTest); PrivateTest ECE "
            f"{calibration['ece_before']:.3f} → {calibration['ece_after']:.3f} "
            f"({bundled_files(args.architecture)[DEFAULT_FORMAT]})"
        )
        return 0
    card = build_bundled_model(
        args.images,
        work,
        args.seeds,
        args.epochs,
        args.workers,
        args.out,
        card_markdown,
        args.architecture,
        args.image_size,
        args.from_study,
    )
    scores = card["test"][DEFAULT_FORMAT]
    print(
        f"shipped {card['shipped_run']} (seed {card['shipped_seed']}): PrivateTest accuracy {100 * scores['accuracy']:.1f} %, "
        f"macro F1 {scores['macro_f1']:.3f} ({bundled_files(args.architecture)[DEFAULT_FORMAT]})"
    )
    return 0
