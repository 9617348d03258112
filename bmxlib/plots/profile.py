"""Figures of the dataset_profile notebook (the paper's Figure 7): how skewed the labels
are, and where the injected noise went."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from .style import OKABE_ITO, as_array, class_labels, label_axes, new_figure

__all__ = ["label_profile", "noise_profile"]


def label_profile(positives, *, class_names: Sequence[str] | None = None,
                  shot_many: int | None = None, shot_few: int | None = None,
                  pos_neg: float | None = None, title: str = "", reference=None,
                  reference_label: str = "COCO 2014 train") -> Figure:
    """Positive training labels per class, most frequent first, on a log scale, with the
    shot-group thresholds drawn and, optionally, a reference profile beside them.

    Parameters
    ----------
    positives : array-like of int, shape (K,)
        N_k, positive training labels per class.
    shot_many, shot_few : int, optional
        Thresholds of the many-shot (> shot_many) and few-shot (< shot_few) groups.
    pos_neg : float, optional
        The positive–negative ratio Σ negatives / Σ positives, shown in the panel title.
    reference : array-like of int, shape (K,), optional
        Another dataset's positives per class (e.g. ``bmxlib.data.coco_stats.coco_profile()``
        for glyphs-coco), drawn sorted as a line, scaled to the same total number of
        positives so the two shapes compare on one axis.
    """
    counts = as_array(positives, "positives", 1)
    names = class_labels(class_names, counts.size)
    order = np.argsort(-counts, kind="stable")
    many = counts.size > 20  # class names then stand rotated, and need room below the bars
    fig, axes = new_figure(1, 1, width=max(6.0, (0.16 if many else 0.28) * counts.size + 2),
                           height=5.2 if many else 3.8, title=title)
    ax = axes[0, 0]
    sns.barplot(x=[names[k] for k in order], y=np.maximum(counts[order], 0.5),
                color=OKABE_ITO["blue"], saturation=1, ax=ax)
    ax.set_yscale("log")
    for value, label, color in ((shot_many, "many-shot threshold", OKABE_ITO["vermillion"]),
                                (shot_few, "few-shot threshold", OKABE_ITO["orange"])):
        if value:
            ax.axhline(value, color=color, ls="--", lw=1.2, label=f"{label} ({value:,})")
    tallest = counts.max()
    if reference is not None:
        ref = np.sort(as_array(reference, "reference", 1).astype(float))[::-1]
        if ref.size != counts.size or ref.sum() <= 0:
            raise ValueError(f"reference must hold {counts.size} non-negative counts with a "
                             f"positive sum, got {ref.size}")
        scale = counts.sum() / ref.sum()
        tallest = max(tallest, ref.max() * scale)
        ax.plot(np.arange(ref.size), np.maximum(ref * scale, 0.5), color=OKABE_ITO["black"],
                marker=".", ms=3, lw=1, label=f"{reference_label} (× {scale:.3g})")
    if shot_many or shot_few or reference is not None:
        ax.set_ylim(top=max(tallest, 1) * 8)  # log-axis headroom: the legend sits above the bars
        ax.legend(fontsize=7, loc="upper right")
    if many:
        ax.tick_params(axis="x", labelrotation=90)
    imbalance = counts.max() / max(counts.min(), 1)
    ratio = f", positive–negative ratio {pos_neg:.1f}" if pos_neg is not None else ""
    label_axes(ax, f"class imbalance ratio {imbalance:.0f}{ratio}", "class (most → least frequent)",
               "positive training labels (log)")
    return fig


def noise_profile(clean, noisy, *, class_names: Sequence[str] | None = None,
                  title: str = "") -> Figure:
    """Injected noise per class and label value: the share of each class's true positives
    turned off (false negatives) and of its true negatives turned on (false positives),
    classes ordered by frequency.

    Parameters
    ----------
    clean, noisy : array-like, shape (N, K), values in {0, 1}
        The true and the given training labels.
    """
    clean = np.asarray(clean).astype(bool)
    noisy = np.asarray(noisy).astype(bool)
    if clean.shape != noisy.shape or clean.ndim != 2:
        raise ValueError("clean and noisy must be (N, K) arrays of the same shape")
    positives, negatives = clean.sum(axis=0), (~clean).sum(axis=0)
    dropped = np.divide((clean & ~noisy).sum(axis=0), positives,
                        out=np.zeros(positives.shape), where=positives > 0)
    added = np.divide((~clean & noisy).sum(axis=0), negatives,
                      out=np.zeros(negatives.shape), where=negatives > 0)
    names = class_labels(class_names, clean.shape[1])
    order = np.argsort(-positives, kind="stable")
    labels = [names[k] for k in order]
    many = len(labels) > 20  # then the panels stack, each as wide as the class names need
    shape, per_class, least, height = ((1, 2), 0.16, 6.0, 4.4) if many else ((2, 1), 0.25, 4.5, 3.6)
    fig, axes = new_figure(*shape, width=max(least, per_class * len(labels) + 2), height=height,
                           title=title)
    for ax, share, what, color in (
            (axes.flat[0], dropped, "true positives given as 0", OKABE_ITO["vermillion"]),
            (axes.flat[1], added, "true negatives given as 1", OKABE_ITO["blue"])):
        sns.barplot(x=labels, y=100 * share[order], color=color, saturation=1, ax=ax)
        ax.set_ylim(0, max(1.0, 110 * share.max()))  # a share, never below 0 (also when clean)
        if not share.any():
            ax.text(0.5, 0.5, "no label changed this way", transform=ax.transAxes,
                    ha="center", va="center", fontsize=9, color=OKABE_ITO["black"])
        if many:
            ax.tick_params(axis="x", labelrotation=90)
        label_axes(ax, f"{what} (mean {100 * share.mean():.1f}%)",
                   "class (most → least frequent)", "share of the class's labels (%)")
    return fig
