"""Settings declared once: a config dataclass's fields → command-line flags → the config again.

A field's type, default and ``metadata`` say everything its flag needs::

    @dataclass
    class TrainConfig:
        epochs: int = setting(30, help="passes over the training part")
        protocol: str = setting("paper", help="which faces are held out", choices=PROTOCOLS)

:func:`add_arguments` gives ``--epochs`` (``type=int``, default 30, the help with its default) and
``--protocol`` (its choices); :func:`config_from_args` builds the dataclass back from the parsed
namespace. So a new field is a new flag on every command built from its dataclass, with no CLI code.

Metadata keys (all optional): ``help``; ``choices``; ``flag`` (another flag name than ``--field-name``);
``aliases`` (further, hidden-from-nobody flag names); ``renamed_from`` (former field names: their flags
and notebook / mapping keys are still accepted, with a ``FutureWarning``, for one release); ``metavar``;
``cli: False`` (no flag, e.g. a dict of free-form tags). Type → argparse: ``int | float | str`` as
such; ``X | None`` takes ``none`` for None; ``bool`` gives ``--flag / --no-flag``;
``tuple[T, T, T]`` three values; ``tuple[T, ...]`` / ``list[T]`` one or more values. Fields of other
types (dicts) get no flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
import warnings
from collections.abc import Iterable, Mapping

NONE_WORDS = ("none", "None")


def setting(default=dataclasses.MISSING, *, help: str, default_factory=dataclasses.MISSING, **metadata):  # noqa: A002
    """A dataclass ``field`` carrying its command-line help (and ``choices``, ``flag``, ``aliases`` …)."""
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={"help": help, **metadata}
    )


class RenamedSettingWarning(FutureWarning):
    """A former setting name was used; it still works for one release (:func:`warn_renamed`). The ``fer``
    command shows it as one ``fer <command>: warning: …`` line, not as a warning located in argparse."""


def warn_renamed(old: str, new: str) -> None:
    """The one-line notice of a former setting name (accepted for one release)."""
    warnings.warn(
        f"{old!r} is renamed {new!r}: the old name still works in this release only",
        RenamedSettingWarning,
        stacklevel=3,
    )


def renamed_from(field: dataclasses.Field) -> tuple[str, ...]:
    """A field's former names (its ``renamed_from`` metadata)."""
    return tuple(field.metadata.get("renamed_from", ()))


def renamed_action(base: type[argparse.Action], old_flag: str, new_flag: str) -> type[argparse.Action]:
    """An argparse action class for a former flag: ``base``'s, after a :func:`warn_renamed` notice."""

    class RenamedFlag(base):
        def __call__(self, parser, namespace, values, option_string=None):
            warn_renamed(old_flag, new_flag)
            super().__call__(parser, namespace, values, option_string)

    return RenamedFlag


def _optional(kind):
    """An argparse ``type`` that also accepts ``none`` for None."""

    def parse(text: str):
        return None if text in NONE_WORDS else kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its errors
    return parse


def _unwrap_optional(hint):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [member for member in typing.get_args(hint) if member is not type(None)]
        if len(members) == 1:
            return members[0], True
    return hint, False


def argument_options(hint) -> dict | None:
    """argparse keyword arguments for a field of type ``hint``; None when it cannot be a flag."""
    hint, optional = _unwrap_optional(hint)
    origin = typing.get_origin(hint)
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin in (tuple, list):
        items = typing.get_args(hint)
        kind = items[0] if items else str
        if kind not in (int, float, str):
            return None
        if origin is tuple and items and items[-1] is not Ellipsis:
            return {"type": kind, "nargs": len(items)}
        return {"type": kind, "nargs": "+"}
    if hint in (int, float, str):
        return {"type": _optional(hint) if optional else hint}
    return None


def flag_name(field: dataclasses.Field) -> str:
    """``--learning-rate`` for ``learning_rate`` (or the field's ``flag`` metadata)."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def field_default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _show(value) -> str:
    if isinstance(value, tuple | list):
        return " ".join(_show(item) for item in value)
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def cli_fields(cls, exclude: Iterable[str] = ()) -> list[dataclasses.Field]:
    """The fields of dataclass ``cls`` that get a flag (``exclude``: names left to the caller)."""
    hints = typing.get_type_hints(cls)
    excluded = set(exclude)
    return [
        field
        for field in dataclasses.fields(cls)
        if field.name not in excluded
        and field.metadata.get("cli", True)
        and argument_options(hints[field.name]) is not None
    ]


def add_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls,
    exclude: Iterable[str] = (),
    defaults: Mapping | None = None,
    overrides_only: bool = False,
) -> list[str]:
    """Add one flag per field of dataclass ``cls`` to ``parser`` (or an argument group).

    Args:
        parser: where the flags go.
        cls: the config dataclass (the single source of names, types, defaults, help and choices).
        exclude: fields this command sets itself.
        defaults: other defaults than the dataclass's (e.g. a command's smaller demo settings).
        overrides_only: flags that are not given stay out of the namespace (``argparse.SUPPRESS``),
            for commands whose defaults depend on other flags; the help then shows the dataclass default.

    Returns:
        The names (``dest``) of the fields that got a flag.
    """
    hints = typing.get_type_hints(cls)
    defaults = dict(defaults or {})
    names = []
    for field in cli_fields(cls, exclude):
        default = defaults.get(field.name, field_default(field))
        options = argument_options(hints[field.name])
        help_text = field.metadata.get("help", "").replace("%", "%%")
        if options.get("action") is not argparse.BooleanOptionalAction and "default" not in help_text:
            help_text += f" (default: {_show(default)})"
        options.update(dest=field.name, help=help_text)
        options["default"] = argparse.SUPPRESS if overrides_only else default
        if field.metadata.get("choices") is not None:
            options["choices"] = tuple(field.metadata["choices"])
        if field.metadata.get("metavar") is not None:
            options["metavar"] = field.metadata["metavar"]
        parser.add_argument(flag_name(field), *field.metadata.get("aliases", ()), **options)
        for old in renamed_from(field):
            old_flag = "--" + old.replace("_", "-")
            base = options.get("action", argparse._StoreAction)
            renamed = {
                **options,
                "help": argparse.SUPPRESS,
                "action": renamed_action(base, old_flag, flag_name(field)),
            }
            parser.add_argument(old_flag, **renamed)
        names.append(field.name)
    return names


def values_from(cls, source) -> dict:
    """The values of ``cls``'s fields present in ``source`` (an argparse namespace or a mapping such
    as a notebook's ``globals()``), with sequences made tuples for tuple fields. A former name
    (``renamed_from``) is taken with a :func:`warn_renamed` notice, over the new one (in a notebook the
    parameters cell sets the new name; the old one is there only when passed)."""
    get = source.get if isinstance(source, Mapping) else lambda name, default: getattr(source, name, default)
    hints = typing.get_type_hints(cls)
    missing = object()
    values = {}
    for field in dataclasses.fields(cls):
        value = get(field.name, missing)
        for old in renamed_from(field):
            old_value = get(old, missing)
            if old_value is not missing:
                warn_renamed(old, field.name)
                value = old_value
        if value is missing:
            continue
        if typing.get_origin(_unwrap_optional(hints[field.name])[0]) is tuple and value is not None:
            value = tuple(value)
        values[field.name] = value
    return values


def config_from_args(cls, source, **overrides):
    """Build dataclass ``cls`` from parsed arguments (or a mapping); ``overrides`` win."""
    return cls(**{**values_from(cls, source), **overrides})


def field_names(cls) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(cls))


def accepted_names(cls) -> tuple[str, ...]:
    """The field names and their former names (``renamed_from``): what a notebook may be passed."""
    return (*field_names(cls), *(old for field in dataclasses.fields(cls) for old in renamed_from(field)))
