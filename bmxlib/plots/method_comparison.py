"""Figures of the method_comparison notebook: mAP per shot group over seeds (seaborn, from
the long results table), learning and memorization curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..measures import BY_NAME, table_measures
from .style import (
    CYCLE,
    MAX_FIGURE_WIDTH,
    figure_legend,
    integer_epoch_axis,
    label_axes,
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
    data, keys, panel, palette, panels = _settings(data, hue=hue, panel=panel)
    measures = [m for m in MEASURE_LABELS.values() if m in set(data["measure"])]
    # 0.2 in a bar: the paper grid's panel (8 methods × 4 groups) is 7.6 in, one a row
    width = min(MAX_FIGURE_WIDTH, max(3.6, 0.2 * len(measures) * len(palette) + 1.2))
    fig, grid = panel_grid(len(panels), width=width, height=3.4, title=title)
    ylabel = f"test mAP (%{_spread(data)})"
    for ax, name in zip(grid, panels):
        members = data[data[panel].astype(str) == name] if panel else data
        sns.barplot(members, x="measure", y="value", hue="setting", order=measures,
                    palette=palette, saturation=1, errorbar="sd", capsize=0.15,
                    err_kws={"linewidth": 1}, ax=ax)  # saturation 1: Okabe–Ito exactly
        ax.set_ylim(0, 100)
        label_axes(ax, f"{panel} = {name}" if panel else "all runs", "shot group", ylabel)
    figure_legend(fig, np.array(grid), title=" / ".join(keys) or None)
    return fig


def setting_columns(data: pd.DataFrame) -> list[str]:
    """The sweep's axis columns of a tidy frame (all but the seed and the per-row columns)."""
    return [c for c in data.columns if c not in ("seed", "run", "epoch", "measure", "value")]


def _settings(data: pd.DataFrame, *, hue: str, panel: str):
    """A tidy frame's rows labelled by setting — the ``hue`` axis, then the other axes but
    ``panel``, joined — with values in %: (data, those axes, the panel axis or None, a
    colour per setting, the panel labels)."""
    axes = setting_columns(data)
    panel = panel if panel in axes else None
    keys = sorted((a for a in axes if a != panel), key=lambda a: a != hue)  # hue first
    label = data[keys].astype(str).agg(" / ".join, axis=1) if keys else "run"
    data = data.assign(value=100 * data["value"], setting=label)
    settings = list(dict.fromkeys(data["setting"]))
    palette = {s: CYCLE[i % len(CYCLE)] for i, s in enumerate(settings)}  # same in all panels
    panels = list(dict.fromkeys(data[panel].astype(str))) if panel else [""]
    return data, keys, panel, palette, panels


def _spread(data: pd.DataFrame) -> str:
    """What a value drawn from ``data`` is: a mean ± sd over seeds when some setting (in some
    panel) has several runs; one run's value otherwise (seaborn then draws no spread)."""
    several = (data.groupby(setting_columns(data))["run"].nunique() > 1).any()
    return ", mean ± sd over seeds" if several else ", one run per setting"


def _curves_figure(curves: pd.DataFrame, measures: tuple[str, ...], *, hue: str, panel: str,
                   ylabel: str, title: str) -> Figure:
    """Mean ± 1 sd over seeds of ``measures`` against the epoch: a line per setting, a
    panel per value of ``panel``, one legend below."""
    data = curves[curves["measure"].isin(measures)].dropna(subset=["value"])
    if data.empty:
        raise ValueError(f"the curves hold no {' or '.join(measures)} value to draw")
    data, keys, panel, palette, panels = _settings(data, hue=hue, panel=panel)
    data = data.assign(measure=data["measure"].map(lambda m: BY_NAME[m].label))
    fig, grid = panel_grid(len(panels), width=5.4, height=3.8, title=title)
    ylabel = f"{ylabel} (%{_spread(data)})"
    for ax, name in zip(grid, panels):
        members = data[data[panel].astype(str) == name] if panel else data
        if len(measures) > 1:  # the measures by dashes, the settings by colour
            sns.lineplot(members, x="epoch", y="value", hue="setting", style="measure",
                         palette=palette, errorbar="sd", ax=ax)
        else:  # colour, dashes and markers all name the setting
            sns.lineplot(members, x="epoch", y="value", hue="setting", style="setting",
                         markers=True, palette=palette, errorbar="sd", markersize=5, ax=ax)
        thin_markers(ax)
        integer_epoch_axis(ax)
        label_axes(ax, f"{panel} = {name}" if panel else "all runs", "epoch", ylabel)
    figure_legend(fig, np.array(grid), title=" / ".join(keys) or None,
                  leave_out=("setting", "measure"))
    return fig


def map_curves(curves: pd.DataFrame, *, hue: str = "method", panel: str = "noise",
               title: str = "") -> Figure:
    """Test mAP over epochs: mean ± 1 sd over seeds, a line per setting, a panel per noise.

    Parameters
    ----------
    curves : pandas.DataFrame
        Tidy, one row per (run, epoch, measure), as :func:`bmxlib.results.curve_table`
        builds it: the sweep's axis columns, ``seed``, ``run``, ``epoch``, ``measure``
        (rows of "mAP" are drawn) and ``value`` in [0, 1].
    hue, panel : str
        As :func:`map_by_setting`.
    """
    return _curves_figure(curves, ("mAP",), hue=hue, panel=panel, title=title,
                          ylabel="test mAP")


def memorization_curves(curves: pd.DataFrame, *, hue: str = "method", panel: str = "noise",
                        title: str = "") -> Figure:
    """How much of the label noise each setting's model fits, over epochs: the shares of
    the corrupted (solid) and of the correct (dashed) training labels its decision agrees
    with (``metrics.noisy_label_fit``), mean ± 1 sd over seeds, a panel per noise.

    Parameters
    ----------
    curves : pandas.DataFrame
        As :func:`map_curves` (rows of "memorized_noisy" and "fit_clean" are drawn).
    """
    return _curves_figure(curves, ("memorized_noisy", "fit_clean"), hue=hue, panel=panel,
                          title=title, ylabel="training labels fitted")
