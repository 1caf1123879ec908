"""A training run's parameters: :class:`TrainConfig` (one field per setting) and how two runs' settings
are compared (:data:`CHECKED_FIELDS`, :func:`effective_settings`, :func:`setting_mismatches`)."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, fields

from fer_utils.settings import setting
from fer_utils.training.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE
from fer_utils.training.model import INPUT_SCALINGS, check_regularisation
from fer_utils.training.recipes import (
    CLASS_WEIGHTINGS,
    LR_SCHEDULES,
    RECIPE_FIELDS,
    RECIPES,
    SELECTION_METRICS,
    Recipe,
    resolve_recipe,
)
from fer_utils.training.splits import PROTOCOLS
from fer_utils.training.targets import TARGETS


@dataclass
class TrainConfig:
    """Every parameter of a training run (stored in the run's ``config.json``).

    Each field is also a flag of ``fer train`` and ``fer ablate`` (via :mod:`fer_utils.settings`): a new
    field with ``setting(default, help=...)`` is a new option everywhere, with nothing else to edit.
    """

    protocol: str = setting(
        "paper",
        help="which faces are held out: paper (random faces), video (unseen clips), subject (unseen people), "
        "fixed (the dataset's own split)",
        choices=PROTOCOLS,
    )
    architecture: str = setting(
        DEFAULT_ARCHITECTURE,
        help="the network: paper (the published CNN), paper_bn (its layout with BatchNorm and a 64-unit "
        "bottleneck), mini_xception (depthwise-separable residual), mobilenet_v3_small (untrained backbone); "
        "fer_utils/training/architectures.py gives each one's input size and cost",
        choices=tuple(ARCHITECTURES),
    )
    epochs: int = setting(30, help="passes over the training part")
    batch_size: int = setting(32, help="faces per gradient step")
    recipe: str = setting(
        "paper",
        help="how to train: paper (as published) or robust (keeps the bottleneck alive; "
        "docs/training_reliability.md). the flags whose default is 'the recipe's' override single ingredients",
        choices=tuple(RECIPES),
    )
    learning_rate: float | None = setting(
        None, help="Adam's (peak) learning rate (default: the recipe's; paper 1e-3)"
    )
    lr_schedule: str | None = setting(
        None,
        help="learning rate over the epochs (default: the recipe's; paper constant)",
        choices=LR_SCHEDULES,
    )
    warmup_epochs: float | None = setting(
        None, help="epochs of linear learning-rate warm-up from 0 (default: the recipe's; paper 0)"
    )
    input_scaling: str | None = setting(
        None,
        help="pixels to [0, 1] (unit) or [-1, 1] (centered) (default: the recipe's; paper unit)",
        choices=INPUT_SCALINGS,
    )
    recycle_dead_units: bool | None = setting(
        None,
        help="re-initialise Dense(16) units that output 0 for every probe face, after each epoch "
        "(default: the recipe's; paper off)",
    )
    augment: bool | None = setting(
        None,
        help="random mirror, rotation, zoom, shift, brightness and contrast of training faces "
        "(default: the recipe's; paper off)",
    )
    label_smoothing: float | None = setting(
        None, help="label smoothing of the loss (default: the recipe's; paper 0)"
    )
    class_weighting: str | None = setting(
        None,
        help="loss weights per class: balanced = inverse frequency, sqrt = its square root (rare classes "
        "heard without drowning the common ones; default: the recipe's; paper none)",
        choices=CLASS_WEIGHTINGS,
    )
    selection_metric: str | None = setting(
        None,
        help="which validation score picks the kept epoch (default: the recipe's; paper val_accuracy)",
        choices=SELECTION_METRICS,
    )
    ema_momentum: float | None = setting(
        None,
        help="keep an exponential moving average of the weights with this momentum (e.g. 0.999) and "
        "evaluate, select and save it instead of the last step's weights (default: the recipe's; paper 0, off)",
    )
    targets: str = setting(
        "label",
        help="what the run learns to answer: label (the cache's), majority (the FER+ crowd's majority) or "
        "distribution (cross-entropy on the FER+ votes); majority / distribution need a FER+ cache",
        choices=TARGETS,
    )
    seed: int = setting(0, help="seed of the split, the weights and the shuffling")
    dropout: tuple[float, float, float] = setting(
        (0.3, 0.3, 0.3), help="dropout after each of the three pooling layers", metavar=("D1", "D2", "D3")
    )
    l1: float = setting(0.0, help="L1 factor on the Dense(16) kernel (0: off)")
    input_size: int | None = setting(
        None,
        help="the model's input side in pixels, faces resized on the fly (none: the cache's face size)",
        renamed_from=("image_size",),
    )
    test_size: float = setting(0.2, help="fraction held out as the test part")
    validation_size: float = setting(0.1, help="fraction of the training side used for model selection")
    fold: int = setting(0, help="which fold is the test part under grouped protocols")
    allow_duplicate_leakage: bool = setting(
        False,
        help="protocols video/subject: identical faces (same content hash) in the training and test parts "
        "only warn instead of refusing the split (paper/fixed always only warn)",
        checked=False,  # decides whether a run may start, never its numbers
    )
    early_stopping_patience: int = setting(
        0,
        help="stop after this many epochs without a better selection metric (0: off)",
        aliases=("--patience",),
    )
    train_faces_per_class: int | None = setting(
        None, help="class-balanced cap on the training part; the test part is never reduced (none: all)"
    )
    in_memory_limit_mb: int = setting(
        2048,
        help="training parts larger than this stream from the memory-mapped shards (same results)",
        checked=False,  # how faces are fed, not which: a rerun may change it
    )
    init_from: str | None = setting(
        None,
        help="start from this run folder or .keras model (same image size; new head rows for new classes)",
    )
    freeze_epochs: int = setting(0, help="with --init-from: epochs with the convolutions frozen first")
    teacher: str | None = setting(
        None,
        help="distil from this run folder or .keras model (same classes and image size): the loss adds the "
        "teacher's softened outputs to the labels",
    )
    distill_temperature: float = setting(4.0, help="with --teacher: softmax temperature of both outputs")
    distill_weight: float = setting(
        0.5, help="with --teacher: weight of the teacher term (1 − weight on the labels' cross-entropy)"
    )
    threads: int | None = setting(
        1,
        help="TensorFlow intra-op threads of this run (none: $TF_NUM_INTRAOP_THREADS if set, else all cores). The same config and thread count "
        "give identical results; another count sums floats in another order, so scores can differ",
        aliases=("--threads-per-run",),
        checked=False,  # recorded in config.json (numerics); a rerun may train with another count
    )
    extra: dict = setting(
        default_factory=dict, help="free-form tags (e.g. ablation cell) kept with the run", cli=False
    )

    def __post_init__(self):
        self.dropout = check_regularisation(self.dropout, self.l1)
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be ≥ 1, got {self.epochs}, {self.batch_size}")
        self.applied_recipe()  # validates the recipe and its overrides
        if self.freeze_epochs < 0 or (self.freeze_epochs and not self.init_from):
            raise ValueError("freeze_epochs needs --init-from and must be ≥ 0")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"unknown architecture {self.architecture!r}; choose one of {', '.join(ARCHITECTURES)}"
            )
        if self.distill_temperature <= 0 or not 0 <= self.distill_weight <= 1:
            raise ValueError(
                f"distill_temperature must be > 0 and distill_weight in [0, 1], got "
                f"{self.distill_temperature}, {self.distill_weight}"
            )
        if self.targets not in TARGETS:
            raise ValueError(f"unknown targets {self.targets!r}; choose one of {', '.join(TARGETS)}")
        if self.freeze_epochs >= self.epochs:
            raise ValueError(f"freeze_epochs ({self.freeze_epochs}) must be below epochs ({self.epochs})")

    def applied_recipe(self) -> Recipe:
        """The recipe's ingredients with this run's overrides applied (``recipe`` is the field naming it)."""
        return resolve_recipe(self.recipe, {name: getattr(self, name) for name in RECIPE_FIELDS})

    def settings(self) -> Recipe:
        """Deprecated name of :meth:`applied_recipe` (kept for one release)."""
        warnings.warn(
            "TrainConfig.settings() is deprecated; use TrainConfig.applied_recipe()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.applied_recipe()


def input_size_for(input_size: int | None, face_size: int | None) -> int | None:
    """The side a model is fed at: the requested ``input_size``, else the face cache's ``face_size`` (the
    one place this rule is written; :class:`~fer_utils.training.plan.RunPlan` resolves it per run)."""
    return input_size or face_size


#: TrainConfig fields that change a run's result (``checked=False`` marks those that cannot, e.g. how faces
#: are fed): a finished run is reused only when it agrees on all of them.
CHECKED_FIELDS = tuple(
    field.name
    for field in fields(TrainConfig)
    if field.metadata.get("cli", True) and field.metadata.get("checked", True)
)


def effective_settings(config: dict, face_size: int | None = None) -> dict:
    """The :data:`CHECKED_FIELDS` of a run's settings (a ``config.json`` or ``asdict(TrainConfig)``), with
    each recipe ingredient as applied: an unset learning rate under ``paper`` equals an explicit 1e-3,
    and runs recorded before recipes existed count as ``paper``. ``input_size`` is the size trained at:
    as requested, else the face cache's (``face_size``, or a config.json's resolved ``image_size``)."""
    known = {field.name for field in fields(TrainConfig)}
    config = dict(config)
    if isinstance(config.get("teacher"), dict):  # a finished run's config.json records {"model": path}
        config["teacher"] = config["teacher"].get("model")
    applied = TrainConfig(**{key: value for key, value in config.items() if key in known})
    values = asdict(applied) | asdict(applied.applied_recipe())
    values["input_size"] = input_size_for(values["input_size"], face_size or config.get("image_size"))
    return {key: values[key] for key in CHECKED_FIELDS}


def setting_mismatches(recorded: dict, expected: dict) -> list[str]:
    """``"name recorded ≠ expected"`` for each setting where a finished run's ``config.json`` differs
    from what a rerun asks for (floats and sequences compared with a tolerance)."""
    problems = []
    for key, wanted in expected.items():
        stored = recorded.get(key)
        if isinstance(wanted, (list, tuple)) and isinstance(stored, (list, tuple)):
            same = len(wanted) == len(stored) and all(
                math.isclose(float(a), float(b)) for a, b in zip(wanted, stored, strict=True)
            )
        elif isinstance(wanted, float) and isinstance(stored, (int, float)):
            same = math.isclose(wanted, float(stored))
        else:
            same = wanted == stored
        if not same:
            problems.append(f"{key} {stored!r} ≠ {wanted!r}")
    return problems
