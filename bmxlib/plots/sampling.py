"""Figures of the sampling_over_epochs notebook: the minority sampler's probabilities and
the share of draws per class (seaborn histograms, bars and heatmap)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .arrays import epoch_rows
from .style import (
    HEATMAP_CMAP,
    MAX_FIGURE_WIDTH,
    OKABE_ITO,
    as_array,
    class_labels,
    figure_legend,
    integer_epoch_axis,
    label_axes,
    new_figure,
    thin_markers,
)

__all__ = ["sampling_distributions", "draw_share_bars", "draw_share_heatmap"]

BAR_CLASSES_EACH_END = 10  # draw_share_bars shows all classes up to twice this many


def sampling_distributions(probabilities, *, epochs, show_epochs=None, title: str = "") -> Figure:
    """Distribution of the minority sampler's probabilities, relative to uniform.

    Parameters
    ----------
    probabilities : array-like, shape (E, N)
        p(n) per epoch (each row sums to 1).
    epochs : array-like of int, shape (E,)
    show_epochs : sequence of int, optional
        Epochs drawn as histograms (default: all, at most 6 spread evenly).
    """
    probabilities = as_array(probabilities, "probabilities", 2)
    epochs = [int(e) for e in epochs]
    if len(epochs) != probabilities.shape[0]:
        raise ValueError("epochs and probabilities disagree in length")
    relative = probabilities * probabilities.shape[1]  # 1 = uniform
    show = [int(e) for e in show_epochs] if show_epochs else \
        [epochs[i] for i in np.unique(np.linspace(0, len(epochs) - 1, 6).round().astype(int))]
    fig, axes = new_figure(2, 1, width=4.8, height=3.4, title=title)
    ax = axes[0, 0]
    frame = pd.DataFrame({"N · p(n)": relative[epoch_rows(epochs, show)].ravel(),
                          "epoch": np.repeat(show, relative.shape[1])})
    sns.histplot(frame, x="N · p(n)", hue="epoch", element="step", fill=False, linewidth=1.6,
                 bins=np.linspace(relative.min(), relative.max() + 1e-9, 40),
                 palette=sns.color_palette(HEATMAP_CMAP, len(show)), ax=ax)
    ax.axvline(1.0, color="black", ls=":", lw=1)
    sns.move_legend(ax, "best", fontsize=7, title_fontsize=7)
    label_axes(ax, "sampling probabilities", "N · p(n)  (1 = uniform, dotted)", "instances")
    ax = axes[0, 1]
    low, median, high = np.quantile(relative, [0.05, 0.5, 0.95], axis=1)
    ax.fill_between(epochs, low, high, color=OKABE_ITO["sky_blue"], alpha=0.4,
                    label="5–95% of instances")
    ax.plot(epochs, median, marker="o", color=OKABE_ITO["blue"], label="median")
    ax.plot(epochs, relative.max(axis=1), marker="^", color=OKABE_ITO["vermillion"], label="max")
    thin_markers(ax)
    ax.axhline(1.0, color="black", ls=":", lw=1)
    integer_epoch_axis(ax)
    ax.legend(fontsize=7)
    label_axes(ax, "spread over epochs", "epoch", "N · p(n)")
    return fig


def _draw_share_inputs(natural_share, draw_share, epochs):
    """Validated (natural (K,), share (E, K), epochs list, class order by frequency)."""
    natural = as_array(natural_share, "natural_share", 1)
    share = as_array(draw_share, "draw_share", 2)
    epochs = [int(e) for e in epochs]
    if share.shape != (len(epochs), natural.size):
        raise ValueError(f"draw_share must have shape ({len(epochs)}, {natural.size})")
    order = np.argsort(-natural, kind="stable")
    return natural, share, epochs, order


def draw_share_bars(natural_share, draw_share, *, epochs, class_names=None,
                    title: str = "") -> Figure:
    """Share of minority draws containing each class vs. its natural frequency.

    Parameters
    ----------
    natural_share : array-like, shape (K,)
        Share of instances holding class k (what a uniform draw gives).
    draw_share : array-like, shape (E, K)
        Expected share of minority draws holding class k at each of ``epochs``.
    epochs : array-like of int, shape (E,)

    Classes are sorted by frequency; beyond ``2 * BAR_CLASSES_EACH_END`` classes only the
    most and the least frequent ``BAR_CLASSES_EACH_END`` are drawn (the panel title says
    so; :func:`draw_share_heatmap` shows every class).
    """
    natural, share, epochs, order = _draw_share_inputs(natural_share, draw_share, epochs)
    names = class_labels(class_names, natural.size)
    shown, which = order, "classes sorted by frequency"
    if natural.size > 2 * BAR_CLASSES_EACH_END:  # the head and the tail; the heatmap has all
        shown = np.concatenate([order[:BAR_CLASSES_EACH_END], order[-BAR_CLASSES_EACH_END:]])
        which = (f"the {BAR_CLASSES_EACH_END} most and {BAR_CLASSES_EACH_END} least frequent "
                 f"of {natural.size} classes")
    series = ["natural frequency (random sampler)", *(f"minority sampler, epoch {e}"
                                                      for e in epochs)]
    frame = pd.DataFrame({"class": [names[k] for k in shown] * len(series),
                          "share": np.concatenate([natural[shown], *share[:, shown]]),
                          "series": np.repeat(series, shown.size)})
    fig, axes = new_figure(1, 1, width=min(MAX_FIGURE_WIDTH, max(6.0, 0.5 * shown.size)),
                           height=3.8, title=title)
    ax = axes[0, 0]
    # reddish purple: outside cividis, whose middle grey the epochs' bars take
    colours = [OKABE_ITO["reddish_purple"], *sns.color_palette(HEATMAP_CMAP, len(epochs))]
    sns.barplot(frame, x="class", y="share", hue="series", errorbar=None, saturation=1, ax=ax,
                palette=dict(zip(series, colours)))
    ax.set_yscale("log")  # rare classes stay visible next to the head
    figure_legend(fig, axes)
    if shown.size > 12:
        ax.tick_params(axis="x", labelrotation=90)
    label_axes(ax, which, "class", "share of draws holding the class (log scale)")
    return fig


def draw_share_heatmap(natural_share, draw_share, *, epochs, class_names=None,
                       title: str = "") -> Figure:
    """Class × epoch heatmap of the oversampling factor draw share / natural share.

    Shapes as in :func:`draw_share_bars`; classes are sorted by frequency (rows).
    """
    natural, share, epochs, order = _draw_share_inputs(natural_share, draw_share, epochs)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (share / natural).T[order]  # (K, E); a class without instances: blank
    names = class_labels(class_names, natural.size)
    fig, axes = new_figure(1, 1, width=min(MAX_FIGURE_WIDTH, max(4.5, 0.55 * len(epochs) + 2.5)),
                           height=max(3.0, 0.22 * natural.size + 1.2), title=title)
    ax = axes[0, 0]
    frame = pd.DataFrame(np.where(np.isfinite(ratio), ratio, np.nan), columns=epochs,
                         index=[f"{names[k]} ({100 * natural[k]:.1f}%)" for k in order])
    # "auto" tick labels: seaborn thins them where they would overlap
    sns.heatmap(frame, cmap=HEATMAP_CMAP, annot=ratio.size <= 400, fmt=".2f",
                annot_kws={"fontsize": 7}, cbar_kws={"label": "draw share / natural share"},
                xticklabels="auto", yticklabels=True if natural.size <= 60 else "auto", ax=ax)
    label_axes(ax, "oversampling of each class by the minority sampler", "epoch",
               "class (natural frequency)")
    ax.tick_params(axis="y", labelrotation=0)
    return fig


