"""``fer bundle-model --ensemble K``: a bundle's finished seed runs cut, in seed order, into disjoint groups
of K (seeds 0–2, 3–5, …), each group written as one ensemble model file
(:func:`fer_utils.training.ensemble.write_ensemble`) and measured on its data's test split, so that the
card reports the ensembles' own distribution; the median ensemble ships (never the luckiest), with a
temperature fitted on the validation faces.

``--extend-card`` keeps the ensembles an earlier bundle of the same candidate recorded on its card (other
seeds, trained in another session whose runs are gone) in the distribution, once their recorded training
settings are checked against this study's (:func:`earlier_ensembles`); the median of the groups trained
here ships, since only their files are at hand.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from fer_utils.experiments.model_card import score_test, validation_temperature
from fer_utils.training.config import setting_mismatches
from fer_utils.training.ensemble import write_ensemble
from fer_utils.training.model_files import model_spec
from fer_utils.training.seeds import finished_seed_runs

#: The test scores each ensemble's row and the distribution hold.
ENSEMBLE_SCORES = ("accuracy", "macro_f1", "balanced_accuracy", "neutral_rate")


@dataclass
class EnsembleChoice:
    """The ensembles of one seeds folder, their test scores and the one that ships."""

    size: int
    paths: list[Path]
    groups: list[list]  # the runs of each ensemble, in seed order
    rows: list[dict]  # per ensemble: its seeds, file and test scores
    shipped: int  # index of the median ensemble
    calibration: dict = field(default_factory=dict)
    earlier: list[dict] = field(default_factory=list)  # rows of an earlier card's ensembles (--extend-card)
    unverified: list[str] = field(default_factory=list)  # settings the earlier card did not record

    @property
    def shipped_path(self) -> Path:
        return self.paths[self.shipped]

    @property
    def shipped_runs(self) -> list:
        return self.groups[self.shipped]

    def distribution(self) -> dict:
        """Per score: mean, sd (n − 1), min, max over the ensembles (the earlier card's included)."""
        table = pd.DataFrame(self.earlier + self.rows)
        summary = {}
        for column in ENSEMBLE_SCORES:
            values = pd.to_numeric(table.get(column, pd.Series(dtype=float)), errors="coerce").dropna()
            if not values.empty:
                summary[column] = {
                    "mean": float(values.mean()),
                    "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                    "min": float(values.min()),
                    "max": float(values.max()),
                }
        return summary

    def card(self) -> dict:
        """The card's ``ensemble`` record."""
        record = {
            "size": self.size,
            "grouping": "seeds in order, disjoint groups",
            "ensembles": self.earlier + self.rows,
            "scores": self.distribution(),
            "shipped_seeds": self.rows[self.shipped]["seeds"],
        }
        if self.earlier:
            record["trained_here"] = [row["seeds"] for row in self.rows]
            record["unverified_settings"] = self.unverified
        return record


def seed_groups(runs: list, size: int) -> list[list]:
    """``runs`` sorted by seed and cut into consecutive disjoint groups of ``size``; seeds past the last full
    group are left out (said by the caller).

    Raises:
        ValueError: ``size`` below 2, or fewer runs than one group needs.
    """
    if size < 2:
        raise ValueError(f"an ensemble needs at least two seeds, got --ensemble {size}")
    runs = sorted(runs, key=lambda run: run.setup.seed)
    if len(runs) < size:
        raise ValueError(f"--ensemble {size} needs at least {size} finished seeds, found {len(runs)}")
    return [runs[start : start + size] for start in range(0, len(runs) - size + 1, size)]


def group_ensemble(runs: list, folder: Path, stem: str) -> Path:
    """The ensemble file of ``runs`` in ``folder`` (``<stem>-seeds-0-1-2.keras``): kept when its spec names
    exactly these runs' models, written otherwise."""
    path = folder / f"{stem}-seeds-{'-'.join(str(run.setup.seed) for run in runs)}.keras"
    wanted = [str(Path(run.model_path).resolve()) for run in runs]
    if path.exists() and [member["model"] for member in model_spec(path).get("members", [])] == wanted:
        return path
    return write_ensemble([run.path for run in runs], path)


def _older_card_settings(card: dict) -> dict:
    """What a card written before ``study_settings`` records of its training, by setting name."""
    training = card.get("training") or {}
    recorded = {
        "architecture": training.get("architecture"),
        "epochs": training.get("epochs"),
        "input_size": training.get("image_size"),
        "recipe": training.get("recipe"),
        "targets": card.get("targets"),
        **(training.get("recipe_settings") or {}),
    }
    return {key: value for key, value in recorded.items() if value is not None}


def earlier_ensembles(
    card_path: str | os.PathLike, settings: dict, dataset: str, size: int
) -> tuple[list[dict], list[str]]:
    """The ensemble rows recorded on the card at ``card_path`` (an earlier ``--ensemble`` bundle of this
    candidate), each marked with the card's date, when that bundle was trained on ``dataset`` with the
    ``settings`` of the runs to add (:func:`~fer_utils.experiments.model_card.study_settings`, or
    :func:`~fer_utils.experiments.model_card.planned_study_settings` before training); and the settings
    not checked for them: those that card does not record (a card from before
    :func:`~fer_utils.experiments.model_card.study_settings` is compared on what it has) and those it
    could not check for the rows it took from an older card.

    Raises:
        ValueError: no such card, no ensembles of ``size`` on it, another dataset, or one line listing
            every setting that differs from ``settings``.
    """
    card_path = Path(card_path)
    if not card_path.is_file():
        raise ValueError(f"--extend-card: no earlier card at {card_path}")
    card = json.loads(card_path.read_text())
    ensemble = card.get("ensemble") or {}
    if ensemble.get("size") != size:
        raise ValueError(
            f"--extend-card: {card_path} records no ensembles of {size} (found: {ensemble.get('size')})"
        )
    recorded = card.get("study_settings") or _older_card_settings(card)
    problems = setting_mismatches(recorded, {key: settings[key] for key in recorded if key in settings})
    if card.get("dataset") != dataset:
        problems.insert(0, f"dataset {card.get('dataset')!r} ≠ {dataset!r}")
    if problems:
        raise ValueError(f"--extend-card: {card_path} was trained otherwise: {', '.join(problems)}")
    rows = [{"scored": card.get("created"), **row} for row in ensemble.get("ensembles", [])]
    # rows that card itself took from an older one carry that one's gaps
    return rows, sorted((set(settings) - set(recorded)) | set(ensemble.get("unverified_settings") or []))


def choose_ensemble(
    seeds_dir: str | os.PathLike,
    size: int,
    folder: str | os.PathLike,
    stem: str,
    images,
    dataset: str,
    earlier: tuple[list[dict], list[str]] | None = None,
) -> EnsembleChoice:
    """Group the finished seeds of ``seeds_dir`` (:func:`seed_groups`), write each group's ensemble into
    ``folder``, score each on the test split of ``dataset`` read at ``images``, and choose the median by
    test accuracy (the lower middle one for an even count), its temperature fitted on the validation
    faces. ``earlier`` (:func:`earlier_ensembles`) adds an earlier card's ensembles to the distribution,
    except those sharing a seed with a group trained here (measured again here)."""
    runs = finished_seed_runs(Path(seeds_dir))
    groups = seed_groups(runs, size)
    left_out = [run.setup.seed for run in sorted(runs, key=lambda run: run.setup.seed)][len(groups) * size :]
    if left_out:
        print(f"seeds {', '.join(map(str, left_out))} left out: they do not fill an ensemble of {size}")
    folder = Path(folder)
    paths, rows = [], []
    scored = datetime.now(UTC).isoformat(timespec="seconds")
    for group in groups:
        path = group_ensemble(group, folder, stem)
        scores = score_test(path, images, dataset)
        row = {"seeds": [run.setup.seed for run in group], "file": path.name, "scored": scored}
        row |= {key: scores[key] for key in ENSEMBLE_SCORES if key in scores}
        rows.append(row)
        paths.append(path)
        print(
            f"ensemble of seeds {', '.join(map(str, row['seeds']))}: test accuracy "
            f"{100 * row['accuracy']:.1f} %, balanced {100 * row.get('balanced_accuracy', float('nan')):.1f} %"
        )
    order = sorted(range(len(rows)), key=lambda index: (rows[index]["accuracy"], rows[index]["seeds"]))
    shipped = order[(len(order) - 1) // 2]
    choice = EnsembleChoice(size, paths, groups, rows, shipped)
    here = {seed for row in rows for seed in row["seeds"]}
    earlier_rows, unverified = earlier or ([], [])
    choice.earlier = [row for row in earlier_rows if not here & set(row["seeds"])]
    choice.unverified = list(unverified) if choice.earlier else []
    for row in choice.earlier:
        seeds = ", ".join(map(str, row["seeds"]))
        print(
            f"earlier ensemble of seeds {seeds} ({row.get('scored')}): test accuracy {100 * row['accuracy']:.1f} %"
        )
    choice.calibration = validation_temperature(choice.shipped_path, dataset, images)
    return choice
