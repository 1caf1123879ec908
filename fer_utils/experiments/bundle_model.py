"""``fer bundle-model``: train (or take from a model study) the runs of one architecture on one bundle
dataset (FER2013's JPEG export, FER+ or FER2013's raw pixels: :mod:`fer_utils.experiments.bundle_data`),
ship the median seed into ``fer_utils/models/`` as a candidate named by dataset and family
(:mod:`fer_utils.deploy.bundled` finds the shipped files), choose the default among the shipped candidates
by the stated rule (:mod:`fer_utils.experiments.default_rule`) and write the model card's numbers, measured
from the shipped files (:mod:`fer_utils.experiments.model_card`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fer_utils.deploy.bundled import (
    BUNDLED_DIR,
    CARD_MARKDOWN,
    DEFAULT_FORMAT,
    IMAGE_SIZE,
    bundled_files,
    bundled_name,
    card_file_name,
    model_stem,
)
from fer_utils.deploy.export import write_model_spec
from fer_utils.experiments.bundle_data import (
    BUNDLE_DATASETS,
    bundle_cache,
    bundle_dataset,
    default_root,
    require_classes,
    run_dataset,
)
from fer_utils.experiments.bundle_ensemble import choose_ensemble, earlier_ensembles
from fer_utils.experiments.bundle_study import study_config, study_seeds_folder  # noqa: F401 (re-exported)
from fer_utils.experiments.default_rule import apply_default_rule
from fer_utils.experiments.model_card import (
    FER2013_JPEG_STEP,  # noqa: F401 (re-exported)
    dataset_faces,
    fer2013_test_faces,  # noqa: F401 (re-exported)
    fill_card,
    int8_ms_per_face,
    model_card_numbers,
    planned_study_settings,
    score_fer2013_test,  # noqa: F401 (re-exported)
    score_test,
    served_or_none,
    served_root,
    study_settings,
    validation_temperature,
)
from fer_utils.experiments.served_scores import served_lines
from fer_utils.experiments.shipped_files import (  # noqa: F401 (re-exported)
    run_architecture,
    run_bundle_name,
    ship_ensemble,
    ship_run,
    write_fp32_exports,
)
from fer_utils.files import atomic_write_json, replace_directory
from fer_utils.locks import output_lock
from fer_utils.training.architectures import architecture as family
from fer_utils.training.config import TrainConfig
from fer_utils.training.model_files import spec_path
from fer_utils.training.plan import RunPlan
from fer_utils.training.seeds import (
    describe_seeds,
    median_run,
    read_seed_summary,
    train_seeds,
)


def bundled_train_config(
    epochs: int = 30,
    architecture: str = "paper",
    image_size: int | None = None,
    targets: str = "label",
    train_faces_per_class: int | None = None,
):
    """The shipped model's training: robust recipe, the data's own split (PublicTest / FER+ valid selects,
    PrivateTest / FER+ test tests), ``targets`` (FER+: label, majority or the vote distribution); the paper
    CNN at 48 px (FER2013's own), another family at its intended input size
    (:mod:`fer_utils.training.architectures`) unless ``image_size``."""
    size = image_size or (IMAGE_SIZE if architecture == "paper" else family(architecture).input_size)
    return TrainConfig(
        protocol="fixed",
        epochs=epochs,
        recipe="robust",
        input_size=size,
        architecture=architecture,
        targets=targets,
        train_faces_per_class=train_faces_per_class,
    )


def bundle_training_plan(
    images: Path,
    dataset: str = "fer2013",
    epochs: int = 30,
    architecture: str = "paper",
    image_size: int | None = None,
    targets: str = "label",
    train_faces_per_class: int | None = None,
) -> RunPlan:
    """The plan of the bundle's seed runs: the bundle ``dataset`` at ``images`` → its face cache (built or
    resumed) and :func:`bundled_train_config`."""

    cache = bundle_cache(dataset, images)
    print(f"face cache: {cache.cache_dir} ({len(cache)} faces)")
    config = bundled_train_config(epochs, architecture, image_size, targets, train_faces_per_class)
    return RunPlan.resolve(config, cache)


def require_extendable_card(out_dir: Path, plan: RunPlan, dataset: str, ensemble: int) -> None:
    """ValueError (one line, :func:`~fer_utils.experiments.bundle_ensemble.earlier_ensembles`) unless the
    card shipped in ``out_dir`` for this plan's ensemble candidate was trained with the plan's settings:
    checked before the seeds train, not after."""
    name = bundled_name(plan.architecture.name, dataset, plan.input_size, ensemble)
    earlier_ensembles(out_dir / card_file_name(name), planned_study_settings(plan), dataset, ensemble)


def build_bundled_model(
    images: str | os.PathLike | None,
    work: str | os.PathLike,
    seeds: list[int],
    epochs: int = 30,
    workers: int | None = None,
    out_dir: str | os.PathLike | None = None,
    card_markdown: str | os.PathLike | None = CARD_MARKDOWN,
    architecture: str = "paper",
    image_size: int | None = None,
    from_study: str | os.PathLike | None = None,
    dataset: str | None = None,
    targets: str = "label",
    train_faces_per_class: int | None = None,
    ensemble: int = 1,
    extend_card: bool = False,
) -> dict:
    """Train (resumable: finished seeds are kept, an interrupted seed resumes after its last finished
    epoch) on the bundle ``dataset`` read at ``images`` (default ``fer2013``), or take the seeds of
    ``architecture`` from the ``fer study-models`` folder ``from_study`` (:func:`study_seeds_folder`; its
    dataset is the runs' own), pick the median seed, ship its files, choose the default among the
    candidates shipped in ``out_dir`` (:func:`~fer_utils.experiments.default_rule.apply_default_rule`) and
    write the model card's numbers. ``images`` is where the data and the test faces are read: the JPEG
    folders for ``fer2013``, the FER+ layout otherwise (None: ``../shared/data``'s copy of the dataset).
    ``ensemble`` above 1 ships the median of the seeds' disjoint ensembles of that size instead
    (:mod:`fer_utils.experiments.bundle_ensemble`); ``extend_card`` keeps the ensembles the candidate's
    shipped card records from an earlier bundle of the same settings in its distribution."""

    work = Path(work)
    out_dir = Path(out_dir or BUNDLED_DIR)
    if ensemble < 1:
        raise ValueError(f"--ensemble {ensemble}: give 1 (the median seed) or a group of 2 or more seeds")
    if ensemble > 1 and not from_study and len(seeds) < ensemble:
        raise ValueError(f"--ensemble {ensemble} needs at least {ensemble} seeds; --seeds gives {len(seeds)}")
    if extend_card and ensemble == 1:
        raise ValueError("--extend-card adds earlier ensembles to the card: give --ensemble K (K ≥ 2)")
    if from_study:
        seeds_dir = study_seeds_folder(from_study, architecture, dataset)
        summary = read_seed_summary(seeds_dir)
        images = Path(images or default_root(run_dataset(median_run(seeds_dir)) or "fer2013"))
    else:
        dataset = dataset or "fer2013"
        images = Path(images or default_root(dataset))
        if targets not in bundle_dataset(dataset).targets:
            raise ValueError(f"--targets {targets} needs vote counts: use --dataset ferplus or fer2013raw")
        plan = bundle_training_plan(
            images, dataset, epochs, architecture, image_size, targets, train_faces_per_class
        )
        if extend_card:
            require_extendable_card(out_dir, plan, dataset, ensemble)
        seeds_dir = work / "seeds"
        summary = train_seeds(plan.cache_dir, seeds_dir, plan.config, seeds, workers)
    print(describe_seeds(summary))
    if summary["failed"]:
        raise ValueError(f"{summary['failed']} seed run(s) failed; see {seeds_dir / 'seeds.json'}")
    run = median_run(seeds_dir)
    dataset = run_dataset(run) or "fer2013"
    require_classes(run, dataset)
    with staged_folder(out_dir) as staging:
        name, card = write_candidate(
            staging, seeds_dir, summary, run, ensemble, work / "ensembles", images, extend_card
        )
        atomic_write_json(staging / card_file_name(name), card, default=str)
        choice = apply_default_rule(staging, served_root(dataset, images))
    card["default"] = choice.get("model")
    if card_markdown:
        fill_card(Path(card_markdown), out_dir)
    return card


def write_candidate(
    staging: Path,
    seeds_dir: Path,
    summary: dict,
    run,
    ensemble: int,
    ensembles_dir: Path,
    images: Path,
    extend_card: bool = False,
) -> tuple[str, dict]:
    """Write the candidate's files into ``staging``: the median seed ``run`` or, with ``ensemble`` above 1,
    the median of the seeds' ensembles (written into ``ensembles_dir``; ``extend_card``: the ensembles on
    the card already in ``staging`` stay in the distribution). Returns its stem and card."""
    dataset = run_dataset(run) or "fer2013"
    if ensemble == 1:
        name = run_bundle_name(run)
        print(f"shipping {run.path} (seed {run.setup.seed}, the median) as {name}")
        return name, model_card_numbers(summary, run, ship_run(run, staging), images)
    name = bundled_name(run_architecture(run), dataset, run.setup.image_size, ensemble)
    card_path = staging / card_file_name(name)
    earlier = earlier_ensembles(card_path, study_settings(run), dataset, ensemble) if extend_card else None
    chosen = choose_ensemble(seeds_dir, ensemble, ensembles_dir, name, images, dataset, earlier)
    seeds = ", ".join(map(str, chosen.card()["shipped_seeds"]))
    print(f"shipping the ensemble of seeds {seeds} (the median of {len(chosen.rows)}) as {name}")
    shipped = ship_ensemble(chosen.shipped_path, chosen.shipped_runs, staging, name, chosen.calibration)
    return name, model_card_numbers(summary, chosen.shipped_runs[0], shipped, images, chosen.card())


def require_fer2013_classes(run) -> None:
    """ValueError (one line) unless ``run`` predicts FER2013's seven classes (:func:`require_classes`)."""
    require_classes(run, "fer2013")


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


def shipped_paths(model: str = "paper", models_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """The shipped files of the candidate ``model`` (an architecture name or a stem) that exist in
    ``models_dir`` (default the package's), by format."""
    models_dir = Path(models_dir or BUNDLED_DIR)
    files = bundled_files(model)
    return {fmt: models_dir / name for fmt, name in files.items() if (models_dir / name).exists()}


def shipped_dataset(model: str, models_dir: str | os.PathLike | None = None) -> str:
    """The bundle dataset the shipped candidate ``model`` was trained on (its card's; ``fer2013`` for a card
    from before candidates)."""
    path = Path(models_dir or BUNDLED_DIR) / card_file_name(model)
    try:
        return json.loads(path.read_text()).get("dataset") or "fer2013"
    except (OSError, ValueError):
        return "fer2013"


def recalibrate_shipped(
    images: str | os.PathLike,
    architecture: str = "paper",
    models_dir: str | os.PathLike | None = None,
    card_markdown: str | os.PathLike | None = None,
) -> dict:
    """Calibrate a shipped model (``architecture``: an architecture name or a candidate's stem) without
    retraining it: fit its temperature on its data's validation faces (PublicTest / FER+ valid, the faces
    that already chose its epoch; the test faces stay unseen) from the Keras file's softmax, keep it only
    where it lowers their calibration error, store it in every shipped file's spec (``fer predict`` then
    reports scaled probabilities) and re-measure the card from them. Returns the updated card."""
    paths = shipped_paths(architecture, models_dir)
    if "keras" not in paths:
        keras_name = bundled_files(architecture)["keras"]
        raise ValueError(f"{Path(models_dir or BUNDLED_DIR) / keras_name} is missing; nothing to calibrate")
    calibration = validation_temperature(paths["keras"], shipped_dataset(architecture, models_dir), images)
    return rescore_shipped(images, architecture, models_dir, card_markdown, calibration)


def rescore_shipped(
    images: str | os.PathLike,
    architecture: str = "paper",
    models_dir: str | os.PathLike | None = None,
    card_markdown: str | os.PathLike | None = None,
    calibration: dict | None = None,
) -> dict:
    """Re-measure the card's numbers from the shipped files of ``architecture`` (an architecture name or a
    candidate's stem): test scores of every file, the served raw-face scores and int8 ms/face of the
    default one; with ``calibration``, first store it in every file's spec and the card; then re-apply the
    default rule over the shipped candidates. Every spec and the card are replaced together, or none is."""
    models_dir = Path(models_dir or BUNDLED_DIR)
    paths = shipped_paths(architecture, models_dir)
    card_name = card_file_name(architecture)
    if not (models_dir / card_name).exists() or DEFAULT_FORMAT not in paths:
        raise ValueError(
            f"{models_dir} holds no shipped {architecture} model with its card; nothing to rescore"
        )
    card = json.loads((models_dir / card_name).read_text())
    dataset = card.get("dataset") or "fer2013"
    root = served_root(dataset, images)
    with staged_folder(models_dir) as staging:
        staged = {fmt: staging / path.name for fmt, path in paths.items()}
        if calibration is not None:
            for path in staged.values():
                write_model_spec(path, json.loads(spec_path(path).read_text()) | {"calibration": calibration})
            card["training"]["calibration"] = calibration
        card["test"] = {fmt: score_test(path, images, dataset) for fmt, path in staged.items()}
        card["served"] = (
            served_or_none(staged[DEFAULT_FORMAT])
            if root is None
            else served_or_none(staged[DEFAULT_FORMAT], root)
        )
        spec = bundle_dataset(dataset)
        card |= {"name": model_stem(architecture), "dataset": dataset, "dataset_title": spec.title}
        card |= {"test_set": spec.test_name, "labels": card["test"][DEFAULT_FORMAT]["labels"]}
        card["int8_ms_per_face"] = int8_ms_per_face(staged[DEFAULT_FORMAT], dataset_faces(dataset, images)[0])
        atomic_write_json(staging / card_name, card, default=str)
        card["default"] = apply_default_rule(staging, root).get("model")
    if card_markdown:
        fill_card(Path(card_markdown), models_dir)
    return card


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        choices=list(BUNDLE_DATASETS),
        help="what to train on: fer2013 (the equalized JPEG export, 7 classes; the default when training), "
        "ferplus (FER2013's raw pixels with FER+ majority labels or votes, 8 classes with contempt) or "
        "fer2013raw (raw pixels, original labels); with --from-study: the runs' own (checked when given)",
    )
    parser.add_argument(
        "--images",
        help="the data: FER2013 as <split>/<class>/*.jpg for fer2013 (default: the shared data folder's "
        "fer2013), the FER+ layout (FER2013Train/Valid/Test) for ferplus and fer2013raw (default: its "
        "fer2013plus); test faces are read from it",
    )
    parser.add_argument(
        "--targets",
        default="label",
        choices=("label", "majority", "distribution"),
        help="training targets (majority, distribution: the FER+ votes; default: label)",
    )
    parser.add_argument(
        "--work",
        help="where the seed runs go (resumable; default: runs/bundled-model, with --architecture X "
        "runs/bundled-model-X, with --dataset D runs/bundled-model-D-X)",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run per seed (default: 0 1 2)"
    )
    parser.add_argument("--epochs", type=int, default=30, help="epochs per run (default: 30)")
    parser.add_argument(
        "--train-faces-per-class",
        type=int,
        help="at most this many training faces per class (a quick, smaller run; default: all)",
    )
    parser.add_argument(
        "--architecture",
        default="paper",
        help="the family to train and ship (fer_utils/training/architectures.py; default: paper, shipped "
        "as fer2013_robust_48; another as fer2013_<architecture>, on another dataset as "
        "<dataset>_<architecture>_<size>, e.g. ferplus_vgg_bn_48)",
    )
    parser.add_argument(
        "--model",
        help="with --rescore / --recalibrate: the shipped candidate by its name (e.g. ferplus_vgg_bn_48; "
        "default: --architecture's FER2013 model)",
    )
    parser.add_argument(
        "--image-size", type=int, help="face size (default: 48 for paper, else the family's input size)"
    )
    parser.add_argument("--workers", type=int, help="runs at once (default: one per core)")
    add_shipping_arguments(parser)


def add_shipping_arguments(parser: argparse.ArgumentParser) -> None:
    """``fer bundle-model``'s options on what ships and where: re-scoring, recalibrating, a study's seeds,
    an ensemble, the output folder and card."""
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="no training: fit the shipped model's temperature on its validation faces, store it in its "
        "files and re-measure the card from them",
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="no training: re-measure the card's numbers from the shipped model's files (test split per "
        "file, served raw-face scores and int8 ms/face of the default file) and re-apply the default rule",
    )
    parser.add_argument(
        "--from-study",
        metavar="STUDY",
        help="ship the median seed of --architecture from this `fer study-models` folder (FER2013 or FER+, "
        "--protocol fixed) instead of training",
    )
    parser.add_argument(
        "--ensemble",
        type=int,
        default=1,
        metavar="K",
        help="ship an ensemble of K seeds (one file: the softmax of their mean logits) instead of one run: "
        "the seeds, in order, make disjoint groups of K (0–2, 3–5, …), each group's ensemble is scored on "
        "the test split for the card's distribution and the median one ships (default: 1, the median seed)",
    )
    parser.add_argument(
        "--extend-card",
        action="store_true",
        help="with --ensemble: keep the ensembles the candidate's shipped card records (an earlier bundle of "
        "other seeds with the same training settings, e.g. trained in another session) in its "
        "distribution; refused when the settings differ; the median of the groups trained here ships",
    )
    parser.add_argument("--out", help=f"folder the shipped files go into (default: {BUNDLED_DIR})")
    parser.add_argument(
        "--card",
        help=f"model card whose numbers block is rewritten ('' to skip; default: {CARD_MARKDOWN} when "
        "shipping into the package's folder, none with --out)",
    )
    parser.set_defaults(func=_bundle_cli)


def _bundle_cli(args) -> int:
    family(args.architecture)  # an unknown name: one line, before any work
    model = args.model or args.architecture
    dataset = args.dataset or (shipped_dataset(model, args.out) if args.rescore or args.recalibrate else None)
    images = args.images or str(default_root(dataset or "fer2013"))  # --from-study: the study's data
    default_work = "runs/bundled-model" + ("" if args.architecture == "paper" else f"-{args.architecture}")
    if dataset and dataset != "fer2013":
        default_work = f"runs/bundled-model-{dataset}-{args.architecture}"
    work = args.work or default_work
    card_markdown = args.card if args.card is not None else ("" if args.out else str(CARD_MARKDOWN))
    if args.rescore:
        card = rescore_shipped(images, model, args.out, card_markdown)
        print("\n".join(served_lines(card.get("served"))[3:]) or "test scores re-measured")
        print(f"default model: {card.get('default')}")
        return 0
    if args.recalibrate:
        card = recalibrate_shipped(images, model, args.out, card_markdown)
        calibration = card["test"][DEFAULT_FORMAT]["calibration"]
        print(
            f"temperature {calibration['temperature']:.3f} (validation faces); test ECE "
            f"{calibration['ece_before']:.3f} → {calibration['ece_after']:.3f} "
            f"({bundled_files(model)[DEFAULT_FORMAT]})"
        )
        return 0
    card = build_bundled_model(
        args.images if args.from_study else images,
        work,
        args.seeds,
        args.epochs,
        args.workers,
        args.out,
        card_markdown,
        args.architecture,
        args.image_size,
        args.from_study,
        dataset,
        args.targets,
        args.train_faces_per_class,
        args.ensemble,
        args.extend_card,
    )
    scores = card["test"][DEFAULT_FORMAT]
    shipped = (
        f"seeds {', '.join(map(str, card['shipped_seeds']))}"
        if card.get("shipped_seeds")
        else f"seed {card['shipped_seed']}"
    )
    print(
        f"shipped {card['shipped_run']} ({shipped}) as {card.get('name')}: "
        f"{card.get('test_set', 'PrivateTest')} accuracy {100 * scores['accuracy']:.1f} %, "
        f"macro F1 {scores['macro_f1']:.3f}; default model: {card.get('default')}"
    )
    return 0
