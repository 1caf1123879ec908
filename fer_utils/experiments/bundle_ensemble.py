"""``fer bundle-model --ensemble K``: a bundle's finished seed runs cut, in seed order, into disjoint groups
of K (seeds 0–2, 3–5, …), each group written as one ensemble model file
(:func:`fer_utils.training.ensemble.write_ensemble`) and measured on its data's test split, so that the
card reports the ensembles' own distribution; the median ensemble ships (never the luckiest), with a
temperature fitted on the validation faces.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fer_utils.experiments.model_card import score_test, validation_temperature
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

    @property
    def shipped_path(self) -> Path:
        return self.paths[self.shipped]

    @property
    def shipped_runs(self) -> list:
        return self.groups[self.shipped]

    def distribution(self) -> dict:
        """Per score: mean, sd (n − 1), min, max over the ensembles."""
        table = pd.DataFrame(self.rows)
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
        return {
            "size": self.size,
            "grouping": "seeds in order, disjoint groups",
            "ensembles": self.rows,
            "scores": self.distribution(),
            "shipped_seeds": self.rows[self.shipped]["seeds"],
        }


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


def choose_ensemble(
    seeds_dir: str | os.PathLike, size: int, folder: str | os.PathLike, stem: str, images, dataset: str
) -> EnsembleChoice:
    """Group the finished seeds of ``seeds_dir`` (:func:`seed_groups`), write each group's ensemble into
    ``folder``, score each on the test split of ``dataset`` read at ``images``, and choose the median by
    test accuracy (the lower middle one for an even count), its temperature fitted on the validation
    faces."""
    runs = finished_seed_runs(Path(seeds_dir))
    groups = seed_groups(runs, size)
    left_out = [run.setup.seed for run in sorted(runs, key=lambda run: run.setup.seed)][len(groups) * size :]
    if left_out:
        print(f"seeds {', '.join(map(str, left_out))} left out: they do not fill an ensemble of {size}")
    folder = Path(folder)
    paths, rows = [], []
    for group in groups:
        path = group_ensemble(group, folder, stem)
        scores = score_test(path, images, dataset)
        row = {"seeds": [run.setup.seed for run in group], "file": str(path)}
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
    choice.calibration = validation_temperature(choice.shipped_path, dataset, images)
    return choice
