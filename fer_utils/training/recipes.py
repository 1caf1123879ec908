"""Training recipes: named sets of the choices that decide *how* the paper CNN is trained, never its
architecture or parameter count. ``paper`` is the published setting; ``robust`` is the one this suite's
evidence supports (docs/training_reliability.md). A run can override any single ingredient."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from fer_utils.training.model import INPUT_SCALINGS

LR_SCHEDULES = ("constant", "cosine")
CLASS_WEIGHTINGS = ("none", "balanced", "sqrt")
SELECTION_METRICS = ("val_accuracy", "val_macro_f1")


@dataclass(frozen=True)
class Recipe:
    """The training choices a recipe fixes. A ``TrainConfig`` field of the same name, when not None,
    overrides one of them for a run."""

    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    warmup_epochs: float = 0.0
    input_scaling: str = "unit"
    recycle_dead_units: bool = False
    augment: bool = False
    label_smoothing: float = 0.0
    class_weighting: str = "none"
    selection_metric: str = "val_accuracy"
    ema_momentum: float = 0.0

    def __post_init__(self):
        for name, value, allowed in (
            ("lr_schedule", self.lr_schedule, LR_SCHEDULES),
            ("input_scaling", self.input_scaling, INPUT_SCALINGS),
            ("class_weighting", self.class_weighting, CLASS_WEIGHTINGS),
            ("selection_metric", self.selection_metric, SELECTION_METRICS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.warmup_epochs < 0 or not 0 <= self.label_smoothing < 1:
            raise ValueError(
                f"warmup_epochs must be ≥ 0 and label_smoothing in [0, 1), got "
                f"{self.warmup_epochs}, {self.label_smoothing}"
            )
        if not 0 <= self.ema_momentum < 1:
            raise ValueError(f"ema_momentum must be in [0, 1) (0: off), got {self.ema_momentum}")


RECIPES: dict[str, Recipe] = {
    # The paper: Adam 1e-3, batch 32, pixels in [0, 1], no augmentation, best epoch by validation accuracy.
    "paper": Recipe(),
    # Keeps the 16-unit bottleneck alive and learning from the first epoch: pixels centred on 0, dead
    # units recycled after each epoch, the checkpoint chosen by validation macro F1.
    "robust": Recipe(input_scaling="centered", recycle_dead_units=True, selection_metric="val_macro_f1"),
}

#: Names of the choices a recipe fixes (each is also a TrainConfig field; None there = the recipe's).
RECIPE_FIELDS = tuple(field.name for field in fields(Recipe))


def resolve_recipe(name: str, overrides: dict) -> Recipe:
    """The recipe ``name`` with the non-None ``overrides`` (of :data:`RECIPE_FIELDS`) applied."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    chosen = {key: value for key, value in overrides.items() if key in RECIPE_FIELDS and value is not None}
    return replace(RECIPES[name], **chosen)


def recipe_label(name: str, settings: Recipe) -> str:
    """``robust`` or, when a run changed some ingredients, ``robust (augment=True)``."""
    changed = {key: value for key, value in asdict(settings).items() if getattr(RECIPES[name], key) != value}
    if not changed:
        return name
    return f"{name} ({', '.join(f'{key}={value}' for key, value in changed.items())})"
