"""What a run's ``config.json`` and ``metrics.json`` hold, declared once (see ARCHITECTURE.md, "Run record").

:class:`RunConfig` and :class:`RunMetrics` are the two files of a run directory as typed records (an
evaluation folder, ``fer evaluate``, is the same two records with ``kind: "evaluation"`` and an
:class:`Evaluation`); :class:`Scores` is one level (frame / video) of scores. Writers build the records
(:mod:`fer_utils.training.record` for training, :mod:`fer_utils.experiments.cross_dataset` for evaluations,
test fixtures directly) and ``to_json`` them; readers get them from :func:`fer_utils.training.rundir.load_run`
(``run.setup``, ``run.outcome``) and read attributes, never string keys.

Keys a record does not declare are kept in ``extra`` (written back unchanged), so a file from a newer
minor version loses nothing. Files without ``schema_version`` (written before it existed) or with an older
one are migrated on read (:func:`RunMetrics.from_json`); a newer version is refused with a clear message.
**Adding a result field** = one field here plus the line of the builder that fills it; a new score of a level
is one entry of the metric registry instead (:mod:`fer_utils.training.metrics`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fer_utils.settings import field_names
from fer_utils.training.architectures import DEFAULT_ARCHITECTURE
from fer_utils.training.config import TrainConfig
from fer_utils.training.result_parts import (
    Baselines,
    Calibration,
    Cost,
    Numerics,
    RecordProblem,
    SplitSizes,
    Teacher,
    Transfer,
    parts_from_json,
)

__all__ = [
    "Baselines",
    "Calibration",
    "Cost",
    "Numerics",
    "RecordProblem",
    "SplitSizes",
    "Teacher",
    "Transfer",
]

#: Bumped when a file's meaning changes; stored in config.json and metrics.json.
SCHEMA_VERSION = 2  # 2: config.json holds the requested input_size beside the resolved image_size
#: ``config.json``'s ``kind`` of a folder that scores an existing model (``fer evaluate``).
EVALUATION_KIND = "evaluation"
#: The selection metric of runs recorded before recipes existed (they kept the best validation accuracy).
LEGACY_SELECTION_METRIC = "val_accuracy"


def recipe_name(recipe_label: str | None, recipe: str | None) -> str:
    """How a run's recipe is shown: its label as applied (``robust − augment``), else its name; ``paper`` for
    runs recorded before recipes existed. The one fallback every reader uses."""
    return recipe_label or recipe or "paper"


def _json_kind(value) -> str:
    return {type(None): "null", list: "array", str: "string", bool: "boolean"}.get(type(value), "number")


def _split_known(cls, data: dict) -> tuple[dict, dict]:
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    return {k: v for k, v in data.items() if k in names}, {k: v for k, v in data.items() if k not in names}


#: Fields left out of the file while None (a training run has no ``kind`` and no ``evaluation``).
_OMITTED_WHEN_NONE = (
    "kind",
    "evaluation",
    "restricted",
    "unmapped_answers",
    "architecture",
    "cost",
    "calibration",
    "teacher",
)


def _to_json(record) -> dict:
    """A record as its file's JSON object: declared fields (nested records too), then ``extra``."""
    out = {}
    for f in dataclasses.fields(record):
        if f.name == "extra" or (f.name in _OMITTED_WHEN_NONE and getattr(record, f.name) is None):
            continue
        value = getattr(record, f.name)
        out[f.name] = value.to_json() if hasattr(value, "to_json") else value
    return out | record.extra


@dataclass
class Scores:
    """One level of scores (``frame``, or ``video`` when faces share videos): fractions in [0, 1]. The
    registry's later metrics (:data:`fer_utils.training.metrics.METRICS`: balanced accuracy, neutral rate)
    are read with :meth:`value` and kept in ``extra``, so files from before them still load."""

    accuracy: float
    macro_f1: float
    weighted_f1: float
    per_class: dict  # label → {precision, recall, f1, support}
    confusion_matrix: list  # rows true, columns predicted, in the run's label order
    support: int | None = None
    extra: dict = field(default_factory=dict)

    REQUIRED = ("accuracy", "macro_f1", "weighted_f1", "per_class", "confusion_matrix")

    @classmethod
    def from_json(cls, data, level: str) -> Scores:
        if not isinstance(data, dict):
            raise RecordProblem(f"is malformed: {level!r} is not an object")
        missing = [key for key in cls.REQUIRED if key not in data]
        if missing:
            raise RecordProblem(f"is malformed: {level!r} lacks {', '.join(map(repr, missing))}")
        known, extra = _split_known(cls, data)
        return cls(**known, extra=extra)

    def to_json(self) -> dict:
        return _to_json(self)

    def value(self, name: str) -> float | None:
        """The score of the registered metric ``name`` (:mod:`fer_utils.training.metrics`); None when this
        record has none (a file written before the metric existed, or no neutral class)."""
        if name in self.REQUIRED:
            return getattr(self, name)
        value = self.extra.get(name)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class Evaluation:
    """What an evaluation folder scored: which model (and what it was trained on), on which cache,
    through which label map, and the faces it could not score."""

    model: str | None = None
    format: str | None = None  # keras, tflite, onnx
    trained_on: str | None = None
    protocol: str | None = None  # the protocol the model was trained under, when its run is known
    run: str | None = None  # the model's run folder, when known
    cache_dir: str = ""
    dataset: str = ""
    split: str | None = None
    label_map: dict = field(default_factory=dict)
    unscored_faces: dict = field(default_factory=dict)  # label → faces left out
    unscored_reason: str = ""
    #: Model classes the label map sends to no label of the cache (their answers are "unmapped").
    unmapped_model_classes: list = field(default_factory=list)
    #: ``{from, to}`` (px) when the cache's faces were resized to the model's input (None: same size).
    resized: dict | None = None
    label_renaming: dict = field(default_factory=dict)  # the cache's class folders renamed to labels
    pixel_step: str | None = None  # the model's (``preprocessing.equalize``)
    tta: str | None = None  # test-time augmentation
    description: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, data) -> Evaluation | None:
        if data is None:
            return None
        known, extra = _split_known(cls, data)
        return cls(**known, extra=extra)

    def to_json(self) -> dict:
        return _to_json(self)


@dataclass
class RunMetrics:
    """``metrics.json``: written last, so a run is finished exactly when it exists."""

    labels: list[str]
    protocol: str
    num_params: int
    frame: Scores
    video: Scores | None = None
    by_attribute: dict = field(default_factory=dict)  # index column → value → {accuracy, macro_f1, support}
    status: str = "complete"
    kind: str | None = None  # "evaluation" for fer evaluate's folders
    dataset: str = ""
    recipe: str | None = None
    recipe_label: str | None = None
    split: SplitSizes = field(default_factory=SplitSizes.unset)
    baselines: Baselines | None = None  # of the test part
    majority_rate: float | None = None
    final_train_accuracy: float | None = None
    best_train_accuracy: float | None = None
    #: The validation score that chose the kept epoch (the recipe's); the model and every best_* are that epoch's.
    selection_metric: str | None = None
    best_epoch: int | None = None
    best_val_accuracy: float | None = None
    best_val_macro_f1: float | None = None
    epochs_run: int | None = None
    train_seconds: float | None = None
    diagnostics: dict = field(default_factory=dict)
    validation_classes_predicted: list = field(default_factory=list)
    stalled: bool = False
    stalled_reason: str | None = None
    underfit: bool = False
    underfit_reason: str | None = None
    #: The model family (:mod:`fer_utils.training.architectures`; None: runs before families, the paper CNN).
    architecture: str | None = None
    cost: Cost | None = None
    calibration: Calibration | None = None
    #: The validation score reached 1.0 before the last epoch: the kept epoch is an arbitrary choice.
    selection_saturated: bool = False
    selection_saturated_reason: str | None = None
    converged: bool | None = None
    evaluation: Evaluation | None = None
    #: Evaluations: the scores of the answer restricted to the mapped classes (``frame``, ``video``).
    restricted: dict | None = None
    #: Evaluations: answers that fell on model classes mapped to no label (count, share, per_label).
    unmapped_answers: dict | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict = field(default_factory=dict)

    REQUIRED = ("labels", "frame", "protocol", "num_params")

    def __post_init__(self):
        parts_from_json(self)

    @classmethod
    def from_json(cls, data, history: pd.DataFrame | None = None) -> RunMetrics:
        """The record of a parsed metrics.json; :class:`RecordProblem` says what is missing or malformed.

        Migration: runs recorded before recipes lack the kept epoch's fields; they kept the best
        validation accuracy, so ``selection_metric``, ``best_epoch`` and the ``best_*`` scores are taken
        from that epoch of ``history`` when given.
        """
        if not isinstance(data, dict):
            raise RecordProblem(f"is malformed: the JSON value is {_json_kind(data)}, not an object")
        version = data.get("schema_version", 0)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise RecordProblem(
                f"has schema_version {version!r}; this fer_utils reads up to {SCHEMA_VERSION} (upgrade it)"
            )
        for key in cls.REQUIRED:
            if key not in data:
                raise RecordProblem(f"lacks {key!r}")
        if not isinstance(data["labels"], list) or not isinstance(data["num_params"], int | float):
            raise RecordProblem("is malformed: 'labels' must be a list and 'num_params' a number")
        known, extra = _split_known(cls, data)
        known["frame"] = Scores.from_json(data["frame"], "frame")
        known["video"] = Scores.from_json(data["video"], "video") if data.get("video") else None
        known["evaluation"] = Evaluation.from_json(data.get("evaluation"))
        known["schema_version"] = SCHEMA_VERSION
        record = cls(**known, extra=extra)
        if record.best_epoch is None and history is not None and len(history):
            record.fill_kept_epoch(history, record.selection_metric or LEGACY_SELECTION_METRIC)
        return record

    @classmethod
    def build(cls, scores: dict, **fields) -> RunMetrics:
        """The one builder of a metrics record: ``scores`` as :func:`~fer_utils.training.evaluate.
        evaluate_predictions` returns them (``frame``, ``video``, ``by_attribute``) and the other fields."""
        return cls(
            frame=Scores.from_json(scores["frame"], "frame"),
            video=Scores.from_json(scores["video"], "video") if scores.get("video") else None,
            by_attribute=scores.get("by_attribute", {}),
            restricted=scores.get("restricted"),
            unmapped_answers=scores.get("unmapped_answers"),
            **fields,
        )

    def fill_kept_epoch(self, history: pd.DataFrame, selection_metric: str) -> None:
        """``selection_metric``, ``best_epoch`` and the best_* scores from the epoch of ``history`` with the
        highest ``selection_metric`` (the epoch a run keeps; first one on ties, as the checkpoint does)."""
        row = int(history[selection_metric].to_numpy().argmax())
        self.selection_metric = selection_metric
        self.best_epoch = int(history["epoch"].iloc[row]) if "epoch" in history else row + 1
        self.best_val_accuracy = float(history["val_accuracy"].iloc[row])
        if "val_macro_f1" in history:
            self.best_val_macro_f1 = float(history["val_macro_f1"].iloc[row])

    def to_json(self) -> dict:
        return _to_json(self)

    @property
    def is_evaluation(self) -> bool:
        return self.kind == EVALUATION_KIND

    def scores(self, level: str) -> Scores | None:
        """The :class:`Scores` of ``level`` (``frame``, or ``video``: None when every face is its own video)."""
        if level not in ("frame", "video"):
            raise ValueError(f"level must be one of ('frame', 'video'), got {level!r}")
        return self.frame if level == "frame" else self.video

    def value(self, name: str, level: str = "frame") -> float | None:
        """The registered metric ``name`` at ``level``; None when the level or the score is absent."""
        scores = self.scores(level)
        return None if scores is None else scores.value(name)

    @property
    def recipe_name(self) -> str:
        """The recipe as applied (its label, e.g. ``robust − augment``); ``paper`` for runs made before
        recipes existed. Every reader shows this one."""
        return recipe_name(self.recipe_label, self.recipe)

    @property
    def health_warnings(self) -> list[str]:
        """``stalled: …`` / ``underfit: …`` for a run that did not (fully) learn, ``selection_saturated: …``
        when its epoch choice was arbitrary; empty otherwise."""
        flags = (
            ("stalled", self.stalled, self.stalled_reason),
            ("underfit", self.underfit, self.underfit_reason),
            ("selection_saturated", self.selection_saturated, self.selection_saturated_reason),
        )
        return [f"{name}: {reason}" for name, flagged, reason in flags if flagged]


@dataclass
class RunConfig:
    """``config.json``: every :class:`~fer_utils.training.config.TrainConfig` field as given (in
    ``settings``, flat in the file), and what the run was made from."""

    settings: dict = field(default_factory=dict)  # the TrainConfig fields (input_size: as requested)
    run_name: str = ""
    kind: str | None = None  # "evaluation" for fer evaluate's folders
    dataset: str = ""
    cache_dir: str = ""
    cache_key: str | None = None
    preprocessing: dict = field(default_factory=dict)  # the face cache's config.json
    recipe_settings: dict = field(default_factory=dict)  # every recipe ingredient as applied
    recipe_label: str | None = None
    threads_used: int | None = None
    #: The face size the model was trained at, resolved: TrainConfig's ``input_size``, else the cache's.
    image_size: int | None = None
    labels: list = field(default_factory=list)
    split: SplitSizes = field(default_factory=SplitSizes.unset)
    versions: dict = field(default_factory=dict)
    created: str | None = None
    numerics: Numerics | None = None
    transfer: Transfer | None = None
    cost: Cost | None = None
    #: The distillation teacher (None: trained on the labels alone).
    teacher: Teacher | None = None
    #: ``{from, to}`` (px) when the cache's faces were resized to the model's input (None: same size).
    resized_faces: dict | None = None
    evaluation: Evaluation | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        parts_from_json(self)

    @classmethod
    def from_json(cls, data) -> RunConfig:
        """The record of a parsed config.json: the TrainConfig fields go to ``settings``.

        Migration from version 0 / 1: the setting was called ``image_size`` and stored the resolved size
        over the requested one; that value becomes both ``input_size`` (the request is lost) and
        ``image_size``."""
        if not isinstance(data, dict):
            raise RecordProblem(f"is malformed: {_json_kind(data)}, not a JSON object")
        version = data.get("schema_version", 0)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise RecordProblem(
                f"has schema_version {version!r}; this fer_utils reads up to {SCHEMA_VERSION} (upgrade it)"
            )
        if version < 2 and "input_size" not in data and "image_size" in data:
            data = {**data, "input_size": data["image_size"]}
        settings = {key: data[key] for key in field_names(TrainConfig) if key in data}
        rest = {key: value for key, value in data.items() if key not in settings}
        known, extra = _split_known(cls, rest)
        known["evaluation"] = Evaluation.from_json(known.get("evaluation"))
        known["schema_version"] = SCHEMA_VERSION
        return cls(settings=settings, **known, extra=extra)

    def to_json(self) -> dict:
        record = _to_json(self)
        settings = record.pop("settings")
        return {"schema_version": record.pop("schema_version"), **settings, **record}

    @property
    def is_evaluation(self) -> bool:
        return self.kind == EVALUATION_KIND

    def setting(self, name: str, default: Any = None) -> Any:
        """One TrainConfig field as recorded (``default`` when the run predates it)."""
        return self.settings.get(name, default)

    def train_config(self) -> TrainConfig:
        """The run's settings as a :class:`TrainConfig` (fields it predates get their defaults)."""
        return TrainConfig(**self.settings)

    @property
    def seed(self) -> int | None:
        return self.settings.get("seed")

    @property
    def dropout(self) -> list | None:
        return self.settings.get("dropout")

    @property
    def l1(self) -> float | None:
        return self.settings.get("l1")

    @property
    def protocol(self) -> str | None:
        return self.settings.get("protocol")

    @property
    def recipe(self) -> str:
        return self.settings.get("recipe") or "paper"

    @property
    def architecture(self) -> str:
        """The family trained (:data:`~fer_utils.training.architectures.DEFAULT_ARCHITECTURE` for runs
        recorded before families existed)."""
        return self.settings.get("architecture") or DEFAULT_ARCHITECTURE
