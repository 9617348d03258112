"""Figures of the notebooks (SPEC §8): arrays in, matplotlib ``Figure`` out.

Two layers:

* *run → arrays* helpers (``gmm_arrays``, ``selection_arrays``, ``confidence_arrays``,
  ``sampling_arrays``, ``explorer_arrays``) read a :class:`bmxlib.runs.Run` and return
  plain numpy arrays keyed like the parameters of the figure functions, so a notebook
  cell reads ``plots.loss_histograms(**plots.gmm_arrays(run, epochs), ...)``;
* figure functions take arrays only, never paths, and build a ``Figure`` without pyplot
  (no global state, no GUI backend: they render with Agg anywhere, papermill included).

``save`` writes a figure as PNG; ``publish`` saves it and shows the PNG in a notebook, so
what the notebook shows is exactly the file the report links. Colours are the Okabe–Ito
palette (colour-blind safe) and cividis for heatmaps.

Modules (everything public is re-exported here, so callers write ``plots.<name>``):

* :mod:`~bmxlib.plots.style`: palette, ``DPI`` and the figure helpers the modules share;
* :mod:`~bmxlib.plots.output`: ``save``, ``publish``, ``png_bytes``, ``check_figures``;
* :mod:`~bmxlib.plots.arrays`: run → arrays, default classes and epochs, ``clean_boundary``
  (the mixture posteriors come from :class:`bmxlib.gmm.GMMFit`);
* one module per notebook's figures: :mod:`~bmxlib.plots.gmm_fits`,
  :mod:`~bmxlib.plots.confidence_vs_ap`, :mod:`~bmxlib.plots.sampling`,
  :mod:`~bmxlib.plots.method_comparison`, :mod:`~bmxlib.plots.explorer`.
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
    explorer_arrays,
    gmm_arrays,
    sampling_arrays,
    selection_arrays,
    stack_diagnostics,
)
from .confidence_vs_ap import confidence_ap_groups, confidence_ap_scatter
from .explorer import explorer_widget, label_panel
from .gmm_fits import loss_histograms, selection_curves
from .method_comparison import MEASURE_LABELS, map_bars, map_curves, memorization_curves
from .output import check_figures, png_bytes, publish, save
from .sampling import draw_share_bars, draw_share_heatmap, sampling_distributions
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
    "save", "publish", "png_bytes", "check_figures",
    # run → arrays
    "GMM_KEYS", "default_classes", "default_epochs", "default_explorer_epoch",
    "stack_diagnostics", "clean_boundary", "gmm_arrays", "selection_arrays", "epoch_ap",
    "confidence_arrays", "sampling_arrays", "explorer_arrays",
    # figures, one group per notebook
    "loss_histograms", "selection_curves",
    "confidence_ap_groups", "confidence_ap_scatter",
    "sampling_distributions", "draw_share_bars", "draw_share_heatmap",
    "MEASURE_LABELS", "map_bars", "map_curves", "memorization_curves",
    "label_panel", "explorer_widget",
]
