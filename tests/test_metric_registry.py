"""The metric registry (``fer_utils.training.metrics``): the scores it fills in metrics.json, the two metrics
added through it (balanced accuracy, neutral rate), older files without them, and the recipe itself: a
metric added to a fixture registry shows up in every table without another line of code."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score
from test_dashboard import LABELS, make_cache, make_run, toy_probabilities

from fer_utils.experiments import ablation
from fer_utils.experiments.model_study import markdown_frontier, seed_statistics
from fer_utils.experiments.recipe_study import markdown_study
from fer_utils.training import metrics as metric_registry
from fer_utils.training import rundir
from fer_utils.training.evaluate import (
    classification_metrics,
    evaluate_predictions,
    predictions_table,
    video_level,
)
from fer_utils.training.metrics import Metric
from fer_utils.training.seeds import describe_seeds, seed_table, summarize_seeds
from fer_utils.viz import dashboard, figures
from fer_utils.viz.dashboard import static

TRUE = ["neutral", "happy", "happy", "sad", "sad", "sad", "neutral", "happy", "happy"]
PRED = ["neutral", "neutral", "happy", "sad", "neutral", "happy", "sad", "happy", "happy"]


def test_balanced_accuracy_is_the_mean_recall_per_class():
    scores = classification_metrics(TRUE, PRED, LABELS)
    recalls = [1 / 2, 3 / 4, 1 / 3]  # neutral 1 of 2, happy 3 of 4, sad 1 of 3
    assert scores["balanced_accuracy"] == pytest.approx(np.mean(recalls))
    assert scores["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(TRUE, PRED))
    assert scores["balanced_accuracy"] != pytest.approx(scores["accuracy"])  # 5/9: not the same number


def test_neutral_rate_counts_neutral_answers_to_faces_that_are_not_neutral():
    scores = classification_metrics(TRUE, PRED, LABELS)
    assert scores["neutral_rate"] == pytest.approx(2 / 7)  # happy → neutral, sad → neutral, of 7 non-neutral
    without_neutral = classification_metrics(["happy", "sad"], ["sad", "sad"], ["happy", "sad"])
    assert "neutral_rate" not in without_neutral and "balanced_accuracy" in without_neutral


def test_both_new_metrics_exist_at_frame_and_video_level(tmp_path):
    cache = make_cache(tmp_path / "cache", 12)
    predictions = predictions_table(cache.index, toy_probabilities(12, 3), LABELS)
    video_number = predictions["video_id"].str[1:].astype(int)
    predictions["true_label"] = [LABELS[k % 3] for k in video_number]  # videos neutral, happy, sad, neutral
    scores = evaluate_predictions(predictions, LABELS)
    for level in ("frame", "video"):
        assert {"balanced_accuracy", "neutral_rate"} <= set(scores[level]), level
    per_video = video_level(predictions, LABELS)
    expected = balanced_accuracy_score(per_video["true_label"], per_video["predicted_label"])
    assert scores["video"]["balanced_accuracy"] == pytest.approx(expected)
    not_neutral = per_video[per_video["true_label"] != "neutral"]
    assert scores["video"]["neutral_rate"] == pytest.approx(
        (not_neutral["predicted_label"] == "neutral").mean()
    )


def test_a_metrics_json_from_before_the_new_metrics_loads_and_shows_a_dash(tmp_path):
    cache = make_cache(tmp_path / "cache", 12)
    run_dir = make_run(tmp_path / "runs" / "old", cache, toy_probabilities(12, 0))
    path = run_dir / rundir.METRICS_FILE
    record = json.loads(path.read_text())
    for level in ("frame", "video"):
        for name in ("balanced_accuracy", "neutral_rate"):
            record[level].pop(name, None)
    path.write_text(json.dumps(record))
    run = rundir.load_run(run_dir)
    assert (
        run.outcome.value("balanced_accuracy") is None and run.outcome.value("neutral_rate", "video") is None
    )
    summary = figures.summary_table(run.outcome)["value"]
    assert summary["balanced accuracy (frame)"] == "—" and summary["neutral rate (video)"] == "—"
    assert summary["accuracy (frame)"] == f"{100 * record['frame']['accuracy']:.1f}%"
    choices, problems = dashboard.run_choices(tmp_path / "runs")
    assert not problems
    assert "balanced accuracy <b>—</b>" in dashboard.header_html(choices[0])
    assert "<th>balanced accuracy %</th>" in dashboard.runs_overview_html(choices)


# -- the recipe: one registry entry, every table --------------------------------------------------------


def happy_answers(y_true, y_pred, labels, average_over):
    """The fixture metric: the share of answers that are ``happy``."""
    return sum(answer == "happy" for answer in y_pred) / len(y_pred)


FIXTURE_METRIC = Metric("happy_answers", "happy answers", happy_answers, higher_is_better=False)


@pytest.fixture()
def registry_with_a_new_metric(monkeypatch):
    monkeypatch.setattr(metric_registry, "METRICS", (*metric_registry.METRICS, FIXTURE_METRIC))
    return FIXTURE_METRIC


def test_a_metric_added_to_the_registry_reaches_every_table(
    registry_with_a_new_metric, tmp_path, monkeypatch
):
    entry = registry_with_a_new_metric
    cache = make_cache(tmp_path / "cache", 12)
    runs = tmp_path / "runs"
    folders = [
        make_run(runs / f"seed-{seed}", cache, toy_probabilities(12, seed), seed=seed, l1=1e-3)
        for seed in (0, 1)
    ]
    loaded = [rundir.load_run(folder) for folder in folders]

    # metrics.json: filled by the evaluation, at both levels, read back through the record
    values = []
    for folder, run in zip(folders, loaded, strict=True):
        written = json.loads((folder / rundir.METRICS_FILE).read_text())
        predictions = run.predictions
        expected = float((predictions["predicted_label"] == "happy").mean())
        assert written["frame"]["happy_answers"] == pytest.approx(expected)
        assert "happy_answers" in written["video"]
        assert run.outcome.value("happy_answers") == pytest.approx(expected)
        values.append(expected)
    shown = entry.format(values[0])

    # the run header (terminal) and the dashboard: header, one-run summary, overview, protocol comparison
    assert f"happy answers {shown}" in loaded[0].summary()
    choices, _ = dashboard.run_choices(runs)
    first = next(choice for choice in choices if choice.name == "seed-0")
    assert f"happy answers <b>{shown}</b>" in dashboard.header_html(first)
    assert figures.summary_table(loaded[0].outcome)["value"]["happy answers (frame)"] == shown
    overview = dashboard.runs_overview(choices)
    assert overview.loc[first.label, "happy answers %"] == pytest.approx(100 * values[0])
    assert "<th>happy answers %</th>" in dashboard.runs_overview_html(choices)
    comparison = dashboard.protocol_comparison(choices)
    assert comparison.iloc[0]["happy_answers_mean"] == pytest.approx(np.mean(values))
    comparison_html = dashboard.protocol_comparison_html(comparison, {})
    assert "<th>happy answers</th>" in comparison_html
    assert entry.format_mean_sd(np.mean(values), np.std(values, ddof=1)) in comparison_html

    # the static report, as the results notebook displays it
    shown_html = []
    monkeypatch.setattr("IPython.display.display", lambda item: shown_html.append(item.data))
    static.display_report(runs)
    report = "".join(shown_html)
    assert "<th>happy answers %</th>" in report and f"happy answers <b>{shown}</b>" in report

    # the ablation's tables (runs table, the readable table, the report's table)
    cells = tmp_path / "ablation"
    for seed, folder in enumerate(folders):
        (cells / ablation.RUNS_FOLDER).mkdir(parents=True, exist_ok=True)
        folder.rename(cells / ablation.RUNS_FOLDER / ablation.GridRun(0.3, 1e-3, seed).name)
    table = ablation.runs_table(cells)
    assert list(table["test_happy_answers"]) == pytest.approx(values)
    summary = ablation.summarize_configurations(table)
    assert summary.iloc[0]["test_happy_answers_mean"] == pytest.approx(np.mean(values))
    for readable in (ablation.format_table(summary), ablation.report_table(summary)):
        assert readable["test happy answers"].iloc[0].startswith(entry.format(np.mean(values)))

    # the seed summary, and the study tables built from seed summaries
    seeds = summarize_seeds(seed_table(loaded))
    assert seeds["scores"]["test_happy_answers"]["mean"] == pytest.approx(np.mean(values))
    assert "test happy answers: " + entry.format(np.mean(values)) in describe_seeds(seeds)
    study_row = {"configuration": "robust", "runs": 2, "converged": 2, "stalled": 0, "underfit": 0}
    for column, stats in seeds["scores"].items():
        study_row |= {f"{column}_{stat}": value for stat, value in stats.items()}
    assert "happy answers (mean ± sd)" in markdown_study(pd.DataFrame([study_row]))
    frontier_row = {
        "architecture": "paper",
        "image_size": 16,
        "parameters": 1234,
        "multiply_adds": 1e6,
        "seeds": 2,
        **seed_statistics(seeds),
        "int8_ms_per_face": 0.1,
        "train_images_per_s": 100.0,
        "train_hours_total": 0.1,
        "ece_after_mean": 0.05,
        "median_run": "paper/seed-0",
        "problem": None,
        "pareto_parameters": True,
        "pareto_ms": True,
    }
    frontier = markdown_frontier(pd.DataFrame([frontier_row]))
    header, rule, row = frontier.splitlines()
    assert "happy answers (mean ± sd)" in header and header.count("|") == rule.count("|") == row.count("|")
    assert re.search(re.escape(entry.format(np.mean(values))) + r" ± ", row)
