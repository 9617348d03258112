"""Figures of the notebooks (docs/method.md §8): arrays or tidy DataFrames in, matplotlib
``Figure`` out.

Two layers:

* *run → arrays* helpers (``gmm_arrays``, ``selection_arrays``, ``confidence_arrays``,
  ``sampling_arrays``, ``explorer_arrays``) read a :class:`bmxlib.runs.Run` and return
  plain numpy arrays keyed like the parameters of the figure functions, so a notebook
  cell reads ``plots.loss_histograms(**plots.gmm_arrays(run, epochs), ...)``; the
  comparison takes the tidy table of :func:`bmxlib.results.long_table`;
* figure functions never take paths and build a ``Figure`` without pyplot (no global state,
  no GUI backend: Agg anywhere, papermill included); seaborn's axes-level functions draw
  into its axes (``ax=``) where seaborn is the field's tool, never a pyplot figure.

``save`` writes a figure as PNG; ``publish`` saves it and shows the PNG in a notebook (what
the notebook shows is the file the report links); ``bmxlib.runs.resolve_path`` reads the
notebooks' relative defaults from the repository root. Colours: Okabe–Ito (colour-blind safe, also
seaborn's ``palette``), cividis for heatmaps. Modules, all re-exported here:
:mod:`~bmxlib.plots.style` (palette, ``DPI``, shared helpers), :mod:`~bmxlib.plots.output`,
:mod:`~bmxlib.plots.arrays` (run → arrays; ``clean_boundary`` from :class:`bmxlib.gmm.GMMFit`)
and one per notebook: :mod:`~bmxlib.plots.gmm_fits`, :mod:`~bmxlib.plots.confidence_vs_ap`,
:mod:`~bmxlib.plots.sampling`, :mod:`~bmxlib.plots.method_comparison`,
:mod:`~bmxlib.plots.explorer`.
"""

from __future__ import annotations

from .arrays import (
    GMM_KEYS,
    clean_boundary,
    confidence_arrays,
    default_classes,
    default_epochs,
    default_explorer_epoch,
    epoch_ap,
    epoch_rows,
    explorer_arrays,
    gmm_arrays,
    sampling_arrays,
    selection_arrays,
    stack_diagnostics,
)
from .bench import scaling_curves
from .confidence_vs_ap import confidence_ap_groups, confidence_ap_scatter
from .explorer import explorer_widget, label_panel
from .gmm_fits import loss_histograms, selection_curves
from .method_comparison import MEASURE_LABELS, map_by_setting, map_curves, memorization_curves
from .output import (
    MIN_DISPLAY_PT,
    READING_WIDTH_PX,
    check_figures,
    min_font_pt,
    png_bytes,
    publish,
    readable_text,
    save,
)
from .profile import label_profile, noise_profile
from .sampling import draw_share_bars, draw_share_heatmap, sampling_distributions
from .sensitivity import rank_radar, scenario_ranks, sensitivity_curves
from .style import (
    CYCLE,
    DPI,
    GROUP_COLORS,
    HEATMAP_CMAP,
    OKABE_ITO,
    STATE_COLORS,
    STATE_NAMES,
)

__all__ = [
    # style
    "OKABE_ITO", "CYCLE", "STATE_NAMES", "STATE_COLORS", "GROUP_COLORS", "HEATMAP_CMAP", "DPI",
    # output
    "save", "publish", "png_bytes", "check_figures", "readable_text", "min_font_pt",
    "READING_WIDTH_PX", "MIN_DISPLAY_PT",
    # run → arrays
    "GMM_KEYS", "default_classes", "default_epochs", "default_explorer_epoch", "epoch_rows",
    "stack_diagnostics", "clean_boundary", "gmm_arrays", "selection_arrays", "epoch_ap",
    "confidence_arrays", "sampling_arrays", "explorer_arrays",
    # figures, one group per notebook
    "loss_histograms", "selection_curves",
    "confidence_ap_groups", "confidence_ap_scatter",
    "sampling_distributions", "draw_share_bars", "draw_share_heatmap",
    "MEASURE_LABELS", "map_by_setting", "map_curves", "memorization_curves",
    "label_panel", "explorer_widget",
    "scaling_curves",  # bmx bench
    "label_profile", "noise_profile",  # dataset_profile
    "rank_radar", "scenario_ranks", "sensitivity_curves",  # method_comparison, sensitivity
]
