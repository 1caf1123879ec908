"""Dashboard logic without a browser: run labels and discovery, matrix views, the faces behind a cell
(frame and video level), run differences, the literature table, the widget callbacks and the CLI.

Fast tests build small run directories by the run-directory contract (metrics computed by
``fer_utils.training.evaluate`` from the predictions they write); the slow tier uses real training runs on FER2013
faces (:func:`real_runs_dir`, also used by the report and browser tests).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_utils.data.synthetic import MANIFEST_NAME, SYNTHETIC_MARKER, is_demo_media
from fer_utils.faces.cache import FaceCache
from fer_utils.faces.cache_writer import FaceCacheWriter
from fer_utils.training import rundir
from fer_utils.training.evaluate import evaluate_predictions, predictions_table
from fer_utils.training.results import RunConfig, RunMetrics
from fer_utils.viz import dashboard, figures, formatting

LABELS = ["neutral", "happy", "sad"]


def outcome(labels, frame_matrix, video_matrix=None, per_class=None) -> RunMetrics:
    """A run record whose scores are just these confusion matrices (and per-class rows), built by the
    record's one builder."""

    def scores(matrix):
        return {"accuracy": 0.0, "macro_f1": 0.0, "weighted_f1": 0.0, "per_class": per_class or {},
                "confusion_matrix": matrix}  # fmt: skip

    levels = {"frame": scores(frame_matrix), "video": scores(video_matrix) if video_matrix else None}
    return RunMetrics.build(levels, labels=list(labels), protocol="paper", num_params=0)


# ----------------------------------------------------------------------------------------------------
# Helpers: small run directories by the contract
# ----------------------------------------------------------------------------------------------------


def make_cache(folder: Path, n_faces: int, size: int = 16) -> FaceCache:
    """A face cache whose face i is filled with gray value i (so pixels identify the face)."""
    writer = FaceCacheWriter(folder, {"dataset": "toy", "image_size": size}, shard_size=7)
    for i in range(n_faces):
        face = np.full((1, size, size), i % 256, np.uint8)
        rows = [
            {
                "dataset": "toy",
                "media_path": f"m{i:04d}",
                "label": LABELS[i % 3],
                "subject": "s1",
                "video_id": f"v{i // 3}",
                "frame_index": i % 3,
            }
        ]
        writer.add(f"m{i:04d}", face, rows)
    return writer.close()


def make_run(
    folder: Path,
    cache: FaceCache,
    probabilities: np.ndarray,
    labels=LABELS,
    seed: int = 0,
    dropout=(0.3, 0.3, 0.3),
    l1: float = 0.0,
    dataset: str = "toy",
    protocol: str = "paper",
    synthetic: bool = False,
) -> Path:
    """A finished run over the first len(probabilities) faces of ``cache``."""
    index = cache.index.iloc[: len(probabilities)]
    predictions = predictions_table(index, probabilities, labels)
    metrics = {
        "status": "complete",
        "dataset": dataset,
        "protocol": protocol,
        "labels": list(labels),
        "num_params": 1234,
        "split": {"train": 10, "validation": 2, "test": len(predictions)},
        "stalled": False,
        "stalled_reason": None,
        "majority_rate": 0.34,
        "best_epoch": 2,
        **evaluate_predictions(predictions, labels),
    }
    config = {
        "run_name": folder.name,
        "dataset": dataset,
        "cache_dir": str(cache.cache_dir),
        "cache_key": cache.key,
        "protocol": protocol,
        "image_size": cache.face_size,
        "epochs": 2,
        "seed": seed,
        "dropout": list(dropout),
        "l1": l1,
        "labels": list(labels),
        "split": {"train": 10, "validation": 2, "test": len(predictions), "test_hash": "abc"},
        "preprocessing": {**cache.config, **({SYNTHETIC_MARKER: True} if synthetic else {})},
    }
    history = pd.DataFrame(
        {
            "epoch": [1, 2],
            "loss": [1.1, 0.9],
            "accuracy": [0.4, 0.6],
            "val_loss": [1.0, 0.95],
            "val_accuracy": [0.5, 0.55],
            "test_loss": [1.0, 0.97],
            "test_accuracy": [0.45, 0.5],
        }
    )
    split = pd.DataFrame({"face_id": index["face_id"], "part": "test"})
    return rundir.write_run(folder, config, history, metrics, predictions, split, model_bytes=b"")


def toy_probabilities(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(len(LABELS)), size=n)


@pytest.fixture()
def toy_runs(tmp_path):
    """Two finished runs (12 test faces in 4 videos of 3 frames), one unfinished, one malformed."""
    cache = make_cache(tmp_path / "cache", 12)
    runs = tmp_path / "runs"
    make_run(runs / "b-run", cache, toy_probabilities(12, 1), seed=1, dropout=(0.3, 0.5, 0.5), l1=1e-3)
    make_run(runs / "a-run", cache, toy_probabilities(12, 0))
    unfinished = runs / "unfinished"
    unfinished.mkdir()
    shutil.copy(runs / "a-run" / rundir.CONFIG_FILE, unfinished)
    shutil.copy(runs / "a-run" / rundir.SPLIT_FILE, unfinished)
    malformed = runs / "malformed"
    shutil.copytree(runs / "a-run", malformed)
    (malformed / rundir.METRICS_FILE).write_text('{"status": "compl')  # deliberately broken
    return runs, cache


# ----------------------------------------------------------------------------------------------------
# Labels, discovery, parameters
# ----------------------------------------------------------------------------------------------------


def test_run_label_names_dataset_protocol_and_configuration():
    config = {"dataset": "ravdess", "protocol": "subject", "dropout": [0.3, 0.5, 0.5], "l1": 0.001, "seed": 0}
    assert dashboard.run_label(
        RunConfig.from_json({**config, "recipe": "paper", "protocol": "paper"})
    ).startswith("ravdess · protocol: paper · recipe: paper · ")
    assert (
        dashboard.run_label(RunConfig.from_json({**config, "image_size": 180}))
        == "ravdess · protocol: subject · drop(.3,.5,.5) l1=1e-3 · seed 0"
    )
    assert (
        dashboard.run_label(RunConfig.from_json({**config, "image_size": 48, "l1": 0, "split": {"fold": 2}}))
        == "ravdess · protocol: subject · drop(.3,.5,.5) l1=0 48px · seed 0 fold 2"
    )
    light = {**config, "recipe": "robust", "architecture": "mini_xception"}
    assert " · recipe: robust · model: mini_xception · " in dashboard.run_label(RunConfig.from_json(light))


def test_run_choices_sorts_labels_and_reports_unfinished_and_malformed(toy_runs):
    runs, _ = toy_runs
    choices, problems = dashboard.run_choices(runs)
    assert [c.name for c in choices] == ["a-run", "b-run"]  # dropout (.3,.3,.3) sorts first
    assert choices[1].label == "toy · protocol: paper · drop(.3,.5,.5) l1=1e-3 16px · seed 1"
    assert set(problems) == {"unfinished", "malformed"}
    assert "metrics.json" in problems["unfinished"]
    assert "malformed" in problems["malformed"]
    assert dashboard.find_choice(choices, "b-run") == 1
    assert dashboard.find_choice(choices, "nothing-like-it") == 0


def test_duplicate_labels_are_made_unique_with_the_folder_name(tmp_path):
    cache = make_cache(tmp_path / "cache", 6)
    make_run(tmp_path / "runs" / "x", cache, toy_probabilities(6, 0))
    make_run(tmp_path / "runs" / "y", cache, toy_probabilities(6, 1))
    labels = [c.label for c in dashboard.run_choices(tmp_path / "runs")[0]]
    assert labels[0].endswith("· x") and labels[1].endswith("· y")


def test_an_ablation_cell_copied_from_a_listed_run_is_one_menu_entry(tmp_path):
    from fer_utils.experiments import ablation

    cache = make_cache(tmp_path / "cache", 6)
    subject = make_run(tmp_path / "runs" / "subject", cache, toy_probabilities(6, 0), protocol="subject")
    grid = tmp_path / "runs" / "ablation"
    cell = grid / "runs" / "dropout0.3-0.3-0.3_l1-0-seed0"
    shutil.copytree(subject, cell)
    (grid / ablation.GRID_FILE).write_text("{}")
    (cell / ablation.REUSED_FILE).write_text(json.dumps({"reused_from": str(subject)}))
    other = make_run(
        grid / "runs" / "dropout0.3-0.5-0.5_l1-0-seed0",
        cache,
        toy_probabilities(6, 1),
        protocol="subject",
        dropout=(0.3, 0.5, 0.5),
    )
    choices, _ = dashboard.run_choices(tmp_path / "runs")
    assert [c.run.path for c in choices] == [subject, other]
    assert choices[0].label.endswith(f"· {dashboard.ALSO_ABLATION_NOTE}")
    assert dashboard.ALSO_ABLATION_NOTE not in choices[1].label
    (cell / ablation.REUSED_FILE).write_text(json.dumps({"reused_from": str(tmp_path / "gone")}))
    assert len(dashboard.run_choices(tmp_path / "runs")[0]) == 3  # its source not listed: the cell stays


def test_runs_dir_comes_from_the_parameter_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(dashboard.RUNS_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(dashboard.INITIAL_RUN_ENV, "run-7")
    assert dashboard.resolve_runs_dir("") == tmp_path.resolve()
    assert dashboard.resolve_runs_dir(tmp_path / "other") == (tmp_path / "other").resolve()
    assert dashboard.resolve_initial_run("") == "run-7"
    assert dashboard.resolve_initial_run("mine") == "mine"


# ----------------------------------------------------------------------------------------------------
# Matrices and cells
# ----------------------------------------------------------------------------------------------------


def test_matrix_views_counts_recall_and_precision():
    metrics = outcome(["x", "y"], [[3, 1], [2, 2]])
    np.testing.assert_array_equal(dashboard.matrix_view(metrics, "frame", None), [[3, 1], [2, 2]])
    np.testing.assert_allclose(dashboard.matrix_view(metrics, "frame", "true"), [[0.75, 0.25], [0.5, 0.5]])
    np.testing.assert_allclose(dashboard.matrix_view(metrics, "frame", "pred"), [[0.6, 1 / 3], [0.4, 2 / 3]])
    assert dashboard.format_cell(0.75, "true") == "0.75" and dashboard.format_cell(3.0, None) == "3"
    with pytest.raises(ValueError, match="no video-level"):
        dashboard.matrix_view(metrics, "video")
    with pytest.raises(ValueError, match="level"):
        dashboard.has_level(metrics, "clip")


def test_cell_faces_match_every_cell_of_the_frame_matrix(toy_runs):
    runs, _ = toy_runs
    run = dashboard.run_choices(runs)[0][0].run
    matrix = np.asarray(run.outcome.frame.confusion_matrix)
    for i, true in enumerate(LABELS):
        for j, predicted in enumerate(LABELS):
            faces = dashboard.cell_faces(run.predictions, LABELS, true, predicted, "frame")
            assert len(faces) == matrix[i, j]
            assert list(faces["confidence"]) == sorted(faces["confidence"], reverse=True)
            rows = run.predictions.set_index("face_id").loc[faces["face_id"]]
            assert (rows["true_label"] == true).all() and (rows["predicted_label"] == predicted).all()
            np.testing.assert_allclose(faces["confidence"], rows[f"prob_{predicted}"])
    with pytest.raises(ValueError, match="unknown class"):
        dashboard.cell_faces(run.predictions, LABELS, "contempt", "sad")


def test_video_cells_show_one_representative_face_per_video(toy_runs):
    runs, _ = toy_runs
    run = dashboard.run_choices(runs)[0][0].run
    matrix = np.asarray(run.outcome.video.confusion_matrix)
    assert matrix.sum() == 4
    seen = []
    for i, true in enumerate(LABELS):
        for j, predicted in enumerate(LABELS):
            videos = dashboard.cell_faces(run.predictions, LABELS, true, predicted, "video")
            assert len(videos) == matrix[i, j]
            for video in videos.itertuples():
                faces = run.predictions[run.predictions["video_id"] == video.video_id]
                mean = faces[[f"prob_{label}" for label in LABELS]].mean()
                assert mean.idxmax() == f"prob_{predicted}"
                assert video.confidence == pytest.approx(mean.max())
                assert video.faces == len(faces) == 3
                best = faces.loc[faces[f"prob_{predicted}"].idxmax()]
                assert (video.face_id, video.frame_index) == (best["face_id"], best["frame_index"])
                seen.append(video.video_id)
    assert sorted(seen) == ["v0", "v1", "v2", "v3"]


def test_difference_matrix_subtracts_and_refuses_other_classes():
    a = outcome(["x", "y"], [[3, 1], [0, 4]])
    b = outcome(["x", "y"], [[2, 2], [1, 3]])
    np.testing.assert_array_equal(dashboard.difference_matrix(a, b), [[1, -1], [-1, 1]])
    np.testing.assert_allclose(
        dashboard.difference_matrix(a, b, normalize="true"), [[0.25, -0.25], [-0.25, 0.25]]
    )
    with pytest.raises(ValueError, match="different classes"):
        dashboard.difference_matrix(a, outcome(["x", "z"], [[2, 2], [1, 3]]))


def test_per_class_table_has_averages_matching_metrics(toy_runs):
    runs, _ = toy_runs
    metrics = dashboard.run_choices(runs)[0][0].run.outcome
    table = dashboard.per_class_table(metrics)
    assert list(table.index) == [*LABELS, "macro avg", "weighted avg"]
    assert table.loc["macro avg", "f1"] == pytest.approx(metrics.frame.macro_f1)
    assert table.loc["weighted avg", "f1"] == pytest.approx(metrics.frame.weighted_f1)
    assert table["support"].dtype.kind == "i" and table.loc["macro avg", "support"] == 12
    assert '<td class="fer-num">12</td>' in dashboard.per_class_html(metrics)


def test_face_png_round_trips():
    face = np.arange(64, dtype=np.uint8).reshape(8, 8)
    decoded = cv2.imdecode(np.frombuffer(dashboard.face_png(face), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded, face)


# ----------------------------------------------------------------------------------------------------
# Literature
# ----------------------------------------------------------------------------------------------------


def test_literature_rows_are_cited_and_plausible():
    table = dashboard.load_literature()
    assert len(table) >= 1
    assert table["citation"].str.len().gt(20).all()
    assert table["source_url"].str.startswith("https://").all()
    assert table["accuracy_percent"].between(0, 100).all()
    paper = table[table["model"].str.contains("Ding")]
    assert set(paper["dataset"]) == {"mead", "ravdess", "savee"} and (paper["num_params"] == 542136).all()


def test_literature_comparison_puts_runs_beside_the_papers(tmp_path):
    cache = make_cache(tmp_path / "cache", 6)
    make_run(tmp_path / "runs" / "r", cache, toy_probabilities(6, 0), dataset="ravdess", protocol="subject")
    make_run(tmp_path / "runs" / "t", cache, toy_probabilities(6, 0), dataset="toy")
    choices, _ = dashboard.run_choices(tmp_path / "runs")
    table = dashboard.literature_comparison(choices, "RAVDESS")
    ours = table[table["source"] == "this suite"]
    assert len(ours) == 1 and ours["num_params"].iloc[0] == 1234 and ours["protocol"].iloc[0] == "subject"
    assert (table["source"] == "literature").sum() == (
        dashboard.load_literature()["dataset"] == "ravdess"
    ).sum()
    assert list(table["accuracy_percent"]) == sorted(table["accuracy_percent"], reverse=True)
    page = dashboard.literature_html(table, "ravdess")
    assert "542,136" in page and 'class="fer-ours"' in page
    assert "no literature row for toy" in dashboard.literature_html(
        dashboard.literature_comparison(choices, "toy"), "toy"
    )


# ----------------------------------------------------------------------------------------------------
# The widget and its callbacks
# ----------------------------------------------------------------------------------------------------


def html_of(widget) -> str:
    """All HTML text in a widget tree."""
    text = getattr(widget, "value", "") if isinstance(getattr(widget, "value", None), str) else ""
    return text + "".join(html_of(child) for child in getattr(widget, "children", ()))


def test_missing_or_empty_runs_folder_gives_a_message_not_a_traceback(tmp_path):
    page = html_of(dashboard.build_dashboard(tmp_path / "nope"))
    assert "Cannot open the runs folder" in page and "does not exist" in page
    (tmp_path / "empty").mkdir()
    assert "No finished runs" in html_of(dashboard.build_dashboard(tmp_path / "empty"))


def test_folder_of_broken_runs_only_lists_them(toy_runs):
    runs, _ = toy_runs
    shutil.rmtree(runs / "a-run")
    shutil.rmtree(runs / "b-run")
    page = html_of(dashboard.build_dashboard(runs))
    assert "No finished runs" in page
    assert "2 run folder(s) could not be opened" in page and "unfinished" in page and "malformed" in page


def test_clicking_a_cell_fills_the_gallery_with_its_faces(toy_runs):
    runs, cache = toy_runs
    board = dashboard.Dashboard(runs, initial_run="a-run", gallery_page=2)
    assert board.choice.name == "a-run"
    run = board.choice.run
    matrix = np.asarray(run.outcome.frame.confusion_matrix)
    i, j = np.unravel_index(matrix.argmax(), matrix.shape)
    board.heatmap._message(board.heatmap, {"event": "click", "x": LABELS[j], "y": LABELS[i]}, [])
    assert (board.true_menu.value, board.pred_menu.value) == (LABELS[i], LABELS[j])
    expected = dashboard.cell_faces(run.predictions, LABELS, LABELS[i], LABELS[j])
    assert f'data-count="{matrix[i, j]}"' in board.gallery_title.value
    while board.more_button.layout.display != "none":
        board.show_more()
    assert len(board.gallery.children) == matrix[i, j] >= 2
    for item, face_id in zip(board.gallery.children, expected["face_id"], strict=True):
        image, caption = item.children
        pixels = cv2.imdecode(np.frombuffer(image.value, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(pixels, cache.faces([face_id])[0])
        assert "p = " in caption.value and "frame " in caption.value


def test_the_gallery_title_counts_one_face_or_video_in_the_singular(toy_runs):
    runs, _ = toy_runs
    board = dashboard.Dashboard(runs, initial_run="a-run")
    run = board.choice.run
    for level in ("frame", "video"):
        matrix = np.asarray(run.outcome.scores(level).confusion_matrix)
        unit = "video" if level == "video" else "face"
        for (i, j), count in np.ndenumerate(matrix):
            board.faces.show(run, LABELS[i], LABELS[j], level)
            expected = f"<b>{count}</b> {unit}{'' if count == 1 else 's'}</span>"
            assert expected in board.gallery_title.value, (level, count, board.gallery_title.value)


def test_view_level_and_compare_callbacks(toy_runs):
    runs, _ = toy_runs
    board = dashboard.Dashboard(runs)
    metrics = board.choice.run.outcome
    np.testing.assert_array_equal(board.heatmap.figure["data"][0]["z"], metrics.frame.confusion_matrix)
    first_heatmap = board.heatmap
    board.view_toggle.value = "recall (row-normalised)"
    assert board.heatmap is first_heatmap and board.heatmap_box.children == (
        board.heatmap,
    )  # redrawn in place
    np.testing.assert_allclose(np.asarray(board.heatmap.figure["data"][0]["z"]).sum(axis=1), 1.0)
    board.level_toggle.value = "video"
    assert np.asarray(board.heatmap.figure["data"][0]["z"]).shape == (3, 3)
    np.testing.assert_allclose(
        board.heatmap.shown.data[0].z, dashboard.matrix_view(metrics, "video", "true"), err_msg="video recall"
    )
    board.pred_menu.value = board.true_menu.value = "happy"
    cell = dashboard.cell_faces(board.choice.run.predictions, LABELS, "happy", "happy", "video")
    assert len(board.gallery.children) == len(cell)
    assert "videos" in board.gallery_title.value
    assert board.compare_menu.value == 1 and board.compare_box.layout.display == "flex"
    assert "A</b> = " in board.compare_note.value and "seed 1" in board.compare_note.value
    board.compare_menu.value = -1
    assert board.compare_box.layout.display == "none"
    board.run_menu.value = 1
    assert board.choice.name == "b-run" and "seed 1" in board.header.value
    assert "1,234" in board.header.value and "10 / 2 / 12" in board.header.value


def test_gallery_without_the_face_cache_says_so(toy_runs):
    runs, cache = toy_runs
    shutil.rmtree(cache.cache_dir)
    board = dashboard.Dashboard(runs)
    board.show_cell("neutral", "neutral")
    assert "cannot be opened" in board.status.value
    assert all("no pixels" in item.children[0].value for item in board.gallery.children)


def test_dashboard_cli_is_registered_and_checks_its_folder(tmp_path, capsys):
    from fer_utils.cli import main

    assert main(["dashboard", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    command = dashboard.voila_command(dashboard.DASHBOARD_NOTEBOOK, 8899, "127.0.0.1", open_browser=False)
    assert (
        command[1:3] == ["-m", "fer_utils.viz.dashboard.voila_main"]
        and "--Voila.ip=127.0.0.1" in command
        and "--no-browser" in command
    )


def test_results_notebook_is_committed_without_outputs_and_has_parameters():
    import nbformat

    notebook = nbformat.read(dashboard.DASHBOARD_NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert "build_dashboard" in "".join(cell.source for cell in code)


# ----------------------------------------------------------------------------------------------------
# Real runs (slow): a small FER2013 face cache, two short training runs
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_runs_dir(tmp_path_factory, fer2013_root):
    """Two real runs (paper protocol, 48 px, 40 faces per FER2013 split × class, 5 epochs) under one
    runs folder; built once per session even when several test modules import this fixture."""
    from fer_utils.faces.preprocess import image_folder_cache
    from fer_utils.training.train import train_run

    base = tmp_path_factory.getbasetemp() / "fer-dashboard-real"
    runs = base / "runs"
    specs = {
        "fer2013-base": {"seed": 0},
        "fer2013-reg": {"seed": 1, "dropout": (0.3, 0.5, 0.5), "l1": 1e-3},
    }
    if all((runs / name / "metrics.json").exists() for name in specs):
        return runs
    cache = image_folder_cache(
        fer2013_root,
        base / "cache",
        face_size=48,
        split_dirs=True,
        max_per_class=40,
        dataset="fer2013",
        progress=False,
    )
    for name, overrides in specs.items():
        train_run(
            cache.cache_dir,
            runs / name,
            protocol="paper",
            epochs=5,
            batch_size=32,
            verbose=0,
            overwrite=True,
            **overrides,
        )
    return runs


@pytest.mark.slow
def test_dashboard_on_real_runs_shows_the_cached_faces_of_each_cell(real_runs_dir):
    board = dashboard.Dashboard(real_runs_dir, initial_run="fer2013-base")
    run = board.choice.run
    labels = list(run.outcome.labels)
    matrix = np.asarray(run.outcome.frame.confusion_matrix)
    np.testing.assert_array_equal(board.heatmap.figure["data"][0]["z"], matrix)
    cache = FaceCache(run.setup.cache_dir)
    for i, j in [(i, j) for i in range(len(labels)) for j in range(len(labels)) if matrix[i, j]][:4]:
        faces = board.show_cell(labels[i], labels[j])
        assert len(faces) == matrix[i, j]
        shown = min(len(faces), board.gallery_page)
        assert len(board.gallery.children) == shown
        first = cv2.imdecode(np.frombuffer(board.gallery.children[0].children[0].value, np.uint8), 0)
        np.testing.assert_array_equal(first, cache.faces([faces["face_id"].iloc[0]])[0])
        assert cache.index.set_index("face_id").loc[faces["face_id"], "label"].eq(labels[i]).all()
    assert board.level_toggle.disabled  # FER2013: every face is its own video
    assert "fer2013" in board.literature.value and "83,367" in board.literature.value


def test_runs_overview_lists_every_finished_run(toy_runs):
    runs, _ = toy_runs
    choices, _ = dashboard.run_choices(runs)
    table = dashboard.runs_overview(choices)
    assert list(table.index) == [c.label for c in choices]
    for choice in choices:
        row = table.loc[choice.label]
        assert row["accuracy %"] == pytest.approx(100 * choice.run.outcome.frame.accuracy)
        assert row["video accuracy %"] == pytest.approx(100 * choice.run.outcome.video.accuracy)
        assert row["test faces"] == 12 and row["parameters"] == 1234
    assert (
        "<td>toy · protocol: paper · drop(.3,.5,.5) l1=1e-3 16px · seed 1</td>"
        in dashboard.runs_overview_html(choices)
    )


# ----------------------------------------------------------------------------------------------------
# Issue 13: selection, largest confusion, captions, synthetic demo, protocol comparison, report pieces
# ----------------------------------------------------------------------------------------------------


def test_one_number_format_everywhere():
    assert formatting.percent(0.7164) == "71.6%" == f"{0.7164:.1%}"
    assert formatting.percent(0.052, sign=True) == "+5.2 pp" and formatting.percent(None) == "—"
    assert formatting.score(0.65432) == "0.654" and formatting.count(542136) == "542,136"
    assert formatting.mean_sd(0.7164, 0.0123) == "71.6% ± 1.2"
    assert formatting.mean_sd(0.65432, float("nan"), formatting.score) == "0.654"


def test_notebook_tables_are_written_as_everywhere_else():
    metrics = outcome(
        ["sad"], [[3]], per_class={"sad": {"precision": 0.123456, "recall": 0.5, "f1": 0.2, "support": 3}}
    )
    assert figures.metrics_table(metrics, as_text=True).loc["sad"].tolist() == ["0.123", "0.500", "0.200", 3]
    assert figures.metrics_table(metrics).loc["sad", "precision"] == 0.123456
    groups = {"subject 1": {"accuracy": 0.71643, "macro_f1": 0.65432, "support": 4}}
    assert figures.attribute_table(groups, as_text=True).loc["subject 1"].tolist() == ["71.6%", "0.654", 4]


def test_selected_cell_is_outlined_and_a_run_switch_shows_its_largest_confusion(toy_runs):
    runs, _ = toy_runs
    board = dashboard.Dashboard(runs)
    for position, choice in enumerate(board.choices):
        board.run_menu.value = position
        true_label, predicted_label = dashboard.largest_confusion(choice.run.outcome)
        matrix = np.asarray(choice.run.outcome.frame.confusion_matrix)
        i, j = LABELS.index(true_label), LABELS.index(predicted_label)
        off_diagonal = matrix - np.diag(np.diag(matrix))
        assert i != j and matrix[i, j] == off_diagonal.max() > 0
        assert board.selected == (true_label, predicted_label)
        assert len(board.gallery.children) == matrix[i, j]  # the gallery is never left empty
        shape = board.heatmap.shown.layout.shapes[0]
        assert (shape.x0, shape.y0) == (j - 0.5, i - 0.5)
    board.heatmap._message(board.heatmap, {"event": "click", "x": "sad", "y": "happy"}, [])
    assert board.selected == ("happy", "sad")
    [shape] = board.heatmap.figure["layout"]["shapes"]  # the clicked cell is outlined at once
    assert (shape["x0"], shape["x1"], shape["y0"], shape["y1"]) == (1.5, 2.5, 0.5, 1.5)
    board.view_toggle.value = "recall (row-normalised)"
    shape = board.heatmap.shown.layout.shapes[0]
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (1.5, 2.5, 0.5, 1.5)


def test_largest_confusion_falls_back_to_the_diagonal_and_top_confusions_are_sorted():
    perfect = outcome(["x", "y"], [[3, 0], [0, 5]])
    assert dashboard.largest_confusion(perfect) == ("y", "y")
    assert dashboard.top_confusions(perfect) == []
    mixed = outcome(["x", "y", "z"], [[3, 1, 4], [2, 5, 0], [0, 4, 1]])
    assert dashboard.top_confusions(mixed) == [("x", "z", 4), ("z", "y", 4), ("y", "x", 2)]


def test_captions_are_short_with_the_full_path_on_hover():
    row = pd.DataFrame(
        {
            "video_id": ["ravdess/Actor_01/01-01-03-01-01-01-01.mp4"],
            "media_path": ["/data/ravdess/Actor_01/01-01-03-01-01-01-01.mp4"],
            "frame_index": [12],
            "timestamp_s": [0.4],
            "confidence": [0.87],
        }
    ).iloc[0]
    text = dashboard.face_caption_html(row)
    assert ">01-01-03-01-01-01-01</div>" in text and "frame 12 · 0.40 s" in text and "p = 0.87" in text
    assert 'title="ravdess/Actor_01/01-01-03-01-01-01-01.mp4\n/data/ravdess/Actor_01/' in text


def test_caption_times_are_seconds_within_the_clip(tmp_path):
    """A face 22 frames into a 1.5 s clip is captioned at 1.47 s, whether the cache was written today
    (``timestamp_s``, seconds) or before (``timestamp``, milliseconds): never "1466.67 s"."""
    from types import SimpleNamespace

    from fer_utils.faces.frames import Frame
    from fer_utils.faces.sample_faces import _index_row

    box = SimpleNamespace(x=1, y=2, w=10, h=10, score=1.0)
    crop = SimpleNamespace(box=box, angle=0.0)
    base = {"dataset": "toy", "media_path": "clip.mp4", "label": "happy", "subject": "s1", "video_id": "clip"}
    frames = [Frame(index, index * 1000 / 15, None) for index in (0, 11, 22)]
    rows = [_index_row(base, frame, crop, "hog") for frame in frames]
    legacy_rows = [
        {**{k: v for k, v in row.items() if k != "timestamp_s"}, "timestamp": f.timestamp}
        for row, f in zip(rows, frames, strict=True)
    ]
    for name, index_rows in (("today", rows), ("legacy", legacy_rows)):
        writer = FaceCacheWriter(tmp_path / f"cache-{name}", {"dataset": "toy", "image_size": 8})
        writer.add("clip.mp4", np.zeros((3, 8, 8), np.uint8), index_rows)
        cache = writer.close()
        probabilities = np.tile([0.1, 0.8, 0.1], (3, 1))
        run = make_run(tmp_path / f"run-{name}", cache, probabilities)
        predictions = rundir.load_run(run).predictions
        if name == "legacy":  # a run written before the rename carries milliseconds under `timestamp`
            predictions = predictions.rename(columns={"timestamp_s": "timestamp"})
            predictions["timestamp"] *= 1000
        faces = dashboard.cell_faces(predictions, LABELS, "happy", "happy")
        captions = [dashboard.face_caption_html(row) for row in faces.itertuples()]
        assert any("frame 22 · 1.47 s" in caption for caption in captions), captions
        assert not any("1466" in caption for caption in captions)
        assert "timestamp" not in cache.index.columns
        assert cache.index["timestamp_s"].between(0, 1.5).all()


def test_synthetic_demo_runs_are_named_so_and_kept_out_of_the_literature(tmp_path):
    cache = make_cache(tmp_path / "cache", 6)
    make_run(tmp_path / "runs" / "demo", cache, toy_probabilities(6, 0), dataset="ravdess", synthetic=True)
    make_run(tmp_path / "runs" / "real", cache, toy_probabilities(6, 1), dataset="ravdess", seed=1)
    choices, _ = dashboard.run_choices(tmp_path / "runs")
    demo = next(c for c in choices if c.name == "demo")
    assert demo.synthetic and demo.label.startswith("ravdess (synthetic demo) · protocol: paper")
    assert "ravdess (synthetic demo)" in dashboard.header_html(demo)
    assert "synthetic demo" in dashboard.synthetic_html(choices) and dashboard.synthetic_html([]) == ""
    ours = dashboard.literature_comparison(choices, "ravdess").query("source == 'this suite'")
    assert list(ours["model"]) == [f"this suite: {next(c for c in choices if c.name == 'real').label}"]
    page = dashboard.Dashboard(tmp_path / "runs")
    assert "synthetic demo" in html_of(page.widget) and demo.label not in page.literature.value


def test_demo_media_are_recognised_by_their_manifest(tmp_path):
    (tmp_path / "demo" / "Actor_01").mkdir(parents=True)
    (tmp_path / "demo" / MANIFEST_NAME).write_text("{}")
    assert is_demo_media(tmp_path / "demo" / "Actor_01" / "clip.mp4")
    assert not is_demo_media(tmp_path / "elsewhere" / "clip.mp4")
    from fer_utils.faces.preprocess_config import PreprocessConfig, cache_config

    assert cache_config(PreprocessConfig(), "ravdess", synthetic=True)[SYNTHETIC_MARKER] is True
    assert SYNTHETIC_MARKER not in cache_config(PreprocessConfig(), "ravdess")


def test_protocol_comparison_has_one_row_per_protocol_without_ablation_cells(tmp_path):
    cache = make_cache(tmp_path / "cache", 12)
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_run(runs / "paper" / f"seed-{seed}", cache, toy_probabilities(12, seed), seed=seed)
    make_run(runs / "subject", cache, toy_probabilities(12, 5), protocol="subject")
    (runs / "ablation").mkdir()
    (runs / "ablation" / "grid.json").write_text("{}")
    make_run(runs / "ablation" / "runs" / "cell-seed0", cache, toy_probabilities(12, 7), protocol="subject")
    choices, _ = dashboard.run_choices(runs)
    assert len(choices) == 4 and len(dashboard.standalone_runs(choices)) == 3
    table = dashboard.protocol_comparison(choices)
    assert list(table.index) == [("toy", "paper"), ("toy", "subject")]
    accuracies = [c.run.outcome.frame.accuracy for c in choices if c.run.outcome.protocol == "paper"]
    assert table.loc[("toy", "paper"), "runs"] == 2
    assert table.loc[("toy", "paper"), "accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert table.loc[("toy", "paper"), "accuracy_sd"] == pytest.approx(np.std(accuracies, ddof=1))
    subject = next(c for c in choices if c.name == "subject").run.outcome.frame.accuracy
    gaps = dashboard.leakage_gaps(table)
    assert gaps == {"toy": pytest.approx(np.mean(accuracies) - subject)}
    page = dashboard.protocol_comparison_html(table, gaps)
    assert page.count("<tr") == 3 and formatting.percent(np.mean(accuracies)) in page
    assert "Leakage gap on toy" in page and formatting.percent(gaps["toy"], sign=True) in page


def test_protocol_table_states_faces_per_test_video_and_marks_incomparable_video_scores(tmp_path):
    """paper: 6 test faces in 4 videos (1.5 each); subject: 6 faces in 1 video: the video accuracies are
    marked not comparable, with both counts."""
    from fer_utils.viz.dashboard.tables import faces_per_test_video, incomparable_video_scores

    cache = make_cache(tmp_path / "cache", 12)
    make_run(tmp_path / "runs" / "paper", cache, toy_probabilities(5, 0))  # videos v0 (3), v1 (2)
    make_run(tmp_path / "runs" / "subject", cache, toy_probabilities(3, 1), protocol="subject")  # v0 (3)
    choices, _ = dashboard.run_choices(tmp_path / "runs")
    assert faces_per_test_video(next(c for c in choices if c.name == "paper").run.outcome) == 2.5
    table = dashboard.protocol_comparison(choices)
    assert table.loc[("toy", "paper"), "faces_per_video"] == 2.5
    assert table.loc[("toy", "subject"), "faces_per_video"] == 3.0
    assert incomparable_video_scores(table) == {}  # 2.5 vs 3.0: comparable
    page = dashboard.protocol_comparison_html(table, {})
    assert "test faces per video" in page and "<td>2.5</td>" in page and "†" not in page
    make_run(tmp_path / "runs" / "video", cache, toy_probabilities(1, 2), protocol="video")  # 1 face, 1 video
    table = dashboard.protocol_comparison(dashboard.run_choices(tmp_path / "runs")[0])
    assert incomparable_video_scores(table) == {"toy": {"paper": 2.5, "subject": 3.0, "video": 1.0}}
    page = dashboard.protocol_comparison_html(table, {})
    assert (
        page.count(" †</td>") == 3
        and "not comparable" in page
        and "paper 2.5, video 1.0, subject 3.0" in page
    )


def test_a_mean_over_stalled_runs_is_flagged_beside_it(tmp_path):
    import json

    cache = make_cache(tmp_path / "cache", 12)
    for seed in (0, 1):
        run = make_run(tmp_path / "runs" / f"seed-{seed}", cache, toy_probabilities(12, seed), seed=seed)
        metrics = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**metrics, "stalled": True}))
    table = dashboard.protocol_comparison(dashboard.run_choices(tmp_path / "runs")[0])
    assert table.loc[("toy", "paper"), "stalled"] == 2
    page = dashboard.protocol_comparison_html(table, {})
    mean = formatting.mean_sd(
        table.loc[("toy", "paper"), "accuracy_mean"], table.loc[("toy", "paper"), "accuracy_sd"]
    )
    assert f"{mean} ⚠ 2 of 2 stalled</td>" in page


def test_static_run_detail_is_collapsible_with_face_thumbnails(toy_runs):
    from fer_utils.viz.dashboard import static

    runs, cache = toy_runs
    choices, _ = dashboard.run_choices(runs)
    detail = static.run_detail_html(choices[0])
    assert detail.startswith('<details class="fer-run"') and detail.endswith("</details>")
    true_label, predicted_label, _ = dashboard.top_confusions(choices[0].run.outcome)[0]
    faces = dashboard.cell_faces(choices[0].run.predictions, LABELS, true_label, predicted_label)
    first = static._thumbnail_html(
        next(faces.head(1).itertuples()), cache.faces([faces["face_id"].iloc[0]])[0]
    )
    assert first in detail and "data:image/png;base64," in detail
    assert "click" not in detail.lower() and "plotly.js v" not in detail
    title = static.title_block_html(choices, runs)
    from fer_utils import __version__

    assert __version__ in title and "toy" in title and "synthetic" not in title


def test_dashboard_command_culls_the_kernels_of_closed_pages():
    command = dashboard.voila_command(dashboard.DASHBOARD_NOTEBOOK, 8899, "127.0.0.1", False, cull_idle_s=30)
    assert "--MappingKernelManager.cull_idle_timeout=30" in command
    assert "--MappingKernelManager.cull_connected=False" in command
    assert any(option.startswith("--MappingKernelManager.cull_interval=") for option in command)
    with pytest.raises(ValueError, match="positive"):
        dashboard.culling_options(0)


def test_the_verdicts_bold_markdown_is_rendered_and_the_rest_escaped():
    from fer_utils.viz.dashboard.static import bold_markdown_html

    assert bold_markdown_html("Best: **dropout 0.3/0.5/0.5 · L1 0** (≥ 58.0%) <x>") == (
        "Best: <b>dropout 0.3/0.5/0.5 · L1 0</b> (≥ 58.0%) &lt;x&gt;"
    )


def test_the_report_shows_a_runs_calibration_or_says_it_was_not_recorded():
    from fer_utils.training.calibration import calibrate
    from fer_utils.viz.dashboard.static import calibration_html

    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, 400)
    logits = np.eye(3)[targets] * 2.0 + rng.normal(0, 1.5, (400, 3))
    sharp = np.exp(4 * logits) / np.exp(4 * logits).sum(axis=1, keepdims=True)  # overconfident
    calibration = calibrate(sharp[:200], targets[:200], sharp[200:], targets[200:])
    shown = calibration_html(calibration)
    assert f"Temperature {calibration['temperature']:.3f}" in shown and calibration["temperature"] > 1
    assert calibration["kept"] and calibration["test_ece_after"] < calibration["test_ece_before"]
    assert (
        f"{formatting.score(calibration['test_ece_before'])} before scaling, "
        f"{formatting.score(calibration['test_ece_after'])} after (better;" in shown
    )
    assert "<b>" not in shown
    assert "plotly" in shown.lower()
    assert "Not recorded" in calibration_html(None)


def test_the_report_says_plainly_when_calibration_was_not_applied():
    """Issue 31, finding 3: the report printed the worse test ECE after scaling in bold, without a word."""
    from fer_utils.training.calibration import calibrate
    from fer_utils.viz.dashboard.static import calibration_html

    confident = np.array([[0.95, 0.05]] * 19 + [[0.001, 0.999]])  # one confident mistake drives the fit
    targets = np.zeros(20, dtype=int)
    calibration = calibrate(confident, targets, confident, targets)
    shown = calibration_html(calibration)
    assert not calibration["kept"] and calibration["temperature"] == 1.0
    assert "No temperature applied" in shown and "raw softmax" in shown
    assert (
        f"expected calibration error {formatting.score(calibration['test_ece_before'])}, unchanged" in shown
    )
    assert "<b>" not in shown


def test_the_dashboard_and_the_report_show_the_same_sections(toy_runs):
    """Issue 31, finding 13: the ablation, protocol, calibration and per-subject sections were the
    report's only, the comparison the dashboard's without a word in the report."""
    from fer_utils.viz.dashboard import static
    from fer_utils.viz.dashboard.sections import SECTIONS, section_titles

    runs, _ = toy_runs
    report = section_titles("".join(static.report_parts(runs)))
    board = section_titles(html_of(dashboard.Dashboard(runs).widget))
    assert report == board == set(SECTIONS.values())


def test_the_literature_table_names_the_dataset_of_every_row(tmp_path):
    from fer_utils.viz.dashboard import static

    cache = make_cache(tmp_path / "cache", 6)
    make_run(tmp_path / "runs" / "real", cache, toy_probabilities(6, 0), dataset="ravdess")
    make_run(tmp_path / "demo" / "demo", cache, toy_probabilities(6, 1), dataset="ravdess", synthetic=True)
    choices, _ = dashboard.run_choices(tmp_path / "runs")
    table = dashboard.literature_comparison(choices, "RAVDESS")
    assert set(table["dataset"].str.lower()) == {"ravdess"} and (table["source"] == "this suite").sum() == 1
    assert "<th>dataset</th>" in dashboard.literature_html(table, "ravdess")
    literature = dashboard.load_literature()
    every = dashboard.literature_comparison([], None)
    assert sorted(every["dataset"]) == sorted(literature["dataset"]) and len(set(literature["dataset"])) > 1
    # only demo runs: both pages show the paper's rows of every dataset, each naming its dataset
    demo, _ = dashboard.run_choices(tmp_path / "demo")
    section = static.literature_section_html(demo)
    assert "<th>dataset</th>" in section
    assert all(f"<td>{name}</td>" in section for name in set(literature["dataset"]))
    assert dashboard.Dashboard(tmp_path / "demo").literature.value == section


def _set_test_hash(run: Path, test_hash: str) -> None:
    config = json.loads((run / rundir.CONFIG_FILE).read_text())
    config["split"]["test_hash"] = test_hash
    (run / rundir.CONFIG_FILE).write_text(json.dumps(config))


def test_runs_tested_on_different_faces_differ_in_recall_and_the_view_says_so(toy_runs):
    """Issue 31, finding 13: the note advised normalised views, then A − B was drawn in counts."""
    runs, _ = toy_runs
    _set_test_hash(runs / "b-run", "other faces")
    board = dashboard.Dashboard(runs, initial_run="a-run")
    assert board.view_toggle.value == "counts" and board.choices[board.compare_menu.value].name == "b-run"
    a, b = board.choice.run.outcome, board.choices[board.compare_menu.value].run.outcome
    recall = dashboard.matrix_view(a, "frame", "true") - dashboard.matrix_view(b, "frame", "true")
    np.testing.assert_allclose(board.compare_diff.shown.data[0].z, recall)
    assert board.compare_diff.shown.layout.title.text == "A − B (recall (row-normalised))"
    assert "difference of their recall (row-normalised)" in board.compare_note.value
    board.view_toggle.value = "precision (column-normalised)"  # a normalised view is kept as it is
    precision = dashboard.matrix_view(a, "frame", "pred") - dashboard.matrix_view(b, "frame", "pred")
    np.testing.assert_allclose(board.compare_diff.shown.data[0].z, precision)
    assert "precision" in board.compare_diff.shown.layout.title.text
    _set_test_hash(runs / "b-run", "abc")  # the same test faces: counts, named so
    board = dashboard.Dashboard(runs, initial_run="a-run")
    counts = dashboard.matrix_view(a, "frame", None) - dashboard.matrix_view(b, "frame", None)
    np.testing.assert_allclose(board.compare_diff.shown.data[0].z, counts)
    assert board.compare_diff.shown.layout.title.text == "A − B (counts)"


@pytest.mark.slow  # starts Voila and the page's kernel
def test_the_dashboard_server_prints_nothing_but_its_problems(toy_runs, tmp_path):
    """Issue 31, finding 14: Voila's INFO lines (connection files, static files, kernel started, culling)
    filled the terminal of `fer dashboard` and the browser tests' logs."""
    import os
    import socket
    import subprocess
    import time
    import urllib.request

    runs, _ = toy_runs
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = dashboard.voila_environment({**os.environ, dashboard.RUNS_DIR_ENV: str(runs)})
    command = dashboard.voila_command(dashboard.DASHBOARD_NOTEBOOK, port, "127.0.0.1", open_browser=False)
    log = tmp_path / "voila.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            command, env=environment, cwd=dashboard.DASHBOARD_NOTEBOOK.parent, stdout=out, stderr=out
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:  # the page is rendered by a kernel started for it
                    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=120).read().decode()
                    break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                    time.sleep(0.5)
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert "fer-dash" in page or "jupyter-widgets" in page
    assert log.read_text() == ""
