"""Figures of the method_comparison notebook: mAP per shot group, learning and
memorization curves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..results import MEASURES
from .style import CYCLE, integer_epoch_axis, label_axes, new_figure

__all__ = ["MEASURE_LABELS", "map_bars", "map_curves", "memorization_curves"]

# the results model's measures, labelled by shot group only ("mAP all" → "all")
MEASURE_LABELS = {key: label.removeprefix("mAP ") for key, label in MEASURES}


def map_bars(rows: Sequence[dict], *, axes: Sequence[str], title: str = "") -> Figure:
    """mAP per shot group, one bar per setting of the first axis, one panel per second.

    Parameters
    ----------
    rows : sequence of dict
        ``bmxlib.sweep.results_rows`` output: axis labels plus ``<measure>_mean`` /
        ``<measure>_std`` in [0, 1] (NaN allowed) for mAP, mAP_many, mAP_medium, mAP_few.
    axes : sequence of str
        Axis names in ``rows`` (seed axes already aggregated); the first names the bars,
        the second (if any) the panels, the others are appended to the bar label.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty: no finished run to compare")
    axes = [a for a in axes if a in rows[0]]
    panel_axis = axes[1] if len(axes) > 1 else None
    panels = list(dict.fromkeys(str(r[panel_axis]) for r in rows)) if panel_axis else [""]
    measures = [m for m in MEASURE_LABELS
                if any(np.isfinite(float(r.get(f"{m}_mean", np.nan))) for r in rows)]
    if not measures:
        raise ValueError("no finite mAP in rows")
    bar_keys = [a for a in axes if a != panel_axis]
    labels = list(dict.fromkeys(_row_label(r, bar_keys) for r in rows))
    colors = {label: CYCLE[i % len(CYCLE)] for i, label in enumerate(labels)}
    fig, grid = new_figure(len(panels), 1, width=max(4.0, 1.1 * len(measures) * len(labels) / 2),
                           height=3.6, title=title)
    for ax, panel in zip(grid[0], panels):
        members = [r for r in rows if panel_axis is None or str(r[panel_axis]) == panel]
        width = 0.8 / max(len(members), 1)
        x = np.arange(len(measures))
        for j, row in enumerate(members):
            label = _row_label(row, bar_keys)
            means = np.array([100 * float(row.get(f"{m}_mean", np.nan)) for m in measures])
            stds = np.array([100 * float(row.get(f"{m}_std", np.nan)) for m in measures])
            ax.bar(x - 0.4 + j * width, means, width, align="edge", color=colors[label],
                   yerr=np.nan_to_num(stds), capsize=2, label=label)
        ax.set_xticks(x, [MEASURE_LABELS[m] for m in measures])
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, loc="best")
        name = f"{panel_axis} = {panel}" if panel_axis else "all runs"
        label_axes(ax, name, "shot group", "test mAP (%)")
    return fig


def _row_label(row: dict, keys: Sequence[str]) -> str:
    return " / ".join(str(row[k]) for k in keys) or "run"


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
    ax = axes[0, 0]
    styles = ("-", "--", ":", "-.")
    for i, (label, (epochs, values)) in enumerate(curves.items()):
        epochs, values = np.asarray(epochs, float), np.asarray(values, float)
        evaluated = np.isfinite(values)  # epochs without a test evaluation (eval_every)
        ax.plot(epochs[evaluated], 100 * values[evaluated], marker="o", ms=3,
                color=CYCLE[i % len(CYCLE)], ls=styles[(i // len(CYCLE)) % len(styles)],
                label=label)
    integer_epoch_axis(ax)
    ax.legend(fontsize=7, loc="best")
    label_axes(ax, "learning curves", "epoch", "test mAP (%)")
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
    styles = ("-", "--", ":", "-.")
    for i, (label, (epochs, memorized, fit_clean)) in enumerate(curves.items()):
        style = {"color": CYCLE[i % len(CYCLE)], "ls": styles[(i // len(CYCLE)) % len(styles)],
                 "marker": "o", "ms": 3, "label": label}
        axes[0, 0].plot(epochs, 100 * np.asarray(memorized, float), **style)
        axes[0, 1].plot(epochs, 100 * np.asarray(fit_clean, float), **style)
    for ax in axes[0]:
        integer_epoch_axis(ax)
    axes[0, 0].legend(fontsize=7, loc="best")
    label_axes(axes[0, 0], "corrupted labels fitted (memorization)", "epoch", "share (%)")
    label_axes(axes[0, 1], "correct labels fitted", "epoch", "share (%)")
    return fig

