"""The explorer notebook: one (class, epoch, label value) panel and its ipywidgets controls."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..measures import BY_NAME
from .arrays import default_explorer_epoch, explorer_arrays
from .gmm_fits import draw_gmm
from .output import png_bytes
from .style import (
    OKABE_ITO,
    STATE_COLORS,
    STATE_NAMES,
    integer_epoch_axis,
    label_axes,
    new_figure,
    thin_markers,
)

__all__ = ["label_panel", "explorer_widget"]


def label_panel(*, hist, means, variances, weights, low_component, boundary, degenerate,
                confidence, state, corrupted, history_epochs, presence, absence,
                oversampling, precision, recall, class_name: str, epoch: int,
                label_value: int, title: str = "") -> Figure:
    """Four views of one (class, epoch, label value); arguments from :func:`explorer_arrays`.

    Top left: loss histogram with the mixture; top right: model confidence of these
    labels by reliability class (or all, before label management); bottom left: P(k) and
    A(k) over epochs; bottom right: oversampling of the class and the selection
    precision / recall of this (class, label value) group over epochs.
    """
    kind = "positive" if label_value == 1 else "negative"
    fig, axes = new_figure(2, 2, width=4.6, height=3.1, title=title)
    ax = axes[0, 0]
    draw_gmm(ax, hist, means, variances, weights, low_component, boundary, degenerate,
             legend=True)
    label_axes(ax, f"class {class_name} · {kind} labels · epoch {epoch}",
               "BCE loss (min-max normalised)", "density")
    _draw_confidence_by_state(axes[0, 1], confidence, state, corrupted, label_value)
    label_axes(axes[0, 1], f"confidence of the {kind} labels · epoch {epoch}",
               "model confidence f(x)_k", "labels")
    ax = axes[1, 0]
    ax.plot(history_epochs, presence, marker="o", color=OKABE_ITO["blue"], label="P(k) presence")
    ax.plot(history_epochs, absence, marker="s", color=OKABE_ITO["orange"], label="A(k) absence")
    thin_markers(ax)
    ax.axvline(epoch, color="0.5", ls=":", lw=1)
    ax.set_ylim(-0.02, 1.02)
    integer_epoch_axis(ax)
    ax.legend(fontsize=7)
    label_axes(ax, f"class {class_name}: confidence over epochs", "epoch", "mean confidence")
    _draw_group_history(axes[1, 1], history_epochs, oversampling, precision, recall, epoch,
                        title=f"class {class_name} · {kind} labels over epochs")
    return fig


def _draw_confidence_by_state(ax, confidence, state, corrupted, label_value: int) -> None:
    if confidence is None:
        ax.text(0.5, 0.5, "no per-label arrays at this epoch\n(see diagnostics_every)",
                transform=ax.transAxes, ha="center", va="center", fontsize=8)
        return
    confidence = np.asarray(confidence, float)
    edges = np.linspace(0, 1, 26)
    if state is None:
        ax.hist(confidence, bins=edges, color=OKABE_ITO["sky_blue"], label="all labels")
    else:
        parts = [confidence[np.asarray(state) == s] for s in range(3)]
        ax.hist(parts, bins=edges, stacked=True, color=STATE_COLORS, label=STATE_NAMES)
    if corrupted is not None and np.asarray(corrupted).any():
        ax.hist(confidence[np.asarray(corrupted, bool)], bins=edges, histtype="step",
                color="black", lw=1.5, label="truly wrong labels")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=7, loc="upper center" if label_value else "upper right")


def _draw_group_history(ax, epochs, oversampling, precision, recall, epoch: int, *,
                        title: str) -> None:
    """Selection precision and recall in [0, 1] on the left axis; the class's oversampling
    (1 = drawn at its natural share) on a right axis of its own, since for a rare class it
    runs far past 1 and would flatten the two curves."""
    ratio_label = "draw share / natural share"
    lines, ratio_ax = [], ax
    if precision is not None:
        lines += ax.plot(epochs, precision, marker="o", color=OKABE_ITO["blue"],
                         label=BY_NAME["selection_precision"].label)
        lines += ax.plot(epochs, recall, marker="s", color=OKABE_ITO["vermillion"],
                         label=BY_NAME["selection_recall"].label)
        ax.set_ylim(-0.02, 1.02)
        thin_markers(ax)
        if oversampling is not None:
            ratio_ax = ax.twinx()
    if oversampling is not None:
        twin = ratio_ax is not ax
        lines += ratio_ax.plot(epochs, oversampling, marker="^", color=OKABE_ITO["reddish_purple"],
                               label=f"{ratio_label} (right axis)" if twin else ratio_label)
        ratio_ax.axhline(1.0, color="0.8", lw=0.8)
        ratio_ax.set_ylabel(ratio_label, fontsize=8)
        ratio_ax.tick_params(labelsize=7)
        thin_markers(ratio_ax)
    ax.axvline(epoch, color="0.5", ls=":", lw=1)
    integer_epoch_axis(ax)
    left = ("selection precision / recall" if precision is not None
            else ratio_label if oversampling is not None else "value")
    label_axes(ax, title, "epoch", left)
    if lines and ratio_ax is not ax:
        # below the panel: "best" on either axis sees only that axis's lines, so inside it
        # covered the other axis's curves (precision / recall of late epochs)
        ratio_ax.legend(lines, [line.get_label() for line in lines], fontsize=7, ncol=2,
                        loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    elif lines:
        ax.legend(fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, "no sampler or selection data", transform=ax.transAxes,
                ha="center", fontsize=8)


def explorer_widget(run_dirs: Sequence[str | Path], *, run_dir: str | Path | None = None,
                    class_index: int = 0, epoch: int | None = None, label_value: int = 1):
    """ipywidgets controls (run, class, epoch, label value) that redraw :func:`label_panel`.

    Returns an ``ipywidgets.VBox``; ``box.last_figure`` is the figure shown last.
    """
    import ipywidgets as widgets
    from IPython.display import Image, display

    from ..runs import load_run

    paths = [str(Path(p)) for p in run_dirs]
    if not paths:
        raise ValueError("run_dirs is empty: no BalanceMix run to explore")
    resolved = [Path(p).resolve() for p in paths]
    wanted = Path(run_dir).resolve() if run_dir is not None else resolved[0]
    start = paths[resolved.index(wanted)] if wanted in resolved else paths[0]
    cache: dict[str, Any] = {}
    load = lambda path: cache.setdefault(path, load_run(path))  # noqa: E731
    run_box = widgets.Dropdown(options=[(Path(p).name, p) for p in paths], value=start,
                               description="run")
    class_box = widgets.Dropdown(description="class")
    epoch_box = widgets.Dropdown(description="epoch")
    value_box = widgets.ToggleButtons(options=[("positive (1)", 1), ("negative (0)", 0)],
                                      value=label_value, description="label")
    output = widgets.Output()
    box = widgets.VBox([widgets.HBox([run_box, class_box]), widgets.HBox([epoch_box, value_box]),
                        output])
    box.last_figure = None
    busy = {"refilling": False}  # option updates fire observers: draw once, at the end

    def refill(keep_class: int, keep_epoch: int | None) -> None:
        busy["refilling"] = True
        run = load(run_box.value)
        counts = run.noisy_labels.sum(axis=0)
        class_box.options = [(f"{n} ({int(c)} positives)", k)
                             for k, (n, c) in enumerate(zip(run.class_names, counts))]
        class_box.value = keep_class if keep_class < len(run.class_names) else 0
        epoch_box.options = list(run.diagnostic_epochs)
        epoch_box.value = keep_epoch if keep_epoch in run.diagnostic_epochs else \
            default_explorer_epoch(run)
        busy["refilling"] = False

    def redraw(_change=None) -> None:
        if busy["refilling"] or class_box.value is None or epoch_box.value is None:
            return
        run = load(run_box.value)
        view = explorer_arrays(run, class_index=class_box.value, epoch=epoch_box.value,
                               label_value=value_box.value)
        box.last_figure = label_panel(**view, title=f"Explorer — {run.name}")
        output.clear_output(wait=True)
        with output:
            display(Image(data=png_bytes(box.last_figure), format="png"))

    def on_run(_change) -> None:
        refill(class_box.value or 0, epoch_box.value)
        redraw()

    refill(int(class_index), epoch)
    run_box.observe(on_run, names="value")
    for control in (class_box, epoch_box, value_box):
        control.observe(redraw, names="value")
    redraw()
    return box
