"""The ``fer`` console command.

:data:`COMMANDS` names each subcommand's module and one-line help. A module contributes its flags
through ``add_arguments(parser)`` (which also sets ``func``), so the CLI drives exactly the functions
the notebooks call. Only the module of the command being run is imported: ``fer --help`` loads none
of them (no NumPy, pandas or TensorFlow), ``fer train …`` loads the training module only.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
import warnings

#: Subcommand → (module with ``add_arguments``, one-line help), in the order of ``fer --help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "fer_utils.experiments.notebook_pipeline",
        "the main job: notebooks 01→04 on the demo dataset (default, offline) or a real dataset",
    ),
    "demo-data": (
        "fer_utils.demo.dataset",
        "write the synthetic RAVDESS-layout demo set (offline, seconds)",
    ),
    "preprocess": ("fer_utils.faces.preprocess", "media → face cache (datasets, frame sampling, dlib faces)"),
    "cache": (
        "fer_utils.faces.cache",
        "check a face cache: `fer cache verify CACHE` (sizes, checksums, index)",
    ),
    "train": (
        "fer_utils.training.cli",
        "train and evaluate a network (the paper CNN by default), writing a run directory; resumable",
    ),
    "ensemble-model": (
        "fer_utils.training.ensemble",
        "several trained models (runs or .keras files) as one model file: the softmax of their mean logits",
    ),
    "ablate": (
        "fer_utils.experiments.ablation",
        "the paper's dropout / L1 study: a grid of papermill-executed training runs, with table and figures",
    ),
    "study-recipes": (
        "fer_utils.experiments.recipe_study",
        "does each ingredient of the robust recipe earn its place? configurations × seeds, with a table",
    ),
    "study-models": (
        "fer_utils.experiments.model_study",
        "the light-model frontier: architectures × seeds, accuracy vs parameters and int8 ms/face",
    ),
    "report": (
        "fer_utils.viz.html_report",
        "execute the results notebook (papermill) and write a static HTML report",
    ),
    "dashboard": ("fer_utils.viz.dashboard", "serve the results dashboard (Voila) for a runs folder"),
    "bench": ("fer_utils.bench.run", "measure inference, preprocessing and training speed here"),
    "export": ("fer_utils.deploy.export", "export a run's model: TFLite (float / int8) or ONNX"),
    "predict": (
        "fer_utils.deploy.predict",
        "every face's emotion in videos, images or folders (bundled model unless --model)",
    ),
    "evaluate": (
        "fer_utils.experiments.cross_dataset",
        "score any model on any face cache, with an explicit label mapping",
    ),
    "bundle-model": (
        "fer_utils.experiments.bundle_model",
        "train (FER2013 or FER+, robust recipe, seeds) and ship a bundled candidate and its model card numbers",
    ),
}


def build_parser(commands: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``fer`` parser; ``commands`` limits which subcommands get their flags (default: all), the
    others are listed with their help only, so nothing else is imported."""
    parser = argparse.ArgumentParser(
        prog="fer", description="Facial emotion recognition from video: the notebook suite's command line."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        if commands is None or name in commands:
            importlib.import_module(module_name).add_arguments(subparser)
    return parser


def _command_in(argv: list[str]) -> str | None:
    for token in argv:
        if not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def _did_you_mean(name: str, known) -> str:
    """`` (did you mean '--learning-rate'?)`` for the closest of ``known``, or nothing."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def misspelled(parser: argparse.ArgumentParser, argv: list[str], command: str | None) -> str | None:
    """The one-line error for the first unknown subcommand or ``--flag`` of ``command`` in ``argv``, with
    the closest known name (argparse alone names neither the subcommand nor a suggestion); None when all
    are known. A flag abbreviated to a prefix of exactly one known flag is known, as argparse reads it."""
    words = [token for token in argv if not token.startswith("-")]
    if command is None:
        if words:
            return f"fer: error: unknown command {words[0]!r}{_did_you_mean(words[0], COMMANDS)}"
        return None
    subparser = next(
        action.choices[command]
        for action in parser._actions  # noqa: SLF001 (argparse keeps its subparsers only there)
        if isinstance(action, argparse._SubParsersAction)  # noqa: SLF001
    )
    flags = [option for option in subparser._option_string_actions if option.startswith("--")]  # noqa: SLF001
    for token in argv:
        if token == "--":
            break
        name = token.split("=", 1)[0]
        if name.startswith("--") and sum(flag.startswith(name) for flag in flags) != 1 and name not in flags:
            return (
                f"fer {command}: error: unrecognized argument {name}{_did_you_mean(name, flags)}; "
                f"`fer {command} --help` lists them"
            )
    return None


def _show_parsing_warnings(prog: str, notices: list) -> None:
    """The warnings raised while parsing the command line: a former flag name
    (:class:`~fer_utils.settings.RenamedSettingWarning`) as one ``fer <command>: warning: …`` line on
    stderr (the warnings module would show argparse's file and source line), any other issued again as it
    came."""
    if not notices:
        return
    from fer_utils.settings import RenamedSettingWarning  # deferred: `fer --help` imports fer_utils.cli alone

    for notice in notices:
        if issubclass(notice.category, RenamedSettingWarning):
            print(f"{prog}: warning: {notice.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(
                notice.message, notice.category, notice.filename, notice.lineno, source=notice.source
            )


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ info and warning lines are noise on a terminal; worker processes inherit this.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(argv)
    parser = build_parser([command] if command else [])
    problem = misspelled(parser, argv, command)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    notices: list = []
    try:
        with warnings.catch_warnings(record=True) as notices:
            warnings.simplefilter("always")
            args = parser.parse_args(argv)
    finally:  # also when parsing ends in --help or a usage error
        _show_parsing_warnings(f"fer {command}" if command else "fer", notices)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except ValueError as error:
        print(f"fer {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a file where a folder belongs, …: one line, no traceback
        from fer_utils.files import describe_os_error  # deferred: `fer --help` imports fer_utils.cli alone

        print(f"fer {args.command}: error: {describe_os_error(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"fer {args.command}: interrupted (finished work is kept; run it again to resume)",
            file=sys.stderr,
        )
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
