"""The run record is the schema: a real run's config.json and metrics.json round-trip through
``RunConfig`` / ``RunMetrics`` losslessly, the nested fields are typed, unknown keys are kept explicitly, and
no reader of the package indexes a run's files as dicts (training/results.py, training/result_parts.py)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import fer_utils
from fer_utils.faces.cache_writer import write_array_cache
from fer_utils.training import rundir
from fer_utils.training.metrics import registered
from fer_utils.training.result_parts import PART_TYPES, Calibration, Cost, SplitSizes
from fer_utils.training.results import RunConfig, RunMetrics
from fer_utils.training.train import train_run

PACKAGE = Path(fer_utils.__file__).parent


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A 1-epoch run of the real training path on two separable classes of 16 px faces (seconds)."""
    root = tmp_path_factory.mktemp("record")
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 60, (40, 16, 16)).astype(np.uint8)
    faces[::2, :8] += 150
    cache = write_array_cache(root / "cache", faces, ["happy", "sad"] * 20)
    return train_run(cache.cache_dir, root / "run", epochs=1, batch_size=16, seed=0, verbose=0)


def test_a_real_runs_files_round_trip_through_the_records_losslessly(real_run):
    config = json.loads((real_run.path / rundir.CONFIG_FILE).read_text())
    metrics = json.loads((real_run.path / rundir.METRICS_FILE).read_text())
    setup, outcome = RunConfig.from_json(config), RunMetrics.from_json(metrics)
    assert setup.to_json() == config and outcome.to_json() == metrics
    # every key is declared: nothing of a real run lands in ``extra``, at the top or in a nested part (a
    # level's later registry metrics are its declared extras, read with ``Scores.value``)
    assert setup.extra == {} and outcome.extra == {}
    assert set(outcome.frame.extra) <= {metric.name for metric in registered("frame")}
    for record in (setup, outcome):
        for name in PART_TYPES:
            part = getattr(record, name, None)
            if part is not None:
                assert part.extra == {} and part.absent == frozenset(), (name, part)
    # the builder fills every field a training run has (nothing is set after it)
    assert isinstance(outcome.cost, Cost) and outcome.cost == setup.cost and outcome.cost.parameters > 0
    assert isinstance(outcome.calibration, Calibration) and outcome.calibration.temperature is not None
    assert isinstance(setup.split, SplitSizes) and setup.split.test == len(real_run.predictions)
    assert setup.numerics.op_determinism is True and outcome.baselines.majority_label in ("happy", "sad")
    assert outcome.architecture == setup.architecture == "paper"


def test_unknown_keys_are_kept_explicitly_and_written_back():
    """A newer file's keys survive a read and a write, at the top and in a nested part; a part the file
    holds only partly is written back as it was."""
    scores = {"accuracy": 1, "macro_f1": 1, "weighted_f1": 1, "per_class": {}, "confusion_matrix": [[1]]}
    metrics = {
        "labels": ["happy"],
        "protocol": "paper",
        "num_params": 1,
        "frame": scores,
        "split": {"test": 3, "future_part": 1},
        "cost": {"parameters": 5, "bytes": 20},
        "a_future_field": [1, 2],
        "schema_version": 2,
    }
    outcome = RunMetrics.from_json(metrics)
    assert outcome.extra == {"a_future_field": [1, 2]}
    assert outcome.split.test == 3 and outcome.split.extra == {"future_part": 1}
    assert outcome.cost.parameters == 5 and outcome.cost.extra == {"bytes": 20}
    written = outcome.to_json()
    assert written["split"] == metrics["split"] and written["cost"] == metrics["cost"]
    assert written["a_future_field"] == [1, 2]
    with pytest.raises(ValueError, match="'cost' is not an object"):
        RunMetrics.from_json({**metrics, "cost": 5})


def test_no_reader_indexes_the_raw_run_files(real_run):
    """Readers take ``run.setup`` / ``run.outcome``: ``Run`` has no raw ``config`` / ``metrics`` dicts, and no
    module or notebook reads them."""
    assert not hasattr(real_run, "config") and not hasattr(real_run, "metrics")
    raw = re.compile(r"\brun\.(config|metrics)\b")
    readers = sorted(
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if raw.search(path.read_text())
    )
    assert readers == []
    notebooks = PACKAGE.parent / "notebooks"
    assert not [path.name for path in notebooks.glob("*.ipynb") if raw.search(path.read_text())]
