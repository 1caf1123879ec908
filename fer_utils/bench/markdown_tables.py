"""``benchmarks.md``: the benchmark results as Markdown tables."""

from __future__ import annotations

import json


def _fmt_ms(timing: dict) -> str:
    return f"{timing['median']:.2f} ({timing['min']:.2f}–{timing['max']:.2f})"


def _engine_sections(results: dict) -> list[str]:
    """FLOP floor and inference-engine tables."""
    lines: list[str] = []
    floor = results.get("floor")
    if floor:
        rates = floor["matmul_gflops"]
        lines += [
            "## FLOP floor",
            "",
            f"{floor['multiply_adds_per_face']:,} multiply-adds per face ({floor['parameters']:,} parameters); "
            f"fp32 matmul {rates['1']['median']:.1f} GFLOP/s on 1 thread, {rates['all']['median']:.1f} on "
            f"{floor['threads_all']} → floor {floor['floor_ms_per_face']['1']:.2f} ms/face (1 thread), "
            f"{floor['floor_ms_per_face']['all']:.2f} ms/face (all threads).",
            "",
            "| layer | multiply-adds |",
            "| --- | ---: |",
            *[
                f"| {layer['layer']} ({layer['kind']}) | {layer['multiply_adds']:,} |"
                for layer in floor["layers"]
            ],
            "",
        ]
    if results.get("inference"):
        lines += [
            "## Inference",
            "",
            "| engine | precision | batch | threads | ms per batch | ms/face | faces/s | × floor |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in results["inference"]:
            lines.append(
                f"| {row['engine']} | {row['precision']} | {row['batch']} | {row['threads']} | "
                f"{_fmt_ms(row['ms'])} | {row['ms_per_face']:.2f} | {row['faces_per_s']:.0f} | "
                f"{row['ratio_to_floor']:.2f} |"
            )
        lines.append("")
    return lines


def _accuracy_sections(results: dict) -> list[str]:
    """Exported models' agreement, the int8 investigation and the rescale folding."""
    lines: list[str] = []
    accuracy = results.get("accuracy")
    if accuracy and accuracy.get("rows"):
        lines += [
            f"## Exported models vs Keras ({accuracy['test_faces']} FER2013 test faces)",
            "",
            "| model | agreement | accuracy | Δ accuracy (points) |",
            "| --- | ---: | ---: | ---: |",
            *[
                f"| {row['model']} | {100 * row['agreement']:.1f} % | {100 * row['accuracy']:.1f} % | "
                f"{100 * row['accuracy_delta']:+.2f} |"
                for row in accuracy["rows"]
            ],
            "",
        ]
    int8 = results.get("int8")
    if int8:
        lines += ["## int8 investigation", ""]
        for key in ("tflite-fp32", "tflite-int8"):
            if key in int8:
                item = int8[key]
                lines.append(
                    f"- {key}: ops {' '.join(item['ops'])}; XNNPACK partitions {item['xnnpack_partitions']}; "
                    f"batch 1, 1 thread: XNNPACK {_fmt_ms(item['batch1_1thread_ms']['xnnpack'])} ms, "
                    f"built-in kernels {_fmt_ms(item['batch1_1thread_ms']['builtin_kernels'])} ms"
                )
        for key in ("onnx-fp32", "onnx-int8"):
            if key in int8:
                kernels = ", ".join(
                    f"{row['op']} {row['us_per_inference'] / 1e3:.2f} ms" for row in int8[key]["kernels"][:6]
                )
                lines.append(f"- {key} kernels (batch 1, 1 thread): {kernels}")
        lines.append("")
    folding = results.get("rescale_folding")
    if folding:
        lines += [
            "## Rescale folding",
            "",
            f"{folding['engine']}: rescaling kept {_fmt_ms(folding['rescale_kept_ms'])} ms, folded into conv1 "
            f"{_fmt_ms(folding['rescale_folded_ms'])} ms (saves {folding['saved_ms']:.2f} ms); {folding['note']}.",
            "",
        ]
    return lines


def _pipeline_sections(results: dict) -> list[str]:
    """Preprocessing, training feeds and the speed targets."""
    lines: list[str] = []
    preprocessing = results.get("preprocessing")
    if preprocessing:
        lines += ["## Preprocessing", ""]
        if preprocessing.get("markdown"):
            lines += [preprocessing["markdown"], ""]
        elif preprocessing.get("skipped"):
            lines += [f"Skipped: {preprocessing['skipped']}", ""]
        else:
            lines += ["```json", json.dumps(preprocessing, indent=1, default=str)[:4000], "```", ""]
    training = results.get("training")
    if training and training.get("rows"):
        lines += [
            f"## Training ({training['image_size']}×{training['image_size']}, batch {training['batch_size']})",
            "",
            "| feed | settings | threads | images | first epoch img/s | steady img/s | floor img/s | ratio to floor |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in training["rows"]:
            steady = row["steady_images_per_s"]
            floor = f"{row['floor_images_per_s']:.0f}" if "floor_images_per_s" in row else "—"
            ratio = f"{row['ratio_to_floor']:.2f}" if "ratio_to_floor" in row else "—"
            lines.append(
                f"| {row['feed']} | {'tuned' if row['tuned'] else 'default'} (oneDNN {row['onednn']}) | "
                f"{row.get('threads', '—')} | {row['images']} | {row['first_epoch_images_per_s']:.1f} | "
                f"{steady['median']:.1f} ({steady['min']:.1f}–{steady['max']:.1f}) | {floor} | {ratio} |"
            )
        if training.get("floor_passes"):
            lines += [
                "",
                f"Floor: {training['floor_passes']} × the forward multiply-adds per image (forward + backward) "
                "at the floor section's measured matmul rate for that thread count.",
            ]
        lines += [
            "",
            f"Pipeline overhead vs in-memory tensors: {100 * training['pipeline_overhead']:+.1f} %; "
            f"speed-up vs a default model.fit: {training['speedup_vs_default_fit']:.2f} ×; "
            f"with augmentation: {100 * training.get('augmented_throughput_ratio', float('nan')):.1f} % "
            "of the plain pipeline's img/s.",
            "",
        ]
    elif training and training.get("skipped"):
        lines += ["## Training", "", f"Skipped: {training['skipped']}", ""]
    if results.get("targets"):
        lines += ["## Targets", "", "| target | measured | met |", "| --- | --- | --- |"]
        for target in results["targets"]:
            met = {True: "yes", False: "**no**", None: "not measured"}[target["met"]]
            lines.append(f"| {target['target']} | {target['measured']} | {met} |")
        lines.append("")
    return lines


def markdown_report(results: dict) -> str:
    """The benchmark results as Markdown tables."""
    machine = results["machine"]
    features = ", ".join(name for name, on in machine["cpu"]["features"].items() if on) or "none"
    lines = [
        f"# Benchmarks ({results['mode']})",
        "",
        f"Machine: {machine['cpu']['model']}, {machine['cpu']['cores']} cores; features: {features}. "
        f"Load average at start: {machine['load_average_start']}. Created {results['created']}.",
        "Timings: median (min–max) of repeated runs after warm-up.",
        "",
    ]
    for section in (_engine_sections, _accuracy_sections, _pipeline_sections):
        lines += section(results)
    from fer_utils.bench.end_to_end import markdown_sections

    lines += markdown_sections(results.get("end_to_end"), results.get("predict_memory"))
    from fer_utils.bench import keyframes

    lines += keyframes.markdown_sections(results.get("keyframes"), results.get("detect_scale"))
    from fer_utils.bench import detectors

    lines += detectors.markdown_section(results.get("detectors"))
    lines += engine_markdown(results.get("engine_choice"))
    from fer_utils.bench.family_training import family_training_table

    lines += family_training_table(results.get("family_training"))
    return "\n".join(lines)


def engine_markdown(choice: dict | None) -> list[str]:
    """The bundled model's engine choice (``fer predict --engine auto``) as a table."""
    if not choice or "ms_per_face" not in choice:
        return []
    lines = [
        "## Engine of `fer predict` (bundled model, batch 1, interleaved rounds)",
        "",
        f"Chosen: **{choice['engine']}** ({choice.get('how', '')}); threads {choice.get('threads') or 'all'}; "
        f"face {choice.get('face_size')} px.",
        "",
        "| engine | ms/face | ratio to fastest |",
        "|---|---|---|",
    ]
    for engine, ms in choice["ms_per_face"].items():
        lines.append(f"| {engine} | {ms:.3f} | {choice['ratio_to_fastest'][engine]:.2f} |")
    return [*lines, ""]
