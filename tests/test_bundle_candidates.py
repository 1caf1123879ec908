"""``fer bundle-model`` beyond FER2013 (issue 28): a FER+ study (8 classes with contempt, raw pixels) ships as
``ferplus_<family>_<size>`` whose specs declare its 8 labels and the pixel step ``none``; the card measures
each shipped candidate from its files (test split, served raw faces with one crop and flip, per-class recall,
neutral rate, ECE, parameters, int8 ms/face) and the default among candidates is chosen by the rule stated
once in ``default_rule.choose_default`` and printed verbatim in the card. On a FER+ layout the test
generates (a few faces per class); the real copy in ../shared/data in the slow tier."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile

import numpy as np
import pytest

from fer_utils.data.ferplus import FERPLUS_LABELS, VOTE_COLUMNS
from fer_utils.deploy.media_prediction import PREDICT_DETECTOR

FERPLUS_CLASSES = list(FERPLUS_LABELS.values())
#: The original FER2013 label of each FER+ class's faces in the generated layout (contempt: neutral).
ORIGINAL = {label: ("neutral" if label == "contempt" else label) for label in FERPLUS_CLASSES}
FER2013_FOLDER = {"fearful": "fear", "surprised": "surprise"}


def _votes(label: str) -> list[int]:
    votes = [0] * len(VOTE_COLUMNS)
    index = list(FERPLUS_LABELS.values()).index(label)
    votes[index] += 8
    votes[0] += 2  # two neutral votes: the distribution is not one-hot
    return votes


def _face(rng, label_index: int) -> np.ndarray:
    """A 48×48 raw face: a class-dependent bright band on noise (learnable, not equalized)."""
    face = rng.integers(40, 90, (48, 48)).astype(np.uint8)
    face[label_index * 6 : label_index * 6 + 6, :] = 200
    return face


def make_ferplus_layout(root, per_split=(("FER2013Train", 10), ("FER2013Valid", 3), ("FER2013Test", 3))):
    """A small FER+ layout: label.csv per split folder, raw png faces, and fer2013_labels.csv."""
    import cv2

    rng = np.random.default_rng(0)
    number, originals = 0, []
    usage = {"FER2013Train": "Training", "FER2013Valid": "PublicTest", "FER2013Test": "PrivateTest"}
    for folder, count in per_split:
        (root / folder).mkdir(parents=True)
        with open(root / folder / "label.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            for index, label in enumerate(FERPLUS_CLASSES):
                for _ in range(count):
                    name = f"fer{number:07d}.png"
                    number += 1
                    cv2.imwrite(str(root / folder / name), _face(rng, index))
                    writer.writerow([name, "(0, 0, 48, 48)", *_votes(label)])
                    original = FER2013_FOLDER.get(ORIGINAL[label], ORIGINAL[label])
                    originals.append([f"{folder}/{name}", usage[folder], original, "matched", "", "0"])
    with open(root / "fer2013_labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "usage", "fer2013_label", "status", "fer2013_jpeg", "one_minus_correlation"])
        writer.writerows(originals)
    return root


@pytest.fixture(scope="module")
def ferplus_study(tmp_path_factory):
    """A generated FER+ layout and a two-seed, one-epoch ``fer study-models`` folder of the paper CNN on
    its vote distribution (protocol fixed)."""
    from fer_utils.experiments.bundle_data import bundle_cache
    from fer_utils.experiments.model_study import run_model_study
    from fer_utils.training.config import TrainConfig

    tmp = tmp_path_factory.mktemp("ferplus_bundle")
    root = make_ferplus_layout(tmp / "fer2013plus")
    cache = bundle_cache("ferplus", root, tmp / "cache", workers=1)
    config = TrainConfig(protocol="fixed", epochs=1, targets="distribution", batch_size=16, threads=1)
    run_model_study(cache.cache_dir, tmp / "study", config, ["paper"], [0, 1], workers=1, progress=False)
    return root, tmp / "study"


def _card_markdown(path):
    path.write_text("# card\n\n<!-- card-numbers -->\nold\n<!-- /card-numbers -->\n\ntail\n")
    return path


def test_a_ferplus_study_ships_an_8_class_candidate_with_raw_pixels(ferplus_study, tmp_path, monkeypatch):
    from fer_utils.deploy import bundled, engines
    from fer_utils.experiments import bundle_model, default_rule

    root, study = ferplus_study
    models = tmp_path / "models"
    shutil.copytree(bundled.BUNDLED_DIR, models)  # the shipped candidates compete too
    shipped, previous = bundled.shipped_candidates(models), bundled.default_model(models)
    markdown = _card_markdown(tmp_path / "model_card.md")
    card = bundle_model.build_bundled_model(
        root, tmp_path / "work", [0], out_dir=models, card_markdown=markdown, from_study=study
    )
    assert card["name"] == "ferplus_paper_48" and card["dataset"] == "ferplus"
    assert card["shipped_run"] == f"paper/seed-{card['shipped_seed']}"  # no machine path on the card
    files = bundled.bundled_files("ferplus_paper_48")
    assert files["tflite-int8"] == "ferplus_paper_48_int8.tflite"
    for name in files.values():
        spec = json.loads((models / f"{name}.json").read_text())
        assert sorted(spec["labels"]) == sorted(FERPLUS_CLASSES) and len(spec["labels"]) == 8
        assert spec["preprocessing"]["equalize"] == "none"
        assert spec["preprocessing"]["detector"] == PREDICT_DETECTOR
        assert spec["dataset"] == "ferplus" and spec["targets"] == "distribution"
    assert bundled.shipped_candidates(models) == sorted([*shipped, "ferplus_paper_48"])

    # the card: FER+ test per file, served raw faces (both sets, one crop and flip), int8 ms, parameters
    assert card["test_set"] == "FER+ test" and set(card["test"]) == set(files)
    assert card["int8_ms_per_face"] > 0 and card["training"]["num_params"] > 0
    for name in ("fer2013_privatetest", "ferplus_test"):
        for tta in ("none", "flip"):
            row = card["served"][name][tta]
            assert {"balanced_accuracy", "neutral_rate", "recall", "ece"} <= set(row)
    assert set(card["served"]["ferplus_test"]["none"]["recall"]) == set(FERPLUS_CLASSES)

    # the default: chosen by the rule from the public figures, written once, printed verbatim
    choice = json.loads((models / bundled.DEFAULT_CHOICE_FILE).read_text())
    assert set(choice["figures"]) == {*shipped, "ferplus_paper_48"}
    assert choice["model"] == default_rule.choose_default(choice["figures"], previous)
    assert card["default"] == choice["model"] == bundled.default_model(models)
    text = markdown.read_text()
    assert "\n".join(f"> {line}" if line else ">" for line in default_rule.rule_text().splitlines()) in text
    assert "#### `ferplus_paper_48`" in text and "#### `fer2013_robust_48`" in text
    assert "non-neutral answered neutral" in text and "Per-class recall" in text and "| contempt |" in text
    assert "int8 " in text and "ms per face" in text and text.endswith("tail\n")

    # fer predict / fer_utils.predict take the candidate by name
    monkeypatch.setattr(bundled, "BUNDLED_DIR", models)
    monkeypatch.setattr(engines, "BUNDLED_DIR", models)
    assert bundled.is_bundled_name("ferplus_paper_48") and bundled.is_bundled_name("paper")
    predictor = engines.bundled_predictor("tflite-int8", 1, "ferplus_paper_48")
    assert predictor.path.name == "ferplus_paper_48_int8.tflite" and len(predictor.labels) == 8
    from fer_utils.api import predict

    face = np.full((48, 48, 3), 120, np.uint8)
    rows = predict(face, model="ferplus_paper_48", detector="none", engine="tflite-int8")
    assert rows.loc[0, "predicted_label"] in FERPLUS_CLASSES and "prob_contempt" in rows


def test_seeds_ship_as_one_ensemble_file_with_the_ensembles_distribution_on_the_card(ferplus_study, tmp_path):
    import keras

    from fer_utils.deploy import bundled
    from fer_utils.deploy.predictors import load_predictor
    from fer_utils.experiments import bundle_model
    from fer_utils.experiments.served_scores import raw_test_faces
    from fer_utils.training.model import load_keras_model, logits_model
    from fer_utils.training.seeds import finished_seed_runs

    root, study = ferplus_study
    models, work = tmp_path / "models", tmp_path / "work"
    markdown = _card_markdown(tmp_path / "model_card.md")
    card = bundle_model.build_bundled_model(
        root, work, [0], out_dir=models, card_markdown=markdown, from_study=study, ensemble=2
    )
    name = "ferplus_paper_x2_48"
    assert card["name"] == name and bundled.shipped_candidates(models) == [name]
    runs = sorted(finished_seed_runs(study / "paper"), key=lambda run: run.setup.seed)
    single = runs[0].outcome.num_params
    for path in (models / file for file in bundled.bundled_files(name).values()):
        spec = json.loads((models / f"{path.name}.json").read_text())
        assert spec["architecture"] == "ensemble" and spec["seeds"] == [0, 1] and spec["seed"] is None
        assert [member["seed"] for member in spec["members"]] == [0, 1]
        assert [member["run"] for member in spec["members"]] == ["paper/seed-0", "paper/seed-1"]
        assert spec["num_params"] == 2 * single and spec["preprocessing"]["equalize"] == "none"
        assert spec["calibration"]["fitted_on"].startswith("FER+ validation")

    # the shipped Keras file is deflated (Keras stores it uncompressed) and answers the softmax of the two
    # runs' mean logits
    with zipfile.ZipFile(models / f"{name}.keras") as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    faces, _ = raw_test_faces(root, "majority")
    batch = faces[:, :, :, None].astype("float32")
    logits = [logits_model(load_keras_model(run.model_path)).predict(batch, verbose=0) for run in runs]
    expected = keras.ops.convert_to_numpy(keras.ops.softmax((logits[0] + logits[1]) / 2))
    shipped = load_predictor(models / f"{name}.keras", num_threads=1).predict_proba(faces, calibrated=False)
    np.testing.assert_allclose(shipped, expected, atol=1e-5)

    # the card: the ensembles' distribution (one ensemble of seeds 0–1 here), what shipped, the sum cost
    ensemble = card["ensemble"]
    assert ensemble["size"] == 2 and [row["seeds"] for row in ensemble["ensembles"]] == [[0, 1]]
    assert ensemble["shipped_seeds"] == card["shipped_seeds"] == [0, 1]
    assert card["shipped_run"] == ensemble["ensembles"][0]["file"] == "ferplus_paper_x2_48-seeds-0-1.keras"
    assert ensemble["ensembles"][0]["accuracy"] == pytest.approx(card["test"]["keras"]["accuracy"])
    assert card["training"]["members"] == 2 and card["training"]["num_params"] == 2 * single
    text = markdown.read_text()
    assert "`paper` × 2 seeds" in text and "Ensembles of 2 (seeds in order, disjoint groups)" in text
    assert "seeds 0–1 " in text and "(one ensemble: no distribution over ensembles yet)" in text

    # with several ensembles the card gives their distribution and names the median that shipped
    from fer_utils.experiments.model_card import ensemble_text

    rows = [{"seeds": [0, 1, 2], "accuracy": 0.85}, {"seeds": [3, 4, 5], "accuracy": 0.86}]
    scores = {"accuracy": {"mean": 0.855, "sd": 0.00707, "min": 0.85}}
    text = ensemble_text(
        {"size": 3, "grouping": "g", "ensembles": rows, "scores": scores, "shipped_seeds": [0, 1, 2]}
    )
    assert "seeds 0–2 85.0 %, seeds 3–5 86.0 %; 85.5 ± 0.7 % (min 85.0 %)" in text
    assert text.endswith("Shipped: the ensemble of seeds 0, 1, 2, the median.")

    # shipping again reuses the ensemble file its spec says is made of these runs; with --extend-card the
    # ensembles an earlier bundle recorded (here: the card rewritten as if seeds 2–3 had been scored in
    # another session) stay in the distribution, and the group trained here ships
    written = next((work / "ensembles").glob("*.keras"))
    stamp = written.stat().st_mtime_ns
    card_path = models / bundled.card_file_name(name)
    earlier = json.loads(card_path.read_text())
    assert earlier["study_settings"]["epochs"] == 1 and "seed" not in earlier["study_settings"]
    earlier["ensemble"]["ensembles"][0] |= {"seeds": [2, 3], "accuracy": 0.25}
    card_path.write_text(json.dumps(earlier))
    card = bundle_model.build_bundled_model(
        root,
        work,
        [0],
        out_dir=models,
        card_markdown=markdown,
        from_study=study,
        ensemble=2,
        extend_card=True,
    )
    assert written.stat().st_mtime_ns == stamp
    ensemble = card["ensemble"]
    assert [row["seeds"] for row in ensemble["ensembles"]] == [[2, 3], [0, 1]]
    assert ensemble["trained_here"] == [[0, 1]] and card["shipped_seeds"] == [0, 1]
    accuracy = card["test"]["keras"]["accuracy"]
    assert ensemble["scores"]["accuracy"]["mean"] == pytest.approx((0.25 + accuracy) / 2)
    assert (
        ensemble["scores"]["accuracy"]["min"] == min(0.25, accuracy) and ensemble["unverified_settings"] == []
    )
    assert "seeds 2–3 25.0 % (scored " in markdown.read_text()
    assert "Shipped: the ensemble of seeds 0, 1, the one trained for this bundle" in markdown.read_text()


def test_an_earlier_card_joins_only_with_the_same_training_settings(ferplus_study, tmp_path):
    from fer_utils.experiments.bundle_ensemble import earlier_ensembles
    from fer_utils.experiments.bundle_model import build_bundled_model
    from fer_utils.experiments.model_card import study_settings
    from fer_utils.training.seeds import finished_seed_runs

    root, study = ferplus_study
    run = finished_seed_runs(study / "paper")[0]
    settings = study_settings(run)
    row = {"seeds": [4, 5], "accuracy": 0.8, "file": "/gone/x.keras"}
    card = {"created": "2026-12-01T10:00:00+00:00", "dataset": "ferplus", "study_settings": settings}
    card["ensemble"] = {"size": 2, "ensembles": [row]}
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card))
    rows, unverified = earlier_ensembles(path, settings, "ferplus", 2)
    assert rows == [{"scored": "2026-12-01T10:00:00+00:00", **row}] and unverified == []

    # every differing setting is named, in one line
    path.write_text(json.dumps(card | {"study_settings": settings | {"epochs": 5, "batch_size": 64}}))
    with pytest.raises(ValueError, match=r"trained otherwise: epochs 5 ≠ 1, batch_size 64 ≠ 16$"):
        earlier_ensembles(path, settings, "ferplus", 2)
    for other, message in (
        ({"dataset": "fer2013raw"}, "dataset 'fer2013raw' ≠ 'ferplus'"),
        ({"ensemble": {"size": 3, "ensembles": [row]}}, "records no ensembles of 2 \\(found: 3\\)"),
    ):
        path.write_text(json.dumps(card | other))
        with pytest.raises(ValueError, match=message):
            earlier_ensembles(path, settings, "ferplus", 2)
    with pytest.raises(ValueError, match="no earlier card at"):
        earlier_ensembles(tmp_path / "none.json", settings, "ferplus", 2)

    # a card from before study_settings is compared on what it records; the rest is said
    training = {"architecture": "paper", "epochs": 1, "image_size": 48, "recipe": settings["recipe"]}
    training["recipe_settings"] = {
        key: settings[key] for key in ("learning_rate", "augment", "label_smoothing")
    }
    older = {key: value for key, value in card.items() if key != "study_settings"}
    path.write_text(json.dumps(older | {"training": training, "targets": "distribution"}))
    rows, unverified = earlier_ensembles(path, settings, "ferplus", 2)
    assert [row["seeds"] for row in rows] == [[4, 5]] and {"batch_size", "dropout", "cache_key"} <= set(
        unverified
    )
    # a card that took rows from such a card passes their unchecked settings on
    chained = card | {"ensemble": {"size": 2, "ensembles": [row], "unverified_settings": ["dropout"]}}
    path.write_text(json.dumps(chained))
    assert earlier_ensembles(path, settings, "ferplus", 2)[1] == ["dropout"]
    path.write_text(json.dumps(older | {"training": training | {"epochs": 30}, "targets": "distribution"}))
    with pytest.raises(ValueError, match="epochs 30 ≠ 1"):
        earlier_ensembles(path, settings, "ferplus", 2)

    with pytest.raises(ValueError, match="--extend-card adds earlier ensembles"):
        build_bundled_model(
            root, tmp_path / "work", [0], from_study=study, extend_card=True, card_markdown=None
        )
    assert not (tmp_path / "work").exists()


def test_a_card_trained_otherwise_is_refused_before_the_seeds_train(ferplus_study, tmp_path, monkeypatch):
    """Without ``--from-study`` the seeds would train for hours before the card is read: the settings they
    will record are known from their plan, equal to what a run of that plan records, and checked first."""
    import dataclasses

    from fer_utils.deploy.bundled import card_file_name
    from fer_utils.experiments.bundle_data import bundle_cache
    from fer_utils.experiments.bundle_model import build_bundled_model, bundled_train_config
    from fer_utils.experiments.model_card import planned_study_settings, study_settings
    from fer_utils.training.config import TrainConfig
    from fer_utils.training.plan import RunPlan
    from fer_utils.training.seeds import finished_seed_runs

    root, study = ferplus_study
    run = finished_seed_runs(study / "paper")[0]
    cache = bundle_cache("ferplus", root, root.parent / "cache")
    studied = TrainConfig(protocol="fixed", epochs=1, targets="distribution", batch_size=16, threads=1)
    studied = dataclasses.replace(studied, architecture="paper", input_size=48)
    assert planned_study_settings(RunPlan.resolve(studied, cache)) == study_settings(run)

    monkeypatch.setenv("FER_CACHE_ROOT", str(root.parent / "cache"))
    planned = planned_study_settings(RunPlan.resolve(bundled_train_config(1, targets="distribution"), cache))
    shipped = tmp_path / "models"
    shipped.mkdir()
    card = {"dataset": "ferplus", "study_settings": planned | {"epochs": 80}}
    card["ensemble"] = {"size": 2, "ensembles": [{"seeds": [4, 5], "accuracy": 0.8}]}
    (shipped / card_file_name("ferplus_paper_x2_48")).write_text(json.dumps(card))
    with pytest.raises(
        ValueError, match=r"model_card_ferplus_paper_x2_48.json was trained otherwise: epochs 80 ≠ 1$"
    ):
        build_bundled_model(
            root,
            tmp_path / "work",
            [0, 1],
            epochs=1,
            out_dir=shipped,
            card_markdown=None,
            dataset="ferplus",
            targets="distribution",
            ensemble=2,
            extend_card=True,
        )
    assert not (tmp_path / "work" / "seeds").exists()


def test_a_distilled_candidates_card_names_its_teacher_by_file_not_by_path():
    from fer_utils.deploy import bundled
    from fer_utils.experiments.model_card import card_tables, distillation_text

    card = bundled.read_model_card(model="ferplus_vgg_bn_x3_48")  # a real shipped card, trained without one
    assert card["study_settings"]["teacher"] is None and "Distilled" not in card_tables(card)
    teacher = {"distill_temperature": 4.0, "distill_weight": 0.5}
    card["study_settings"] |= teacher | {"teacher": "/home/me/fer/models/ferplus_vgg_bn_x3_48.keras"}
    clause = "Distilled from `ferplus_vgg_bn_x3_48.keras` (temperature 4, teacher term weight 0.5)."
    assert clause in card_tables(card) and "/home/me" not in card_tables(card)
    run_teacher = distillation_text(teacher | {"teacher": "/home/me/runs/study-ferplus/vgg_bn/seed-1"})
    assert run_teacher.startswith(" Distilled from `vgg_bn/seed-1` (temperature 4")


def test_seeds_are_grouped_in_order_into_disjoint_ensembles():
    from types import SimpleNamespace

    from fer_utils.experiments.bundle_ensemble import seed_groups

    runs = [SimpleNamespace(setup=SimpleNamespace(seed=seed)) for seed in (5, 0, 3, 1, 2, 4, 6)]
    groups = seed_groups(runs, 3)
    assert [[run.setup.seed for run in group] for group in groups] == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match="needs at least 3 finished seeds, found 2"):
        seed_groups(runs[:2], 3)
    with pytest.raises(ValueError, match="at least two seeds, got --ensemble 1"):
        seed_groups(runs, 1)


def test_an_ensemble_larger_than_the_seeds_to_train_is_refused_before_any_work(tmp_path):
    from fer_utils.experiments.bundle_model import build_bundled_model

    for ensemble, message in (
        (3, "--ensemble 3 needs at least 3 seeds; --seeds gives 2"),
        (0, "--ensemble 0: give 1"),
    ):
        with pytest.raises(ValueError, match=message):
            build_bundled_model(
                tmp_path / "none", tmp_path / "work", [0, 1], ensemble=ensemble, card_markdown=None
            )
    assert not (tmp_path / "work").exists()


def test_every_shipped_spec_names_the_detector_predict_uses_on_whole_frames():
    from fer_utils.deploy.bundled import BUNDLED_DIR, bundled_files, shipped_candidates

    candidates = shipped_candidates()
    assert len(candidates) >= 2
    for candidate in candidates:
        for name in bundled_files(candidate).values():
            spec = json.loads((BUNDLED_DIR / f"{name}.json").read_text())
            assert spec["preprocessing"]["detector"] == PREDICT_DETECTOR, name


def test_the_default_is_the_most_accurate_candidate_that_clears_both_per_class_floors():
    from fer_utils.experiments.default_rule import choose_default

    def figure(accuracy, balanced, neutral_rate):
        return {"accuracy": accuracy, "balanced_accuracy": balanced, "neutral_rate": neutral_rate}

    # the FER+ valid figures the package's candidates had when the rule changed (rounded)
    figures = {
        "fer2013_robust_48": figure(0.662, 0.541, 0.081),
        "fer2013raw_vgg_bn_48": figure(0.709, 0.627, 0.040),
        "ferplus_vgg_bn_48": figure(0.857, 0.750, 0.077),
        "ferplus_vgg_bn_x3_48": figure(0.866, 0.727, 0.084),
    }
    # the higher balanced accuracy does not decide once both clear the floors: accuracy does
    assert choose_default(figures, "ferplus_vgg_bn_48") == "ferplus_vgg_bn_x3_48"
    # a more accurate candidate under either floor is passed over
    figures["ferplus_vgg_bn_x3_48"]["neutral_rate"] = 0.101  # answers "neutral" too often
    assert choose_default(figures, "fer2013_robust_48") == "ferplus_vgg_bn_48"
    figures["ferplus_vgg_bn_x3_48"] = figure(0.866, 0.649, 0.084)  # balanced accuracy under 65 %
    assert choose_default(figures, "fer2013_robust_48") == "ferplus_vgg_bn_48"
    # equal accuracy keeps the current default
    figures["ferplus_vgg_bn_x3_48"] = figure(0.857, 0.70, 0.05)
    assert choose_default(figures, "ferplus_vgg_bn_x3_48") == "ferplus_vgg_bn_x3_48"
    assert choose_default(figures, "ferplus_vgg_bn_48") == "ferplus_vgg_bn_48"
    # none clears the floors: the highest balanced accuracy, even at lower accuracy
    fer2013_only = {name: figures[name] for name in ("fer2013_robust_48", "fer2013raw_vgg_bn_48")}
    fer2013_only["fer2013_robust_48"]["accuracy"] = 0.72
    assert choose_default(fer2013_only, "fer2013_robust_48") == "fer2013raw_vgg_bn_48"
    assert choose_default({}, "fer2013_robust_48") == "fer2013_robust_48"


def test_the_printed_rule_states_the_floors_the_code_applies():
    """The card prints ``choose_default``'s docstring; its two numbers are the constants the code compares."""
    from fer_utils.experiments import default_rule

    stated = " ".join(default_rule.rule_text().split())
    balanced = round(100 * default_rule.BALANCED_ACCURACY_FLOOR)
    neutral = round(100 * default_rule.NEUTRAL_RATE_CEILING)
    assert f"of at least {balanced} %, and at most {neutral} % of the non-neutral faces" in stated


def test_the_package_default_is_the_rules_recorded_choice_and_the_paper_cnn_without_one(tmp_path):
    from fer_utils.deploy import bundled
    from fer_utils.experiments.default_rule import choose_default

    # the package ships the paper CNN on FER2013 and the FER+ candidate; the recorded choice is the rule's
    choice = json.loads((bundled.BUNDLED_DIR / bundled.DEFAULT_CHOICE_FILE).read_text())
    candidates = bundled.shipped_candidates()
    assert {"fer2013_robust_48", "ferplus_vgg_bn_48"} <= set(candidates) == set(choice["figures"])
    assert bundled.default_model() == choice["model"] == choose_default(choice["figures"], choice["previous"])
    assert bundled.bundled_model_path().name == f"{choice['model']}_int8.tflite"
    # without a choice file the default is the paper CNN
    assert bundled.default_model(tmp_path) == bundled.DEFAULT_MODEL == "paper"
    assert bundled.bundled_name("vgg_bn", "ferplus", 48) == "ferplus_vgg_bn_48"
    assert bundled.bundled_name("paper") == "fer2013_robust_48"
    assert bundled.card_file_name("ferplus_vgg_bn_48") == "model_card_ferplus_vgg_bn_48.json"
    assert bundled.card_file_name("fer2013_robust_48") == bundled.card_file_name("paper") == "model_card.json"
    (tmp_path / bundled.DEFAULT_CHOICE_FILE).write_text(json.dumps({"model": "ferplus_vgg_bn_48"}))
    assert bundled.default_model(tmp_path) == "paper"  # named, but not shipped there


def test_a_fer2013_study_is_not_shipped_as_ferplus_and_targets_need_votes(ferplus_study, tmp_path):
    from fer_utils.experiments.bundle_model import build_bundled_model, study_seeds_folder

    root, study = ferplus_study
    assert study_seeds_folder(study, "paper").name == "paper"
    with pytest.raises(ValueError, match="runs trained on ferplus, not fer2013 \\(--dataset\\)"):
        study_seeds_folder(study, "paper", "fer2013")
    with pytest.raises(ValueError, match="--targets distribution needs vote counts"):
        build_bundled_model(
            root, tmp_path, [0], dataset="fer2013", targets="distribution", card_markdown=None
        )


def test_the_cli_ships_from_a_ferplus_study_into_another_folder(ferplus_study, tmp_path, capsys, monkeypatch):
    from fer_utils.cli import main
    from fer_utils.experiments import bundle_data

    root, study = ferplus_study
    monkeypatch.setattr(bundle_data, "shared_data_root", lambda: root.parent)  # its fer2013plus: the study's
    out = tmp_path / "models"
    code = main(["bundle-model", "--from-study", str(study), "--out", str(out)])  # data: the study's own
    assert code == 0
    printed = capsys.readouterr().out
    assert "as ferplus_paper_48" in printed and "default model: ferplus_paper_48" in printed
    assert json.loads((out / "default_model.json").read_text())["model"] == "ferplus_paper_48"
    code = main(
        ["bundle-model", "--rescore", "--model", "ferplus_paper_48", "--images", str(root), "--out", str(out)]
    )
    assert code == 0 and "default model: ferplus_paper_48" in capsys.readouterr().out


def test_a_runs_bundle_dataset_is_its_caches_dataset_and_label_source():
    from types import SimpleNamespace

    from fer_utils.experiments.bundle_data import bundle_dataset, run_dataset

    def run(dataset, label_source=None):
        options = {"dataset_options": {"label_source": label_source}} if label_source else {}
        return SimpleNamespace(
            outcome=SimpleNamespace(dataset=dataset),
            setup=SimpleNamespace(dataset=dataset, preprocessing=options),
        )

    assert run_dataset(run("fer2013")) == "fer2013"
    assert run_dataset(run("ferplus", "majority")) == "ferplus"
    assert run_dataset(run("ferplus", "fer2013")) == "fer2013raw"
    assert run_dataset(run("fer2013csv", "fer2013")) == "fer2013raw"
    assert run_dataset(run("ravdess")) is None
    assert len(bundle_dataset("ferplus").classes) == 8 and "contempt" in bundle_dataset("ferplus").classes
    with pytest.raises(ValueError, match="unknown bundle dataset 'affectnet'"):
        bundle_dataset("affectnet")


@pytest.mark.slow
def test_the_default_choice_is_reproduced_from_the_shipped_files_on_real_ferplus_valid():
    """The public figures of ``default_model.json`` are what the shipped default file scores on the real
    FER+ valid faces, through the served path, and the recorded choice is the rule's."""
    from missing_resources import require_data

    from fer_utils.deploy import bundled
    from fer_utils.experiments.default_rule import choose_default, rule_text
    from fer_utils.experiments.served_scores import public_scores
    from fer_utils.paths import shared_data_root

    root = require_data(shared_data_root() / "fer2013plus", "FER+ (FER2013 raw pixels with votes)")
    choice = json.loads((bundled.BUNDLED_DIR / bundled.DEFAULT_CHOICE_FILE).read_text())
    assert choice["rule"] == rule_text()
    for name, figure in choice["figures"].items():
        measured = public_scores(bundled.bundled_model_path(model=name), root)
        assert measured["balanced_accuracy"] == pytest.approx(figure["balanced_accuracy"], abs=1e-9)
        assert measured["recall"] == pytest.approx(figure["recall"], abs=1e-9)
    assert choice["model"] == choose_default(choice["figures"], choice["previous"])
    assert bundled.CARD_MARKDOWN.read_text().count(rule_text().splitlines()[0]) == 1
