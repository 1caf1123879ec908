"""Regularization ablation: grid, aggregation, verdict and figures on hand-made run folders (fast), and a
real papermill grid on real FER2013 faces with failing runs and a rerun (slow)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict

import nbformat
import numpy as np
import pandas as pd
import pytest

from fer_utils.experiments import ablation
from fer_utils.experiments.ablation.execute import plan_runs
from fer_utils.experiments.ablation.grid import read_grid
from fer_utils.faces.cache_writer import write_array_cache
from fer_utils.paths import NOTEBOOKS_DIR
from fer_utils.settings import field_names
from fer_utils.training import run_listing, rundir
from fer_utils.training.train import TrainConfig

# ------------------------------------------------------------------------------- hand-made run folders


def make_finished_run(
    out_dir, dropout, l1, seed, train_acc, val_acc, test_acc=0.5, macro_f1=0.4, stalled=False, **config
):
    """A finished run folder written by the run-directory writer (only the fields the ablation reads
    are meaningful); ``config`` holds TrainConfig fields and other config.json keys (cache_key)."""
    run = ablation.GridRun(dropout, l1, seed)
    run_dir = out_dir / ablation.RUNS_FOLDER / run.name
    history = pd.DataFrame(
        {
            "epoch": np.arange(1, len(train_acc) + 1),
            "loss": 2.0 - np.asarray(train_acc),
            "accuracy": train_acc,
            "val_loss": 2.0 - np.asarray(val_acc),
            "val_accuracy": val_acc,
        }
    )
    settings = {key: value for key, value in config.items() if key in field_names(TrainConfig)}
    others = {key: value for key, value in config.items() if key not in settings}
    training = TrainConfig(dropout=run.dropout, l1=l1, seed=seed, **settings)
    metrics = hand_made_metrics(test_acc, macro_f1, stalled=stalled)
    metrics.fill_kept_epoch(history, "val_accuracy")  # the paper recipe keeps the best validation accuracy
    setup = rundir.RunConfig.from_json({**asdict(training), **others, "labels": list(LABELS)})
    rundir.write_run(run_dir, setup, history, metrics)
    return run_dir


LABELS = ("happy", "sad")


def hand_made_metrics(test_acc, macro_f1, **fields):
    """A metrics record load_run accepts, with the scores the ablation reads (the rest neutral)."""
    frame = rundir.Scores(test_acc, macro_f1, macro_f1, per_class={}, confusion_matrix=[[0, 0], [0, 0]])
    return rundir.RunMetrics(labels=list(LABELS), protocol="paper", num_params=0, frame=frame, **fields)


def make_failed_run(out_dir, dropout, l1, seed, message="dropout rates must be in [0, 1), got 1.5"):
    run = ablation.GridRun(dropout, l1, seed)
    run_dir = out_dir / ablation.RUNS_FOLDER / run.name
    run_dir.mkdir(parents=True)
    record = {"dropout": run.dropout, "l1": l1, "seed": seed, "ename": "ValueError", "evalue": message}
    (run_dir / ablation.ERROR_FILE).write_text(json.dumps(record))
    return run_dir


@pytest.fixture
def hand_made_ablation(tmp_path):
    """Baseline (0.3, L1 0) overfits; the paper's fix (0.5, L1 1e-3) barely does; one cell fails."""
    histories = {
        (0.3, 0.0): [([0.5, 0.8, 0.95], [0.45, 0.55, 0.50]), ([0.5, 0.7, 0.90], [0.40, 0.60, 0.55])],
        (0.5, 0.001): [([0.4, 0.55, 0.60], [0.40, 0.52, 0.56]), ([0.4, 0.50, 0.62], [0.38, 0.50, 0.57])],
    }
    for (dropout, l1), seeds in histories.items():
        for seed, (train_acc, val_acc) in enumerate(seeds):
            make_finished_run(tmp_path, dropout, l1, seed, train_acc, val_acc, test_acc=0.5 + seed / 10)
    make_finished_run(tmp_path, 0.3, 0.0, 2, [0.14, 0.14, 0.14], [0.14, 0.14, 0.14], stalled=True)
    make_failed_run(tmp_path, 1.5, 0.0, 0)
    make_failed_run(tmp_path, 1.5, 0.0, 1)
    return tmp_path, histories


# ------------------------------------------------------------------------------------------ fast tier


def test_grid_runs_cover_every_cell_and_seed_with_the_paper_rates():
    runs = ablation.grid_runs((0.3, 0.5), (0.0, 1e-4, 1e-3), 3)
    assert len(runs) == 18 and len({run.name for run in runs}) == 18
    assert [run.seed for run in runs[:6]] == [0] * 6  # seed-major: a partial grid covers every cell
    assert runs[1].dropout == [0.3, 0.3, 0.3] and runs[1].l1 == 1e-4
    assert runs[3].dropout == [0.3, 0.5, 0.5] and runs[3].name == "dropout0.3-0.5-0.5_l1-0-seed0"
    assert ablation.seed_list([3, 1, 3]) == [3, 1]
    with pytest.raises(ValueError, match="seeds"):
        ablation.grid_runs(seeds=0)
    with pytest.raises(ValueError, match="at least one"):
        ablation.grid_runs(dropouts=[])


def test_summary_is_mean_and_sd_over_seeds_of_each_runs_files(hand_made_ablation):
    out_dir, histories = hand_made_ablation
    runs = ablation.runs_table(out_dir)
    assert runs["status"].value_counts().to_dict() == {"complete": 5, "failed": 2}
    summary = ablation.summarize_configurations(runs).set_index(["last_two_dropout", "l1"])
    assert summary.loc[(0.3, 0.0), "n_stalled"] == 1  # counted apart, left out of the means below
    for (dropout, l1), seeds in histories.items():
        row = summary.loc[(dropout, l1)]
        final_gaps = [train[-1] - val[-1] for train, val in seeds]
        max_gaps = [max(t - v for t, v in zip(train, val, strict=True)) for train, val in seeds]
        best_val = [max(val) for _, val in seeds]
        epochs_to_best = [int(np.argmax(val)) + 1 for _, val in seeds]
        assert row["n_ok"] == 2 and row["n_failed"] == 0
        assert row["final_gap_mean"] == pytest.approx(np.mean(final_gaps))
        assert row["final_gap_sd"] == pytest.approx(np.std(final_gaps, ddof=1))
        assert row["max_gap_mean"] == pytest.approx(np.mean(max_gaps))
        assert row["val_accuracy_mean"] == pytest.approx(np.mean(best_val))
        assert row["epochs_to_best_mean"] == pytest.approx(np.mean(epochs_to_best))
        assert row["test_accuracy_mean"] == pytest.approx(0.55)
    failed = summary.loc[(1.5, 0.0)]
    assert failed["n_ok"] == 0 and failed["n_failed"] == 2 and math.isnan(failed["val_accuracy_mean"])
    assert failed["errors"] == "ValueError: dropout rates must be in [0, 1), got 1.5"
    with_stalled = ablation.summarize_configurations(runs, include_stalled=True).set_index(
        ["last_two_dropout", "l1"]
    )
    assert with_stalled.loc[(0.3, 0.0), "n_ok"] == 3
    assert with_stalled.loc[(0.3, 0.0), "final_gap_mean"] == pytest.approx((0.45 + 0.35 + 0.0) / 3)


def test_hand_made_runs_hold_metrics_that_load_run_accepts(hand_made_ablation):
    out_dir, _ = hand_made_ablation
    finished = [path for path in (out_dir / ablation.RUNS_FOLDER).iterdir() if rundir.is_finished(path)]
    assert len(finished) == 5
    for path in finished:
        assert run_listing.metrics_problem(rundir.read_metrics(path)) is None
        assert rundir.read_outcome(path).best_epoch is not None


def test_epoch_columns_and_verdict_use_the_epoch_each_run_kept(tmp_path):
    """Under the robust recipe a run keeps the best validation macro F1: its validation accuracy and epoch
    in the table, and the ranking of the verdict, are that epoch's, not those of the best accuracy."""
    val_accuracy = {(0.3, 0.0): [0.40, 0.70, 0.50], (0.5, 0.0): [0.40, 0.55, 0.60]}
    val_macro_f1 = {(0.3, 0.0): [0.30, 0.20, 0.45], (0.5, 0.0): [0.30, 0.40, 0.50]}
    for cell, accuracy in val_accuracy.items():
        run_dir = tmp_path / ablation.RUNS_FOLDER / ablation.GridRun(*cell, 0).name
        history = pd.DataFrame(
            {
                "epoch": [1, 2, 3],
                "accuracy": [0.5, 0.8, 0.9],
                "val_accuracy": accuracy,
                "val_macro_f1": val_macro_f1[cell],
            }
        )
        kept = int(np.argmax(val_macro_f1[cell]))  # epoch 3 in both cells
        metrics = {
            "labels": list(LABELS),
            "protocol": "paper",
            "num_params": 0,
            "recipe": "robust",
            "frame": {
                "accuracy": 0.5,
                "macro_f1": 0.4,
                "weighted_f1": 0.4,
                "per_class": {},
                "confusion_matrix": [],
            },
            "selection_metric": "val_macro_f1",
            "best_epoch": kept + 1,
            "best_val_accuracy": accuracy[kept],
            "best_val_macro_f1": val_macro_f1[cell][kept],
        }
        config = asdict(TrainConfig(recipe="robust", dropout=ablation.GridRun(*cell, 0).dropout))
        rundir.write_run(run_dir, config, history, metrics)
    runs = ablation.runs_table(tmp_path).set_index("last_two_dropout")
    assert runs.loc[0.3, "val_accuracy"] == pytest.approx(0.50)  # epoch 3's, not the unkept 0.70 of epoch 2
    assert runs.loc[0.3, "epochs_to_best"] == 3
    verdict = ablation.make_verdict(ablation.summarize_configurations(runs.reset_index()))
    assert verdict["best"] == ablation.config_label(0.5, 0.0)  # 60.0 % kept beats 50.0 % kept


def test_table_shows_mean_sd_strings_and_errors(hand_made_ablation):
    out_dir, _ = hand_made_ablation
    table = ablation.format_table(ablation.summarize_configurations(ablation.runs_table(out_dir)))
    assert table["dropout"].tolist() == ["0.3/0.3/0.3", "0.3/0.5/0.5", "0.3/1.5/1.5"]
    assert table["final train−val gap"].iloc[0] == "40.0% ± 7.1"  # gaps 0.45 and 0.35, in percent
    assert table["validation accuracy (best)"].iloc[2] == "—"
    assert table["error"].iloc[2].startswith("ValueError: dropout rates")
    markdown = ablation.markdown_table(table)
    assert markdown.count("\n") == 4 and "| 0.3/0.3/0.3 | 0 | 57.5% ± 3.5 |" in markdown
    assert table["test macro F1"].iloc[0].count(".") == 2  # F1 with three decimals: "0.xyz ± 0.xyz"
    assert ablation.markdown_table(pd.DataFrame({"a": ["x|y"]})).endswith("| x\\|y |")


def summary_of(rows):
    columns = {f"{metric}_{stat}": 0.0 for metric in ablation.table_metrics() for stat in ("mean", "sd")}
    return pd.DataFrame(
        [
            {
                **columns,
                "configuration": ablation.config_label(d, l1),
                "last_two_dropout": d,
                "l1": l1,
                "n_ok": 3,
                "n_failed": 0,
                "val_accuracy_mean": acc,
                "val_accuracy_sd": sd,
                "final_gap_mean": gap,
            }
            for d, l1, acc, sd, gap in rows
        ]
    )


def test_verdict_takes_the_smallest_gap_within_one_sd_of_the_best_accuracy():
    summary = summary_of(
        [
            (0.3, 0.0, 0.60, 0.02, 0.20),  # best accuracy, large gap
            (0.5, 0.0, 0.585, 0.01, 0.08),  # within one sd of the best: chosen
            (0.5, 0.001, 0.55, 0.01, 0.01),  # smallest gap but too inaccurate
        ]
    )
    verdict = ablation.make_verdict(summary, paper_l1=0.001)
    assert verdict["best"] == "dropout 0.3/0.3/0.3 · L1 0"
    assert verdict["chosen"] == "dropout 0.3/0.5/0.5 · L1 0"
    assert verdict["candidates"] == ["dropout 0.3/0.3/0.3 · L1 0", "dropout 0.3/0.5/0.5 · L1 0"]
    assert verdict["threshold"] == pytest.approx(0.58)
    assert verdict["paper"]["gap_change"] == pytest.approx(-0.19)
    assert (
        "**dropout 0.3/0.5/0.5 · L1 0** has the smallest" in verdict["text"] and "narrows" in verdict["text"]
    )
    assert "(≥ 58.0%)" in verdict["text"] and "(20.0% → 1.0%)" in verdict["text"]  # percent, as everywhere
    assert "by −5.0 pp" in verdict["text"].replace("-", "−")
    nothing = summary.assign(n_ok=0, n_failed=3)
    assert ablation.make_verdict(nothing)["chosen"] is None


def test_verdict_says_tie_and_single_seed_and_a_sign_flip_is_no_narrowing():
    """The demo's case: two configurations tie on validation (78.1 %), each from one seed, and the fix
    takes the gap from +11.8 % to −8.7 %."""
    summary = summary_of(
        [
            (0.3, 0.0, 0.78125, np.nan, 0.118),
            (0.5, 0.001, 0.78125, np.nan, -0.087),
            (0.5, 0.0, 0.70, np.nan, 0.05),
        ]
    ).assign(n_ok=1, test_accuracy_mean=[0.583, 0.708, 0.6], test_accuracy_sd=np.nan)
    text = ablation.make_verdict(summary, paper_l1=0.001)["text"]
    assert "a tie at 78.1%" in text and "test accuracy 58.3%" in text and "test accuracy 70.8%" in text
    assert "no spread: 1 seed" in text and "within one sd" not in text
    assert (
        "flips the sign of" in text and "narrows" not in text and "(11.8% → −8.7%)" in text.replace("-", "−")
    )
    assert (
        ablation.gap_change_words(0.2, 0.1) == "narrows" and ablation.gap_change_words(0.1, 0.2) == "widens"
    )
    assert ablation.gap_change_words(0.1, 0.1) == "leaves unchanged"


def test_the_reports_ablation_table_has_the_columns_of_table_md(hand_made_ablation):
    """Every count column of table.md (runs ok, stalled, underfit, failed) is in the report's table too."""
    out_dir, _ = hand_made_ablation
    summary = ablation.summarize_configurations(ablation.runs_table(out_dir))
    report = ablation.report_table(summary)
    for column in ("runs ok", "stalled", "underfit", "failed"):
        assert column in ablation.format_table(summary).columns and column in report.columns, column
    assert report["underfit"].tolist() == summary["n_underfit"].tolist()


def test_curves_show_seed_bands_for_the_papers_two_configurations(hand_made_ablation):
    out_dir, histories = hand_made_ablation
    loaded = ablation.load_histories(ablation.runs_table(out_dir))
    band = ablation.seed_band(loaded, 0.3, 0.0, "accuracy")
    assert band["mean"].tolist() == pytest.approx([0.5, 0.75, 0.925])
    assert band["sd"].tolist() == pytest.approx(
        [0.0, np.std([0.8, 0.7], ddof=1), np.std([0.95, 0.9], ddof=1)]
    )
    figure = ablation.configuration_curves_figure(loaded, paper_l1=0.001)
    # 2 configurations × (accuracy, loss) × (train, validation) × (band, mean line)
    assert len(figure.data) == 16
    titles = [annotation.text for annotation in figure.layout.annotations]
    assert "dropout 0.3/0.3/0.3 · L1 0" in titles and "dropout 0.3/0.5/0.5 · L1 0.001" in titles
    mean_line = next(trace for trace in figure.data if trace.name == "validation (mean of seeds)")
    assert list(mean_line.y) == pytest.approx([0.425, 0.575, 0.525])
    empty = ablation.configuration_curves_figure(loaded, configurations=[(0.9, 0.0)])
    assert "no finished run" in [annotation.text for annotation in empty.layout.annotations]


def test_gap_heatmap_covers_the_grid_and_marks_failed_cells(hand_made_ablation):
    out_dir, _ = hand_made_ablation
    summary = ablation.summarize_configurations(ablation.runs_table(out_dir))
    figure = ablation.gap_heatmap_figure(summary)
    final, largest = figure.data
    assert list(final.y) == ["0.3/0.3/0.3", "0.3/0.5/0.5", "0.3/1.5/1.5"] and list(final.x) == [
        "L1 0",
        "L1 0.001",
    ]
    assert final.z[0][0] == pytest.approx(40.0) and final.z[0][1] is None  # percent, as the cell text
    assert final.text[0][0].startswith("40.0%") and figure.layout.coloraxis.colorbar.ticksuffix == " %"
    assert "%" in figure.layout.coloraxis.colorbar.title.text
    assert final.text[2][0] == "failed" and final.text[0][1] == "—"
    assert largest.z[0][0] >= final.z[0][0]


def test_figure_titles_fit_a_narrow_page(hand_made_ablation):
    """Each title line stays under ~55 characters (about 500 px at plotly's title size), so nothing is cut
    in an 820 px window."""
    import re

    result = ablation.analyze(hand_made_ablation[0])
    for name in ("curves", "gap_heatmap"):
        title = result.figures[name].layout.title.text
        lines = [re.sub(r"<[^>]+>", "", line) for line in title.split("<br>")]
        assert max(map(len, lines)) <= 55, (name, lines)


def test_analyze_writes_table_figures_and_summary(hand_made_ablation):
    out_dir, _ = hand_made_ablation
    result = ablation.analyze(out_dir)
    for path in result.paths.values():
        assert path.exists() and path.stat().st_size > 0
    assert "plotly" in result.paths["curves"].read_text()[:5000].lower()
    summary = json.loads(result.paths["summary"].read_text())
    assert summary["runs"] == {"complete": 5, "failed": 2}
    assert "1 run(s) stalled" in summary["verdict"]["text"]
    assert [row["run_name"] for row in summary["failed"]] == [
        "dropout0.3-1.5-1.5_l1-0-seed0",
        "dropout0.3-1.5-1.5_l1-0-seed1",
    ]
    assert "## Failed runs" in result.paths["table_md"].read_text()
    assert pd.read_csv(result.paths["table_csv"])["n_ok"].tolist() == [2, 2, 0]


@pytest.fixture
def tiny_cache(tmp_path):
    rng = np.random.default_rng(0)
    return write_array_cache(
        tmp_path / "cache", rng.integers(0, 255, (12, 16, 16), dtype=np.uint8), ["happy", "sad"] * 6
    )


def test_rerun_skips_finished_runs_and_refuses_runs_made_otherwise(tiny_cache, tmp_path):
    out_dir = tmp_path / "ablation"
    training = {
        "protocol": "paper",
        "epochs": 2,
        "batch_size": 32,
        "learning_rate": 0.001,
        "image_size": 16,
        "fold": 0,
        "early_stopping_patience": 0,
        "train_faces_per_class": None,
        "cache_key": tiny_cache.key,
    }
    for seed in (0, 1):
        make_finished_run(
            out_dir,
            0.5,
            0.0,
            seed,
            [0.6, 0.7],
            [0.5, 0.6],
            **training,
        )
    result = ablation.run_grid(tiny_cache.cache_dir, out_dir, dropouts=[0.5], l1s=[0.0], n_seeds=2, epochs=2)
    assert result.executions["status"].tolist() == ["skipped (complete)"] * 2  # papermill never started
    assert result.summary["n_ok"].tolist() == [2]
    with pytest.raises(ValueError, match="epochs 2 ≠ 3"):
        ablation.run_grid(tiny_cache.cache_dir, out_dir, dropouts=[0.5], l1s=[0.0], n_seeds=2, epochs=3)
    planned = plan_runs(
        ablation.grid_runs([0.5], [0.0], 2),
        out_dir,
        read_grid(out_dir) | {"training": {**read_grid(out_dir)["training"], "epochs": 3}},
        ablation.GridConfig(replace_stale=True),
        NOTEBOOKS_DIR / "02_training.ipynb",
    )
    assert [task["name"] for task in planned[0]] == [
        "dropout0.3-0.5-0.5_l1-0-seed0",
        "dropout0.3-0.5-0.5_l1-0-seed1",
    ]


def test_a_finished_run_with_the_cells_settings_is_copied_in_not_trained_again(tiny_cache, tmp_path):
    settings = {"epochs": 2, "image_size": 16, "cache_key": tiny_cache.key}
    subject = make_finished_run(tmp_path / "elsewhere", 0.3, 0.0, 0, [0.6, 0.7], [0.5, 0.6], **settings)
    longer = make_finished_run(
        tmp_path / "longer", 0.3, 0.0, 0, [0.6, 0.7], [0.5, 0.6], **{**settings, "epochs": 3}
    )
    cell = {**asdict(TrainConfig(epochs=2, input_size=16)), "seed": 0}
    cell.update(dropout=[0.3, 0.3, 0.3], l1=0.0)
    assert ablation.reusable_run([longer, subject], cell, tiny_cache.key) == subject
    assert ablation.reusable_run([longer], cell, tiny_cache.key) is None  # epochs differ
    assert ablation.reusable_run([subject], cell, "another-cache") is None
    assert ablation.reusable_run([subject], {**cell, "l1": 1e-3}, tiny_cache.key) is None
    assert ablation.reusable_run([subject], {**cell, "threads": 2}, tiny_cache.key) is None  # other sums

    out_dir = tmp_path / "ablation"
    result = ablation.run_grid(
        tiny_cache.cache_dir,
        out_dir,
        dropouts=[0.3],
        l1s=[0.0],
        n_seeds=1,
        epochs=2,
        reuse_runs=[longer, subject],
    )
    assert result.executions["status"].tolist() == [f"reused ({subject})"]  # papermill never started
    copy = out_dir / ablation.RUNS_FOLDER / "dropout0.3-0.3-0.3_l1-0-seed0"
    assert json.loads((copy / ablation.REUSED_FILE).read_text()) == {"reused_from": str(subject.resolve())}
    assert (copy / rundir.METRICS_FILE).read_bytes() == (subject / rundir.METRICS_FILE).read_bytes()
    assert result.summary["n_ok"].tolist() == [1]
    again = ablation.run_grid(
        tiny_cache.cache_dir, out_dir, dropouts=[0.3], l1s=[0.0], n_seeds=1, epochs=2, reuse_runs=[subject]
    )
    assert again.executions["status"].tolist() == ["skipped (complete)"]


def test_fer_run_offers_its_protocol_run_to_the_ablation(monkeypatch, tmp_path):
    from fer_utils.experiments import notebook_pipeline

    executed = {}
    monkeypatch.setattr(
        notebook_pipeline, "_execute", lambda notebook, output, parameters, cwd: executed.update(parameters)
    )
    config = notebook_pipeline.PipelineConfig()
    notebook_pipeline.ablation_step(config, tmp_path / "cache", tmp_path / "runs" / "ablation", tmp_path, {})
    assert executed["reuse_runs"] == [str(tmp_path / "runs" / "subject")]
    assert executed["protocol"] == "subject" and executed["epochs"] == config.training_config().epochs


def test_bad_arguments_are_clear_errors(tiny_cache, tmp_path):
    with pytest.raises(ValueError, match="unknown protocol"):
        ablation.run_grid(tiny_cache.cache_dir, tmp_path, protocol="random")
    with pytest.raises(ValueError, match="not a face cache"):
        ablation.run_grid(tmp_path / "nowhere", tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        ablation.analyze(tmp_path / "nowhere")


def test_cli_registers_fer_ablate():
    from fer_utils.cli import build_parser

    args = build_parser().parse_args(
        [
            "ablate",
            "--cache",
            "c",
            "--out",
            "o",
            "--dropouts",
            "0.3",
            "0.5",
            "--l1s",
            "0",
            "1e-3",
            "--n-seeds",
            "2",
        ]
    )
    assert args.func is ablation.cli._cli_ablate
    assert (
        args.dropouts == [0.3, 0.5] and args.l1s == [0.0, 0.001] and args.n_seeds == 2 and args.epochs == 15
    )


def test_the_former_seed_count_name_still_works_with_a_warning():
    """``--seeds N`` / ``seeds=N`` (a count under fer ablate, a list under fer train) is ``n_seeds`` now;
    the old name is accepted, with a FutureWarning naming the new one, for one release."""
    from fer_utils import cli
    from fer_utils.experiments.ablation.execute import grid_settings
    from fer_utils.settings import config_from_args

    with pytest.warns(FutureWarning, match="'--seeds' is renamed '--n-seeds'"):
        args = cli.build_parser().parse_args(["ablate", "--cache", "c", "--out", "o", "--seeds", "3"])
    assert args.n_seeds == 3
    with pytest.warns(FutureWarning, match="'seeds' is renamed 'n_seeds'"):
        grid = config_from_args(ablation.GridConfig, {"n_seeds": 1, "seeds": 2})  # notebook 03, -p seeds 2
    assert grid.n_seeds == 2
    with pytest.warns(FutureWarning, match="'seeds' is renamed 'n_seeds'"):
        assert grid_settings(None, None, {"seeds": 2})[0].n_seeds == 2


def test_notebook_03_parameters_reach_run_grid():
    notebook = nbformat.read(NOTEBOOKS_DIR / "03_regularization_ablation.ipynb", as_version=4)
    parameters = next(cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    names = {line.split("=")[0].strip() for line in parameters.source.splitlines() if "=" in line}
    assert {"cache_dir", "out_dir", "protocol", "epochs", "dropouts", "l1s", "n_seeds", "workers"} <= names
    assert "ablation.run_grid(" in "".join(cell.source for cell in notebook.cells)


# ------------------------------------------------------------------------------------------ slow tier

GRID = {"dropouts": [0.5, 1.5], "l1s": [0.0, 1e-3], "n_seeds": 2}
TRAINING = {"protocol": "fixed", "epochs": 2, "batch_size": 32, "train_faces_per_class": 15}
# Two epochs on 105 faces rarely leave the majority-class rate: count stalled runs in the means here.
ANALYSIS = {"include_stalled": True}


@pytest.fixture(scope="module")
def real_grid(fer2013_small_cache, tmp_path_factory):
    """2 × 2 grid × 2 seeds on real faces, papermill-executed: the 4 runs with dropout 1.5 must fail."""
    out_dir = tmp_path_factory.mktemp("ablation")
    result = ablation.run_grid(
        fer2013_small_cache.cache_dir, out_dir, **GRID, **TRAINING, **ANALYSIS, workers=2
    )
    return fer2013_small_cache, out_dir, result


@pytest.mark.slow
def test_grid_executes_one_notebook_per_run_and_reports_failures(real_grid):
    _, out_dir, result = real_grid
    run_dirs = sorted(p for p in (out_dir / ablation.RUNS_FOLDER).iterdir() if p.is_dir())
    assert len(run_dirs) == 8
    for run_dir in run_dirs:
        executed = nbformat.read(run_dir / ablation.EXECUTED_NOTEBOOK, as_version=4)
        injected = executed.metadata.papermill.parameters
        assert injected["run_dir"] == str(run_dir.resolve()) and injected["epochs"] == 2
        assert injected["dropout"][0] == 0.3 and injected["dropout"][1] == injected["dropout"][2]
        if injected["dropout"][1] == 1.5:
            error = json.loads((run_dir / ablation.ERROR_FILE).read_text())
            assert (
                error["ename"] == "ValueError"
                and "dropout rates must be in [0, 1), got 1.5" in error["evalue"]
            )
            # refused where the parameters become a TrainConfig, before any model or run file exists
            assert "notebook_training(" in error["cell_source"] and not (run_dir / "metrics.json").exists()
        else:
            assert (run_dir / "metrics.json").exists() and not (run_dir / ablation.ERROR_FILE).exists()
    assert sorted(result.executions["status"]) == ["complete"] * 4 + ["failed"] * 4
    table = result.table.set_index("dropout")
    assert (table.loc["0.3/1.5/1.5", "failed"] == 2).all() and (
        table.loc["0.3/1.5/1.5", "runs ok"] == 0
    ).all()
    assert table.loc["0.3/1.5/1.5", "error"].str.contains("got 1.5").all()
    assert (table.loc["0.3/0.5/0.5", "runs ok"] == 2).all()
    assert len(result.failed) == 4 and result.failed["error"].str.startswith("ValueError").all()


@pytest.mark.slow
def test_aggregate_equals_a_recomputation_from_the_run_files(real_grid):
    _, out_dir, result = real_grid
    for l1 in GRID["l1s"]:
        rows = []
        for seed in range(GRID["n_seeds"]):
            run_dir = out_dir / ablation.RUNS_FOLDER / ablation.GridRun(0.5, l1, seed).name
            metrics = json.loads((run_dir / "metrics.json").read_text())
            history = pd.read_csv(run_dir / "history.csv")
            gap = history["accuracy"] - history["val_accuracy"]
            rows.append(
                {
                    "val_accuracy": history["val_accuracy"][history["epoch"] == metrics["best_epoch"]].item(),
                    "test_accuracy": metrics["frame"]["accuracy"],
                    "test_macro_f1": metrics["frame"]["macro_f1"],
                    "final_gap": gap.iloc[-1],
                    "max_gap": gap.max(),
                    "epochs_to_best": history["epoch"][history[metrics["selection_metric"]].idxmax()],
                }
            )
        expected = pd.DataFrame(rows)
        row = result.summary[(result.summary["last_two_dropout"] == 0.5) & (result.summary["l1"] == l1)].iloc[
            0
        ]
        for metric in expected.columns:
            assert row[f"{metric}_mean"] == pytest.approx(expected[metric].mean()), metric
            assert row[f"{metric}_sd"] == pytest.approx(expected[metric].std(ddof=1), nan_ok=True), metric
    for name in ("curves", "gap_heatmap", "table_csv", "table_md", "summary", "runs"):
        assert result.paths[name].exists() and result.paths[name].stat().st_size > 0
    assert len(result.figures["curves"].data) == 8  # only the (0.5, 1e-3) column has finished runs


@pytest.mark.slow
def test_rerun_skips_every_finished_run(real_grid, capsys):
    cache, out_dir, _ = real_grid
    notebooks = sorted((out_dir / ablation.RUNS_FOLDER).glob(f"*/{ablation.EXECUTED_NOTEBOOK}"))
    stamps = [os.stat(path).st_mtime_ns for path in notebooks]
    again = ablation.run_grid(cache.cache_dir, out_dir, **GRID, **TRAINING, **ANALYSIS, retry_failed=False)
    assert sorted(again.executions["status"]) == ["skipped (complete)"] * 4 + ["skipped (failed)"] * 4
    assert [os.stat(path).st_mtime_ns for path in notebooks] == stamps
    from fer_utils.cli import main

    command = [
        "ablate",
        "--cache",
        str(cache.cache_dir),
        "--out",
        str(out_dir),
        "--no-retry-failed",
        "--seeds",
        "2",
    ]
    command += [
        "--dropouts",
        "0.5",
        "1.5",
        "--l1s",
        "0",
        "1e-3",
        "--protocol",
        "fixed",
        "--epochs",
        "2",
        "--include-stalled",
    ]
    assert main([*command, "--train-faces-per-class", "15"]) == 0
    printed = capsys.readouterr().out
    assert "| 0.3/1.5/1.5 | 0 |" in printed and "4 run(s) did not finish" in printed
    assert [os.stat(path).st_mtime_ns for path in notebooks] == stamps


@pytest.mark.slow
def test_notebook_03_renders_a_finished_grid(real_grid, tmp_path):
    import papermill

    cache, out_dir, _ = real_grid
    output = tmp_path / "03.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / "03_regularization_ablation.ipynb"),
        str(output),
        parameters={
            "cache_dir": str(cache.cache_dir),
            "out_dir": str(out_dir),
            **GRID,
            **TRAINING,
            **ANALYSIS,
            "retry_failed": False,
        },
        kernel_name="python3",
        progress_bar=False,
    )
    executed = nbformat.read(output, as_version=4)
    text = json.dumps([cell.get("outputs", []) for cell in executed.cells])
    assert "skipped (complete)" in text and "application/vnd.plotly.v1+json" in text
    assert "got 1.5" in text and "Best validation accuracy" in text


def test_the_report_reads_the_ablation_from_its_files_not_by_re_analysing(hand_made_ablation):
    """The report's ablation section is what summary.json and the figure JSON files say: a verdict edited
    in the file is the one shown, even with the runs gone; a summary.json from before the report table
    is a one-line warning naming the command that rewrites it."""
    import shutil

    from fer_utils.viz.dashboard.static import ablation_section_html

    out_dir, _ = hand_made_ablation
    ablation.analyze(out_dir)
    summary_path = out_dir / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["verdict"]["text"] = "read from **the file**"
    summary_path.write_text(json.dumps(summary))
    shutil.rmtree(out_dir / "runs")
    text, figures = ablation_section_html(out_dir)
    assert "read from <b>the file</b>" in text and "runs ok" in text
    assert [figure.layout.title.text for figure in figures] == [
        json.loads((out_dir / name).read_text())["layout"]["title"]["text"]
        for name in ("curves.json", "gap_heatmap.json")
    ]
    del summary["report_table"]
    summary_path.write_text(json.dumps(summary))
    text, figures = ablation_section_html(out_dir)
    assert "predates it" in text and "fer ablate --out" in text and figures == []
