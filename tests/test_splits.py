import numpy as np
import pandas as pd
import pytest

from fer_utils.training.splits import Split, check_leakage, make_split, membership_hash, subject_folds


def make_index(subjects=6, videos_per_subject=8, frames=6, labels=("happy", "sad", "angry", "neutral")):
    rows = []
    for s in range(subjects):
        for v in range(videos_per_subject):
            label = labels[v % len(labels)]
            for f in range(frames):
                rows.append(
                    {
                        "media_path": f"Actor_{s:02d}/clip{v}.mp4",
                        "video_id": f"Actor_{s:02d}/clip{v}",
                        "subject": f"{s:02d}",
                        "label": label,
                        "frame_index": f * 10,
                    }
                )
    index = pd.DataFrame(rows)
    index.insert(0, "face_id", np.arange(len(index)))
    return index


def sides(index, split, column):
    by_id = index.set_index("face_id")[column]
    return set(by_id.loc[split.test]), set(by_id.loc[np.concatenate([split.train, split.validation])])


def test_paper_split_is_80_20_stratified_and_mixes_videos():
    index = make_index()
    split = make_split(index, "paper", seed=1)
    total = len(index)
    assert len(split.test) == pytest.approx(0.2 * total, abs=1)
    assert len(split.train) + len(split.validation) + len(split.test) == total
    test_share = index.set_index("face_id").loc[split.test, "label"].value_counts(normalize=True)
    assert np.allclose(test_share.to_numpy(), 0.25, atol=0.03)
    test_videos, train_videos = sides(index, split, "video_id")
    assert test_videos & train_videos, "the paper's frame-level split puts frames of one video on both sides"


@pytest.mark.parametrize(("protocol", "column"), [("video", "video_id"), ("subject", "subject")])
def test_grouped_protocols_do_not_leak(protocol, column):
    index = make_index()
    for seed in range(3):
        split = make_split(index, protocol, seed=seed)
        test_groups, train_groups = sides(index, split, column)
        assert test_groups and not (test_groups & train_groups)
        assert len(split.validation) > 0


def test_validation_is_grouped_too():
    index = make_index()
    split = make_split(index, "subject", seed=0)
    by_id = index.set_index("face_id")["subject"]
    assert not set(by_id.loc[split.validation]) & set(by_id.loc[split.train])


def test_subject_folds_cover_each_subject_once():
    index = make_index(subjects=4)
    folds = subject_folds(index)
    assert len(folds) == 4  # SAVEE-like: 4 speakers → 4 folds of one speaker
    tested = [frozenset(index.set_index("face_id").loc[f.test, "subject"]) for f in folds]
    assert sorted(s for group in tested for s in group) == ["00", "01", "02", "03"]


def test_same_seed_same_split_and_hash_independent_of_order():
    index = make_index()
    a, b = make_split(index, "video", seed=3), make_split(index, "video", seed=3)
    np.testing.assert_array_equal(a.test, b.test)
    assert membership_hash(index, a.test) == membership_hash(index, a.test[::-1])
    assert membership_hash(index, a.test) != membership_hash(index, make_split(index, "video", seed=4).test)


def test_fixed_split_uses_the_split_column():
    index = make_index()
    index["split"] = np.where(
        index["subject"] == "00", "test", np.where(index["subject"] == "01", "validation", "train")
    )
    split = make_split(index, "fixed")
    assert set(index.set_index("face_id").loc[split.test, "subject"]) == {"00"}
    assert set(index.set_index("face_id").loc[split.validation, "subject"]) == {"01"}


@pytest.mark.parametrize(
    ("mutate", "protocol", "message"),
    [
        (lambda i: i, "random", "unknown protocol"),
        (lambda i: i.assign(subject=None), "subject", "no subject ids"),
        (lambda i: i.assign(label="happy"), "paper", "at least 2 classes"),
        (lambda i: i, "fixed", "split"),
        (lambda i: i.iloc[:0], "paper", "empty"),
    ],
)
def test_bad_requests_are_clear_value_errors(mutate, protocol, message):
    with pytest.raises(ValueError, match=message):
        make_split(mutate(make_index()), protocol)


def test_leakage_check_catches_a_shared_subject():
    index = make_index()
    ids = index["face_id"].to_numpy()
    leaky = Split(
        "subject", train=ids[:180], validation=ids[180:200], test=ids[200:]
    )  # subject 04 spans 192–239
    with pytest.raises(ValueError, match="subject on both sides"):
        check_leakage(index, leaky)
    with pytest.raises(ValueError, match="more than one part"):
        check_leakage(index, Split("paper", train=ids[:200], validation=ids[200:220], test=ids[210:]))
