"""Figures of the confidence_vs_ap notebook: per-group confidence vs. AP, per-class scatter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..metrics import pearson
from .arrays import epoch_rows
from .style import (
    GROUP_COLORS,
    MAX_FIGURE_WIDTH,
    OKABE_ITO,
    as_array,
    figure_legend,
    integer_epoch_axis,
    label_axes,
    new_figure,
    thin_markers,
)

__all__ = ["confidence_ap_groups", "confidence_ap_scatter"]

NAMED_CLASSES = 20  # confidence_ap_scatter names every class up to this many


def confidence_ap_groups(group_confidence, group_ap, pearson_r, *, epochs,
                         show_epochs: Sequence[int] | None = None, title: str = "") -> Figure:
    """Per frequency group: mean confidence P and mean AP side by side, and r per epoch.

    Parameters
    ----------
    group_confidence, group_ap : array-like, shape (E, G)
        Group means, groups ordered from the most to the least frequent classes.
    pearson_r : array-like, shape (E,)
        Pearson r between the two across groups, per epoch (NaN allowed).
    epochs : array-like of int, shape (E,)
    show_epochs : sequence of int, optional
        Epochs that get a bar panel (default: the last one).
    """
    confidence = as_array(group_confidence, "group_confidence", 2)
    ap = as_array(group_ap, "group_ap", 2)
    pearson_r = as_array(pearson_r, "pearson_r", 1)
    epochs = [int(e) for e in epochs]
    if confidence.shape != ap.shape or not len(epochs) == confidence.shape[0] == pearson_r.size:
        raise ValueError("group_confidence, group_ap, pearson_r and epochs disagree in shape")
    show = [int(e) for e in (show_epochs or epochs[-1:])]
    rows = epoch_rows(epochs, show)
    fig, axes = new_figure(len(show) + 1, 1, width=3.8, height=3.3, title=title)
    x = np.arange(1, confidence.shape[1] + 1)
    for ax, epoch, i in zip(axes[0], show, rows):
        ax.bar(x - 0.2, confidence[i], 0.4, color=OKABE_ITO["blue"], label="mean confidence P(k)")
        ax.bar(x + 0.2, ap[i], 0.4, color=OKABE_ITO["orange"], label="mean test AP")
        ax.set_ylim(0, 1.05)
        ax.set_xticks(x)
        label_axes(ax, f"epoch {epoch} · Pearson r = {pearson_r[i]:.2f}",
                   "class group (most → least frequent)", "value")
    ax = axes[0, -1]
    ax.plot(epochs, pearson_r, marker="o", color=OKABE_ITO["reddish_purple"], label="Pearson r")
    thin_markers(ax)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    integer_epoch_axis(ax)
    label_axes(ax, "correlation across groups", "epoch", "Pearson r (confidence, AP)")
    figure_legend(fig, axes)  # below: a panel's own legend covered its tallest bars
    return fig


def confidence_ap_scatter(presence, ap, positives, *, epochs, show_epochs=None,
                          class_names: Sequence[str] | None = None, groups=None,
                          title: str = "") -> Figure:
    """Per-class scatter of the confidence in presence P(k) against the test AP, with the
    least-squares line across classes and its 95% bootstrap band (seaborn ``regplot``).

    Parameters
    ----------
    presence, ap : array-like, shape (E, K)
        P(k) and AP per class at each epoch (NaN allowed: the class is left out).
    positives : array-like, shape (K,)
        Positive training labels per class (marker area, 20–220 pt² from fewest to most).
    epochs : array-like of int, shape (E,)
    show_epochs : sequence of int, optional
        One panel each (default: the last epoch).
    groups : array-like of str, shape (K,), optional
        Shot group per class ("many" / "medium" / "few"), the marker colour.

    Every class is named up to ``NAMED_CLASSES`` classes; beyond, each panel names the three
    with the highest and the three with the lowest AP.
    """
    presence = as_array(presence, "presence", 2)
    ap = as_array(ap, "ap", 2)
    positives = as_array(positives, "positives", 1)
    epochs = [int(e) for e in epochs]
    if presence.shape != ap.shape or presence.shape != (len(epochs), positives.size):
        raise ValueError("presence, ap, positives and epochs disagree in shape")
    show = [int(e) for e in (show_epochs or epochs[-1:])]
    rows = epoch_rows(epochs, show)
    names = [str(c) for c in (range(positives.size) if class_names is None else class_names)]
    groups = np.asarray(groups if groups is not None else ["few"] * positives.size).astype(str)
    fig, axes = new_figure(len(show), 1, width=min(4.2, MAX_FIGURE_WIDTH / len(show)),
                           height=3.8, title=title)
    for ax, epoch, i in zip(axes[0], show, rows):
        frame = pd.DataFrame({"P(k)": presence[i], "AP(k)": ap[i], "shot group": groups,
                              "positives": positives.astype(int), "name": names}).dropna()
        if len(frame) >= 3 and frame["P(k)"].nunique() > 1:
            sns.regplot(frame, x="P(k)", y="AP(k)", scatter=False, ci=95, seed=0, color="0.35",
                        truncate=False, label="least squares, 95% band", ax=ax)
        sns.scatterplot(frame, x="P(k)", y="AP(k)", hue="shot group", palette=GROUP_COLORS,
                        hue_order=[g for g in GROUP_COLORS if g in set(groups)],
                        size="positives", sizes=(20, 220), alpha=0.8, edgecolor="black",
                        linewidth=0.5, ax=ax)
        # every name up to NAMED_CLASSES classes; beyond, the highest and lowest AP only
        named = frame if len(frame) <= NAMED_CLASSES else pd.concat(
            [frame.nlargest(3, "AP(k)"), frame.nsmallest(3, "AP(k)")])
        for name, x, y in zip(named["name"], named["P(k)"], named["AP(k)"]):
            ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        r = pearson(frame["P(k)"].to_numpy(), frame["AP(k)"].to_numpy())  # NaN below 2
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.05))
        label_axes(ax, f"epoch {epoch} · per-class r = {r:.2f}",
                   "confidence in presence P(k)", "test AP(k)")
    figure_legend(fig, axes)
    return fig
