"""The ``fer`` console command. Each stage module registers its own subcommands through
``add_cli(subparsers)``, so the CLI drives exactly the functions the notebooks call."""

from __future__ import annotations

import argparse
import importlib
import sys

#: Modules that contribute subcommands, in the order they appear in ``fer --help``.
COMMAND_MODULES = (
    "fer_utils.experiments.notebook_pipeline",  # run
    "fer_utils.data.synthetic",  # demo-data
    "fer_utils.faces.preprocess",  # preprocess
    "fer_utils.training.train",  # train
    "fer_utils.experiments.ablation",  # ablate
    "fer_utils.viz.report",  # report
    "fer_utils.viz.dashboard",  # dashboard
    "fer_utils.bench.run",  # bench
    "fer_utils.deploy.export",  # export
    "fer_utils.deploy.predict",  # predict
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fer", description="Facial emotion recognition from video: the notebook suite's command line."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue
            raise
        module.add_cli(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except ValueError as error:
        print(f"fer {args.command}: error: {error}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
