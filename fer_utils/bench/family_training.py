"""Training speed of every architecture family (``fer bench --sections family_training``): images/s of
steady ``model.fit`` epochs at several batch sizes, on one thread (what a seed gets when two train side by
side on a 2-core machine), each in a fresh process, with its ratio to the family's compute floor (the
measured matmul rate over :data:`~fer_utils.bench.training.TRAINING_PASSES` × its forward multiply-adds)."""

from __future__ import annotations

import os
import time

import numpy as np

from fer_utils.bench.floor import matmul_rate
from fer_utils.bench.timing import in_fresh_process, timing_stats
from fer_utils.bench.training import TRAINING_PASSES

#: Per mode: batch sizes measured per family, random faces per epoch and timed epochs (after a warm-up one).
FAMILY_MODES = {
    "quick": {"batch_sizes": (32, 128), "faces": 256, "epochs": 1},
    "full": {"batch_sizes": (32, 64, 128, 256), "faces": 2048, "epochs": 3},
}


def family_sizes() -> dict[str, int]:
    """Each family at the input it trains at on FER2013 / FER+ (the paper CNN at the faces' 48 px)."""
    from fer_utils.training.architectures import ARCHITECTURES

    return {name: 48 if name == "paper" else family.input_size for name, family in ARCHITECTURES.items()}


def _family_worker(
    name: str, image_size: int, batch_size: int, faces: int, epochs: int, threads: int
) -> dict:
    """In a fresh process: steady images/s of ``model.fit`` for one family and batch size (8 classes,
    random uint8 faces from an in-memory ``tf.data`` pipeline, Adam; XLA off as on every CPU run)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from fer_utils.training.architectures import build_model, model_cost

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (faces, image_size, image_size, 1), dtype=np.uint8)
    labels = rng.integers(0, 8, faces).astype(np.int32)
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).prefetch(2)
    model = build_model(name, 8, image_size)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", jit_compile=False
    )
    model.fit(data, epochs=1, verbose=0, shuffle=False)  # warm-up: tracing, oneDNN primitive creation
    rates = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.fit(data, epochs=1, verbose=0, shuffle=False)
        rates.append(faces / (time.perf_counter() - started))
    return {
        "architecture": name,
        "image_size": image_size,
        "batch_size": batch_size,
        "threads": threads,
        "images_per_s": timing_stats(rates),
        **model_cost(model),
    }


def benchmark_family_training(quick: bool = False, threads: int = 1, batch_sizes=None) -> dict:
    """Every family × batch size (default the mode's): steady training img/s on ``threads`` threads and
    the ratio to its floor."""
    mode = FAMILY_MODES["quick" if quick else "full"]
    batch_sizes = batch_sizes or mode["batch_sizes"]
    rate = matmul_rate(threads, repeats=5 if quick else 15)
    rows = []
    for name, size in family_sizes().items():
        for batch_size in batch_sizes:
            row = in_fresh_process(
                _family_worker, name, size, batch_size, mode["faces"], mode["epochs"], threads
            )
            row["floor_images_per_s"] = rate["median"] * 1e9 / (2.0 * TRAINING_PASSES * row["multiply_adds"])
            row["ratio_to_floor"] = row["images_per_s"]["median"] / row["floor_images_per_s"]
            rows.append(row)
    return {"threads": threads, "matmul_gflops": rate, "floor_passes": TRAINING_PASSES, "rows": rows}


def family_training_table(section: dict) -> list[str]:
    """``benchmarks.md``'s table: one row per family × batch size."""
    if not section or not section.get("rows"):
        return []
    lines = [
        f"## Training speed per family ({section['threads']} thread, random faces, steady epochs)",
        "",
        "| family | input | parameters | multiply-adds | batch | img/s | floor img/s | ratio to floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in section["rows"]:
        lines.append(
            f"| {row['architecture']} | {row['image_size']} | {row['parameters']:,} | "
            f"{row['multiply_adds'] / 1e6:.1f} M | {row['batch_size']} | {row['images_per_s']['median']:.0f} | "
            f"{row['floor_images_per_s']:.0f} | {row['ratio_to_floor']:.2f} |"
        )
    rate = section["matmul_gflops"]["median"]
    lines += [
        "",
        f"Floor: {section['floor_passes']} × the forward multiply-adds at {rate:.1f} GFLOP/s (fp32 matmul).",
    ]
    return lines
