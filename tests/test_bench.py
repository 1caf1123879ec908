"""``fer bench``: multiply-add counting, timing helpers, targets and the report schema (not speeds)."""

from __future__ import annotations

import json

import pytest

from fer_utils.bench.floor import count_multiply_adds
from fer_utils.bench.run import run_benchmarks
from fer_utils.bench.targets import evaluate_targets
from fer_utils.bench.timing import cpu_info, time_calls


def test_multiply_adds_of_the_paper_cnn_are_counted_from_its_layers():
    from fer_utils.training.model import build_paper_cnn

    layers = {row["layer"]: row["multiply_adds"] for row in count_multiply_adds(build_paper_cnn(8, 180))}
    assert layers == {
        "conv1": 180 * 180 * 3 * 3 * 1 * 16,
        "conv2": 90 * 90 * 3 * 3 * 16 * 64,
        "conv3": 45 * 45 * 3 * 3 * 64 * 64,
        "dense": 22 * 22 * 64 * 16,
        "emotion": 16 * 8,
    }
    assert sum(layers.values()) == 154_460_544


def test_time_calls_reports_median_min_max_of_the_timed_runs():
    calls = []
    timing = time_calls(lambda: calls.append(1), warmup=3, repeats=7)
    assert len(calls) == 10 and timing["runs"] == 7
    assert 0 <= timing["min"] <= timing["median"] <= timing["max"]


def test_cpu_info_names_the_int8_dot_product_features():
    info = cpu_info()
    assert info["cores"] >= 1
    features = info["features"]
    assert {"avx2", "avx512_vnni", "avx_vnni", "arm_dotprod", "int8_dot_product"} <= set(features)
    assert features["int8_dot_product"] == any(
        features[name] for name in ("avx512_vnni", "avx_vnni", "amx_int8", "arm_dotprod", "arm_i8mm")
    )


def _row(engine, precision, batch, threads, ratio):
    return {
        "engine": engine,
        "precision": precision,
        "batch": batch,
        "threads": threads,
        "ratio_to_floor": ratio,
    }


def test_targets_are_judged_from_measured_ratios():
    results = {
        "inference": [
            _row("keras", "fp32", 1, 1, 1.9),
            _row("tflite", "fp32", 1, 1, 1.05),
            _row("tflite", "fp32", 64, 1, 0.5),
        ],
        "accuracy": {"rows": [{"model": "tflite-int8", "accuracy_delta": -0.02, "agreement": 0.97}]},
        "preprocessing": {"speedup": 12.0, "faces_default": 30, "faces_naive": 31},
        "training": {
            "rows": [{}],
            "pipeline_overhead": 0.04,
            "speedup_vs_default_fit": 1.6,
            "augmented_throughput_ratio": 0.8,
        },
    }
    met = {target["target"]: target["met"] for target in evaluate_targets(results)}
    assert met["best batch-1 one-thread path ≤ 1.1 × the fp32 floor"] is True  # batch 64 does not count
    assert met["stretch: below the floor"] is False
    assert met["int8 accuracy within 1 point of float"] is False
    assert met["preprocessing default ≥ 10 × naive clips/s, at least as many faces"] is False  # fewer faces
    assert met["training input-pipeline overhead ≤ 10 % over in-memory tensors"] is True
    assert met["steady training ≥ 1.5 × a default model.fit"] is True
    assert met["training with on-the-fly augmentation ≥ 85 % of the plain pipeline's img/s"] is False


def test_unknown_section_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark sections"):
        run_benchmarks(tmp_path, quick=True, sections=("floor", "gpu"))


@pytest.mark.slow
def test_quick_bench_writes_the_documented_schema(fer2013_root, pyfeat_media, tmp_path):
    from fer_utils.cli import main

    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "benchmarks.json").read_text())
    assert results["mode"] == "quick" and results["schema"] == 1
    assert {"cpu", "load_average_start", "versions"} <= set(results["machine"])
    floor = results["floor"]
    assert floor["multiply_adds_per_face"] == sum(layer["multiply_adds"] for layer in floor["layers"])
    assert set(floor["floor_ms_per_face"]) == {"1", "all"} and floor["floor_ms_per_face"]["1"] > 0
    combos = {(row["engine"], row["precision"], row["batch"], row["threads"]) for row in results["inference"]}
    for engine, precision in (
        ("keras", "fp32"),
        ("tflite", "fp32"),
        ("tflite", "int8"),
        ("onnxruntime", "fp32"),
    ):
        assert {(engine, precision, batch, 1) for batch in (1, 64)} <= combos
    for row in results["inference"]:
        assert row["ms"]["min"] <= row["ms"]["median"] <= row["ms"]["max"]
        assert row["ratio_to_floor"] > 0 and row["faces_per_s"] > 0
    models = {row["model"]: row for row in results["accuracy"]["rows"]}
    assert {"keras", "tflite-fp32", "tflite-int8", "onnx-fp32"} <= set(models)
    assert all(0 <= row["agreement"] <= 1 for row in models.values())
    assert {"tflite-fp32", "tflite-int8"} <= set(results["int8"])
    assert {row["feed"] for row in results["training"]["rows"]} == {
        "numpy",
        "memory",
        "pipeline",
        "augmented",
    }
    assert "settings" in results["preprocessing"] or "skipped" in results["preprocessing"]
    assert all(set(target) == {"target", "measured", "met"} for target in results["targets"])
    end_to_end = {row["case"]: row for row in results["end_to_end"]["rows"]}
    one_face = end_to_end["one face, video 640×360"]
    assert one_face["frames"] == 72 and one_face["faces_per_frame"] == 1.0  # single_face.mp4: every frame
    assert end_to_end["five people, still"]["faces_per_frame"] >= 4
    assert one_face["ms_per_frame"] == pytest.approx(sum(one_face["stages_ms"].values()), rel=0.5)
    memory = results["predict_memory"]
    assert [row["seconds_of_video"] for row in memory["rows"]] == [5, 60]
    assert all(row["exit"] == 0 and row["peak_rss_mib"] > 50 for row in memory["rows"])
    measured_targets = {target["target"] for target in results["targets"]}
    assert any("one-face" in target for target in measured_targets)
    assert any("peak memory" in target for target in measured_targets)
    markdown = (tmp_path / "benchmarks.md").read_text()
    assert "## Inference" in markdown and "## Targets" in markdown
    assert "## End to end" in markdown and "## Memory of `fer predict --fps 25`" in markdown
