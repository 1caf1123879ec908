"""The main job: ``fer run`` executes the four notebooks by papermill, in order, on the synthetic demo
dataset (generated if absent, offline) or on a real dataset, leaving everything under one folder::

    <out>/data/                      demo clips (RAVDESS layout; demo only)
    <out>/cache/<dataset>-<key>/     the face cache
    <out>/notebooks/                 01 … 04 executed notebooks (02 once per protocol)
    <out>/runs/<protocol>/           one run directory per protocol (and runs/ablation/ for the grid)
    <out>/report.html                the static results report (notebook 04 as HTML)

Each step reads the files of the one before, so a rerun resumes: the face cache skips finished clips,
finished training runs are kept, and the ablation skips finished grid cells.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from fer_utils.paths import NOTEBOOKS_DIR

#: Paper settings for real datasets (6 frames, dlib HOG, 180×180), and a reduced size for the demo.
#: The demo's faces share one identity and differ only in expression. At Keras' default learning rate
#: the CNN often stalls on them (loss stuck at ln(classes)); equalised crops (CLAHE), a learning rate of
#: 5e-4 and batches of 16 make it leave that plateau within the 40 epochs.
PAPER_DEFAULTS = {
    "image_size": 180, "epochs": 30, "batch_size": 32, "learning_rate": 1e-3, "frames_per_video": 6, "detector": "hog", "equalize": "none"
}  # fmt: skip
DEMO_DEFAULTS = {
    "image_size": 64, "epochs": 40, "batch_size": 16, "learning_rate": 5e-4, "frames_per_video": 6, "detector": "hog", "equalize": "clahe"
}  # fmt: skip
PROTOCOLS_REPORTED = ("paper", "video", "subject")


@dataclass
class PipelineConfig:
    """Parameters of the main job (see ``fer run --help``)."""

    out_dir: str = "reports/demo"
    dataset: str = "demo"  # demo | ravdess | savee | mead | folder
    root: str | None = None  # dataset root (demo: <out>/data, generated when absent)
    image_size: int | None = None
    epochs: int | None = None
    frames_per_video: int | None = None
    detector: str | None = None
    equalize: str | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    protocols: tuple[str, ...] = PROTOCOLS_REPORTED
    seed: int = 0
    workers: int | None = None
    ablation_dropouts: tuple[float, ...] = (0.3, 0.5)
    ablation_l1s: tuple[float, ...] = (0.0, 1e-3)
    ablation_seeds: int = 1
    ablation_epochs: int | None = None
    demo_actors: int | None = None
    dataset_options: dict = field(default_factory=dict)

    def resolved(self) -> dict:
        defaults = DEMO_DEFAULTS if self.dataset == "demo" else PAPER_DEFAULTS
        return {
            key: getattr(self, key) if getattr(self, key) is not None else value
            for key, value in defaults.items()
        }


def _execute(notebook: str, output: Path, parameters: dict, cwd: Path) -> float:
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"→ {notebook} → {output}", flush=True)
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / notebook),
        str(output),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(cwd),
        progress_bar=False,
        request_save_on_cell_execute=True,
    )
    seconds = time.perf_counter() - started
    print(f"  done in {seconds:.0f} s", flush=True)
    return seconds


def run_pipeline(config: PipelineConfig) -> dict:
    """Run notebooks 01 → 02 (one run per protocol) → 03 (small ablation grid) → 04 (+ HTML report).

    Returns:
        Paths of what was made and the seconds each step took.
    """
    from fer_utils.data.datasets import DATASETS
    from fer_utils.faces.cache import FaceCache, cache_dir_for
    from fer_utils.faces.preprocess import PreprocessConfig, cache_config

    out = Path(config.out_dir).resolve()
    settings = config.resolved()
    dataset = "ravdess" if config.dataset == "demo" else config.dataset
    if config.dataset != "demo" and config.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {config.dataset!r}; choose demo or one of {', '.join(DATASETS)}")
    timings: dict[str, float] = {}
    started = time.perf_counter()

    root = Path(config.root) if config.root else None
    if config.dataset == "demo":
        from fer_utils.data.synthetic import make_demo_dataset

        root = root or out / "data"
        if not any(root.glob("Actor_*/*.mp4")):
            t = time.perf_counter()
            kwargs = {"actors": config.demo_actors} if config.demo_actors else {}
            make_demo_dataset(root, seed=config.seed, **kwargs)
            timings["demo data"] = time.perf_counter() - t
    elif root is None:
        raise ValueError(
            f"--root is required for dataset {config.dataset!r} (run `fer preprocess --help-dataset {dataset}`)"
        )

    cache_root = out / "cache"
    preprocess_config = PreprocessConfig(
        image_size=settings["image_size"],
        frames_per_video=settings["frames_per_video"],
        detector=settings["detector"],
        equalize=settings["equalize"],
    )
    timings["01 preprocessing"] = _execute(
        "01_preprocessing.ipynb",
        out / "notebooks" / "01_preprocessing.ipynb",
        {
            "dataset": dataset,
            "root": str(root),
            "cache_root": str(cache_root),
            **{
                name: getattr(preprocess_config, name)
                for name in (
                    "image_size",
                    "frames_per_video",
                    "detector",
                    "upsample",
                    "detect_width",
                    "margin",
                    "align",
                    "candidates_per_frame",
                    "min_faces",
                    "equalize",
                )
            },  # fmt: skip
            "workers": config.workers,
            "dataset_options": config.dataset_options,
        },
        out,
    )
    cache_dir = cache_dir_for(
        cache_root, dataset, cache_config(preprocess_config, dataset, config.dataset_options)
    )
    cache = FaceCache(cache_dir)
    if not len(cache):
        raise ValueError(f"preprocessing found no faces (see {cache_dir / 'skipped.csv'})")

    runs_dir = out / "runs"
    for protocol in config.protocols:
        run_dir = runs_dir / protocol
        if (run_dir / "metrics.json").exists():
            print(f"→ 02_training ({protocol}): finished run kept: {run_dir}")
            continue
        timings[f"02 training ({protocol})"] = _execute(
            "02_training.ipynb",
            out / "notebooks" / f"02_training-{protocol}.ipynb",
            {
                "cache_dir": str(cache_dir),
                "protocol": protocol,
                "epochs": settings["epochs"],
                "batch_size": settings["batch_size"],
                "learning_rate": settings["learning_rate"],
                "seed": config.seed,
                "run_dir": str(run_dir),
            },
            out,
        )

    timings["03 ablation"] = _execute(
        "03_regularization_ablation.ipynb",
        out / "notebooks" / "03_regularization_ablation.ipynb",
        {
            "cache_dir": str(cache_dir),
            "out_dir": str(runs_dir / "ablation"),
            "protocol": "subject" if "subject" in config.protocols else config.protocols[0],
            "epochs": config.ablation_epochs or settings["epochs"],
            "batch_size": settings["batch_size"],
            "learning_rate": settings["learning_rate"],
            "dropouts": list(config.ablation_dropouts),
            "l1s": list(config.ablation_l1s),
            "seeds": config.ablation_seeds,
            "workers": config.workers,
        },
        out,
    )

    results_notebook = out / "notebooks" / "04_results.ipynb"
    from fer_utils.viz.report import execute_results_notebook, notebook_to_html

    t = time.perf_counter()
    print(f"→ 04_results.ipynb → {results_notebook}", flush=True)
    report = notebook_to_html(execute_results_notebook(runs_dir, results_notebook), out / "report.html")
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


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="the main job: notebooks 01→04 on the demo dataset (default, offline) or a real dataset",
        description="Runs preprocessing, training (one run per protocol), a small regularization ablation and "
        "the results notebook + HTML report by papermill. Demo defaults: 64×64 CLAHE-equalised faces, 40 epochs, "
        "batch 16, learning rate 5e-4; real datasets get the paper's (6 frames, dlib HOG, 180×180, no equalisation, 30 epochs).",
    )
    parser.add_argument("--dataset", default="demo", help="demo (default) | ravdess | savee | mead | folder")
    parser.add_argument("--root", help="dataset root (demo: <out>/data, generated when absent)")
    parser.add_argument("--out", default=None, help="output folder (default reports/<dataset>)")
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--frames", type=int, dest="frames_per_video")
    parser.add_argument("--detector", choices=("hog", "cnn"))
    parser.add_argument("--equalize", choices=("none", "clahe"), help="contrast normalisation of crops")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument(
        "--protocols", nargs="+", default=list(PROTOCOLS_REPORTED), choices=("paper", "video", "subject")
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--ablation-seeds", type=int, default=1)
    parser.add_argument("--ablation-epochs", type=int)
    parser.add_argument("--demo-actors", type=int, help="demo only: number of synthetic actors")
    parser.set_defaults(func=_cli_run)


def _cli_run(args) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config = PipelineConfig(
        out_dir=args.out or f"reports/{args.dataset}",
        dataset=args.dataset,
        root=args.root,
        image_size=args.image_size,
        epochs=args.epochs,
        frames_per_video=args.frames_per_video,
        detector=args.detector,
        equalize=args.equalize,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        protocols=tuple(args.protocols),
        seed=args.seed,
        workers=args.workers,
        ablation_seeds=args.ablation_seeds,
        ablation_epochs=args.ablation_epochs,
        demo_actors=args.demo_actors,
    )
    result = run_pipeline(config)
    print("\nDone. Step times:")
    for step, seconds in result["timings"].items():
        print(f"  {step:<28} {seconds:7.1f} s")
    print(f"\nExecuted notebooks: {result['out_dir'] / 'notebooks'}")
    print(f"Runs:               {result['runs_dir']}")
    print(f"HTML report:        {result['report']}")
    print(f"Open the dashboard: fer dashboard {result['runs_dir']}")
    return 0
