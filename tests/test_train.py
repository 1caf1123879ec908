import json
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest
from paper_cnn import paper_cnn_parameters

from fer_utils.faces.cache import FaceCache
from fer_utils.faces.cache_writer import write_array_cache
from fer_utils.faces.preprocess import image_folder_cache
from fer_utils.training.model import build_paper_cnn
from fer_utils.training.run_listing import list_runs
from fer_utils.training.rundir import load_run
from fer_utils.training.splits import membership_hash
from fer_utils.training.train import TrainConfig, make_dataset, train_run


@pytest.fixture(scope="module")
def small_run(fer2013_small_cache, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "paper"
    return train_run(fer2013_small_cache.cache_dir, run_dir, protocol="paper", epochs=2, seed=0, verbose=0)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_run_directory_has_every_artifact(small_run, fer2013_small_cache):
    for name in ("config.json", "history.csv", "model.keras", "split.csv", "metrics.json", "predictions.csv"):
        assert (small_run.path / name).exists(), name
    metrics, config = small_run.outcome, small_run.setup
    assert metrics.status == "complete" and metrics.protocol == "paper"
    assert (
        metrics.num_params == build_paper_cnn(7, image_size=48).count_params() == paper_cnn_parameters(7, 48)
    )
    assert set(small_run.history.columns) == {
        "epoch", "accuracy", "loss", "val_accuracy", "val_loss", "test_accuracy", "test_loss",
        "val_macro_f1", "val_classes_predicted", "test_macro_f1", "test_classes_predicted",
        "dead_units", "grad_norm",
    }  # fmt: skip
    assert len(small_run.history) == 2
    split = pd.read_csv(small_run.path / "split.csv")
    assert split["face_id"].is_unique
    test_ids = split.loc[split["part"] == "test", "face_id"].to_numpy()
    assert config.split.test == len(test_ids) == len(small_run.predictions)
    assert config.split.test_hash == membership_hash(fer2013_small_cache.index, test_ids)
    assert sorted(small_run.predictions["face_id"]) == sorted(test_ids)
    assert np.asarray(metrics.frame.confusion_matrix).sum() == len(test_ids)
    probabilities = small_run.predictions[[f"prob_{label}" for label in small_run.labels]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    accuracy = (small_run.predictions["true_label"] == small_run.predictions["predicted_label"]).mean()
    assert metrics.frame.accuracy == pytest.approx(accuracy)
    assert isinstance(metrics.stalled, bool)
    # 2 epochs on 620 faces: the validation part is far from 100 %, so the epoch choice means something
    assert metrics.selection_saturated is False and metrics.selection_saturated_reason is None
    assert config.resized_faces is None  # the 48 px cache trains the 48 px model as it is
    # the size as requested (none: the cache's) and as resolved, apart
    assert config.setting("input_size") is None and config.image_size == 48 and config.schema_version == 2


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_same_seed_same_metrics(small_run, fer2013_small_cache, tmp_path):
    again = train_run(
        fer2013_small_cache.cache_dir, tmp_path / "again", protocol="paper", epochs=2, seed=0, verbose=0
    )
    assert again.outcome.frame == small_run.outcome.frame
    pd.testing.assert_frame_equal(again.history, small_run.history)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_an_existing_run_is_not_overwritten_by_accident(small_run, fer2013_small_cache):
    with pytest.raises(ValueError, match="already holds a complete run"):
        train_run(fer2013_small_cache.cache_dir, small_run.path, epochs=1)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_streaming_and_in_memory_pipelines_give_the_same_batches(fer2013_small_cache):
    cache = fer2013_small_cache
    ids = cache.index["face_id"].to_numpy()[:100]
    targets = np.arange(100) % 7
    in_memory = list(make_dataset(cache, ids, targets, 16, shuffle=True, seed=5).as_numpy_iterator())
    streamed = list(
        make_dataset(cache, ids, targets, 16, shuffle=True, seed=5, in_memory_limit_mb=0).as_numpy_iterator()
    )
    assert len(in_memory) == len(streamed) == 7
    for (faces_a, labels_a), (faces_b, labels_b) in zip(in_memory, streamed, strict=True):
        np.testing.assert_array_equal(labels_a, labels_b)
        np.testing.assert_array_equal(faces_a, faces_b)
    unshuffled, _ = next(make_dataset(cache, ids, targets, 16, in_memory_limit_mb=0).as_numpy_iterator())
    np.testing.assert_array_equal(unshuffled[..., 0], cache.faces(ids[:16]))


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_resize_on_the_fly(fer2013_small_cache):
    ids = fer2013_small_cache.index["face_id"].to_numpy()[:8]
    faces, _ = next(make_dataset(fer2013_small_cache, ids, np.zeros(8), 8, image_size=32).as_numpy_iterator())
    assert faces.shape == (8, 32, 32, 1)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_health_flags_and_baselines_come_from_the_test_part(small_run):
    metrics, predictions = small_run.outcome, small_run.predictions
    counts = predictions["true_label"].value_counts()
    assert metrics.baselines.majority_label == counts.index[0]
    assert metrics.majority_rate == pytest.approx(counts.iloc[0] / len(predictions))
    assert metrics.stalled == (metrics.frame.accuracy < metrics.majority_rate + 0.05)
    assert isinstance(metrics.underfit, bool) and metrics.converged == (
        not metrics.stalled and not metrics.underfit
    )
    assert metrics.recipe == "paper" and metrics.selection_metric == "val_accuracy"
    assert set(metrics.validation_classes_predicted) <= set(small_run.labels)
    assert 0 <= metrics.diagnostics["final_dead_units"] <= 1
    assert metrics.best_epoch == small_run.history["val_accuracy"].idxmax() + 1


@pytest.mark.slow  # an 8-epoch training that must learn: a real-training proof
def test_training_from_arrays_on_separable_faces(tmp_path):
    from skimage.data import astronaut

    face = cv2.resize(cv2.cvtColor(astronaut()[0:220, 140:330], cv2.COLOR_RGB2GRAY), (32, 32))
    rng = np.random.default_rng(0)
    faces, labels = [], []
    for i in range(120):
        noisy = np.clip(face.astype(int) + rng.normal(0, 8, face.shape), 0, 255).astype(np.uint8)
        label = "happy" if i % 2 else "sad"
        faces.append(noisy if label == "happy" else noisy[::-1])  # sad = upside-down face
        labels.append(label)
    cache = write_array_cache(tmp_path / "cache", np.stack(faces), labels)
    run = train_run(cache.cache_dir, tmp_path / "run", epochs=8, batch_size=16, seed=0, verbose=0)
    assert run.labels == ["happy", "sad"]
    assert run.outcome.frame.accuracy >= 0.9


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_bad_inputs_give_clear_errors(fer2013_small_cache, tmp_path):
    with pytest.raises(ValueError, match="unknown protocol"):
        TrainConfig(protocol="random")
    with pytest.raises(ValueError, match="subject"):
        train_run(fer2013_small_cache.cache_dir, tmp_path / "subject", protocol="subject", epochs=1)
    with pytest.raises(ValueError, match="at least 2 classes"):
        one_class = write_array_cache(tmp_path / "one", np.zeros((10, 16, 16), np.uint8), ["happy"] * 10)
        train_run(one_class.cache_dir, tmp_path / "one_run", epochs=1)
    with pytest.raises(ValueError, match="not a face cache"):
        train_run(tmp_path / "nowhere", tmp_path / "r", epochs=1)
    with pytest.raises(ValueError, match="dropout"):
        train_run(fer2013_small_cache.cache_dir, tmp_path / "bad_dropout", epochs=1, dropout=(0.3, 1.5, 0.3))


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_image_folder_records_undecodable_images_and_rejects_empty_classes(fer2013_root, tmp_path):
    root = tmp_path / "faces"
    for label in ("happy", "sad"):
        (root / label).mkdir(parents=True)
        for source in sorted((fer2013_root / "train" / label).iterdir())[:3]:
            (root / label / source.name).write_bytes(source.read_bytes())
    (root / "sad" / "broken.jpg").write_bytes(b"not a jpeg at all")
    cache = image_folder_cache(root, tmp_path / "cache", face_size=48, progress=False)
    assert len(cache) == 6
    assert cache.skipped["media_path"].str.endswith("broken.jpg").tolist() == [True]
    assert cache.skipped["reason"].iloc[0].startswith("unreadable")
    (root / "angry").mkdir()
    with pytest.raises(ValueError, match="empty"):
        image_folder_cache(root, tmp_path / "cache2", face_size=48, progress=False)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_list_runs_reports_unfinished_and_malformed_runs(small_run, tmp_path):
    import shutil

    shutil.copytree(small_run.path, tmp_path / "good")
    shutil.copytree(small_run.path, tmp_path / "broken")
    (tmp_path / "broken" / "metrics.json").write_text("{not json")
    shutil.copytree(small_run.path, tmp_path / "unfinished")
    (tmp_path / "unfinished" / "metrics.json").unlink()
    runs, problems = list_runs(tmp_path)
    assert [run.name for run in runs] == ["good"]
    assert "malformed" in problems["broken"] and "unfinished" in problems["unfinished"]
    assert load_run(tmp_path / "good").outcome == small_run.outcome


@pytest.mark.slow
def test_fer_train_learns_real_faces(fer2013_root, tmp_path):
    """The paper CNN through `fer train` on a class-balanced FER2013 subset beats the majority rate 1.5×."""
    command = [
        sys.executable, "-m", "fer_utils.cli", "train", "--images", str(fer2013_root), "--split-dirs",
        "--face-size", "48", "--cache-root", str(tmp_path / "cache"), "--run-dir", str(tmp_path / "run"),
        "--protocol", "fixed", "--epochs", "15", "--train-faces-per-class", "1000", "--seed", "0",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    test_labels = FaceCache(json.loads((tmp_path / "run" / "config.json").read_text())["cache_dir"]).index
    test_labels = test_labels[test_labels["split"] == "test"]["label"]
    majority = test_labels.value_counts(normalize=True).max()
    assert metrics["split"]["test"] == 3589
    print(f"FER2013 test accuracy {metrics['frame']['accuracy']:.4f}, majority rate {majority:.4f}")
    assert metrics["frame"]["accuracy"] >= 1.5 * majority


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_another_image_subset_is_another_cache(fer2013_root, tmp_path):
    three = image_folder_cache(
        fer2013_root, tmp_path, face_size=48, split_dirs=True, max_per_class=3, progress=False
    )
    four = image_folder_cache(
        fer2013_root, tmp_path, face_size=48, split_dirs=True, max_per_class=4, progress=False
    )
    assert three.cache_dir != four.cache_dir
    assert (len(three), len(four)) == (3 * 7 * 3, 4 * 7 * 3)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_every_recipe_ingredient_runs_and_is_recorded(fer2013_small_cache, tmp_path):
    run = train_run(
        fer2013_small_cache.cache_dir,
        tmp_path / "robust",
        recipe="robust",
        epochs=2,
        augment=True,
        label_smoothing=0.1,
        class_weighting="balanced",
        lr_schedule="cosine",
        warmup_epochs=0.5,
    )
    settings = run.setup.recipe_settings
    assert run.setup.recipe == "robust" and settings["input_scaling"] == "centered"
    assert settings["augment"] and settings["label_smoothing"] == 0.1 and settings["lr_schedule"] == "cosine"
    assert run.recipe == run.outcome.recipe_label
    assert run.recipe.startswith("robust (") and "augment=True" in run.recipe
    assert run.outcome.selection_metric == "val_macro_f1"
    assert run.outcome.best_epoch == run.history["val_macro_f1"].idxmax() + 1
    import keras

    rescale = keras.models.load_model(run.model_path).get_layer("rescale")
    assert (rescale.scale, rescale.offset) == (pytest.approx(1 / 127.5), -1.0)
    assert run.outcome.num_params == paper_cnn_parameters(7, 48)  # same architecture as the paper recipe
    with pytest.raises(ValueError, match="unknown recipe"):
        TrainConfig(recipe="magic")
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="sometimes")


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_transfer_from_a_run(small_run, fer2013_small_cache, tmp_path):
    run = train_run(
        fer2013_small_cache.cache_dir,
        tmp_path / "tuned",
        init_from=str(small_run.path),
        epochs=2,
        freeze_epochs=1,
    )
    transfer = run.setup.transfer
    assert transfer.copied == ["conv1", "conv2", "conv3", "dense"]
    assert transfer.head_classes_copied == small_run.labels and transfer.head_classes_new == []
    assert len(run.history) == 2
    with pytest.raises(ValueError, match="no model there"):
        train_run(
            fer2013_small_cache.cache_dir, tmp_path / "x", init_from=str(tmp_path / "nothing"), epochs=1
        )
    with pytest.raises(ValueError, match="init-from"):
        TrainConfig(freeze_epochs=2)


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_seeds_give_one_run_each_and_a_summary(fer2013_small_cache, tmp_path):
    from fer_utils.training.seeds import SEEDS_SUMMARY_FILE, SEEDS_TABLE_FILE, train_seeds

    config = TrainConfig(epochs=1)
    summary = train_seeds(fer2013_small_cache.cache_dir, tmp_path, config, [3, 4], workers=2, progress=False)
    table = pd.read_csv(tmp_path / SEEDS_TABLE_FILE)
    assert table["seed"].tolist() == [3, 4] and summary["runs"] == 2 and summary["seeds"] == [3, 4]
    runs = [load_run(tmp_path / f"seed-{seed}") for seed in (3, 4)]
    assert [run.setup.seed for run in runs] == [3, 4]
    assert all(run.setup.setting("threads") == 1 for run in runs)  # two cores → two runs × one thread
    accuracies = [run.outcome.frame.accuracy for run in runs]
    stats = summary["scores"]["test_accuracy"]
    assert stats["mean"] == pytest.approx(np.mean(accuracies))
    assert stats["spread"] == pytest.approx(max(accuracies) - min(accuracies))
    assert summary["converged"] + summary["stalled"] + summary["underfit"] == 2
    assert json.loads((tmp_path / SEEDS_SUMMARY_FILE).read_text()) == summary
    written = (tmp_path / "seed-3" / "metrics.json").stat().st_mtime_ns
    train_seeds(fer2013_small_cache.cache_dir, tmp_path, config, [3, 4], workers=2, progress=False)
    assert (tmp_path / "seed-3" / "metrics.json").stat().st_mtime_ns == written  # finished seeds are kept
    with pytest.raises(ValueError, match=r"(?s)other settings.*recipe 'paper' ≠ 'robust'"):
        train_seeds(fer2013_small_cache.cache_dir, tmp_path, TrainConfig(epochs=1, recipe="robust"), [3])


@pytest.mark.slow  # real data (../shared/data): the slow tier's
def test_recipe_study_table_matches_its_seed_runs(fer2013_small_cache, tmp_path):
    from fer_utils.experiments.recipe_study import folder_name, run_recipe_study

    table = run_recipe_study(
        fer2013_small_cache.cache_dir,
        tmp_path,
        TrainConfig(epochs=1),
        seeds=[0],
        configurations=["paper", "robust − recycling"],
        workers=2,
        progress=False,
    )
    assert table["configuration"].tolist() == ["paper", "robust − recycling"]
    ablated = load_run(tmp_path / folder_name("robust − recycling") / "seed-0")
    assert ablated.setup.recipe == "robust" and ablated.setup.recipe_settings["recycle_dead_units"] is False
    assert ablated.recipe == "robust (recycle_dead_units=False)"
    row = table.set_index("configuration").loc["robust − recycling"]
    assert row["test_accuracy_mean"] == pytest.approx(ablated.outcome.frame.accuracy)
    assert (tmp_path / "recipes.md").read_text().count("\n") == 4  # header, rule, two rows
    with pytest.raises(ValueError, match="unknown configuration"):
        run_recipe_study(fer2013_small_cache.cache_dir, tmp_path, TrainConfig(), [0], ["nonsense"])


def test_the_median_run_is_chosen_among_finished_seed_runs_never_from_seeds_csv(tmp_path):
    """seeds.csv may name any path; the median comes from the folder's own finished runs only (the
    choice among real runs: tests/test_nothing_lost_4.py, --from-study)."""
    from fer_utils.training.seeds import SEEDS_TABLE_FILE, median_run

    pd.DataFrame(
        {"seed": [0, 1, 2], "run": ["seed-0", "seed-1", "/elsewhere/run"], "test_accuracy": [0.9, 0.5, 0.7]}
    ).to_csv(tmp_path / SEEDS_TABLE_FILE, index=False)
    with pytest.raises(ValueError, match="holds no finished seed runs"):
        median_run(tmp_path)


#: From the recipe study (docs/training_reliability.md): the robust recipe on this subset gave
#: 46.4–48.6 % test accuracy over seeds 0–4 (spread 2.2 points; the paper recipe 41.9–46.7 %).
#: The bounds leave room for other CPUs' rounding.
ROBUST_MIN_ACCURACY = 0.44
ROBUST_MAX_SPREAD = 0.03


@pytest.mark.slow
def test_robust_recipe_converges_on_every_seed(fer2013_root, tmp_path):
    """`fer train --recipe robust --seeds 0 1 2` on the class-balanced FER2013 subset: no seed stalls or
    underfits, every seed lands in the measured band."""
    command = [
        sys.executable, "-m", "fer_utils.cli", "train", "--images", str(fer2013_root), "--split-dirs",
        "--face-size", "48", "--cache-root", str(tmp_path / "cache"), "--out", str(tmp_path / "robust"),
        "--protocol", "fixed", "--epochs", "15", "--train-faces-per-class", "1000", "--recipe", "robust",
        "--seeds", "0", "1", "2",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "robust" / "seeds.json").read_text())
    accuracy = summary["scores"]["test_accuracy"]
    print(f"robust recipe, seeds 0–2: {accuracy} ({summary['converged']} converged)")
    assert summary["runs"] == 3 and summary["converged"] == 3, result.stdout[-2000:]
    assert accuracy["min"] >= ROBUST_MIN_ACCURACY
    assert accuracy["spread"] <= ROBUST_MAX_SPREAD
    assert "3 seeds (robust): 3 converged" in result.stdout


def test_class_weights_balanced_and_sqrt_keep_the_mean_weight_at_one():
    from fer_utils.training.fit import class_weights

    targets = np.array([0] * 90 + [1] * 9 + [2] * 1)  # 90 %, 9 %, 1 %, class 3 absent
    assert class_weights(targets, 4, "none") is None
    for weighting, rare_to_common in (("balanced", 90.0), ("sqrt", np.sqrt(90.0))):
        weights = class_weights(targets, 4, weighting)
        per_face = np.array([weights[t] for t in targets])
        assert per_face.mean() == pytest.approx(1.0)
        assert weights[2] / weights[0] == pytest.approx(rare_to_common)
        assert weights[3] == 1.0
