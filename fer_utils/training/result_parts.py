"""The small typed records nested in a run's ``config.json`` and ``metrics.json`` (:mod:`fer_utils.training.results`).

Each is a :class:`Part`: declared fields, and ``extra`` for keys it does not declare (written back
unchanged). A part read from a file remembers which declared keys the file lacked, so it is written back
without them: a file round-trips losslessly. Builders may pass a part or its JSON dict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


class RecordProblem(ValueError):
    """A run file that cannot be read as its record; the message says why (``lacks 'frame'``)."""


@dataclass
class Part:
    """Base of the nested records: ``from_json`` / ``to_json`` with unknown keys kept in ``extra``."""

    #: Keys the part does not declare, written back unchanged.
    extra: dict = field(default_factory=dict, kw_only=True)
    #: Declared keys the source file lacked (left out of ``to_json`` while unset).
    absent: frozenset = field(default=frozenset(), repr=False, compare=False, kw_only=True)

    @classmethod
    def from_json(cls, data: Any, name: str | None = None):
        """The part of a parsed JSON object (None stays None; a part is returned as it is)."""
        if data is None or isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise RecordProblem(f"is malformed: {name or cls.__name__!r} is not an object")
        names = [f.name for f in dataclasses.fields(cls) if f.name not in ("extra", "absent")]
        record = cls(
            **{key: data[key] for key in names if key in data},
            extra={key: value for key, value in data.items() if key not in names},
        )
        record.absent = frozenset(key for key in names if key not in data)
        return record

    @classmethod
    def unset(cls):
        """A part with no field set, written as ``{}`` (the default of a record built without it)."""
        return cls.from_json({})

    def to_json(self) -> dict:
        """The JSON object: declared fields (those the source file lacked left out while unset), then ``extra``."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("extra", "absent") or (f.name in self.absent and value is None):
                continue
            out[f.name] = value
        return out | self.extra


@dataclass
class SplitSizes(Part):
    """``split``: faces per part (train as used, after a class cap), the fold and the test part's hash."""

    train: int | None = None
    validation: int | None = None
    test: int | None = None
    fold: int | None = None
    n_folds: int | None = None
    test_hash: str | None = None


@dataclass
class Cost(Part):
    """``cost``: parameters and multiply-adds per face (:func:`~fer_utils.training.architectures.model_cost`)."""

    parameters: int | None = None
    multiply_adds: int | None = None


@dataclass
class Baselines(Part):
    """``baselines``: what always answering the test part's majority class scores."""

    majority_label: str | None = None
    majority_rate: float | None = None
    majority_macro_f1: float | None = None


@dataclass
class Calibration(Part):
    """``calibration``: temperature scaling fitted on the validation part (kept only where it lowers that
    part's ECE) and the test part's ECE / NLL and reliability bins before and after
    (:func:`~fer_utils.training.calibration.calibrate`)."""

    method: str | None = None
    temperature: float | None = None
    fitted_temperature: float | None = None
    kept: bool | None = None
    fit_ece_before: float | None = None
    fit_ece_after: float | None = None
    decision: str | None = None
    bins: int | None = None
    test_ece_before: float | None = None
    test_ece_after: float | None = None
    test_nll_before: float | None = None
    test_nll_after: float | None = None
    reliability_before: list | dict | None = None
    reliability_after: list | dict | None = None


@dataclass
class Transfer(Part):
    """``transfer`` (``--init-from``): the source, its labels, the layers and head rows copied."""

    source: str | None = None
    source_labels: list | None = None
    copied: list | None = None
    head_classes_copied: list | None = None
    head_classes_new: list | None = None
    #: ``{source, run}`` pixel ranges when the source scaled pixels otherwise.
    input_range_differs: dict | None = None


@dataclass
class Teacher(Part):
    """``teacher`` (``--teacher``): the distillation teacher's model file."""

    model: str | None = None


@dataclass
class Numerics(Part):
    """``numerics``: what decides a run's numbers besides its config
    (:func:`~fer_utils.training.runtime.numerics_record`)."""

    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    op_determinism: bool | None = None
    onednn: bool | None = None
    tf_data_deterministic: bool | None = None
    tensorflow: str | None = None


#: Field name → part type, for the records' fields that hold a part.
PART_TYPES = {
    "split": SplitSizes,
    "cost": Cost,
    "baselines": Baselines,
    "calibration": Calibration,
    "transfer": Transfer,
    "teacher": Teacher,
    "numerics": Numerics,
}


def parts_from_json(record) -> None:
    """Turn a record's part fields given as JSON dicts (by a builder or a file) into their parts, in place."""
    for name, kind in PART_TYPES.items():
        if hasattr(record, name):
            setattr(record, name, kind.from_json(getattr(record, name), name))
