"""The files a bundled candidate ships as (``fer bundle-model``): the Keras model without optimizer state,
its int8 TFLite export calibrated on the run's training faces and float32 TFLite / ONNX copies, each with
its JSON spec (labels, input size, the dataset and targets it learned from, the pixel step ``equalize``
every predictor applies, the face pipeline for whole frames), named by dataset and family
(:func:`run_bundle_name`)."""

from __future__ import annotations

from pathlib import Path

from fer_utils.deploy.bundled import (
    BUNDLED_FILES,
    DETECT_WIDTH,
    PREDICT_MARGIN,
    bundled_files,
    bundled_name,
)
from fer_utils.deploy.export import export_model, run_calibration_faces, write_model_spec
from fer_utils.deploy.media_prediction import PREDICT_DETECTOR
from fer_utils.experiments.bundle_data import bundle_dataset, run_dataset
from fer_utils.files import deflate_zip
from fer_utils.training.model import load_keras_model
from fer_utils.training.model_files import model_spec, run_calibration
from fer_utils.training.runtime import import_tensorflow, stderr_silenced


def run_architecture(run) -> str:
    """The family a run trained (``paper`` for runs from before families)."""
    return run.setup.setting("architecture") or "paper"


def run_folder_name(run) -> str:
    """A run's folder as a study names it (``vgg_bn/seed-3``): provenance that holds on any machine, unlike
    the training machine's absolute path."""
    return "/".join(Path(run.path).parts[-2:])


def run_bundle_name(run) -> str:
    """The stem a run ships as: its dataset, family and input size (:func:`~fer_utils.deploy.bundled.bundled_name`)."""
    return bundled_name(run_architecture(run), run_dataset(run) or "fer2013", run.setup.image_size)


def ship_run(run, out_dir: Path) -> dict[str, Path]:
    """Write a run's model into ``out_dir`` as the bundled files (Keras without optimizer state, int8
    TFLite calibrated on the run's training faces), each with its JSON spec."""
    extra = run_spec(run)
    return write_shipped_files(
        load_keras_model(run.model_path),
        list(run.setup.labels),
        extra,
        run_calibration_faces(run.path),
        out_dir,
        bundled_files(run_bundle_name(run)),
    )


def ship_ensemble(
    ensemble_path: Path, runs: list, out_dir: Path, name: str, calibration: dict
) -> dict[str, Path]:
    """Write an ensemble of seed ``runs`` (its ``.keras`` file, :mod:`fer_utils.training.ensemble`) into
    ``out_dir`` as the bundled files named ``name``: the spec says the seeds, each member's family, seed and
    run folder (``vgg_bn/seed-3``), the summed cost and ``calibration`` (fitted on the ensemble itself);
    int8 calibrates on the first run's training faces."""
    ensemble_spec = model_spec(ensemble_path)
    extra = run_spec(runs[0]) | {
        "seed": None,
        "seeds": [run.setup.seed for run in runs],
        "architecture": "ensemble",
        "members": [
            {
                "architecture": run_architecture(run),
                "seed": run.setup.seed,
                "run": run_folder_name(run),
            }
            for run in runs
        ],
        "num_params": ensemble_spec["num_params"],
        "cost": ensemble_spec["cost"],
        "calibration": calibration,
    }
    return write_shipped_files(
        load_keras_model(ensemble_path),
        list(ensemble_spec["labels"]),
        extra,
        run_calibration_faces(runs[0].path),
        out_dir,
        bundled_files(name),
    )


def run_spec(run) -> dict:
    """What every shipped file of ``run`` says of it beyond labels and size: its data, targets, recipe,
    seed, family, cost, calibration and the face pipeline for whole frames with its pixel step."""
    spec = bundle_dataset(run_dataset(run) or "fer2013")
    return {
        "trained_on": spec.title,
        "dataset": spec.name,
        "targets": run.setup.setting("targets", "label"),
        "training_data": spec.training,
        "recipe": run.setup.setting("recipe"),
        "seed": run.setup.seed,
        "num_params": run.outcome.num_params,
        "architecture": run_architecture(run),
        "cost": run.outcome.cost and run.outcome.cost.to_json(),
        "calibration": run_calibration(run.path),
        "preprocessing": {
            # the detector predict uses on whole frames (its boxes framed as HOG's by the margin below);
            # the training faces came from the dataset's own crops
            "detector": PREDICT_DETECTOR,
            "margin": PREDICT_MARGIN,
            "detect_width": DETECT_WIDTH,
            "frames_per_video": 6,
            # the pixel step of the faces the run learned from: every predictor applies it to raw crops
            "equalize": (run.setup.preprocessing or {}).get("equalize", "none"),
        },
    }


def write_shipped_files(
    model, labels: list[str], extra: dict, calibration_faces, out_dir: Path, files: dict[str, str]
) -> dict[str, Path]:
    """``model`` as the bundled files named ``files`` in ``out_dir`` (Keras without optimizer state,
    deflated; int8 TFLite calibrated on ``calibration_faces``; float32 TFLite and ONNX), each with its spec
    (``extra``)."""
    import_tensorflow()
    with stderr_silenced():  # TensorFlow's first op repeats its oneDNN note past absl logging
        out_dir.mkdir(parents=True, exist_ok=True)
        keras_path = out_dir / files["keras"]
        model.save(keras_path)
        deflate_zip(keras_path)
        spec = {"format": "keras", "model_file": keras_path.name, "labels": labels}
        write_model_spec(keras_path, spec | {"image_size": int(model.input_shape[1]), **extra})
        int8_path = export_model(
            model, "tflite-int8", out_dir / files["tflite-int8"], labels, calibration_faces, extra
        )
        return {
            "keras": keras_path,
            "tflite-int8": int8_path,
            **write_fp32_exports(model, labels, out_dir, extra, files),
        }


def write_fp32_exports(
    model, labels: list[str], out_dir: Path, extra: dict, files: dict[str, str] | None = None
) -> dict[str, Path]:
    """The shipped model's float32 TFLite and ONNX exports (exact conversions of the Keras model), named
    as ``files`` (:func:`bundled_files`; default the paper CNN's)."""
    files = files or BUNDLED_FILES
    return {
        fmt: export_model(model, export_fmt, out_dir / files[fmt], labels, extra=extra)
        for fmt, export_fmt in (("tflite-fp32", "tflite"), ("onnx-fp32", "onnx"))
    }
