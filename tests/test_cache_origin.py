"""A face cache remembers where its inputs lie: a second copy of a dataset is refused instead of mixed in, and
the same files spelled from another working directory are not preprocessed twice."""

from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
import pytest

from fer_utils.faces.cache import FaceCache
from fer_utils.faces.origin import INPUTS_FOLDER, WORKING_DIRECTORY, inputs_folder, reconcile_origin
from fer_utils.faces.preprocess import image_folder_cache


def _class_folders(root, per_class=3):
    """A tiny class-folder dataset of distinct 48 px gray images."""
    rng = np.random.default_rng(0)
    for label in ("happy", "sad"):
        (root / label).mkdir(parents=True)
        for index in range(per_class):
            cv2.imwrite(str(root / label / f"{index}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return root


def _cache(folder, cache_root):
    # One dataset name whatever the folder, as `fer preprocess --dataset ravdess --root …` gives.
    return image_folder_cache(folder, cache_root, face_size=48, dataset="posed", progress=False)


def test_a_second_copy_of_the_data_is_refused_and_the_cache_keeps_its_faces(tmp_path):
    first = _class_folders(tmp_path / "copy_a")
    second = tmp_path / "copy_b"
    shutil.copytree(first, second)
    cache = _cache(first, tmp_path / "cache")
    assert len(cache) == 6 and cache.ingestion[INPUTS_FOLDER] == str(first)

    with pytest.raises(ValueError, match="would mix two copies") as refused:
        _cache(second, tmp_path / "cache")
    assert str(first) in str(refused.value) and str(second) in str(refused.value)
    assert len(FaceCache(cache.cache_dir)) == 6


def test_the_same_files_spelled_from_another_directory_are_not_preprocessed_again(tmp_path, monkeypatch):
    _class_folders(tmp_path / "data")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    first_directory = os.getcwd()  # tmp_path as the OS spells it (resolved where /tmp is a link)
    cache = _cache("data", tmp_path / "cache")
    assert set(cache.index["media_path"]) == {f"data/{c}/{i}.png" for c in ("happy", "sad") for i in range(3)}

    monkeypatch.chdir(tmp_path / "elsewhere")
    again = _cache("../data", tmp_path / "cache")
    assert again.report.processed == 0 and again.report.resumed == 6
    assert len(again) == 6 and again.ingestion[WORKING_DIRECTORY] == first_directory

    (tmp_path / "data" / "sad" / "3.png").write_bytes((tmp_path / "data" / "sad" / "0.png").read_bytes())
    grown = _cache("../data", tmp_path / "cache")
    assert grown.report.processed == 1 and len(grown) == 7
    # Added from another directory, the new file is recorded by its absolute path: still readable from here.
    assert os.path.join(first_directory, "data", "sad", "3.png") in set(grown.index["media_path"])


def test_inputs_below_or_above_the_recorded_folder_extend_the_cache(tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    recorded = {INPUTS_FOLDER: str(tmp_path / "data" / "actor_01"), WORKING_DIRECTORY: str(tmp_path)}
    (cache_dir / "config.json").write_text(json.dumps({"key": "k", "config": {}, "ingestion": recorded}))

    inside = [str(tmp_path / "data" / "actor_01" / "clips" / "a.mp4")]
    assert reconcile_origin(cache_dir, inputs_folder(inside, "/")).folder == recorded[INPUTS_FOLDER]
    both = [str(tmp_path / "data" / name / "a.mp4") for name in ("actor_01", "actor_02")]
    above = reconcile_origin(cache_dir, inputs_folder(both, "/"))
    assert above.folder == str(tmp_path / "data") and above.working_directory == str(tmp_path)
    with pytest.raises(ValueError, match="would mix"):
        reconcile_origin(cache_dir, str(tmp_path / "data" / "actor_02"))
