"""Reading run directories written by :func:`fer_utils.training.train.train_run`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

RUN_FILES = ("config.json", "history.csv", "model.keras", "metrics.json", "predictions.csv")


@dataclass
class Run:
    """A finished run: its parameters, per-epoch history, metrics and test-face predictions."""

    path: Path
    config: dict
    history: pd.DataFrame
    metrics: dict
    predictions: pd.DataFrame

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def labels(self) -> list[str]:
        return list(self.metrics["labels"])

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    def summary(self) -> str:
        """One paragraph for a terminal: data, protocol, scores and a stall warning if any."""
        frame = self.metrics["frame"]
        split = self.metrics.get("split", {})
        lines = [
            f"run {self.path}",
            f"  dataset {self.metrics.get('dataset')} · protocol {self.metrics['protocol']} · "
            f"train/val/test {split.get('train')}/{split.get('validation')}/{split.get('test')} faces · "
            f"{self.metrics['num_params']:,} parameters",
            f"  test accuracy {frame['accuracy']:.4f} · macro F1 {frame['macro_f1']:.4f} · "
            f"weighted F1 {frame['weighted_f1']:.4f} (frame level)",
        ]
        if self.metrics.get("video"):
            video = self.metrics["video"]
            lines.append(
                f"  video level: accuracy {video['accuracy']:.4f} · macro F1 {video['macro_f1']:.4f}"
            )
        if self.metrics.get("stalled"):
            lines.append(f"  WARNING: stalled run: {self.metrics['stalled_reason']}")
        return "\n".join(lines)


def load_run(run_dir: str | os.PathLike) -> Run:
    """Load a finished run; ValueError names what is missing or malformed."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"run folder {path} does not exist")
    missing = [name for name in RUN_FILES if not (path / name).exists()]
    if missing:
        raise ValueError(f"run {path.name} is unfinished or incomplete: missing {', '.join(missing)}")
    try:
        config = json.loads((path / "config.json").read_text())
        metrics = json.loads((path / "metrics.json").read_text())
        history = pd.read_csv(path / "history.csv")
        predictions = pd.read_csv(path / "predictions.csv", dtype={"subject": str, "video_id": str})
    except (
        json.JSONDecodeError,
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
    ) as error:
        raise ValueError(f"run {path.name} has a malformed file: {error}") from error
    for key in ("labels", "frame", "protocol", "num_params"):
        if key not in metrics:
            raise ValueError(f"run {path.name}: metrics.json lacks {key!r}")
    return Run(path, config, history, metrics, predictions)


def list_runs(runs_dir: str | os.PathLike) -> tuple[list[Run], dict[str, str]]:
    """All finished runs below ``runs_dir`` (any depth) and, per unreadable run folder, why.

    A run folder is any folder holding ``metrics.json``, or ``config.json`` beside ``split.csv``
    (a run that started but did not finish); face caches and other folders are ignored.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise ValueError(f"runs folder {root} does not exist")
    candidates = sorted(
        {p.parent for pattern in ("config.json", "metrics.json") for p in root.rglob(pattern)}
    )
    runs, problems = [], {}
    for folder in candidates:
        if not (folder / "metrics.json").exists() and not (folder / "split.csv").exists():
            continue
        try:
            runs.append(load_run(folder))
        except ValueError as error:
            problems[str(folder.relative_to(root))] = str(error)
    return runs, problems
