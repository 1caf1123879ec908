"""The results dashboard (``notebooks/04_results.ipynb`` served by Voila) and its static report mode.

One job per module:

- :mod:`.runs`: discovery, menu labels, real data or the synthetic demo, ablation membership
- :mod:`.cells`: matrix views, the faces behind a cell, the largest confusions, captions
- :mod:`.tables`: per-class, runs overview, protocol comparison, literature (DataFrames)
- :mod:`.fragments`: HTML pieces in the page's style (``style.html``)
- :mod:`.plots`: the heatmaps and curves (plotly)
- :mod:`.gallery`, :mod:`.widgets`: the interactive page (:class:`Dashboard`)
- :mod:`.static`: the static report sections (``fer report``, ``fer run``)
- :mod:`.server`: ``fer dashboard`` (Voila, with culling of closed pages' kernels)

Everything the notebook, the CLI and the tests use is importable from ``fer_utils.viz.dashboard``.
"""

from fer_utils.paths import NOTEBOOKS_DIR, PROJECT_ROOT
from fer_utils.viz.dashboard.cells import (
    LEVELS,
    VIEWS,
    cell_faces,
    confusion_counts,
    difference_matrix,
    face_caption_html,
    face_png,
    format_cell,
    has_level,
    largest_confusion,
    matrix_view,
    short_video_id,
    top_confusions,
    video_predictions,
)
from fer_utils.viz.dashboard.fragments import (
    STYLE,
    header_html,
    literature_html,
    message_html,
    per_class_html,
    problems_html,
    protocol_comparison_html,
    runs_overview_html,
    synthetic_html,
    table_html,
)
from fer_utils.viz.dashboard.gallery import FACE_DISPLAY_PX, GALLERY_PAGE, FaceGallery
from fer_utils.viz.dashboard.plots import (
    difference_figure,
    difference_view,
    heatmap_figure,
    run_curves_figure,
    selection_shape,
)
from fer_utils.viz.dashboard.runs import (
    ALSO_ABLATION_NOTE,
    INITIAL_RUN_ENV,
    RUNS_DIR_ENV,
    SYNTHETIC_NOTE,
    NoRunsFolder,
    RunChoice,
    data_label,
    find_choice,
    resolve_initial_run,
    resolve_runs_dir,
    run_choices,
    run_label,
)
from fer_utils.viz.dashboard.server import (
    DASHBOARD_NOTEBOOK,
    OFFLINE_TEMPLATE,
    add_arguments,
    culling_options,
    voila_command,
    voila_environment,
)
from fer_utils.viz.dashboard.static import display_report, figure_bundle
from fer_utils.viz.dashboard.tables import (
    LITERATURE_CSV,
    leakage_gaps,
    literature_comparison,
    load_literature,
    per_class_table,
    protocol_comparison,
    runs_overview,
    standalone_runs,
)
from fer_utils.viz.dashboard.widgets import Dashboard, build_dashboard

__all__ = [
    "ALSO_ABLATION_NOTE", "DASHBOARD_NOTEBOOK", "FACE_DISPLAY_PX", "GALLERY_PAGE", "INITIAL_RUN_ENV", "LEVELS", "LITERATURE_CSV",
    "NOTEBOOKS_DIR", "NoRunsFolder", "OFFLINE_TEMPLATE", "PROJECT_ROOT", "RUNS_DIR_ENV", "STYLE", "SYNTHETIC_NOTE", "VIEWS", "Dashboard",
    "FaceGallery", "RunChoice", "add_arguments", "build_dashboard", "cell_faces", "confusion_counts",
    "culling_options", "data_label", "difference_figure", "difference_view", "difference_matrix", "display_report",
    "face_caption_html", "face_png", "figure_bundle", "find_choice", "format_cell", "has_level",
    "header_html", "heatmap_figure", "largest_confusion", "leakage_gaps", "literature_comparison",
    "literature_html", "load_literature", "matrix_view", "message_html", "per_class_html",
    "per_class_table", "problems_html", "protocol_comparison", "protocol_comparison_html", "resolve_initial_run",
    "resolve_runs_dir", "run_choices", "run_curves_figure", "run_label", "runs_overview",
    "runs_overview_html", "selection_shape", "short_video_id", "standalone_runs",
    "synthetic_html", "table_html", "top_confusions", "video_predictions", "voila_command", "voila_environment",
]  # fmt: skip
