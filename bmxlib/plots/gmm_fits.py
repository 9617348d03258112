"""Figures of the gmm_fits notebook: loss histograms with the fitted mixtures, selection.

Also :func:`draw_gmm`, the drawing of one (class, label value) mixture that the explorer
panel reuses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from .arrays import component_log_densities
from .style import (
    OKABE_ITO,
    STATE_COLORS,
    STATE_NAMES,
    as_array,
    figure_legend,
    label_axes,
    new_figure,
    shade_warmup,
    thin_markers,
)

__all__ = ["loss_histograms", "selection_curves", "draw_gmm"]


def draw_gmm(ax, counts, means, variances, weights, low: int, boundary: float,
             degenerate: bool, *, legend: bool) -> None:
    """One (class, label value) group: loss histogram as a density plus the mixture.

    Parameters
    ----------
    ax : matplotlib Axes
    counts : array-like, shape (B,)
        Histogram of the normalised losses on B equal bins of [0, 1].
    means, variances, weights : array-like, shape (2,)
        The two components (the densities come from :class:`bmxlib.gmm.GMMFit`).
    low : int
        Index of the clean component.
    boundary : float
        Normalised loss where p_G = 0.5 (NaN: none).
    degenerate : bool
        A group without a fit: only the histogram and a note are drawn.
    legend : bool
        Draw a legend inside the panel.
    """
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total > 0:  # the stored counts as weights of their bin centres
        sns.histplot(x=(np.arange(counts.size) + 0.5) / counts.size, weights=counts,
                     bins=counts.size, binrange=(0, 1), stat="density", ax=ax,
                     color=OKABE_ITO["sky_blue"], alpha=0.55, label="loss histogram")
    if total > 0 and not degenerate and np.isfinite(means).all():
        grid = np.linspace(0.0, 1.0, 400)
        log_pdf = component_log_densities(grid, means, variances, weights)  # (400, 2)
        pdf = np.exp(np.where(np.isfinite(log_pdf), log_pdf, -np.inf))  # 0 where undefined
        ax.plot(grid, pdf[:, low], color=OKABE_ITO["bluish_green"], lw=1.8,
                label="clean component")
        ax.plot(grid, pdf[:, 1 - low], color=OKABE_ITO["vermillion"], lw=1.8,
                label="noisy component")
        ax.plot(grid, pdf.sum(axis=1), color="black", lw=1.0, ls="--", label="mixture")
    if np.isfinite(boundary):
        ax.axvline(boundary, color="black", ls=":", lw=1.5, label="p_G = 0.5 boundary")
    if degenerate:
        ax.text(0.5, 0.5, "degenerate group: all clean", transform=ax.transAxes,
                ha="center", fontsize=8)
    ax.set_xlim(0, 1)
    if legend:
        ax.legend(fontsize=7, loc="best", framealpha=0.85)


def _state_note(state_counts) -> str:
    if state_counts is None or not np.isfinite(state_counts).all() or state_counts.sum() == 0:
        return ""
    shares = 100 * state_counts / state_counts.sum()
    return " · ".join(f"{name} {share:.0f}%" for name, share in zip(STATE_NAMES, shares))


def loss_histograms(hist, means, variances, weights, low_component, boundary, *,
                    epochs: Sequence[int], classes: Sequence[int],
                    class_names: Sequence[str] | None = None, degenerate=None,
                    loss_min=None, loss_max=None, state_counts=None,
                    title: str = "") -> Figure:
    """Per-class loss histograms of positive and negative labels with the fitted mixtures.

    Parameters
    ----------
    hist : array-like, shape (E, K, 2, B)
        Counts of the min-max normalised BCE losses per (epoch, class, label value).
    means, variances, weights : array-like, shape (E, K, 2, 2)
        The two components of each mixture on the [0, 1] scale.
    low_component : array-like of int, shape (E, K, 2)
        Index of the clean component.
    boundary : array-like, shape (E, K, 2)
        Normalised loss where p_G = 0.5 (NaN: none), see :func:`clean_boundary`.
    epochs : sequence of int, length E
    classes : sequence of int
        Classes to show, one pair of rows (positive, negative labels) each.
    degenerate, loss_min, loss_max : array-like, shape (E, K, 2), optional
    state_counts : array-like, shape (E, K, 2, 3), optional
        Labels per state (clean / re-labeled / ambiguous), NaN before management.
    title : str
        Figure title (name the run).

    Returns
    -------
    Figure with one panel per (class, label value) row and epoch column. Rows of groups
    without labels are left out (all kept, each with a one-line note, when every group of
    ``classes`` is empty); no title shows NaN.
    """
    hist = as_array(hist, "hist", 4)
    num_epochs, num_classes = hist.shape[:2]
    if len(epochs) != num_epochs:
        raise ValueError(f"epochs has {len(epochs)} entries, hist has {num_epochs} epochs")
    classes = [int(k) for k in classes]
    if not classes or any(not 0 <= k < num_classes for k in classes):
        raise ValueError(f"classes must be non-empty indices in [0, {num_classes}), got {classes}")
    names = list(class_names) if class_names is not None else [str(k) for k in
                                                                range(num_classes)]
    shape = hist.shape[:3]
    degenerate = np.zeros(shape, bool) if degenerate is None else np.asarray(degenerate, bool)
    # a (class, label value) group without labels (e.g. a class no instance is labeled
    # with) has nothing to draw: its row is left out, unless every row would be
    groups = [(k, lv) for k in classes for lv in (1, 0)]
    shown = [(k, lv) for k, lv in groups if hist[:, k, lv].sum() > 0] or groups
    fig, axes = new_figure(num_epochs, len(shown), width=3.6 if num_epochs > 1 else 5.0,
                           height=2.6, title=title)
    for row, (k, lv) in enumerate(shown):
        for col, epoch in enumerate(epochs):
            ax = axes[row, col]
            kind = "positive" if lv == 1 else "negative"
            count = int(hist[col, k, lv].sum())
            heading = f"class {names[k]} · {kind} labels · epoch {epoch}"
            if count == 0:
                ax.text(0.5, 0.5, "no labels in this group", transform=ax.transAxes,
                        ha="center", va="center", fontsize=9)
                ax.set_xlim(0, 1)
                label_axes(ax, heading, "BCE loss (min-max normalised)", "density")
                continue
            draw_gmm(ax, hist[col, k, lv], means[col][k][lv], variances[col][k][lv],
                     weights[col][k][lv], int(low_component[col][k][lv]),
                     float(np.asarray(boundary)[col, k, lv]), bool(degenerate[col, k, lv]),
                     legend=False)
            notes = [f"n = {count}"]
            if loss_min is not None and loss_max is not None:
                low, high = float(loss_min[col][k][lv]), float(loss_max[col][k][lv])
                if np.isfinite(low) and np.isfinite(high):
                    notes.append(f"loss ∈ [{low:.2g}, {high:.2g}]")
            state_note = _state_note(np.asarray(state_counts, float)[col, k, lv]) \
                if state_counts is not None else ""
            label_axes(ax, heading + "\n" + " · ".join(notes)
                       + ("\n" + state_note if state_note else ""),
                       "BCE loss (min-max normalised)", "density")
    figure_legend(fig, axes)
    return fig


def selection_curves(epochs, precision, recall, relabel_accuracy, *, counts=None,
                     warmup_epochs: int = 0, title: str = "") -> Figure:
    """Clean-label selection precision / recall and re-labeling accuracy over epochs.

    Parameters
    ----------
    epochs : array-like of int, shape (E,)
    precision, recall, relabel_accuracy : array-like, shape (E,)
        Values in [0, 1]; NaN where undefined (truth unknown, warm-up).
    counts : dict[str, array-like (E,)], optional
        Labels per state (keys from ``STATE_NAMES``) for a second panel of shares.
    warmup_epochs : int
        Shaded at the left.

    Returns
    -------
    Figure with one or two panels.
    """
    epochs = as_array(epochs, "epochs", 1)
    panels = 2 if counts else 1
    fig, axes = new_figure(panels, 1, width=5.0, height=3.4, title=title)
    ax = axes[0, 0]
    shade_warmup(ax, warmup_epochs)
    series = (("selection precision", precision, OKABE_ITO["blue"], "o"),
              ("selection recall", recall, OKABE_ITO["vermillion"], "s"),
              ("re-labeling accuracy", relabel_accuracy, OKABE_ITO["bluish_green"], "^"))
    known = False
    for name, values, color, marker in series:
        values = as_array(values, name, 1)
        known |= bool(np.isfinite(values).any())
        ax.plot(epochs, values, marker=marker, color=color, label=name)
    thin_markers(ax)
    if not known:
        ax.text(0.5, 0.5, "true labels unknown or no label management yet",
                transform=ax.transAxes, ha="center", fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="best")
    label_axes(ax, "clean-label selection vs. the true labels", "epoch", "value")
    if counts:
        _draw_state_shares(axes[0, 1], epochs, counts, warmup_epochs)
    for panel in axes.flat:  # every epoch on the axis, whatever each panel draws
        panel.set_xlim(epochs.min() - 0.5, epochs.max() + 0.5)
    return fig


def _draw_state_shares(ax, epochs, counts, warmup_epochs: int) -> None:
    stacked = np.nan_to_num(np.array([np.asarray(counts[name], float) for name in STATE_NAMES]))
    totals = stacked.sum(axis=0)
    managed = totals > 0  # epochs without label management have no shares: not drawn as 0,
    shares = stacked[:, managed] / totals[managed]  # which would ramp up from the warm-up
    shade_warmup(ax, warmup_epochs)
    ax.stackplot(np.asarray(epochs)[managed], shares, labels=STATE_NAMES, colors=STATE_COLORS,
                 alpha=0.85)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower left")
    label_axes(ax, "labels per reliability class", "epoch", "share of all labels")
