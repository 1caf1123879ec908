"""``fer train``: the data source (``--cache`` or ``--images``), the output, seeds, and every
:class:`~fer_utils.training.config.TrainConfig` field as a flag."""

from __future__ import annotations

import argparse
from dataclasses import replace

from fer_utils.faces.preprocess import default_cache_root, image_folder_cache
from fer_utils.settings import add_arguments as add_config_arguments
from fer_utils.settings import config_from_args, renamed_action
from fer_utils.training.config import TrainConfig
from fer_utils.training.seeds import describe_seeds, train_seeds
from fer_utils.training.train import refuse_source_as_output, train_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fer train``: the data source and output here; every :class:`TrainConfig` field as a flag."""
    source = parser.add_argument_group("data (one of --cache / --images)").add_mutually_exclusive_group(
        required=True
    )
    source.add_argument("--cache", help="face cache folder made by `fer preprocess`")
    source.add_argument("--images", help="class-folder image dataset (turned into a face cache first)")
    images = parser.add_argument_group("with --images")
    images.add_argument("--split-dirs", action="store_true", help="--images has <split>/<class>/ folders")
    images.add_argument("--filename-pattern", help="regex with groups subject/video, or 'ck+'")
    images.add_argument("--max-per-class", type=int, help="at most this many images per split × class")
    images.add_argument(
        "--cache-root", help="where --images puts its face cache (default: $FER_CACHE_ROOT or ./cache)"
    )
    images.add_argument(
        "--face-size", type=int, help="face size of the --images cache (default: --input-size, else 180)"
    )
    images.add_argument(  # the former name, for one release
        "--cache-image-size",
        dest="face_size",
        type=int,
        help=argparse.SUPPRESS,
        action=renamed_action(argparse._StoreAction, "--cache-image-size", "--face-size"),
    )
    output = parser.add_argument_group("output")
    output.add_argument("--out", "--run-dir", dest="out", required=True, help="the run folder to write")
    output.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    seeds = parser.add_argument_group("seeds")
    seeds.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="SEED",
        help="one run per seed in --out/seed-<k>, in parallel, plus seeds.csv / seeds.json "
        "(mean ± sd, min, max, how many converged); --seed is then ignored",
    )
    seeds.add_argument(
        "--workers", type=int, help="with --seeds: runs at once (default: one per core, 1 thread each)"
    )
    # One `fer train` run uses every core unless --threads says otherwise (the count is recorded);
    # with --seeds each run gets one thread (_cli_train). TrainConfig's own default (1) is what
    # notebooks and the ablation use.
    add_config_arguments(
        parser.add_argument_group("training (TrainConfig)"), TrainConfig, defaults={"threads": None}
    )
    parser.set_defaults(func=_cli_train)


def _cli_train(args) -> int:
    refuse_source_as_output(args.out, config_from_args(TrainConfig, args))  # before any work
    cache_dir = args.cache
    if args.images:
        cache = image_folder_cache(
            args.images,
            args.cache_root or default_cache_root(),
            face_size=args.face_size or args.input_size,  # None: the paper's
            split_dirs=args.split_dirs,
            filename_pattern=args.filename_pattern,
            max_per_class=args.max_per_class,
            seed=args.seed,
        )
        cache_dir = cache.cache_dir
        print(f"face cache: {cache_dir} ({len(cache)} faces, {len(cache.skipped)} skipped)")
    config = config_from_args(TrainConfig, args)
    if args.seeds:
        if config.threads is None:
            config = replace(config, threads=1)
        summary = train_seeds(cache_dir, args.out, config, args.seeds, args.workers, args.overwrite)
        print(describe_seeds(summary))
        print(f"runs and summary (seeds.csv, seeds.json) in {args.out}")
        return 1 if summary["failed"] else 0
    run = train_run(cache_dir, args.out, config, overwrite=args.overwrite, verbose=1)
    print(run.summary())
    return 0
