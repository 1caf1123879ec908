"""Dataset specs: RAVDESS, SAVEE, MEAD and class folders on generated trees (names only: the specs
never decode, so empty files stand in for the videos)."""

from __future__ import annotations

import pytest
from fixture_media import touch

from fer_utils.cli import main as fer_main
from fer_utils.data.datasets import dataset_samples
from fer_utils.data.downloads import manual_download
from fer_utils.data.samples import Sample
from fer_utils.data.video_layouts import mead_samples, ravdess_samples, savee_samples


def _by_name(samples):
    return {sample.media_path.rsplit("/", 1)[-1]: sample for sample in samples}


def _reasons(skipped):
    return {item.media_path.rsplit("/", 1)[-1]: item.reason for item in skipped}


@pytest.fixture
def ravdess_root(tmp_path):
    root = tmp_path / "ravdess"
    for name in (
        "Actor_01/01-01-05-02-01-02-01.mp4",  # full-AV speech angry strong, statement 1, rep 2, actor 1
        "Actor_01/02-01-05-02-01-02-01.mp4",  # video-only copy of the same recording
        "Actor_01/03-01-05-02-01-02-01.wav",  # audio-only: ignored
        "Actor_01/01-02-03-01-02-01-01.mp4",  # full-AV song happy
        "Actor_02/01-01-02-01-02-01-02.mp4",  # calm, actor 2 (female)
        "Actor_02/01-01-09-01-01-01-02.mp4",  # unknown emotion code 09
        "Actor_02/01-01-03-01-01-01-05.mp4",  # actor 05 inside Actor_02
        "Actor_02/clip_final.mp4",  # not a RAVDESS name
        "Actor_02/notes.txt",  # not a video
    ):
        touch(root / name)
    return root


def test_ravdess_default_is_one_file_per_speech_recording(ravdess_root):
    touch(ravdess_root / "Actor_02/02-01-04-01-01-01-02.mp4")  # video-only without its full-AV twin
    samples, skipped = ravdess_samples(ravdess_root)
    found = _by_name(samples)
    # Full-AV where present, video-only where it is the only copy; song is left out by default.
    assert sorted(found) == [
        "01-01-02-01-02-01-02.mp4",
        "01-01-05-02-01-02-01.mp4",
        "02-01-04-01-01-01-02.mp4",
    ]
    assert found["02-01-04-01-01-01-02.mp4"].extras["modality"] == "video-only"
    angry = found["01-01-05-02-01-02-01.mp4"]
    assert (angry.label, angry.subject, angry.dataset) == ("angry", "actor_01", "ravdess")
    assert angry.extras["intensity"] == "strong"
    assert angry.extras["statement"] == 1 and angry.extras["repetition"] == 2
    assert angry.extras["gender"] == "male" and angry.extras["modality"] == "full-av"
    calm = found["01-01-02-01-02-01-02.mp4"]
    assert (calm.label, calm.subject, calm.extras["gender"]) == ("calm", "actor_02", "female")
    reasons = _reasons(skipped)
    assert reasons["01-01-09-01-01-01-02.mp4"].startswith("unknown emotion code: 09")
    assert reasons["01-01-03-01-01-01-05.mp4"].startswith("name does not match the layout")
    assert "Actor_02" in reasons["01-01-03-01-01-01-05.mp4"]
    assert reasons["clip_final.mp4"].startswith("name does not match the layout")
    assert reasons["notes.txt"].startswith("name does not match the layout")
    audio = [reason for name, reason in reasons.items() if name.endswith(".wav")]
    assert audio and all(reason.startswith("not selected: audio") for reason in audio)  # accounted for


def test_ravdess_options_choose_modality_and_channel(ravdess_root):
    samples, _ = ravdess_samples(
        ravdess_root, modalities=("full-av", "video-only"), channels="speech,song".split(",")
    )
    found = _by_name(samples)
    assert len(samples) == 4
    assert found["01-02-03-01-02-01-01.mp4"].extras["vocal_channel"] == "song"
    # The video-only file repeats the full-AV pixels: one video id, so grouped splits keep them together.
    assert found["02-01-05-02-01-02-01.mp4"].video_id == found["01-01-05-02-01-02-01.mp4"].video_id
    song_only, _ = ravdess_samples(ravdess_root, channels=["02"])
    assert [s.label for s in song_only] == ["happy"]
    with pytest.raises(ValueError, match="audio-only"):
        ravdess_samples(ravdess_root, modalities=["audio-only"])
    with pytest.raises(ValueError, match="unknown RAVDESS vocal channel"):
        ravdess_samples(ravdess_root, channels=["opera"])


def test_missing_or_empty_root_explains_the_download(tmp_path):
    with pytest.raises(ValueError, match="does not exist(.|\n)*zenodo"):
        ravdess_samples(tmp_path / "nowhere")
    touch(tmp_path / "wrong" / "video.mp4")
    with pytest.raises(ValueError, match="no file under .* matches the layout(.|\n)*Video_Speech_Actor"):
        ravdess_samples(tmp_path / "wrong")
    with pytest.raises(ValueError, match="AudioVisualClip"):
        savee_samples(tmp_path / "wrong")
    with pytest.raises(ValueError, match="level_<k>(.|\n)*video.tar"):
        mead_samples(tmp_path / "wrong")


def test_savee_layout(tmp_path):
    clips = tmp_path / "savee" / "AudioVisualClip"
    for name in (
        "DC/a01.avi",
        "DC/sa03.avi",
        "DC/su15.avi",
        "DC/n30.avi",
        "KL/h02.avi",
        "DC/x01.avi",
        "ZZ/a01.avi",
    ):
        touch(clips / name)
    touch(tmp_path / "savee" / "AudioData" / "DC" / "a01.wav")
    samples, skipped = savee_samples(tmp_path / "savee")
    labels = {(s.subject, s.media_path.rsplit("/", 1)[-1]): s.label for s in samples}
    assert labels == {
        ("DC", "a01.avi"): "angry",
        ("DC", "sa03.avi"): "sad",
        ("DC", "su15.avi"): "surprised",
        ("DC", "n30.avi"): "neutral",
        ("KL", "h02.avi"): "happy",
    }
    assert {s.video_id for s in samples} >= {"savee/DC_sa03", "savee/KL_h02"}
    reasons = {item.media_path.split("AudioVisualClip/")[-1]: item.reason for item in skipped}
    assert reasons["DC/x01.avi"].startswith("unknown emotion code: x")
    assert reasons["ZZ/a01.avi"].startswith("name does not match the layout")
    assert len(skipped) == 2
    # The AudioVisualClip folder itself is accepted as the root too.
    assert len(savee_samples(clips)[0]) == 5


def test_mead_layout_views_levels(tmp_path):
    root = tmp_path / "mead"
    for name in (
        "M003/video/front/angry/level_1/001.mp4",
        "M003/video/front/angry/level_3/002.mp4",
        "M003/video/left_30/angry/level_3/002.mp4",
        "W009/video/front/contempt/level_2/003.mp4",
        "W009/video/front/disgusted/level_1/004.mp4",
        "W009/video/front/bored/level_1/001.mp4",  # unknown emotion
        "M003/video/sideways/happy/level_1/001.mp4",  # unknown view
        "M003/video/front/happy/level_9/001.mp4",  # level out of range
        "M003/video/front/happy/001.mp4",  # no level folder
        "M003/audio/angry/level_1/001.m4a",  # audio: ignored
    ):
        touch(root / name)
    samples, skipped = mead_samples(root)
    assert len(samples) == 4 and {s.extras["view"] for s in samples} == {"front"}
    by_id = {s.video_id: s for s in samples}
    contempt = by_id["mead/W009/front/contempt/level_2/003"]
    assert (contempt.label, contempt.subject, contempt.extras["level"], contempt.extras["gender"]) == (
        "contempt",
        "W009",
        2,
        "female",
    )
    assert by_id["mead/W009/front/disgusted/level_1/004"].label == "disgust"
    reasons = {item.media_path.split("mead/")[-1]: item.reason for item in skipped}
    assert reasons["W009/video/front/bored/level_1/001.mp4"].startswith("unknown emotion code: bored")
    assert reasons["M003/video/sideways/happy/level_1/001.mp4"].startswith("name does not match the layout")
    assert reasons["M003/video/front/happy/level_9/001.mp4"].startswith("name does not match the layout")
    assert reasons["M003/video/front/happy/001.mp4"].startswith("name does not match the layout")
    not_layout = [item for item in skipped if not item.reason.startswith("not selected")]
    assert len(not_layout) == 4
    assert all("audio" in item.reason or "view" in item.reason for item in skipped if item not in not_layout)

    all_views, _ = mead_samples(root, views=["front", "left_30"], levels=[3])
    assert sorted((s.extras["view"], s.extras["level"]) for s in all_views) == [("front", 3), ("left_30", 3)]
    # Two views of one utterance: different videos, one recording.
    assert len({s.video_id for s in all_views}) == 2 and len({s.extras["recording"] for s in all_views}) == 1
    with pytest.raises(ValueError, match="unknown MEAD view"):
        mead_samples(root, views=["back"])


def test_folder_and_fer2013_through_dataset_samples(tmp_path):
    touch(tmp_path / "faces" / "happy" / "a.jpg")
    touch(tmp_path / "faces" / "fear" / "b.png")
    samples, skipped = dataset_samples("folder", tmp_path / "faces")
    assert sorted(s.label for s in samples) == ["fearful", "happy"] and not skipped
    touch(tmp_path / "fer" / "train" / "angry" / "c.jpg")
    samples, _ = dataset_samples("fer2013", tmp_path / "fer")
    assert samples[0].extras == {"split": "train"} and samples[0].dataset == "fer2013"
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_samples("affectnet", tmp_path)


def test_manual_download_texts_and_cli(capsys):
    for name, expected in {"ravdess": "zenodo", "savee": "AudioVisualClip", "mead": "video.tar"}.items():
        assert expected in manual_download(name)
    assert fer_main(["preprocess", "--help-dataset", "mead"]) == 0
    assert "level_1" in capsys.readouterr().out
    assert fer_main(["preprocess", "--dataset", "savee", "--root", "/nonexistent/savee"]) == 2
    assert "kahlan.eps.surrey.ac.uk" in capsys.readouterr().err


def test_only_class_folder_names_count_as_renamed_labels(tmp_path):
    from fer_utils.data.class_folders import label_renaming

    touch(tmp_path / "faces" / "happiness" / "a.jpg")
    touch(tmp_path / "faces" / "sad" / "b.jpg")
    samples, _ = dataset_samples("folder", tmp_path / "faces")
    assert label_renaming(samples) == {"happiness": "happy"}
    # RAVDESS-like: the label comes from the file name's codes, the folder is a speaker
    samples = [Sample("ravdess", str(tmp_path / "Actor_01" / "01-01-05-01-01-01-01.mp4"), "angry", "01", "v")]
    assert label_renaming(samples) == {}


def test_every_layout_is_one_registry_entry_whose_options_become_flags(monkeypatch, tmp_path):
    """A new layout is one entry: its options become ``fer preprocess`` / ``fer run`` flags and reach its
    samples function, parsed."""
    import argparse

    from fer_utils.data import datasets
    from fer_utils.data.downloads import DATASETS, manual_download
    from fer_utils.data.samples import Sample

    assert tuple(datasets.LAYOUTS) == DATASETS
    assert all(manual_download(name) for name in DATASETS)
    seen = {}

    def tiles_samples(root, tiles=None):
        seen["tiles"] = tiles
        return [Sample("tiles", str(root / "a.png"), "happy", None, "a")], []

    layout = datasets.DatasetLayout(
        "tiles", tiles_samples, (datasets.LayoutOption("tiles", "--tiles", "Tiles: which tiles"),)
    )
    monkeypatch.setitem(datasets.LAYOUTS, "tiles", layout)
    for module in ("fer_utils.faces.preprocess", "fer_utils.experiments.notebook_pipeline"):
        parser = argparse.ArgumentParser()
        __import__(module, fromlist=["add_arguments"]).add_arguments(parser)
        args = parser.parse_args(["--tiles", "a, b"])
        assert datasets.layout_options_from_args("tiles", args) == {"tiles": ["a", "b"]}
    samples, _ = datasets.dataset_samples("tiles", tmp_path, **{"tiles": ["a", "b"]})
    assert seen["tiles"] == ["a", "b"] and samples[0].dataset == "tiles"
