"""Regularization ablation: the paper's dropout / L1 study (its Fig. 5 vs Fig. 6) as a papermill grid.

The paper cured overfitting on SAVEE by raising the last two dropout rates from 0.3 to 0.5 and adding an
L1 penalty on the dense layer, from one run each. Here every grid cell (last-two dropout ``d`` → rates
``[0.3, d, d]``, L1 factor) × seed is one papermill execution of ``notebooks/02_training.ipynb``, saved
inside its run directory, so every number in the table can be opened and inspected.

- :mod:`.grid`: the grid, :class:`GridConfig`, the file names of an ablation folder (layout there).
- :mod:`.execute`: :func:`run_grid` (plan, execute in parallel, resume, then analyse).
- :mod:`.analysis`: runs table, per-configuration means ± sd, the verdict.
- :mod:`.figures`: curves per configuration, the gap heatmap.
- :mod:`.outputs`: :func:`analyze` (files in, table / figures / ``summary.json`` out).
- :mod:`.cli`: ``fer ablate``.
"""

from fer_utils.experiments.ablation.analysis import (
    aggregated_runs,
    format_table,
    gap_change_words,
    load_histories,
    make_verdict,
    markdown_table,
    metric_text,
    report_table,
    run_columns,
    run_record,
    runs_table,
    summarize_configurations,
    table_metrics,
)
from fer_utils.experiments.ablation.cli import add_arguments
from fer_utils.experiments.ablation.execute import execute_run, reusable_run, run_grid
from fer_utils.experiments.ablation.figures import configuration_curves_figure, gap_heatmap_figure, seed_band
from fer_utils.experiments.ablation.grid import (
    CHECKED_PARAMETERS,
    DEFAULT_DROPOUTS,
    DEFAULT_EPOCHS,
    DEFAULT_L1S,
    DEFAULT_SEEDS,
    ERROR_FILE,
    EXECUTED_NOTEBOOK,
    FIRST_DROPOUT,
    GRID_FILE,
    PAPER_BASELINE,
    PAPER_DROPOUT,
    PAPER_L1,
    REUSED_FILE,
    RUNS_FOLDER,
    TRAINING_DEFAULTS,
    TRAINING_NOTEBOOK,
    VARIED_FIELDS,
    GridConfig,
    GridRun,
    cell_name,
    config_label,
    error_message,
    grid_runs,
    seed_list,
)
from fer_utils.experiments.ablation.outputs import Ablation, analyze, write_ablation_files

__all__ = [
    "CHECKED_PARAMETERS",
    "DEFAULT_DROPOUTS",
    "DEFAULT_EPOCHS",
    "DEFAULT_L1S",
    "DEFAULT_SEEDS",
    "ERROR_FILE",
    "EXECUTED_NOTEBOOK",
    "FIRST_DROPOUT",
    "GRID_FILE",
    "PAPER_BASELINE",
    "PAPER_DROPOUT",
    "PAPER_L1",
    "REUSED_FILE",
    "RUNS_FOLDER",
    "TRAINING_DEFAULTS",
    "TRAINING_NOTEBOOK",
    "VARIED_FIELDS",
    "Ablation",
    "GridConfig",
    "GridRun",
    "add_arguments",
    "aggregated_runs",
    "analyze",
    "cell_name",
    "config_label",
    "configuration_curves_figure",
    "error_message",
    "execute_run",
    "format_table",
    "gap_heatmap_figure",
    "grid_runs",
    "load_histories",
    "make_verdict",
    "gap_change_words",
    "markdown_table",
    "report_table",
    "metric_text",
    "reusable_run",
    "run_grid",
    "run_columns",
    "run_record",
    "runs_table",
    "seed_band",
    "seed_list",
    "summarize_configurations",
    "table_metrics",
    "write_ablation_files",
]
