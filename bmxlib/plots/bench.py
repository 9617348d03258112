"""Figures of ``bmx bench``: how label management's cost grows with N and K."""

from __future__ import annotations

from collections.abc import Sequence

import seaborn as sns
from matplotlib.figure import Figure

from .style import CYCLE, label_axes, new_figure

__all__ = ["scaling_curves"]


def scaling_curves(points: Sequence[dict], *, exponents: dict | None = None,
                   title: str = "") -> Figure:
    """Seconds and peak memory of the per-epoch label management against N·K (log-log).

    Parameters
    ----------
    points : sequence of dict
        ``bench.scaling`` points: ``items`` (N), ``classes`` (K), ``label_management_s``
        and ``peak_bytes``; one line per K.
    exponents : dict, optional
        ``exponent_n`` / ``exponent_k`` of the fit, shown in the title of the first panel.
    """
    points = list(points)
    if not points:
        raise ValueError("points is empty: nothing to draw")
    fig, axes = new_figure(2, 1, width=4.6, height=3.6, title=title)
    classes = sorted({int(p["classes"]) for p in points})
    palette = {k: CYCLE[i % len(CYCLE)] for i, k in enumerate(classes)}
    data = {"labels": [p["items"] * p["classes"] for p in points],
            "seconds": [p["label_management_s"] for p in points],
            "gigabytes": [p["peak_bytes"] / 1e9 for p in points],
            "K": [int(p["classes"]) for p in points]}
    for ax, column in ((axes[0, 0], "seconds"), (axes[0, 1], "gigabytes")):
        sns.lineplot(data=data, x="labels", y=column, hue="K", palette=palette, marker="o",
                     ax=ax)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(title="K classes", fontsize=7, title_fontsize=7)
    fit = ""
    if exponents:
        fit = f" · t ∝ N^{exponents['exponent_n']:.2f} K^{exponents['exponent_k']:.2f}"
    label_axes(axes[0, 0], f"label management time{fit}", "labels N·K", "seconds per epoch")
    label_axes(axes[0, 1], "peak memory", "labels N·K", "GB")
    for ax in axes[0]:
        ax.grid(True, which="both", alpha=0.3)
    return fig
