import json

import numpy as np
import pytest

from fer_utils.faces.cache import FaceCache, cache_dir_for, config_key
from fer_utils.faces.cache_writer import FaceCacheWriter


def rows_for(item, n):
    return [
        {"media_path": item, "video_id": item, "label": "happy", "frame_index": i, "subject": "s1"}
        for i in range(n)
    ]


def test_faces_round_trip_across_shards_and_index_order(tmp_path):
    writer = FaceCacheWriter(tmp_path / "c", {"image_size": 4}, shard_size=3)
    rng = np.random.default_rng(0)
    written = {}
    for item in ("b.mp4", "a.mp4", "c.mp4"):
        faces = rng.integers(0, 256, (2, 4, 4), dtype=np.uint8)
        written[item] = faces
        writer.add(item, faces, rows_for(item, 2))
    writer.add("broken.mp4", None, [], "unreadable")
    cache = writer.close()
    assert len(list((tmp_path / "c" / "shards").glob("*.npy"))) == 2
    assert cache.index["media_path"].tolist() == ["a.mp4"] * 2 + ["b.mp4"] * 2 + ["c.mp4"] * 2
    for item, faces in written.items():
        ids = cache.index.loc[cache.index["media_path"] == item, "face_id"].to_numpy()
        np.testing.assert_array_equal(cache.faces(ids), faces)
    assert cache.skipped.to_dict("records") == [{"media_path": "broken.mp4", "reason": "unreadable"}]
    assert (tmp_path / "c" / "index.csv").exists() and (tmp_path / "c" / "skipped.csv").exists()


def test_resume_sees_finished_items_and_drops_half_written_shards(tmp_path):
    writer = FaceCacheWriter(tmp_path / "c", {"image_size": 4}, shard_size=100)
    writer.add("a.mp4", np.zeros((1, 4, 4), np.uint8), rows_for("a.mp4", 1))
    writer.flush()
    orphan = tmp_path / "c" / "shards" / "shard-orphan.npy"
    np.save(orphan, np.zeros((1, 4, 4), np.uint8))  # a kill between the .npy and its .json
    again = FaceCacheWriter(tmp_path / "c", {"image_size": 4})
    assert again.done_items() == {"a.mp4"}
    assert not orphan.exists()
    assert len(again.close()) == 1


def test_a_folder_of_another_config_is_refused(tmp_path):
    FaceCacheWriter(tmp_path / "c", {"image_size": 4})
    with pytest.raises(ValueError, match="another config"):
        FaceCacheWriter(tmp_path / "c", {"image_size": 8})
    stored = json.loads((tmp_path / "c" / "config.json").read_text())
    assert stored["key"] == config_key({"image_size": 4}) != config_key({"image_size": 8})
    assert cache_dir_for(tmp_path, "ravdess", {"image_size": 4}).name == f"ravdess-{stored['key']}"


def test_face_size_is_the_caches_crop_and_old_caches_read_the_same(tmp_path):
    """New caches store ``face_size``; a cache written with the former ``image_size`` key reads the same,
    both keep one key (and folder), and the former attribute name warns."""
    faces = np.zeros((1, 4, 4), np.uint8)
    for name, stored in (("new", {"face_size": 4}), ("old", {"image_size": 4})):
        writer = FaceCacheWriter(tmp_path / name, stored)
        writer.add("a.mp4", faces, rows_for("a.mp4", 1))
        cache = writer.close()
        assert cache.face_size == 4 and FaceCache(tmp_path / name).faces([0]).shape == (1, 4, 4)
        with pytest.warns(DeprecationWarning, match="face_size"):
            assert cache.image_size == 4
    assert config_key({"face_size": 4}) == config_key({"image_size": 4})
    assert FaceCache(tmp_path / "new").key == FaceCache(tmp_path / "old").key


def test_not_a_cache_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not a face cache"):
        FaceCache(tmp_path)
