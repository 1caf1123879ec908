"""The run plan: what a run derives from its config and its face cache, resolved once (training/plan.py)."""

import ast
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

import fer_utils
from fer_utils.faces.cache_writer import FaceCacheWriter
from fer_utils.faces.detection import PAPER_FACE_SIZE
from fer_utils.training.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE
from fer_utils.training.config import TrainConfig, input_size_for
from fer_utils.training.plan import RunPlan
from fer_utils.training.results import RunConfig

PACKAGE = Path(fer_utils.__file__).parent


def small_cache(folder: Path, size: int = 16, equalize: str = "clahe"):
    writer = FaceCacheWriter(folder, {"dataset": "toy", "face_size": size, "equalize": equalize})
    for i, label in enumerate(("happy", "sad", "happy", "sad")):
        row = {"media_path": f"m{i}", "video_id": f"v{i}", "label": label, "frame_index": 0, "subject": "s"}
        writer.add(f"m{i}", np.full((1, size, size), i, np.uint8), [row])
    return writer.close()


def test_the_plan_resolves_the_recipe_architecture_sizes_and_cache_once(tmp_path):
    cache = small_cache(tmp_path / "cache")
    plan = RunPlan.resolve(TrainConfig(recipe="robust", threads=2), cache)
    assert plan.recipe == TrainConfig(recipe="robust").applied_recipe()
    assert plan.architecture is ARCHITECTURES[DEFAULT_ARCHITECTURE]
    assert (plan.input_size, plan.face_size, plan.resized) == (16, 16, False)
    assert plan.labels == ("happy", "sad") and plan.pixel_step == "clahe"
    assert plan.cache_key == cache.key and plan.threads == 2
    resized = RunPlan.resolve(TrainConfig(input_size=24), cache)
    assert (resized.input_size, resized.face_size, resized.resized) == (24, 16, True)
    assert resized.build_model().input_shape[1:3] == (24, 24)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.input_size = 8


def test_a_recorded_run_matches_its_plan_and_differences_are_named(tmp_path):
    plan = RunPlan.resolve(TrainConfig(), small_cache(tmp_path / "cache"))
    setup = RunConfig(
        settings=dataclasses.asdict(plan.config), cache_key=plan.cache_key, image_size=plan.input_size
    )
    assert plan.mismatches(setup) == []
    other = RunConfig(settings={**setup.settings, "l1": 0.5}, cache_key="other", image_size=48)
    assert plan.mismatches(other) == [
        "l1 0.5 ≠ 0.0",
        "input_size 48 ≠ 16",
        "cache_key 'other' ≠ " + repr(plan.cache_key),
        "image_size 48 ≠ 16",
    ]
    assert plan.mismatches(other, cache=False) == ["l1 0.5 ≠ 0.0", "input_size 48 ≠ 16"]


def test_settings_is_a_deprecated_alias_of_applied_recipe():
    config = TrainConfig(recipe="robust", augment=False)
    with pytest.warns(DeprecationWarning, match="applied_recipe"):
        assert config.settings() == config.applied_recipe()
    assert config.applied_recipe().augment is False


def test_the_input_size_rule_and_the_papers_size_are_written_once():
    """``input_size``, else the cache's face size: one function; the paper's 180 px: one constant (other
    180s of the package are degrees and a test clip's height)."""
    assert input_size_for(None, 48) == 48 and input_size_for(64, 48) == 64
    rule = re.compile(r"input_size or |or [\w.]*\.(face|image)_size\b")
    rule_lines, size_files = [], set()
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        for number, line in enumerate(source.splitlines(), 1):
            if rule.search(line.split("#")[0]) and "args.face_size or args.input_size" not in line:
                rule_lines.append(f"{path.relative_to(PACKAGE)}:{number}")
        if any(isinstance(node, ast.Constant) and node.value == 180 for node in ast.walk(ast.parse(source))):
            size_files.add(str(path.relative_to(PACKAGE)))
    assert [line.split(":")[0] for line in rule_lines] == ["training/config.py"], rule_lines
    assert size_files == {"faces/detection.py", "training/augment.py", "bench/end_to_end.py"}, size_files
    assert PAPER_FACE_SIZE == 180
