"""The runs a page shows: discovery, menu labels, what data a run was trained on (real or the synthetic
demo) and whether it belongs to an ablation grid."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_utils.data.synthetic import is_synthetic_data
from fer_utils.faces.detection import PAPER_FACE_SIZE
from fer_utils.paths import project_path
from fer_utils.training.results import RunConfig, RunMetrics, recipe_name
from fer_utils.training.run_listing import list_runs
from fer_utils.viz.formatting import percent

RUNS_DIR_ENV = "FER_RUNS_DIR"
INITIAL_RUN_ENV = "FER_INITIAL_RUN"
#: What a run trained on the synthetic demo set is called wherever its dataset is named.
SYNTHETIC_NOTE = "synthetic demo"
#: The file that makes a folder an ablation grid (``experiments/ablation/grid.py``'s ``GRID_FILE``).
GRID_FILE = "grid.json"
#: In an ablation cell copied from a finished run (``experiments/ablation/grid.py``'s ``REUSED_FILE``).
REUSED_FILE = "reused.json"
#: Added to the menu label of a run that is also an ablation cell (the cell is a copy, not listed twice).
ALSO_ABLATION_NOTE = "also an ablation cell"


@dataclass
class RunChoice:
    """A finished run with the label it has in the run menus."""

    label: str
    run: object  # fer_utils.training.rundir.Run

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def dataset(self) -> str:
        """The dataset's name as recorded (``ravdess`` for the demo, which has RAVDESS' layout)."""
        return run_dataset(self.run.setup, self.run.outcome)

    @property
    def synthetic(self) -> bool:
        """Whether the run trained on the synthetic demo set."""
        return is_synthetic(self.run.setup)

    @property
    def data_label(self) -> str:
        """The dataset as readers should see it: ``"ravdess (synthetic demo)"`` for the demo."""
        return data_label(self.run.setup, self.run.outcome)

    @property
    def ablation_dir(self) -> Path | None:
        """The ablation folder this run is a grid cell of, or None for a standalone run."""
        return ablation_folder(self.run.path)


def run_dataset(setup: RunConfig, outcome: RunMetrics | None = None) -> str:
    """The dataset name a run records (its metrics', else its config's)."""
    return str((outcome.dataset if outcome else "") or setup.dataset or "?")


def is_synthetic(setup: RunConfig) -> bool:
    """Whether the run trained on the synthetic demo set (its face cache's config says so)."""
    return is_synthetic_data(setup.preprocessing, setup.cache_dir)


def data_label(setup: RunConfig, outcome: RunMetrics | None = None) -> str:
    """The dataset name, with ``(synthetic demo)`` when the run trained on the demo set."""
    name = run_dataset(setup, outcome)
    return f"{name} ({SYNTHETIC_NOTE})" if is_synthetic(setup) else name


def ablation_folder(run_path: str | os.PathLike, levels: int = 3) -> Path | None:
    """The ablation folder (holding ``grid.json``) a run folder sits in, at most ``levels`` up."""
    for parent in list(Path(run_path).parents)[:levels]:
        if (parent / GRID_FILE).exists():
            return parent
    return None


#: Where notebook 04 opened without a runs folder looks, in order (relative to the project): a ``runs``
#: folder, then the demo's (``fer run`` makes it).
DEFAULT_RUNS_DIRS = ("runs", "reports/demo/runs")


class NoRunsFolder(ValueError):
    """No runs folder was given and none of :data:`DEFAULT_RUNS_DIRS` exists."""


def resolve_runs_dir(runs_dir: str | os.PathLike | None = None) -> Path:
    """The runs folder: ``runs_dir`` if given, else ``$FER_RUNS_DIR``, else the first existing of
    :data:`DEFAULT_RUNS_DIRS` (``runs``, the demo's ``reports/demo/runs``).

    A relative path is taken from the current folder, or from the project the user works in
    (:func:`fer_utils.paths.work_root`; Voila and JupyterLab run the notebook inside ``notebooks/``) when
    it does not exist there.

    Raises:
        NoRunsFolder: nothing was given and no default folder exists; the message says what to do.
    """
    text = str(runs_dir) if runs_dir else os.environ.get(RUNS_DIR_ENV, "")
    if not text:
        for default in DEFAULT_RUNS_DIRS:
            if _resolve(default).is_dir():
                return _resolve(default)
        tried = " or ".join(str(project_path(default)) for default in DEFAULT_RUNS_DIRS)
        raise NoRunsFolder(
            f"no runs folder: neither {tried} exists. Run `fer run` (the demo, a few minutes) from "
            f"{project_path('.')} to make reports/demo/runs, or set runs_dir in this notebook's first cell "
            "to a folder of runs (`fer train` / notebook 02 write them)"
        )
    return _resolve(text)


def _resolve(text: str | os.PathLike) -> Path:
    path = Path(text).expanduser()
    if not path.is_absolute() and not path.exists() and project_path(path).exists():
        path = project_path(path)
    return path.resolve()


def resolve_initial_run(initial_run: str | None = None) -> str | None:
    """The run to open first: ``initial_run`` if given, else ``$FER_INITIAL_RUN``, else None."""
    return initial_run or os.environ.get(INITIAL_RUN_ENV) or None


def _short_rate(rate: float) -> str:
    text = f"{float(rate):g}"
    return text[1:] if text.startswith("0.") else text


def _short_factor(value: float) -> str:
    value = float(value)
    if value == 0:
        return "0"
    return np.format_float_scientific(value, trim="-", exp_digits=1)


def _setting_text(setup: RunConfig) -> str:
    """``"drop(.3,.5,.5) l1=1e-3 48px"``: the regularisation and a non-paper image size."""
    setting = []
    if setup.dropout is not None:
        setting.append("drop(" + ",".join(_short_rate(rate) for rate in setup.dropout) + ")")
    if setup.l1 is not None:
        setting.append(f"l1={_short_factor(setup.l1)}")
    image_size = setup.image_size
    if image_size and int(image_size) != PAPER_FACE_SIZE:
        setting.append(f"{int(image_size)}px")
    return " ".join(setting)


def _unmapped_text(outcome: RunMetrics | None) -> str:
    """``" · full 54.8% · restricted 66.6% · 31.1% unmapped"`` for an evaluation with unmapped model
    classes (empty otherwise: then both scores are the same)."""
    restricted = ((outcome and outcome.restricted) or {}).get("frame")
    if not restricted or not (outcome.evaluation and outcome.evaluation.unmapped_model_classes):
        return ""
    return (
        f" · full {percent(outcome.frame.accuracy)} · restricted {percent(restricted['accuracy'])}"
        f" · {percent(outcome.unmapped_answers['share'])} unmapped"
    )


def run_label(setup: RunConfig, outcome: RunMetrics | None = None) -> str:
    """Menu label of a run, grouped by dataset, protocol and configuration.

    Example: ``"ravdess · protocol: subject · recipe: paper · drop(.3,.5,.5) l1=1e-3 · seed 0"`` (each name
    after what it names: ``paper`` is both a protocol and a recipe); ``model: mini_xception`` follows the
    recipe for a family other than the paper CNN; the image size is added when it
    is not the paper's 180 px, the fold when the protocol has folds beyond the first, and
    ``(synthetic demo)`` after the dataset when the run trained on the demo set. An evaluation folder
    (``fer evaluate``) reads ``"<dataset> · evaluation of <model file> (trained on <data>)"``, then
    ``· full 54.8% · restricted 66.6% · 31.1% unmapped`` when some model class maps to no label.
    """
    evaluation = setup.evaluation if setup.is_evaluation else None
    if evaluation:
        model = Path(str(evaluation.model or "model")).name
        label = f"{data_label(setup, outcome)} · evaluation of {model} (trained on {evaluation.trained_on})"
        return label + _unmapped_text(outcome)
    protocol = setup.protocol or (outcome.protocol if outcome else None) or "?"
    parts = [data_label(setup, outcome), f"protocol: {protocol}"]
    recipe_label = (outcome.recipe_label if outcome else None) or setup.recipe_label
    recipe = setup.setting("recipe")  # None for runs recorded before recipes: no recipe in the label
    if recipe_label or recipe:
        parts.append(f"recipe: {recipe_name(recipe_label, recipe)}")
    architecture = setup.setting("architecture") or (outcome.architecture if outcome else None)
    if architecture and architecture != "paper":
        parts.append(f"model: {architecture}")
    setting = _setting_text(setup)
    if setting:
        parts.append(setting)
    seed = f"seed {setup.seed}" if setup.seed is not None else ""
    fold = setup.split.fold
    if fold:
        seed += f" fold {fold}"
    if seed:
        parts.append(seed.strip())
    return " · ".join(parts)


def _sort_key(run) -> tuple:
    setup = run.setup
    return (
        str(setup.dataset),
        str(setup.protocol or ""),
        setup.architecture,
        tuple(setup.dropout or ()),
        float(setup.l1 or 0),
        int(setup.image_size or 0),
        int(setup.seed or 0),
        run.name,
    )


def reused_from(run_path: str | os.PathLike) -> Path | None:
    """The run an ablation cell was copied from (``fer run`` reuses its protocol run), or None."""
    import json

    record = Path(run_path) / REUSED_FILE
    try:
        return Path(json.loads(record.read_text())["reused_from"]).resolve()
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_choices(runs_dir: str | os.PathLike) -> tuple[list[RunChoice], dict[str, str]]:
    """Finished runs under ``runs_dir`` as menu choices (sorted by dataset / protocol / configuration,
    labels made unique with the run folder's name) and, per unreadable run folder, why.

    An ablation cell copied from another run listed here is that run: one entry, labelled
    ``… · also an ablation cell``.

    Raises:
        ValueError: ``runs_dir`` does not exist.
    """

    runs, problems = list_runs(runs_dir)
    listed = {Path(run.path).resolve() for run in runs}
    copies = {run.path: reused_from(run.path) for run in runs}
    runs = sorted((run for run in runs if copies[run.path] not in listed), key=_sort_key)
    also_cells = {source for source in copies.values() if source in listed}
    labels = [
        run_label(run.setup, run.outcome)
        + (f" · {ALSO_ABLATION_NOTE}" if Path(run.path).resolve() in also_cells else "")
        for run in runs
    ]
    choices = []
    for run, label in zip(runs, labels, strict=True):
        if labels.count(label) > 1:
            label = f"{label} · {run.name}"
        choices.append(RunChoice(label, run))
    return choices, problems


def find_choice(choices: list[RunChoice], wanted: str | None) -> int:
    """Position of the run named ``wanted`` (folder name, relative path or label); 0 when not given or
    not found."""
    if not wanted:
        return 0
    for position, choice in enumerate(choices):
        if wanted in (choice.name, choice.label, str(choice.run.path)) or str(choice.run.path).endswith(
            "/" + wanted.strip("/")
        ):
            return position
    return 0
