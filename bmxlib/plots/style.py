"""Colours, resolution and the figure helpers every figure module shares.

Colours are the Okabe–Ito palette (colour-blind safe) and cividis for heatmaps and
ordered series. The helpers build figures without pyplot (no global state, no GUI
backend) and give every panel the same title and label sizes.
"""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "OKABE_ITO", "CYCLE", "STATE_NAMES", "STATE_COLORS", "GROUP_COLORS", "HEATMAP_CMAP",
    "DPI", "MAX_FIGURE_WIDTH", "new_figure", "panel_grid", "label_axes", "integer_epoch_axis",
    "shade_warmup", "as_array", "class_labels", "figure_legend",
]

# Okabe & Ito (2008), the colour-blind-safe qualitative palette
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
# yellow is left out: on white it is all but invisible; a grey takes its place
CYCLE = [*(OKABE_ITO[k] for k in ("blue", "orange", "bluish_green", "vermillion",
                                  "reddish_purple", "sky_blue", "black")), "#999999"]
STATE_NAMES = ("clean", "re-labeled", "ambiguous")  # LabelState 0, 1, 2
STATE_COLORS = (OKABE_ITO["bluish_green"], OKABE_ITO["blue"], OKABE_ITO["orange"])
# orange beside vermillion is the palette's least distinct pair: few-shot is reddish purple
GROUP_COLORS = {"many": OKABE_ITO["blue"], "medium": OKABE_ITO["orange"],
                "few": OKABE_ITO["reddish_purple"]}
#: Widest figure (inches) the panel grids aim for: the report's column is 10 in at DPI 120,
#: and text of a wider figure is raised to stay readable when shown scaled down
MAX_FIGURE_WIDTH = 11.0
HEATMAP_CMAP = "cividis"
DPI = 120
#: Markers a line over epochs carries at most about: enough to tell the lines apart, not a
#: smear over a 400-epoch run
MARKERS_PER_LINE = 20


def new_figure(ncols: int, nrows: int, *, width: float, height: float,
               title: str) -> tuple[Figure, np.ndarray]:
    """A titled ``Figure`` of ``nrows`` × ``ncols`` panels, each ``width`` × ``height`` inches.

    Returns
    -------
    (Figure, np.ndarray of Axes, shape (nrows, ncols))
        Long titles (run names) are wrapped so that narrow figures keep them whole.
    """
    fig = Figure(figsize=(width * ncols, height * nrows + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))
    fig.suptitle(textwrap.fill(title or "untitled", width=max(30, int(8.5 * width * ncols))),
                 fontsize=12)
    return fig, axes


def panel_grid(count: int, *, width: float, height: float,
               title: str) -> tuple[Figure, list]:
    """``new_figure`` with ``count`` panels in rows of as many as fit ``MAX_FIGURE_WIDTH``.

    Parameters
    ----------
    count : int, >= 1
        Number of panels.
    width, height : float
        One panel's size in inches.
    title : str
        The figure's title.

    Returns
    -------
    (Figure, list of Axes of length ``count``)
        The panels in reading order; the grid's unused cells are hidden.
    """
    ncols = max(1, min(count, int(MAX_FIGURE_WIDTH // width)))
    nrows = -(-count // ncols)
    fig, axes = new_figure(ncols, nrows, width=width, height=height, title=title)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def label_axes(ax, title: str, xlabel: str, ylabel: str) -> None:
    """Panel title and axis labels in the sizes all figures use."""
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)


def integer_epoch_axis(ax) -> None:
    """Integer ticks only on the x axis (epochs), also when it spans less than two epochs
    (``min_n_ticks=1``: the default falls back to ticks like 1.9, 2.0, 2.1 there)."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def thin_markers(ax) -> None:
    """Every line of ``ax`` marks about ``MARKERS_PER_LINE`` of its points (every n-th)."""
    for line in ax.get_lines():
        line.set_markevery(max(1, len(line.get_xdata()) // MARKERS_PER_LINE))


def shade_warmup(ax, warmup_epochs: int) -> None:
    """Epoch axis with the warm-up epochs 1..``warmup_epochs`` shaded (label "warm-up")."""
    integer_epoch_axis(ax)
    if warmup_epochs > 0:
        ax.axvspan(0.5, warmup_epochs + 0.5, color="0.9", zorder=0, label="warm-up")


def as_array(value, name: str, ndim: int) -> np.ndarray:
    """``value`` as a float64 array of ``ndim`` dimensions (``ValueError`` naming it if not)."""
    array = np.asarray(value, dtype=float)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    return array


def class_labels(class_names, count: int) -> list[str]:
    """``class_names`` as strings, or "0".."count-1"; ``ValueError`` if the count differs."""
    names = [str(c) for c in class_names] if class_names is not None else \
        [str(k) for k in range(count)]
    if len(names) != count:
        raise ValueError(f"class_names has {len(names)} entries, expected {count}")
    return names


def figure_legend(fig: Figure, axes: np.ndarray, *, title: str | None = None,
                  leave_out: tuple[str, ...] = ()) -> None:
    """One legend below all panels (panels keep their data uncovered), entries of every
    panel once, under ``title``; a panel's own legend (seaborn draws one) is removed.
    ``leave_out``: labels not to list (seaborn heads each semantic's entries with its
    column name)."""
    entries: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in leave_out:
                entries.setdefault(label, handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    # as many columns as the longest entry (8 pt text, ~0.6 em a character, marker and gap)
    # fits across the figure
    entry_in = (0.6 * 8 * max((len(label) for label in entries), default=1) + 30) / 72
    columns = max(1, min(len(entries), int(fig.get_figwidth() / entry_in)))
    fig.legend(list(entries.values()), list(entries), loc="outside lower center",
               ncols=columns, fontsize=8, title=title, title_fontsize=8)
