"""A run plan: everything a run derives from its config and its face cache, resolved once at its start.

:class:`RunPlan` is what training, fitting, recording, resuming (its staleness check), notebook 02's model
summary and the seed runner (its staleness check) take instead of re-deriving it from a
:class:`~fer_utils.training.config.TrainConfig` and a :class:`~fer_utils.faces.cache.FaceCache`: the recipe
as applied, the architecture entry, the input size (:func:`~fer_utils.training.config.input_size_for`), the
cache's face size, labels, pixel step and key, and the thread count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from fer_utils.faces.cache import FaceCache
from fer_utils.training.architectures import Architecture, architecture, build_model
from fer_utils.training.config import (
    CHECKED_FIELDS,
    TrainConfig,
    effective_settings,
    input_size_for,
    setting_mismatches,
)
from fer_utils.training.recipes import Recipe
from fer_utils.training.results import RunConfig
from fer_utils.training.runtime import resolved_threads


@dataclass(frozen=True)
class RunPlan:
    """One run's resolved settings (frozen: built once by :meth:`resolve`, read everywhere after)."""

    config: TrainConfig
    #: The recipe's ingredients with the config's overrides applied.
    recipe: Recipe
    #: The entry of :data:`~fer_utils.training.architectures.ARCHITECTURES` the run trains.
    architecture: Architecture
    #: The side the model is fed at: ``input_size``, else the cache's face size.
    input_size: int
    #: The side of the cache's faces (resized on the fly to ``input_size`` when they differ).
    face_size: int
    labels: tuple[str, ...]
    #: The pixel step the cache's faces carry (``preprocessing.equalize``).
    pixel_step: str
    cache_key: str
    cache_dir: Path
    #: The intra-op thread count the run gets (:func:`~fer_utils.training.runtime.resolved_threads`).
    threads: int

    @classmethod
    def resolve(cls, config: TrainConfig, cache: FaceCache) -> RunPlan:
        """The plan of training ``config`` on ``cache``."""
        return cls(
            config=config,
            recipe=config.applied_recipe(),
            architecture=architecture(config.architecture),
            input_size=int(input_size_for(config.input_size, cache.face_size)),
            face_size=cache.face_size,
            labels=tuple(cache.labels),
            pixel_step=str(cache.config.get("equalize", "none")),
            cache_key=cache.key,
            cache_dir=Path(cache.cache_dir),
            threads=resolved_threads(config.threads),
        )

    @property
    def resized(self) -> bool:
        """True when the cache's faces are resized to the model's input."""
        return self.input_size != self.face_size

    def checked_settings(self) -> dict:
        """What a finished run must agree on to count as this plan's (the staleness checks and resuming
        compare it): every checked setting as applied, the cache key and the input size."""
        return {
            **effective_settings(asdict(self.config), self.face_size),
            "cache_key": self.cache_key,
            "image_size": self.input_size,
        }

    def mismatches(self, setup: RunConfig, cache: bool = True) -> list[str]:
        """How a finished run's config.json differs from this plan (``"name recorded ≠ planned"``; empty
        when it is this plan's run). ``cache`` False: the settings only, not the cache and input size."""
        planned = self.checked_settings()
        if not cache:
            planned = {key: planned[key] for key in CHECKED_FIELDS}
        return setting_mismatches(recorded_settings(setup), planned)

    def build_model(self):
        """The uncompiled network of this plan (fresh weights): the architecture at the input size."""
        return build_model(
            self.architecture.name,
            len(self.labels),
            self.input_size,
            self.config.dropout,
            self.config.l1,
            self.recipe.input_scaling,
        )


def recorded_settings(setup: RunConfig) -> dict:
    """A finished run's :meth:`RunPlan.checked_settings` as its config.json records them."""
    return {
        **effective_settings({**setup.settings, "image_size": setup.image_size}),
        "cache_key": setup.cache_key,
        "image_size": setup.image_size,
    }
