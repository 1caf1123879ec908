"""The ablation's tables and verdict: one row per run, one per configuration, and which wins."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.experiments.ablation.grid import (
    ERROR_FILE,
    EXECUTED_NOTEBOOK,
    FIRST_DROPOUT,
    GRID_FILE,
    PAPER_BASELINE,
    PAPER_DROPOUT,
    PAPER_L1,
    RUNS_FOLDER,
    GridRun,
    config_label,
    error_message,
    grid_runs,
    read_error,
    read_grid,
)
from fer_utils.training import rundir
from fer_utils.training.metrics import registered
from fer_utils.training.results import RunConfig
from fer_utils.viz import formatting


def _epochs(value) -> str:
    return f"{float(value):.1f}"


#: Per-run training scores aggregated over seeds: column → (table heading, formatter). Train−val gaps in
#: percent. ``val_accuracy`` and ``epochs_to_best`` are those of the epoch each run kept (its recipe's
#: selection metric).
VALIDATION_METRICS = {"val_accuracy": ("validation accuracy (best)", formatting.percent)}
GAP_METRICS = {
    "final_gap": ("final train−val gap", formatting.percent),
    "max_gap": ("largest train−val gap", formatting.percent),
    "epochs_to_best": ("epochs to best", _epochs),
}


def table_metrics() -> dict:
    """Every score the ablation's tables aggregate over seeds: column → (table heading, formatter). The
    best validation accuracy, every registered test-part metric (:mod:`fer_utils.training.metrics`,
    ``test_<name>``, frame level, in its own format), the gaps and the epochs to best."""
    registry = {entry.column: (f"test {entry.heading}", entry.format) for entry in registered("frame")}
    return VALIDATION_METRICS | registry | GAP_METRICS


_SHORT_NAMES = {
    "val_accuracy": "validation accuracy",
    "test_accuracy": "test accuracy",
    "final_gap": "final train−validation gap",
    "max_gap": "largest train−validation gap",
}


def run_record(run_dir: str | os.PathLike) -> dict:
    """One row of the runs table, read from a run directory's files.

    A finished run (``metrics.json``) gives its scores: validation accuracy and epoch of the epoch it kept
    (the best by its recipe's selection metric, whose model the test scores come from), test accuracy and
    macro F1 (frame level), the train − validation accuracy gap at the last epoch and its largest value
    over the epochs. A failed run gives its error from ``error.json``.
    """
    run_dir = Path(run_dir)
    row = {"run_name": run_dir.name, "run_dir": str(run_dir), "notebook": ""}
    if (run_dir / EXECUTED_NOTEBOOK).exists():
        row["notebook"] = str(run_dir / EXECUTED_NOTEBOOK)
    if rundir.is_finished(run_dir):
        try:
            history = rundir.read_history(run_dir)
            setup = RunConfig.from_json(rundir.read_config(run_dir))
            outcome = rundir.read_outcome(run_dir, history)
        except (*rundir.READ_ERRORS, ValueError) as error:
            return {**row, "status": "unreadable", "error": f"{type(error).__name__}: {error}"}
        gap = history["accuracy"] - history["val_accuracy"]
        return {
            **row,
            "status": "complete",
            "error": "",
            "last_two_dropout": float(setup.dropout[1]),
            "l1": float(setup.l1),
            "seed": int(setup.seed),
            "dropout": "/".join(f"{float(rate):g}" for rate in setup.dropout),
            "val_accuracy": outcome.best_val_accuracy,
            **{entry.column: outcome.frame.value(entry.name) for entry in registered("frame")},
            "final_gap": float(gap.iloc[-1]),
            "max_gap": float(gap.max()),
            "epochs_to_best": outcome.best_epoch,
            "epochs_run": len(history),
            "stalled": outcome.stalled,
            "underfit": outcome.underfit,
        }
    if (run_dir / ERROR_FILE).exists():
        record = read_error(run_dir)
        return {
            **row,
            "status": "failed",
            "error": error_message(record),
            "last_two_dropout": float(record["dropout"][1]),
            "l1": float(record["l1"]),
            "seed": int(record["seed"]),
            "dropout": "/".join(f"{float(rate):g}" for rate in record["dropout"]),
        }
    return {**row, "status": "unfinished", "error": "no metrics.json and no error.json (interrupted?)"}


def run_columns() -> list[str]:
    """The columns of the runs table (``runs.csv``)."""
    return [
        "run_name",
        "status",
        "error",
        "dropout",
        "last_two_dropout",
        "l1",
        "seed",
        *table_metrics(),
        "epochs_run",
        "stalled",
        "underfit",
        "notebook",
        "run_dir",
    ]


def runs_table(out_dir: str | os.PathLike) -> pd.DataFrame:
    """The runs table of an ablation folder: one row per run of ``grid.json`` (or, without it, per
    folder under ``runs/``); runs that never started are listed as ``missing``."""
    out_dir = Path(out_dir)
    runs_dir = out_dir / RUNS_FOLDER
    planned: dict[str, GridRun] = {}
    if (out_dir / GRID_FILE).exists():
        grid = read_grid(out_dir)
        planned = {run.name: run for run in grid_runs(grid["dropouts"], grid["l1s"], grid["seeds"])}
    folders = sorted(p.name for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
    names = list(planned) or folders
    rows = []
    for name in names:
        if (runs_dir / name).is_dir():
            row = run_record(runs_dir / name)
        else:
            row = {"run_name": name, "status": "missing", "error": "not run yet"}
        if name in planned and "l1" not in row:
            run = planned[name]
            row.update(
                last_two_dropout=run.last_two_dropout,
                l1=run.l1,
                seed=run.seed,
                dropout="/".join(f"{rate:g}" for rate in run.dropout),
            )
        rows.append(row)
    table = pd.DataFrame(rows, columns=run_columns())
    return table.sort_values(["last_two_dropout", "l1", "seed"], kind="stable").reset_index(drop=True)


def aggregated_runs(runs: pd.DataFrame, include_stalled: bool = False) -> pd.Series:
    """Which runs enter the means: finished ones, without stalled runs (a run that never learned measures
    the optimiser, not the regularization, and its "gap" of ~0 would pass for a cure) unless asked."""
    finished = runs["status"] == "complete"
    if include_stalled:
        return finished
    return finished & ~runs["stalled"].eq(True)


def summarize_configurations(runs: pd.DataFrame, include_stalled: bool = False) -> pd.DataFrame:
    """Per configuration (last-two dropout × L1): runs ok / stalled / failed, and mean and sd (ddof 1; NaN
    from a single run) over the aggregated runs (:func:`aggregated_runs`) of every :func:`table_metrics` column.

    Returns:
        One row per configuration, ordered by dropout then L1, with ``configuration, dropout,
        last_two_dropout, l1, n_ok, n_stalled, n_failed, n_other, <metric>_mean, <metric>_sd, errors``
        (``n_ok`` counts the aggregated runs).
    """
    rows = []
    runs = runs.dropna(subset=["last_two_dropout", "l1"])
    runs = runs.assign(aggregated=aggregated_runs(runs, include_stalled))
    for (dropout, l1), group in runs.groupby(["last_two_dropout", "l1"], sort=True):
        ok = group[group["aggregated"]]
        finished = group["status"] == "complete"
        row = {
            "configuration": config_label(dropout, l1),
            "dropout": f"{FIRST_DROPOUT:g}/{dropout:g}/{dropout:g}",
            "last_two_dropout": float(dropout),
            "l1": float(l1),
            "n_ok": len(ok),
            "n_stalled": int((finished & group["stalled"].eq(True)).sum()),
            "n_underfit": int((finished & group["underfit"].eq(True)).sum()),
            "n_failed": int((group["status"] == "failed").sum()),
            "n_other": int((~group["status"].isin(["complete", "failed"])).sum()),
        }
        for metric in table_metrics():
            values = pd.to_numeric(ok[metric], errors="coerce").dropna()
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        errors = group.loc[group["status"] != "complete", "error"].dropna().astype(str)
        row["errors"] = "; ".join(dict.fromkeys(error for error in errors if error))
        rows.append(row)
    return pd.DataFrame(rows)


def metric_text(row, metric: str) -> str:
    """A configuration's ``metric`` as ``mean ± sd`` in that metric's format (``"45.2% ± 1.2"``)."""
    return formatting.mean_sd(row.get(f"{metric}_mean"), row.get(f"{metric}_sd"), table_metrics()[metric][1])


def format_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as the readable table: ``mean ± sd`` strings, runs ok / failed and errors."""
    table = pd.DataFrame(
        {
            "dropout": summary["dropout"],
            "L1": [f"{value:g}" for value in summary["l1"]],
        }
    )
    for metric, (heading, _) in table_metrics().items():
        table[heading] = [metric_text(row, metric) for _, row in summary.iterrows()]
    table["runs ok"] = summary["n_ok"].astype(int)
    table["stalled"] = summary["n_stalled"].astype(int)
    table["underfit"] = summary["n_underfit"].astype(int)
    table["failed"] = summary["n_failed"].astype(int)
    table["error"] = summary["errors"]
    return table


def report_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as the static report shows it (``summary.json``'s ``report_table``): one
    ``configuration`` column, the scores as ``mean ± sd`` (no epochs) and the run counts."""
    table = pd.DataFrame(
        {
            "configuration": [
                f"dropout {d} · L1 {float(l1):g}"
                for d, l1 in zip(summary["dropout"], summary["l1"], strict=True)
            ]
        }
    )
    for metric, (heading, _) in table_metrics().items():
        if metric != "epochs_to_best":
            table[heading] = [metric_text(row, metric) for _, row in summary.iterrows()]
    for column, heading in (
        ("n_ok", "runs ok"),
        ("n_stalled", "stalled"),
        ("n_underfit", "underfit"),
        ("n_failed", "failed"),
    ):
        table[heading] = summary[column].astype(int) if column in summary else 0
    return table.set_index("configuration")


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown pipe table of a DataFrame (its index is not written)."""

    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(column) for column in table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def find_configuration(summary: pd.DataFrame, last_two_dropout: float, l1: float) -> pd.Series | None:
    """The summary row of one configuration (None when the summary has none)."""
    hit = summary[np.isclose(summary["last_two_dropout"], last_two_dropout) & np.isclose(summary["l1"], l1)]
    return None if hit.empty else hit.iloc[0]


def _left_out_note(summary: pd.DataFrame) -> str:
    """The verdict's note on configurations with failed or stalled runs ('' when none)."""
    note = ""
    failed = summary[summary["n_failed"] > 0]
    if len(failed):
        note = (
            " Configurations with failed runs: "
            + ", ".join(f"{row.configuration} ({row.n_failed} failed)" for row in failed.itertuples())
            + "."
        )
    stalled = summary[summary.get("n_stalled", pd.Series(0, index=summary.index)) > 0]
    if len(stalled):
        note += (
            f" {int(stalled['n_stalled'].sum())} run(s) stalled (not clearly above always answering the test part's majority class) and are "
            "left out of the means: "
            + ", ".join(f"{row.configuration} ({row.n_stalled})" for row in stalled.itertuples())
            + "."
        )
    return note


def _paper_comparison(usable: pd.DataFrame, paper_l1: float, accuracy: str, gap: str) -> dict | None:
    """The paper's fix against its baseline (changes of gap and accuracy, and a sentence as ``text``), or
    None when either configuration has no finished run."""
    accuracy_name = _SHORT_NAMES.get(accuracy, accuracy)
    gap_name = _SHORT_NAMES.get(gap, gap)
    baseline = find_configuration(usable, *PAPER_BASELINE)
    regularized = find_configuration(usable, PAPER_DROPOUT, paper_l1)
    if baseline is None or regularized is None:
        return None
    before, after = float(baseline[f"{gap}_mean"]), float(regularized[f"{gap}_mean"])
    gap_change = after - before
    accuracy_change = regularized[f"{accuracy}_mean"] - baseline[f"{accuracy}_mean"]
    text = (
        f"The paper's fix ({regularized['configuration']} vs its baseline {baseline['configuration']}) "
        f"{gap_change_words(before, after)} the {gap_name} "
        f"({formatting.percent(before)} → {formatting.percent(after)}) "
        f"and changes the {accuracy_name} by {formatting.percent(accuracy_change, sign=True)}."
    )
    return {
        "baseline": baseline["configuration"],
        "regularized": regularized["configuration"],
        "gap_change": float(gap_change),
        "accuracy_change": float(accuracy_change),
        "text": text,
    }


def gap_change_words(before: float, after: float) -> str:
    """How a train − validation gap moved: ``narrows`` / ``widens`` (same sign, smaller / larger),
    ``flips the sign of`` (training above validation became below, or back), ``leaves unchanged``."""
    if formatting.percent(before) == formatting.percent(after):
        return "leaves unchanged"
    if before * after < 0:
        return "flips the sign of"
    return "narrows" if abs(after) < abs(before) else "widens"


def make_verdict(
    summary: pd.DataFrame,
    paper_l1: float = PAPER_L1,
    accuracy: str = "val_accuracy",
    gap: str = "final_gap",
) -> dict:
    """Name the configuration with the smallest mean gap among those whose mean accuracy is within one sd
    (of the best configuration) of the best mean accuracy.

    Args:
        summary: :func:`summarize_configurations` output.
        paper_l1: L1 factor of the paper's regularized configuration (compared with its baseline).
        accuracy: the accuracy that ranks configurations (validation: the test part never selects).
        gap: the overfitting measure minimised among the near-best (``final_gap`` or ``max_gap``).

    Returns:
        ``{text (Markdown), best, chosen, threshold, candidates, paper}``; ``chosen`` is None when no
        configuration has a finished run.
    """
    usable = summary[summary["n_ok"] > 0]
    failed_note = _left_out_note(summary)
    if usable.empty:
        return {
            "text": "No configuration finished a run, so there is nothing to compare." + failed_note,
            "best": None,
            "chosen": None,
            "threshold": None,
            "candidates": [],
            "paper": None,
        }
    best, threshold, candidates, chosen = _near_best(usable, accuracy, gap)
    text = [_best_sentence(usable, best, threshold, candidates, chosen, accuracy, gap)]
    paper = _paper_comparison(usable, paper_l1, accuracy, gap)
    if paper is not None:
        text.append(paper.pop("text"))
    text.append(_seed_caveat(usable))
    return {
        "text": " ".join(text) + failed_note,
        "best": best["configuration"],
        "chosen": chosen["configuration"],
        "threshold": threshold,
        "candidates": candidates["configuration"].tolist(),
        "paper": paper,
    }


def _best_sentence(usable, best, threshold, candidates, chosen, accuracy: str, gap: str) -> str:
    """The verdict's first sentence: the best configuration, or the tie ("tie" with each one's test
    accuracy, which never selects), the near-best (within one sd, or "no spread: 1 seed" when the best
    has a single run) and the one with the smallest gap among them."""
    accuracy_name = _SHORT_NAMES.get(accuracy, accuracy)
    gap_name = _SHORT_NAMES.get(gap, gap)
    best_mean = formatting.percent(best[f"{accuracy}_mean"])
    tied = usable[[formatting.percent(value) == best_mean for value in usable[f"{accuracy}_mean"]]]
    if len(tied) > 1:
        tie = ", ".join(
            f"**{row['configuration']}** (test accuracy {metric_text(row, 'test_accuracy')})"
            for _, row in tied.iterrows()
        )
        head = (
            f"Best {accuracy_name}: a tie at {best_mean} between {len(tied)} configurations: {tie} "
            "(the test part does not break it)."
        )
    else:
        head = f"Best {accuracy_name}: **{best['configuration']}** ({_describe(best, accuracy, gap)})."
    if int(best["n_ok"]) > 1 and not math.isnan(float(best[f"{accuracy}_sd"])):
        near = (
            f"{len(candidates)} of {len(usable)} configurations lie within one sd of it "
            f"(≥ {formatting.percent(threshold)})"
        )
    else:
        near = (
            f"Its {accuracy_name} has no spread: 1 seed, so the near-best are the {len(candidates)} of "
            f"{len(usable)} configurations that equal it"
        )
    if len(candidates) == 1:
        return f"{head} {near}."
    return (
        f"{head} {near}; among them **{chosen['configuration']}** has the smallest "
        f"{gap_name} ({_describe(chosen, accuracy, gap)})."
    )


def _near_best(usable: pd.DataFrame, accuracy: str, gap: str):
    """``(best, threshold, candidates, chosen)``: the best mean ``accuracy``, the configurations within one
    sd of it, and among those the one with the smallest mean ``gap``."""
    best = usable.loc[usable[f"{accuracy}_mean"].idxmax()]
    best_sd = best[f"{accuracy}_sd"]
    best_sd = 0.0 if math.isnan(best_sd) else float(best_sd)
    threshold = float(best[f"{accuracy}_mean"]) - best_sd
    candidates = usable[usable[f"{accuracy}_mean"] >= threshold - 1e-12]
    chosen = candidates.sort_values([f"{gap}_mean", f"{accuracy}_mean"], ascending=[True, False]).iloc[0]
    return best, threshold, candidates, chosen


def _describe(row, accuracy: str, gap: str) -> str:
    return (
        f"{_SHORT_NAMES.get(accuracy, accuracy)} {metric_text(row, accuracy)}, "
        f"{_SHORT_NAMES.get(gap, gap)} {metric_text(row, gap)} "
        f"over {int(row['n_ok'])} run(s)"
    )


def _seed_caveat(usable: pd.DataFrame) -> str:
    if int(usable["n_ok"].min()) > 1:
        return "Seeds are few, so differences smaller than the sd are not evidence either way."
    return "Some configurations have a single finished run: no sd, so read the differences as anecdotes."


def load_histories(runs: pd.DataFrame, include_stalled: bool = False) -> pd.DataFrame:
    """The ``history.csv`` of every aggregated run (:func:`aggregated_runs`), stacked with ``run_name,
    last_two_dropout, l1, seed``."""
    frames = []
    for row in runs[aggregated_runs(runs, include_stalled)].itertuples():
        history = rundir.read_history(row.run_dir)
        history.insert(0, "run_name", row.run_name)
        history["last_two_dropout"] = row.last_two_dropout
        history["l1"] = row.l1
        history["seed"] = row.seed
        frames.append(history)
    if not frames:
        return pd.DataFrame(columns=["run_name", "epoch", "last_two_dropout", "l1", "seed"])
    return pd.concat(frames, ignore_index=True)
