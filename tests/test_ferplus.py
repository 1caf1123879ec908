"""FER+ layouts (Microsoft's folders, Kaggle's CSV with FER+'s votes joined by position) and what a run
learns from them (``--targets label | majority | distribution``), on trees the tests generate; the real
FER+ copy in ../shared/data in the slow tier."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from fer_utils.data.ferplus import FER2013_CODES, VOTE_COLUMNS, ferplus_majority

# votes over neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
HAPPY = [1, 8, 1, 0, 0, 0, 0, 0, 0, 0]
SAD = [2, 0, 0, 7, 0, 0, 0, 0, 1, 0]
NO_MAJORITY = [4, 4, 0, 0, 0, 0, 0, 0, 2, 0]
NOT_A_FACE = [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]
CONTEMPT = [3, 0, 0, 0, 0, 0, 0, 7, 0, 0]


def test_the_ferplus_majority_rule_drops_single_votes_and_needs_more_than_half():
    assert ferplus_majority(np.array([HAPPY, SAD, NO_MAJORITY, NOT_A_FACE, CONTEMPT])) == [
        "happy",
        "sad",
        None,
        None,
        "contempt",
    ]
    # one vote each is noise: 5 of the 6 kept votes are neutral
    assert ferplus_majority(np.array([[5, 1, 1, 1, 1, 0, 0, 0, 0, 1]])) == ["neutral"]


def _face(value: int) -> np.ndarray:
    return np.full((48, 48), value, np.uint8)


def _ferplus_tree(root, rows: dict[str, list[tuple[str, list[int]]]]):
    import cv2

    for folder, entries in rows.items():
        (root / folder).mkdir(parents=True)
        with open(root / folder / "label.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            for number, (name, votes) in enumerate(entries):
                cv2.imwrite(str(root / folder / name), _face(10 * number + 5))
                writer.writerow([name, "(0, 0, 48, 48)", *votes])
    return root


def _small_ferplus(root):
    return _ferplus_tree(
        root,
        {
            "FER2013Train": [
                ("fer0000000.png", HAPPY),
                ("fer0000001.png", SAD),
                ("fer0000002.png", NO_MAJORITY),
            ],
            "FER2013Valid": [("fer0000003.png", HAPPY), ("fer0000004.png", CONTEMPT)],
            "FER2013Test": [("fer0000005.png", SAD), ("fer0000006.png", NOT_A_FACE)],
        },
    )


def test_ferplus_folders_give_majority_labels_votes_and_splits(tmp_path):
    from fer_utils.data.datasets import dataset_samples

    samples, skipped = dataset_samples("ferplus", _small_ferplus(tmp_path / "ferplus"))
    assert [(s.label, s.extras["split"]) for s in samples] == [
        ("happy", "train"),
        ("sad", "train"),
        ("happy", "validation"),
        ("contempt", "validation"),
        ("sad", "test"),
    ]
    assert samples[0].extras["votes_happy"] == 8 and samples[0].extras["votes_not_face"] == 0
    assert sorted(item.media_path.rsplit("/", 1)[1] for item in skipped) == [
        "fer0000002.png",
        "fer0000006.png",
    ]
    assert all("no FER+ majority" in item.reason for item in skipped)


def test_a_face_without_votes_is_skipped_with_the_reason(tmp_path):
    import cv2

    from fer_utils.data.datasets import dataset_samples

    root = _small_ferplus(tmp_path / "ferplus")
    cv2.imwrite(str(root / "FER2013Test" / "fer0009999.png"), _face(7))
    samples, skipped = dataset_samples("ferplus", root)
    assert len(samples) == 5
    reasons = {item.media_path.rsplit("/", 1)[1]: item.reason for item in skipped}
    assert reasons["fer0009999.png"] == "not selected: not in FER2013Test/label.csv (no votes)"


def test_a_label_csv_naming_a_missing_face_is_one_line_before_any_work(tmp_path):
    from fer_utils.data.datasets import dataset_samples

    root = _small_ferplus(tmp_path / "ferplus")
    (root / "FER2013Valid" / "fer0000004.png").unlink()
    with pytest.raises(ValueError, match="fer0000004.png") as error:
        dataset_samples("ferplus", root)
    assert "\n" not in str(error.value) and "votes do not match the images" in str(error.value)


def test_original_labels_need_their_file(tmp_path):
    from fer_utils.data.datasets import dataset_samples

    root = _small_ferplus(tmp_path / "ferplus")
    with pytest.raises(ValueError, match="fer2013_labels.csv"):
        dataset_samples("ferplus", root, label_source="fer2013")
    pd.DataFrame(
        {
            "file": ["FER2013Train/fer0000000.png", "FER2013Test/fer0000005.png"],
            "fer2013_label": ["fear", "surprise"],
        }
    ).to_csv(root / "fer2013_labels.csv", index=False)
    samples, skipped = dataset_samples("ferplus", root, label_source="fer2013")
    assert [(s.label, s.extras["fer2013_label"]) for s in samples] == [
        ("fearful", "fearful"),
        ("surprised", "surprised"),
    ]
    assert len(skipped) == 5


def _kaggle_tree(root, rows: int = 12, gap_after: int = 3):
    """``fer2013.csv`` (row i: a face of value i, FER2013 label code i % 7) and ``fer2013new.csv`` whose
    votes make row i's majority class i % 2 (happy / sad) — except the not-a-face row right after
    ``gap_after``, which FER+ left unnamed, so every later image name's number is one behind its row."""
    root.mkdir(parents=True)
    usages = ["Training"] * (rows - 4) + ["PublicTest"] * 2 + ["PrivateTest"] * 2
    faces = pd.DataFrame(
        {
            "emotion": [i % 7 for i in range(rows)],
            "pixels": [" ".join([str(i)] * 2304) for i in range(rows)],
            "Usage": usages,
        }
    )
    faces.to_csv(root / "fer2013.csv", index=False)
    names, votes, number = [], [], 0
    for i in range(rows):
        if i == gap_after + 1:
            names.append("")
            votes.append(NOT_A_FACE)
            continue
        names.append(f"fer{number:07d}.png")
        number += 2 if i == gap_after else 1  # FER+ numbers skip one, as its real files do
        votes.append(HAPPY if i % 2 == 0 else SAD)
    table = pd.DataFrame(votes, columns=list(VOTE_COLUMNS))
    table.insert(0, "Image name", names)
    table.insert(0, "Usage", usages)
    table.to_csv(root / "fer2013new.csv", index=False)
    return root


def test_kaggles_csv_and_the_votes_join_by_row_position_never_by_image_name(tmp_path):
    from fer_utils.faces.pixel_table import pixel_table_cache
    from fer_utils.faces.preprocess_config import PreprocessConfig

    root = _kaggle_tree(tmp_path / "kaggle")
    cache = pixel_table_cache(
        "fer2013csv", root, tmp_path / "cache", PreprocessConfig(face_size=48, detector="none")
    )
    index = cache.index.set_index("media_path")
    assert len(index) == 11  # the unnamed not-a-face row has no majority
    for row in range(12):
        if row == 4:
            assert f"fer2013csv#{row}" not in index.index
            continue
        face = index.loc[f"fer2013csv#{row}"]
        assert cache.faces([int(face.face_id)])[0, 0, 0] == row  # the pixels of this row
        assert face.label == ("happy" if row % 2 == 0 else "sad")  # the votes of this row
        assert face.fer2013_label == FER2013_CODES[row % 7]
    # a join by the number in the image name would have given row 6 the votes of row 5 (sad, not happy)
    assert index.loc["fer2013csv#6", "ferplus_name"] == "fer0000006.png"
    assert (index["split"] == "test").sum() == 2


def test_a_second_copy_of_the_csv_files_is_refused_not_taken_as_done(tmp_path):
    """The cache's items are row blocks, the same names in every copy: the recorded folder tells them apart."""
    from fer_utils.faces.cache import FaceCache
    from fer_utils.faces.pixel_table import pixel_table_cache
    from fer_utils.faces.preprocess_config import PreprocessConfig

    config = PreprocessConfig(face_size=48, detector="none")
    first, second = _kaggle_tree(tmp_path / "kaggle"), _kaggle_tree(tmp_path / "kaggle_copy", rows=14)
    cache = pixel_table_cache("fer2013csv", first, tmp_path / "cache", config, progress=False)
    with pytest.raises(ValueError, match="would mix two copies") as refused:
        pixel_table_cache("fer2013csv", second, tmp_path / "cache", config, progress=False)
    assert str(second) in str(refused.value)
    assert len(FaceCache(cache.cache_dir)) == len(cache) == 11


def test_a_damaged_pixel_row_and_rows_without_a_label_are_skipped_with_their_reason(tmp_path):
    from fer_utils.faces.pixel_table import pixel_table_cache
    from fer_utils.faces.preprocess_config import PreprocessConfig

    root = _kaggle_tree(tmp_path / "kaggle")
    faces = pd.read_csv(root / "fer2013.csv")
    faces.loc[2, "pixels"] = "1 2 3"  # not 48 × 48
    faces.to_csv(root / "fer2013.csv", index=False)
    cache = pixel_table_cache(
        "fer2013csv", root, tmp_path / "cache", PreprocessConfig(face_size=48, detector="none")
    )
    reasons = dict(zip(cache.skipped["media_path"], cache.skipped["reason"], strict=True))
    assert reasons["fer2013csv#2"].startswith("unreadable: pixels of row 4: not a square gray face: 3 values")
    assert reasons["fer2013csv#4"] == "not selected: no majority label"  # the not-a-face row
    assert len(cache) == 10 and "fer2013csv#3" in set(cache.index["media_path"])  # the build went on


def test_misaligned_csv_files_are_one_line_naming_the_first_mismatch(tmp_path):
    from fer_utils.data.ferplus import fer2013_csv_table

    root = _kaggle_tree(tmp_path / "kaggle")
    votes = pd.read_csv(root / "fer2013new.csv", keep_default_na=False)
    votes.iloc[:-1].to_csv(root / "fer2013new.csv", index=False)
    with pytest.raises(ValueError, match="12 rows but fer2013new.csv 11") as error:
        fer2013_csv_table(root)
    assert "\n" not in str(error.value)
    votes.loc[9, "Usage"] = "Training"
    votes.to_csv(root / "fer2013new.csv", index=False)
    with pytest.raises(ValueError, match="row 11 is PublicTest in fer2013.csv but Training"):
        fer2013_csv_table(root)


def test_vote_targets_need_a_cache_with_votes(tmp_path):
    from fer_utils.faces.cache import FaceCache
    from fer_utils.faces.cache_writer import write_array_cache
    from fer_utils.training.targets import run_targets

    write_array_cache(tmp_path / "plain", np.stack([_face(1), _face(2)]), ["happy", "sad"], dataset="posed")
    cache = FaceCache(tmp_path / "plain")
    assert run_targets(cache, "label").usable.all()
    with pytest.raises(ValueError, match="dataset 'posed'") as error:
        run_targets(cache, "distribution")
    assert "\n" not in str(error.value)


def test_distribution_targets_are_the_crowds_votes_over_the_runs_classes(tmp_path):
    from fer_utils.faces.pixel_table import pixel_table_cache
    from fer_utils.faces.preprocess_config import PreprocessConfig
    from fer_utils.training.targets import run_targets

    root = _kaggle_tree(tmp_path / "kaggle")
    config = PreprocessConfig(face_size=48, detector="none")
    cache = pixel_table_cache("fer2013csv", root, tmp_path / "cache", config, label_source="fer2013")
    assert cache.labels == ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    chosen = run_targets(cache, "distribution")
    first = cache.index.index[cache.index["media_path"] == "fer2013csv#0"][0]
    # HAPPY = 1 neutral (a single vote: dropped), 8 happy, 1 surprise (dropped) → all on happy
    np.testing.assert_allclose(chosen.soft[first], np.eye(7)[1])
    second = cache.index.index[cache.index["media_path"] == "fer2013csv#1"][0]
    np.testing.assert_allclose(chosen.soft[second][[0, 2]], [2 / 9, 7 / 9])  # SAD: 2 neutral, 7 sad
    majority = run_targets(cache, "majority")
    assert not majority.usable[cache.index["media_path"] == "fer2013csv#4"].any()  # not a face
    assert cache.index.loc[first, "label"] == "happy"


@pytest.mark.slow
def test_the_real_ferplus_copy_gives_ferplus_majority_counts_and_trains_on_votes(tmp_path):
    """The FER+ copy in ../shared/data: every face its label.csv lists, FER+'s majority rule's counts,
    and a short run on the vote distribution of raw faces that learns (beats always answering the
    commonest class on the FER+ test faces)."""
    from missing_resources import require_data

    from fer_utils.data.datasets import dataset_samples
    from fer_utils.paths import shared_data_root

    root = require_data(shared_data_root() / "fer2013plus", "FER+ (FER2013 raw pixels with votes)")
    samples, skipped = dataset_samples("ferplus", root)
    splits = pd.Series([s.extras["split"] for s in samples]).value_counts().to_dict()
    assert splits == {"train": 25045, "validation": 3191, "test": 3137}
    assert len(samples) + len(skipped) == 35710
    assert {s.label for s in samples} == {
        "neutral",
        "happy",
        "surprised",
        "sad",
        "angry",
        "disgust",
        "fearful",
        "contempt",
    }
    picked, per_cell = [], {}
    for sample in samples:
        key = (sample.extras["split"], sample.label)
        per_cell[key] = per_cell.get(key, 0) + 1
        if per_cell[key] <= {"train": 250, "validation": 30, "test": 40}[key[0]]:
            picked.append(sample)

    from fer_utils.faces.preprocess import preprocess
    from fer_utils.faces.preprocess_config import PreprocessConfig
    from fer_utils.training.train import train_run

    config = PreprocessConfig(face_size=48, detector="none", equalize="hist")
    cache = preprocess(picked, tmp_path / "cache", config, dataset="ferplus", workers=1, progress=False)
    run = train_run(
        cache.cache_dir,
        tmp_path / "run",
        protocol="fixed",
        targets="distribution",
        recipe="robust",
        epochs=15,
        batch_size=64,
        input_size=48,
    )
    scores = run.outcome.scores("frame")
    assert run.setup.settings["targets"] == "distribution"
    assert scores.accuracy > 2 * run.outcome.majority_rate, (scores.accuracy, run.outcome.majority_rate)
