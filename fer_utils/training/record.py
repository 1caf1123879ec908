"""What a run records: the contents of ``config.json`` and ``metrics.json`` and the ``split.csv`` table."""

from __future__ import annotations

import platform
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.faces.cache import FaceCache, announce_resize
from fer_utils.training.evaluate import evaluate_predictions
from fer_utils.training.fit import FitResult
from fer_utils.training.health import health_flags, majority_baselines, selection_saturation
from fer_utils.training.plan import RunPlan
from fer_utils.training.recipes import recipe_label
from fer_utils.training.results import RunConfig, RunMetrics
from fer_utils.training.splits import Split, membership_hash


def package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in (
        "fer-utils",
        "tensorflow",
        "tensorflow-cpu",
        "keras",
        "numpy",
        "scikit-learn",
        "opencv-python-headless",
        "dlib-bin",
    ):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return versions


def run_config_record(
    run_dir: Path,
    cache: FaceCache,
    plan: RunPlan,
    split: Split,
    train_ids: np.ndarray,
    *,
    numerics: dict | None,
    transfer: dict | None,
    cost: dict | None,
    teacher: str | None,
) -> RunConfig:
    """What ``config.json`` records, every field: the parameters, the recipe as applied, the data, the
    split, the numerics, the model's cost and what it was initialised or distilled from."""
    sizes = {
        "train": int(len(train_ids)),
        "validation": int(len(split.validation)),
        "test": int(len(split.test)),
    }
    config = plan.config
    return RunConfig(
        settings=asdict(config),
        run_name=run_dir.name,
        dataset=str(cache.config.get("dataset", "")),
        cache_dir=str(Path(plan.cache_dir).resolve()),
        cache_key=plan.cache_key,
        preprocessing=cache.config,
        recipe_settings=asdict(plan.recipe),
        recipe_label=recipe_label(config.recipe, plan.recipe),
        threads_used=plan.threads,
        image_size=plan.input_size,
        labels=list(plan.labels),
        split={
            **sizes,
            "fold": split.fold,
            "n_folds": split.n_folds,
            "test_hash": membership_hash(cache.index, split.test),
        },
        versions=package_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        numerics=numerics,
        transfer=transfer,
        cost=cost,
        teacher=None if teacher is None else {"model": teacher},
        resized_faces=announce_resize(plan.face_size, plan.input_size, "training"),
    )


def split_table(split: Split, train_ids: np.ndarray) -> pd.DataFrame:
    """``split.csv``: face id → part, with the training part as actually used (after the cap)."""
    parts = split.parts()
    parts = parts[parts["part"] != "train"]
    return pd.concat([pd.DataFrame({"face_id": train_ids, "part": "train"}), parts]).sort_values("face_id")


def run_metrics(
    run_config: RunConfig,
    fitted: FitResult,
    predictions: pd.DataFrame,
    num_params: int,
    validation_labels: dict,
    calibration: dict | None = None,
) -> RunMetrics:
    """What ``metrics.json`` records, every field: scores, baselines on the test part, the health flags,
    the course of training (the kept epoch is the best by the recipe's selection metric), the model's
    family and cost (as config.json records them) and its ``calibration``."""
    history = fitted.history
    labels = run_config.labels
    scores = evaluate_predictions(predictions, labels)
    baselines = majority_baselines(predictions["true_label"], labels)
    flags = health_flags(
        scores["frame"], baselines, labels, validation_labels["present"], validation_labels["predicted"]
    ) | selection_saturation(history[fitted.selection_metric], fitted.selection_metric)
    best_row = int(history[fitted.selection_metric].idxmax())
    return RunMetrics.build(
        scores,
        dataset=run_config.dataset,
        protocol=run_config.protocol,
        recipe=run_config.recipe,
        recipe_label=run_config.recipe_label,
        labels=labels,
        num_params=num_params,
        split=run_config.split,
        baselines=baselines,
        majority_rate=baselines["majority_rate"],
        final_train_accuracy=float(history["accuracy"].iloc[-1]),
        best_train_accuracy=float(history["accuracy"].max()),
        selection_metric=fitted.selection_metric,
        best_epoch=best_row + 1,
        best_val_accuracy=float(history["val_accuracy"].iloc[best_row]),
        best_val_macro_f1=float(history["val_macro_f1"].iloc[best_row]),
        epochs_run=int(len(history)),
        train_seconds=round(fitted.seconds, 2),
        diagnostics={
            "initial_dead_units": fitted.initial_diagnostics["dead_units"],
            "initial_grad_norm": fitted.initial_diagnostics["grad_norm"],
            "final_dead_units": float(history["dead_units"].iloc[-1]),
            "max_dead_units": float(history["dead_units"].max()),
            "recycled_units": [{"epoch": epoch, "units": units} for epoch, units in fitted.recycled],
        },
        validation_classes_predicted=validation_labels["predicted"],
        architecture=run_config.architecture,
        cost=run_config.cost,
        calibration=calibration,
        **flags,
    )
