"""Figures of the method_comparison notebook: mAP per shot group over seeds (seaborn, from
the long results table), learning and memorization curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..measures import table_measures
from .style import (
    CYCLE,
    MAX_FIGURE_WIDTH,
    figure_legend,
    integer_epoch_axis,
    label_axes,
    new_figure,
    panel_grid,
    thin_markers,
)

__all__ = ["MEASURE_LABELS", "map_by_setting", "map_curves", "memorization_curves"]

# the paper's measures (bmxlib.measures), labelled by shot group only ("mAP all" → "all")
MEASURE_LABELS = {key: label.removeprefix("mAP ") for key, label in table_measures("map")}


def map_by_setting(table, *, hue: str = "method", panel: str = "noise",
                   title: str = "") -> Figure:
    """Test mAP per shot group, a bar per setting with the spread over seeds, a panel per noise.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy, one row per (run, measure), as :func:`bmxlib.results.long_table` builds it:
        the sweep's axis columns, ``seed``, ``run``, ``measure`` (all / many / medium /
        few) and ``value`` (mAP in [0, 1]; NaN where a run has no class in the group).
    hue, panel : str
        Axis columns naming the bars and the panels; the bar label joins the ``hue`` axis
        and the other axes but ``panel``; a table without ``panel`` gives one panel.

    Bars are seaborn's mean over seeds with ±1 standard deviation (``errorbar="sd"``).
    """
    data = table.dropna(subset=["value"])
    if data.empty:
        raise ValueError("the table has no finite mAP: no finished run to compare")
    axes = [c for c in table.columns if c not in ("seed", "run", "measure", "value")]
    panel = panel if panel in axes else None
    keys = sorted((a for a in axes if a != panel), key=lambda a: a != hue)  # hue first
    label = data[keys].astype(str).agg(" / ".join, axis=1) if keys else "run"
    data = data.assign(value=100 * data["value"], setting=label)
    measures = [m for m in MEASURE_LABELS.values() if m in set(data["measure"])]
    settings = list(dict.fromkeys(data["setting"]))
    palette = {s: CYCLE[i % len(CYCLE)] for i, s in enumerate(settings)}  # same in all panels
    panels = list(dict.fromkeys(data[panel].astype(str))) if panel else [""]
    # 0.2 in a bar: the paper grid's panel (8 methods × 4 groups) is 7.6 in, one a row
    width = min(MAX_FIGURE_WIDTH, max(3.6, 0.2 * len(measures) * len(settings) + 1.2))
    fig, grid = panel_grid(len(panels), width=width, height=3.4, title=title)
    for ax, name in zip(grid, panels):
        members = data[data[panel].astype(str) == name] if panel else data
        sns.barplot(members, x="measure", y="value", hue="setting", order=measures,
                    palette=palette, saturation=1, errorbar="sd", capsize=0.15,
                    err_kws={"linewidth": 1}, ax=ax)  # saturation 1: Okabe–Ito exactly
        ax.set_ylim(0, 100)
        label_axes(ax, f"{panel} = {name}" if panel else "all runs", "shot group",
                   "test mAP (%, mean ± sd over seeds)")
    figure_legend(fig, np.array(grid), title=" / ".join(keys) or None)
    return fig


def _curves_frame(curves: dict[str, tuple], columns: tuple[str, ...]) -> pd.DataFrame:
    """{run label: (epochs, *shares in [0, 1])} as a long frame: run, epoch, *columns in %."""
    return pd.concat([pd.DataFrame({"run": label, "epoch": np.asarray(c[0], float), **{
        name: 100 * np.asarray(v, float) for name, v in zip(columns, c[1:])}})
        for label, c in curves.items()], ignore_index=True)


def _draw_runs(ax, frame: pd.DataFrame, y: str, *, legend: bool = True) -> None:
    """One line per run at its finite points: Okabe–Ito colours, seaborn's dashes and markers."""
    frame = frame.dropna(subset=[y])  # e.g. epochs without a test evaluation (eval_every)
    sns.lineplot(frame, x="epoch", y=y, hue="run", style="run", markers=True, estimator=None,
                 palette=sns.color_palette(CYCLE, frame["run"].nunique()), markersize=5,
                 legend=legend, ax=ax)
    thin_markers(ax)
    integer_epoch_axis(ax)


def map_curves(curves: dict[str, tuple], *, title: str = "") -> Figure:
    """Test mAP over epochs, one line per run.

    Parameters
    ----------
    curves : dict[str, (epochs (E,), mAP (E,))]
        mAP in [0, 1] per epoch (NaN allowed), keyed by the run label.
    """
    if not curves:
        raise ValueError("curves is empty: no run to draw")
    fig, axes = new_figure(1, 1, width=6.0, height=3.8, title=title)
    _draw_runs(axes[0, 0], _curves_frame(curves, ("mAP",)), "mAP")
    axes[0, 0].legend(fontsize=7, loc="best")
    label_axes(axes[0, 0], "learning curves", "epoch", "test mAP (%)")
    return fig


def memorization_curves(curves: dict[str, tuple], *, title: str = "") -> Figure:
    """How much of the label noise each run's model fits, over epochs.

    Parameters
    ----------
    curves : dict[str, (epochs (E,), memorized_noisy (E,), fit_clean (E,))]
        Per run label, the shares in [0, 1] of the corrupted and of the correct training
        labels that the model's decision agrees with (``metrics.noisy_label_fit``), at the
        epochs where they were recorded.
    """
    if not curves:
        raise ValueError("curves is empty: no run recorded memorization (synthetic noise)")
    fig, axes = new_figure(2, 1, width=4.6, height=3.6, title=title)
    frame = _curves_frame(curves, ("memorized", "fit"))
    _draw_runs(axes[0, 0], frame, "memorized")
    _draw_runs(axes[0, 1], frame, "fit", legend=False)
    axes[0, 0].legend(fontsize=7, loc="best")
    label_axes(axes[0, 0], "corrupted labels fitted (memorization)", "epoch", "share (%)")
    label_axes(axes[0, 1], "correct labels fitted", "epoch", "share (%)")
    return fig
