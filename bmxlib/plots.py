"""Figures of the notebooks (SPEC §8): arrays in, matplotlib ``Figure`` out.

Two layers:

* *run → arrays* helpers (``gmm_arrays``, ``selection_arrays``, ``confidence_arrays``,
  ``sampling_arrays``, ``explorer_arrays``) read a :class:`bmxlib.runs.Run` and return
  plain numpy arrays keyed like the parameters of the figure functions, so a notebook
  cell reads ``plots.loss_histograms(**plots.gmm_arrays(run, epochs), ...)``;
* figure functions take arrays only, never paths, and build a ``Figure`` without pyplot
  (no global state, no GUI backend: they render with Agg anywhere, papermill included).

``save`` writes a figure as PNG; ``publish`` saves it and shows the PNG in a notebook, so
what the notebook shows is exactly the file the report links. Colours are the Okabe–Ito
palette (colour-blind safe) and cividis for heatmaps.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .metrics import pearson

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
CYCLE = [OKABE_ITO[k] for k in ("blue", "orange", "bluish_green", "vermillion",
                                "reddish_purple", "sky_blue", "black", "yellow")]
STATE_NAMES = ("clean", "re-labeled", "ambiguous")  # LabelState 0, 1, 2
STATE_COLORS = (OKABE_ITO["bluish_green"], OKABE_ITO["blue"], OKABE_ITO["orange"])
GROUP_COLORS = {"many": OKABE_ITO["blue"], "medium": OKABE_ITO["orange"],
                "few": OKABE_ITO["vermillion"]}
HEATMAP_CMAP = "cividis"
DPI = 120

GMM_KEYS = ("loss_hist", "gmm_means", "gmm_variances", "gmm_weights", "gmm_low_component",
            "gmm_degenerate", "loss_min", "loss_max")


# ======================================================================================
# saving and showing
# ======================================================================================
def save(fig: Figure, out_dir: str | Path, name: str, *, dpi: int = DPI) -> Path:
    """Write ``fig`` as ``out_dir/name.png`` (folders created); returns the path."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a plain file stem, got {name!r}")
    path = Path(out_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="white")
    return path


def publish(fig: Figure, out_dir: str | Path, name: str, *, dpi: int = DPI) -> Path:
    """``save`` the figure and, inside IPython, display the written PNG."""
    path = save(fig, out_dir, name, dpi=dpi)
    _display_png(path.read_bytes())
    return path


def _display_png(data: bytes) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # plain Python: nothing to show
        return
    if get_ipython() is not None:
        display(Image(data=data, format="png"))


def png_bytes(fig: Figure, *, dpi: int = DPI) -> bytes:
    """The figure rendered as PNG bytes (used by the explorer widget)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def check_figures(out_dir: str | Path, names: Sequence[str]) -> list[Path]:
    """Raise ``FileNotFoundError`` unless every ``out_dir/name.png`` is a non-empty PNG."""
    paths = [Path(out_dir) / f"{name}.png" for name in names]
    for path in paths:
        if not path.is_file() or path.stat().st_size < 1000:
            raise FileNotFoundError(f"figure {path} is missing or empty")
        if path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            raise ValueError(f"figure {path} is not a PNG file")
    return paths


# ======================================================================================
# defaults and run → arrays
# ======================================================================================
def default_classes(positives, *, per_end: int = 1) -> list[int]:
    """The ``per_end`` most and least frequent classes (by positive labels), frequent first.

    Parameters
    ----------
    positives : array-like of int, shape (K,)
        Positive labels per class.
    """
    counts = np.asarray(positives)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError("positives must be a non-empty 1-D array of counts")
    order = np.argsort(-counts, kind="stable")
    picked = list(order[:per_end]) + list(order[::-1][:per_end][::-1])
    return [int(k) for k in dict.fromkeys(picked)]


def default_epochs(available: Sequence[int], *, warmup_epochs: int = 0) -> list[int]:
    """First epoch after warm-up, the middle one and the last one among ``available``.

    Raises ``ValueError`` when ``available`` is empty (a run without diagnostics).
    """
    epochs = sorted(int(e) for e in available)
    if not epochs:
        raise ValueError("the run has no diagnostics (diagnostics/epoch_XXX.npz): nothing to show")
    after = [e for e in epochs if e > warmup_epochs] or epochs
    picked = [after[0], after[len(after) // 2], after[-1]]
    return sorted(dict.fromkeys(picked))


def stack_diagnostics(run, keys: Sequence[str], *, epochs: Sequence[int] | None = None,
                      optional: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Stack diagnostics arrays over epochs: ``out[key]`` has shape (E, ...).

    ``keys`` must exist at every epoch (``ValueError`` naming the key otherwise);
    ``optional`` keys are float arrays with NaN at epochs that lack them and are left
    out when no epoch has them. ``out["epochs"]`` holds the epochs (E,) int.
    """
    epochs = list(run.diagnostic_epochs if epochs is None else epochs)
    if not epochs:
        raise ValueError(f"run {run.name} has no diagnostics (diagnostics/epoch_XXX.npz)")
    loaded = [run.diagnostics(int(e)) for e in epochs]
    out: dict[str, np.ndarray] = {"epochs": np.asarray(epochs, dtype=int)}
    for key in keys:
        missing = [e for e, data in zip(epochs, loaded) if key not in data]
        if missing:
            raise ValueError(f"run {run.name}: diagnostics key {key!r} missing at epochs {missing}")
        out[key] = np.stack([data[key] for data in loaded])
    for key in optional:
        present = [data[key] for data in loaded if key in data]
        if present:
            blank = np.full(present[0].shape, np.nan)
            out[key] = np.stack([data[key] if key in data else blank for data in loaded])
    return out


def clean_boundary(means, variances, weights, low_component, *, degenerate=None,
                   resolution: int = 2001) -> np.ndarray:
    """Where the clean posterior p_G of a two-component mixture falls below 0.5.

    Parameters
    ----------
    means, variances, weights : array-like, shape (..., 2)
        Mixture parameters on the normalised [0, 1] loss scale.
    low_component : array-like of int, shape (...)
        Index (0 or 1) of the clean (smaller-mean) component.
    degenerate : array-like of bool, shape (...), optional
        Groups without a fit (all clean): boundary NaN.

    Returns
    -------
    np.ndarray float64, shape (...)
        The first normalised loss in [0, 1] with p_G < 0.5; NaN when there is none.
    """
    means, variances, weights = (np.asarray(a, dtype=float) for a in (means, variances, weights))
    low = np.asarray(low_component, dtype=int)
    grid = np.linspace(0.0, 1.0, resolution)
    log_pdf = _component_log_pdf(grid, means, variances, weights)  # (..., 2, G)
    low_log = np.take_along_axis(log_pdf, low[..., None, None], axis=-2)[..., 0, :]
    high_log = np.take_along_axis(log_pdf, 1 - low[..., None, None], axis=-2)[..., 0, :]
    with np.errstate(invalid="ignore"):
        noisy_side = high_log > low_log  # posterior of the clean component < 0.5
    found = noisy_side.any(axis=-1) & np.isfinite(means).all(axis=-1)
    if degenerate is not None:
        found &= ~np.asarray(degenerate, dtype=bool)
    return np.where(found, grid[noisy_side.argmax(axis=-1)], np.nan)


def _component_log_pdf(x, means, variances, weights) -> np.ndarray:
    """log(w_j · N(x; m_j, v_j)) with shape (..., 2, len(x)); -inf where undefined."""
    x = np.asarray(x, dtype=float)
    m, v, w = means[..., None], np.maximum(variances[..., None], 1e-12), weights[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.log(w) - 0.5 * np.log(2 * np.pi * v) - (x - m) ** 2 / (2 * v)
    return np.where(np.isfinite(value), value, -np.inf)


def gmm_arrays(run, epochs: Sequence[int]) -> dict[str, Any]:
    """The 2K mixtures, loss histograms and clean boundaries at ``epochs``.

    Returns keys ``epochs`` (E,), ``hist`` (E, K, 2, B) counts, ``means``, ``variances``,
    ``weights`` (E, K, 2, 2), ``low_component``, ``degenerate``, ``boundary``,
    ``loss_min``, ``loss_max`` (E, K, 2) and ``state_counts`` (E, K, 2, 3) float (NaN
    before label management) or None: the parameters of :func:`loss_histograms`.
    """
    data = stack_diagnostics(run, GMM_KEYS, epochs=epochs, optional=("state_counts",))
    boundary = clean_boundary(data["gmm_means"], data["gmm_variances"], data["gmm_weights"],
                              data["gmm_low_component"], degenerate=data["gmm_degenerate"])
    return {
        "epochs": data["epochs"],
        "hist": data["loss_hist"],
        "means": data["gmm_means"],
        "variances": data["gmm_variances"],
        "weights": data["gmm_weights"],
        "low_component": data["gmm_low_component"],
        "degenerate": data["gmm_degenerate"],
        "boundary": boundary,
        "loss_min": data["loss_min"],
        "loss_max": data["loss_max"],
        "state_counts": data.get("state_counts"),
    }


def selection_arrays(run) -> dict[str, Any]:
    """Label-management quality and counts over all epochs, from ``metrics.jsonl``.

    Returns ``epochs`` (E,), ``precision``, ``recall``, ``relabel_accuracy`` (E,) float
    (NaN when the truth is unknown or before management), ``counts`` {state name: (E,)}
    and ``warmup_epochs``: the parameters of :func:`selection_curves`.
    """
    if not run.metrics:
        raise ValueError(f"run {run.name} has no metrics.jsonl records")
    return {
        "epochs": run.metric("epoch").astype(int),
        "precision": run.metric("selection_precision"),
        "recall": run.metric("selection_recall"),
        "relabel_accuracy": run.metric("relabel_accuracy"),
        "counts": {name: run.metric(f"labels_{key}") for name, key in
                   zip(STATE_NAMES, ("clean", "relabeled", "ambiguous"))},
        "warmup_epochs": int(run.config.get("warmup_epochs", 0)),
    }


def epoch_ap(run, epochs: Sequence[int]) -> np.ndarray:
    """Per-class test AP at ``epochs`` from ``metrics.jsonl``: (E, K) float, NaN if absent."""
    by_epoch = {int(r["epoch"]): r for r in run.metrics}
    rows = []
    for epoch in epochs:
        if int(epoch) not in by_epoch or by_epoch[int(epoch)].get("ap") is None:
            raise ValueError(f"run {run.name}: no per-class AP recorded at epoch {epoch}")
        rows.append([np.nan if v is None else v for v in by_epoch[int(epoch)]["ap"]])
    return np.asarray(rows, dtype=float)


def confidence_arrays(run) -> dict[str, Any]:
    """Confidence-vs-AP data (SPEC §3) at every epoch with diagnostics.

    Returns ``epochs`` (E,), ``group_confidence``, ``group_ap`` (E, G), ``presence`` (E, K)
    P(k), ``ap`` (E, K) test AP, ``pearson_r`` (E,) and ``positives`` (K,) clean positive
    training labels (the grouping key used during training).
    """
    # epochs without a test evaluation (eval_every > 1) have no group AP
    epochs = [e for e in run.diagnostic_epochs if _has_key(run, e, "group_ap")]
    data = stack_diagnostics(run, ("presence_confidence", "group_confidence", "group_ap"),
                             epochs=epochs)
    epochs = data["epochs"]
    by_epoch = {int(r["epoch"]): r for r in run.metrics}
    pearson_r = [by_epoch.get(int(e), {}).get("confidence_ap_pearson") for e in epochs]
    if run.clean_labels is None:
        raise ValueError(f"run {run.name} has no labels.npz")
    return {
        "epochs": epochs,
        "group_confidence": data["group_confidence"],
        "group_ap": data["group_ap"],
        "presence": data["presence_confidence"],
        "ap": epoch_ap(run, epochs),
        "pearson_r": np.array([np.nan if r is None else r for r in pearson_r], dtype=float),
        "positives": run.clean_labels.sum(axis=0),
    }


def sampling_arrays(run) -> dict[str, Any]:
    """Minority-sampler state at every epoch with diagnostics (SPEC §1.2).

    Returns ``epochs`` (E,), ``probabilities`` (E, N) p(n), ``draw_share`` (E, K) the
    expected share of minority draws containing class k, ``natural_share`` (K,) the
    share of instances holding class k (= the random sampler's share).
    """
    data = stack_diagnostics(run, ("sampling_probabilities", "draw_share", "natural_share"))
    return {
        "epochs": data["epochs"],
        "probabilities": data["sampling_probabilities"].astype(float),
        "draw_share": data["draw_share"],
        "natural_share": data["natural_share"][-1].astype(float),
    }


def default_explorer_epoch(run) -> int:
    """The last epoch holding the full per-label arrays, else the last with diagnostics."""
    epochs = default_epochs(run.diagnostic_epochs)  # raises for a run without diagnostics
    full = [e for e in run.diagnostic_epochs if _has_key(run, e, "state")]
    return int(full[-1]) if full else int(epochs[-1])


def _has_key(run, epoch: int, key: str) -> bool:
    with np.load(run.path / "diagnostics" / f"epoch_{epoch:03d}.npz") as data:
        return key in data.files


def explorer_arrays(run, *, class_index: int, epoch: int, label_value: int) -> dict[str, Any]:
    """Everything :func:`label_panel` shows for one (class, epoch, label value) of a run."""
    num_classes = len(run.class_names)
    if not 0 <= int(class_index) < num_classes:
        raise ValueError(f"class_index must be in [0, {num_classes}), got {class_index}")
    if label_value not in (0, 1):
        raise ValueError(f"label_value must be 0 or 1, got {label_value!r}")
    if int(epoch) not in run.diagnostic_epochs:
        raise ValueError(f"epoch {epoch} has no diagnostics; available: {run.diagnostic_epochs}")
    k, lv = int(class_index), int(label_value)
    fits = gmm_arrays(run, [int(epoch)])
    history = stack_diagnostics(run, ("presence_confidence", "absence_confidence"),
                                optional=("draw_share", "natural_share",
                                          "selection_precision_per_group",
                                          "selection_recall_per_group"))
    current = run.diagnostics(int(epoch))
    given = run.noisy_labels[:, k] == lv
    confidence = current["confidences"][given, k].astype(float) if "confidences" in current \
        else None
    state = current["state"][given, k] if "state" in current else None
    corrupted = run.corrupted[given, k] if run.corrupted is not None else None
    share = history.get("draw_share")
    natural = history.get("natural_share")
    return {
        "hist": fits["hist"][0, k, lv],
        "means": fits["means"][0, k, lv],
        "variances": fits["variances"][0, k, lv],
        "weights": fits["weights"][0, k, lv],
        "low_component": int(fits["low_component"][0, k, lv]),
        "boundary": float(fits["boundary"][0, k, lv]),
        "degenerate": bool(fits["degenerate"][0, k, lv]),
        "confidence": confidence,
        "state": state,
        "corrupted": corrupted,
        "history_epochs": history["epochs"],
        "presence": history["presence_confidence"][:, k],
        "absence": history["absence_confidence"][:, k],
        "oversampling": None if share is None else share[:, k] / natural[:, k],
        "precision": _optional_column(history, "selection_precision_per_group", k, lv),
        "recall": _optional_column(history, "selection_recall_per_group", k, lv),
        "class_name": run.class_names[k],
        "epoch": int(epoch),
        "label_value": lv,
    }


def _optional_column(history: dict[str, np.ndarray], key: str, k: int, lv: int):
    return history[key][:, k, lv] if key in history else None


# ======================================================================================
# figure helpers
# ======================================================================================
def _figure(ncols: int, nrows: int, *, width: float, height: float, title: str):
    fig = Figure(figsize=(width * ncols, height * nrows + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))
    # wrap long titles (run names) so that narrow figures keep them whole
    fig.suptitle(textwrap.fill(title or "untitled", width=max(30, int(8.5 * width * ncols))),
                 fontsize=12)
    return fig, axes


def _label(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)


def _epoch_axis(ax) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _shade_warmup(ax, warmup_epochs: int) -> None:
    _epoch_axis(ax)
    if warmup_epochs > 0:
        ax.axvspan(0.5, warmup_epochs + 0.5, color="0.9", zorder=0, label="warm-up")


def _as_array(value, name: str, ndim: int) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    return array


def _draw_gmm(ax, counts, means, variances, weights, low: int, boundary: float,
              degenerate: bool, *, legend: bool) -> None:
    """One (class, label value) group: loss histogram as a density plus the mixture."""
    counts = np.asarray(counts, dtype=float)
    bins = counts.size
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = counts.sum()
    density = counts / (total / bins) if total > 0 else counts
    ax.bar(edges[:-1], density, width=1.0 / bins, align="edge", color=OKABE_ITO["sky_blue"],
           alpha=0.55, label="loss histogram")
    if total > 0 and not degenerate and np.isfinite(means).all():
        grid = np.linspace(0.0, 1.0, 400)
        pdf = np.exp(_component_log_pdf(grid, np.asarray(means, float),
                                        np.asarray(variances, float), np.asarray(weights, float)))
        ax.plot(grid, pdf[low], color=OKABE_ITO["bluish_green"], lw=1.8, label="clean component")
        ax.plot(grid, pdf[1 - low], color=OKABE_ITO["vermillion"], lw=1.8,
                label="noisy component")
        ax.plot(grid, pdf.sum(axis=0), color="black", lw=1.0, ls="--", label="mixture")
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


# ======================================================================================
# gmm_fits
# ======================================================================================
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
    Figure with one panel per (class, label value) row and epoch column.
    """
    hist = _as_array(hist, "hist", 4)
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
    fig, axes = _figure(num_epochs, 2 * len(classes), width=3.6 if num_epochs > 1 else 5.0,
                        height=2.6, title=title)
    for row, (k, lv) in enumerate((k, lv) for k in classes for lv in (1, 0)):
        for col, epoch in enumerate(epochs):
            ax = axes[row, col]
            _draw_gmm(ax, hist[col, k, lv], means[col][k][lv], variances[col][k][lv],
                      weights[col][k][lv], int(low_component[col][k][lv]),
                      float(np.asarray(boundary)[col, k, lv]), bool(degenerate[col, k, lv]),
                      legend=False)
            kind = "positive" if lv == 1 else "negative"
            notes = [f"n = {int(hist[col, k, lv].sum())}"]
            if loss_min is not None and loss_max is not None:
                notes.append(f"loss ∈ [{loss_min[col][k][lv]:.2g}, {loss_max[col][k][lv]:.2g}]")
            if state_counts is not None:
                notes.append(_state_note(np.asarray(state_counts, float)[col, k, lv]))
            _label(ax, f"class {names[k]} · {kind} labels · epoch {epoch}\n"
                   + " · ".join(n for n in notes[:2]) + ("\n" + notes[2] if notes[2:] else ""),
                   "BCE loss (min-max normalised)", "density")
    _figure_legend(fig, axes)
    return fig


def _figure_legend(fig, axes) -> None:
    """One legend below all panels (panels keep their data uncovered)."""
    entries: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    columns = max(1, min(len(entries), int(fig.get_figwidth() / 2.0)))
    fig.legend(list(entries.values()), list(entries), loc="outside lower center",
               ncols=columns, fontsize=8)


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
    epochs = _as_array(epochs, "epochs", 1)
    panels = 2 if counts else 1
    fig, axes = _figure(panels, 1, width=5.0, height=3.4, title=title)
    ax = axes[0, 0]
    _shade_warmup(ax, warmup_epochs)
    series = (("selection precision", precision, OKABE_ITO["blue"], "o"),
              ("selection recall", recall, OKABE_ITO["vermillion"], "s"),
              ("re-labeling accuracy", relabel_accuracy, OKABE_ITO["bluish_green"], "^"))
    known = False
    for name, values, color, marker in series:
        values = _as_array(values, name, 1)
        known |= bool(np.isfinite(values).any())
        ax.plot(epochs, values, marker=marker, color=color, label=name)
    if not known:
        ax.text(0.5, 0.5, "true labels unknown or no label management yet",
                transform=ax.transAxes, ha="center", fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="best")
    _label(ax, "clean-label selection vs. the true labels", "epoch", "value")
    if counts:
        _draw_state_shares(axes[0, 1], epochs, counts, warmup_epochs)
    return fig


def _draw_state_shares(ax, epochs, counts, warmup_epochs: int) -> None:
    stacked = np.nan_to_num(np.array([np.asarray(counts[name], float) for name in STATE_NAMES]))
    totals = stacked.sum(axis=0)
    shares = np.divide(stacked, totals, out=np.zeros_like(stacked), where=totals > 0)
    _shade_warmup(ax, warmup_epochs)
    ax.stackplot(epochs, shares, labels=STATE_NAMES, colors=STATE_COLORS, alpha=0.85)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower left")
    _label(ax, "labels per reliability class", "epoch", "share of all labels")


# ======================================================================================
# confidence_vs_ap
# ======================================================================================
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
    confidence = _as_array(group_confidence, "group_confidence", 2)
    ap = _as_array(group_ap, "group_ap", 2)
    pearson_r = _as_array(pearson_r, "pearson_r", 1)
    epochs = [int(e) for e in epochs]
    if confidence.shape != ap.shape or not len(epochs) == confidence.shape[0] == pearson_r.size:
        raise ValueError("group_confidence, group_ap, pearson_r and epochs disagree in shape")
    show = [int(e) for e in (show_epochs or epochs[-1:])]
    if any(e not in epochs for e in show):
        raise ValueError(f"show_epochs {show} must be among epochs {epochs}")
    fig, axes = _figure(len(show) + 1, 1, width=3.8, height=3.3, title=title)
    x = np.arange(1, confidence.shape[1] + 1)
    for ax, epoch in zip(axes[0], show):
        i = epochs.index(epoch)
        ax.bar(x - 0.2, confidence[i], 0.4, color=OKABE_ITO["blue"], label="mean confidence P(k)")
        ax.bar(x + 0.2, ap[i], 0.4, color=OKABE_ITO["orange"], label="mean test AP")
        ax.set_ylim(0, 1.05)
        ax.set_xticks(x)
        ax.legend(fontsize=7, loc="upper right")
        _label(ax, f"epoch {epoch} · Pearson r = {pearson_r[i]:.2f}",
               "class group (most → least frequent)", "value")
    ax = axes[0, -1]
    ax.plot(epochs, pearson_r, marker="o", color=OKABE_ITO["reddish_purple"], label="Pearson r")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    _epoch_axis(ax)
    ax.legend(fontsize=7, loc="best")
    _label(ax, "correlation across groups", "epoch", "Pearson r (confidence, AP)")
    return fig


def confidence_ap_scatter(presence, ap, positives, *, epochs, show_epochs=None,
                          class_names: Sequence[str] | None = None, groups=None,
                          title: str = "") -> Figure:
    """Per-class scatter of the confidence in presence P(k) against the test AP.

    Parameters
    ----------
    presence, ap : array-like, shape (E, K)
        P(k) and AP per class at each epoch (NaN allowed).
    positives : array-like, shape (K,)
        Positive training labels per class (marker area).
    epochs : array-like of int, shape (E,)
    show_epochs : sequence of int, optional
        One panel each (default: the last epoch).
    groups : array-like of str, shape (K,), optional
        Shot group per class ("many" / "medium" / "few"), the marker colour.
    """
    presence = _as_array(presence, "presence", 2)
    ap = _as_array(ap, "ap", 2)
    positives = _as_array(positives, "positives", 1)
    epochs = [int(e) for e in epochs]
    if presence.shape != ap.shape or presence.shape[1] != positives.size:
        raise ValueError("presence, ap and positives disagree in shape")
    show = [int(e) for e in (show_epochs or epochs[-1:])]
    names = list(class_names) if class_names is not None else [str(k) for k in
                                                                range(positives.size)]
    groups = np.asarray(groups if groups is not None else ["few"] * positives.size).astype(str)
    sizes = 20 + 200 * np.sqrt(positives / max(positives.max(), 1))
    fig, axes = _figure(len(show), 1, width=4.0, height=3.6, title=title)
    for ax, epoch in zip(axes[0], show):
        i = epochs.index(epoch)
        for group, color in GROUP_COLORS.items():
            chosen = groups == group
            if chosen.any():
                ax.scatter(presence[i, chosen], ap[i, chosen], s=sizes[chosen], color=color,
                           alpha=0.8, edgecolor="black", lw=0.5, label=f"{group}-shot classes")
        for k, name in enumerate(names):
            ax.annotate(name, (presence[i, k], ap[i, k]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        valid = np.isfinite(presence[i]) & np.isfinite(ap[i])
        r = pearson(presence[i, valid], ap[i, valid]) if valid.sum() >= 2 else float("nan")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.05)
        ax.legend(fontsize=7, loc="lower right", title="marker area ∝ √positives",
                  title_fontsize=7)
        _label(ax, f"epoch {epoch} · per-class r = {r:.2f}",
               "confidence in presence P(k)", "test AP(k)")
    return fig


# ======================================================================================
# sampling_over_epochs
# ======================================================================================
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
    probabilities = _as_array(probabilities, "probabilities", 2)
    epochs = [int(e) for e in epochs]
    if len(epochs) != probabilities.shape[0]:
        raise ValueError("epochs and probabilities disagree in length")
    relative = probabilities * probabilities.shape[1]  # 1 = uniform
    show = list(show_epochs) if show_epochs else \
        [epochs[i] for i in np.unique(np.linspace(0, len(epochs) - 1, 6).round().astype(int))]
    fig, axes = _figure(2, 1, width=4.8, height=3.4, title=title)
    ax = axes[0, 0]
    edges = np.linspace(relative.min(), relative.max() + 1e-9, 40)
    colors = _sequential_colors(len(show))
    for color, epoch in zip(colors, show):
        ax.hist(relative[epochs.index(int(epoch))], bins=edges, histtype="step", lw=1.6,
                color=color, label=f"epoch {epoch}")
    ax.axvline(1.0, color="black", ls=":", lw=1, label="uniform")
    ax.legend(fontsize=7)
    _label(ax, "sampling probabilities", "N · p(n)  (1 = uniform)", "instances")
    ax = axes[0, 1]
    low, median, high = np.quantile(relative, [0.05, 0.5, 0.95], axis=1)
    ax.fill_between(epochs, low, high, color=OKABE_ITO["sky_blue"], alpha=0.4,
                    label="5–95% of instances")
    ax.plot(epochs, median, marker="o", color=OKABE_ITO["blue"], label="median")
    ax.plot(epochs, relative.max(axis=1), marker="^", color=OKABE_ITO["vermillion"], label="max")
    ax.axhline(1.0, color="black", ls=":", lw=1)
    _epoch_axis(ax)
    ax.legend(fontsize=7)
    _label(ax, "spread over epochs", "epoch", "N · p(n)")
    return fig


def _sequential_colors(count: int) -> list:
    from matplotlib import colormaps

    return [colormaps[HEATMAP_CMAP](v) for v in np.linspace(0.0, 0.85, max(count, 1))]


def _draw_share_inputs(natural_share, draw_share, epochs):
    """Validated (natural (K,), share (E, K), epochs list, class order by frequency)."""
    natural = _as_array(natural_share, "natural_share", 1)
    share = _as_array(draw_share, "draw_share", 2)
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
    """
    natural, share, epochs, order = _draw_share_inputs(natural_share, draw_share, epochs)
    names = _class_labels(class_names, natural.size)
    fig, axes = _figure(1, 1, width=max(6.0, 0.6 * natural.size), height=3.6, title=title)
    ax = axes[0, 0]
    width = 0.8 / (len(epochs) + 1)
    x = np.arange(natural.size)
    ax.bar(x - 0.4, natural[order], width, align="edge", color="0.55",
           label="natural frequency (random sampler)")
    for j, (color, epoch) in enumerate(zip(_sequential_colors(len(epochs)), epochs)):
        ax.bar(x - 0.4 + (j + 1) * width, share[j, order], width, align="edge", color=color,
               label=f"minority sampler, epoch {epoch}")
    ax.set_xticks(x, [names[k] for k in order])
    ax.set_yscale("log")  # rare classes stay visible next to the head
    ax.legend(fontsize=7)
    _label(ax, "classes sorted by frequency", "class",
           "share of draws holding the class (log scale)")
    return fig


def draw_share_heatmap(natural_share, draw_share, *, epochs, class_names=None,
                       title: str = "") -> Figure:
    """Class × epoch heatmap of the oversampling factor draw share / natural share.

    Shapes as in :func:`draw_share_bars`; classes are sorted by frequency (rows).
    """
    natural, share, epochs, order = _draw_share_inputs(natural_share, draw_share, epochs)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (share / natural).T[order]  # (K, E)
    names = _class_labels(class_names, natural.size)
    fig, axes = _figure(1, 1, width=max(4.5, 0.55 * len(epochs) + 2.5),
                        height=max(3.0, 0.3 * natural.size + 1.0), title=title)
    ax = axes[0, 0]
    image = ax.imshow(ratio, aspect="auto", cmap=HEATMAP_CMAP, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="draw share / natural share")
    if ratio.size <= 400:
        threshold = np.nanmean(ratio)
        for (row, col), value in np.ndenumerate(ratio):
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if value > threshold else "white")
    ax.set_xticks(range(len(epochs)), epochs)
    ax.set_yticks(range(natural.size),
                  [f"{names[k]} ({100 * natural[k]:.1f}%)" for k in order])
    _label(ax, "oversampling of each class by the minority sampler", "epoch",
           "class (natural frequency)")
    return fig


def _class_labels(class_names, count: int) -> list[str]:
    names = [str(c) for c in class_names] if class_names is not None else \
        [str(k) for k in range(count)]
    if len(names) != count:
        raise ValueError(f"class_names has {len(names)} entries, expected {count}")
    return names


# ======================================================================================
# method_comparison
# ======================================================================================
MEASURE_LABELS = {"mAP": "all", "mAP_many": "many", "mAP_medium": "medium", "mAP_few": "few"}


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
    fig, grid = _figure(len(panels), 1, width=max(4.0, 1.1 * len(measures) * len(labels) / 2),
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
        _label(ax, name, "shot group", "test mAP (%)")
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
    fig, axes = _figure(1, 1, width=6.0, height=3.8, title=title)
    ax = axes[0, 0]
    styles = ("-", "--", ":", "-.")
    for i, (label, (epochs, values)) in enumerate(curves.items()):
        epochs, values = np.asarray(epochs, float), np.asarray(values, float)
        evaluated = np.isfinite(values)  # epochs without a test evaluation (eval_every)
        ax.plot(epochs[evaluated], 100 * values[evaluated], marker="o", ms=3,
                color=CYCLE[i % len(CYCLE)], ls=styles[(i // len(CYCLE)) % len(styles)],
                label=label)
    _epoch_axis(ax)
    ax.legend(fontsize=7, loc="best")
    _label(ax, "learning curves", "epoch", "test mAP (%)")
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
    fig, axes = _figure(2, 1, width=4.6, height=3.6, title=title)
    styles = ("-", "--", ":", "-.")
    for i, (label, (epochs, memorized, fit_clean)) in enumerate(curves.items()):
        style = {"color": CYCLE[i % len(CYCLE)], "ls": styles[(i // len(CYCLE)) % len(styles)],
                 "marker": "o", "ms": 3, "label": label}
        axes[0, 0].plot(epochs, 100 * np.asarray(memorized, float), **style)
        axes[0, 1].plot(epochs, 100 * np.asarray(fit_clean, float), **style)
    for ax in axes[0]:
        _epoch_axis(ax)
    axes[0, 0].legend(fontsize=7, loc="best")
    _label(axes[0, 0], "corrupted labels fitted (memorization)", "epoch", "share (%)")
    _label(axes[0, 1], "correct labels fitted", "epoch", "share (%)")
    return fig


# ======================================================================================
# explorer
# ======================================================================================
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
    fig, axes = _figure(2, 2, width=4.6, height=3.1, title=title)
    ax = axes[0, 0]
    _draw_gmm(ax, hist, means, variances, weights, low_component, boundary, degenerate,
              legend=True)
    _label(ax, f"class {class_name} · {kind} labels · epoch {epoch}",
           "BCE loss (min-max normalised)", "density")
    _draw_confidence_by_state(axes[0, 1], confidence, state, corrupted, label_value)
    _label(axes[0, 1], f"confidence of the {kind} labels · epoch {epoch}",
           "model confidence f(x)_k", "labels")
    ax = axes[1, 0]
    ax.plot(history_epochs, presence, marker="o", color=OKABE_ITO["blue"], label="P(k) presence")
    ax.plot(history_epochs, absence, marker="s", color=OKABE_ITO["orange"], label="A(k) absence")
    ax.axvline(epoch, color="0.5", ls=":", lw=1)
    ax.set_ylim(-0.02, 1.02)
    _epoch_axis(ax)
    ax.legend(fontsize=7)
    _label(ax, f"class {class_name}: confidence over epochs", "epoch", "mean confidence")
    _draw_group_history(axes[1, 1], history_epochs, oversampling, precision, recall, epoch)
    _label(axes[1, 1], f"class {class_name} · {kind} labels over epochs", "epoch", "value")
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


def _draw_group_history(ax, epochs, oversampling, precision, recall, epoch: int) -> None:
    drawn = False
    if precision is not None:
        ax.plot(epochs, precision, marker="o", color=OKABE_ITO["blue"], label="selection precision")
        ax.plot(epochs, recall, marker="s", color=OKABE_ITO["vermillion"], label="selection recall")
        drawn = True
    if oversampling is not None:
        ax.plot(epochs, oversampling, marker="^", color=OKABE_ITO["reddish_purple"],
                label="draw share / natural share")
        drawn = True
    ax.axvline(epoch, color="0.5", ls=":", lw=1)
    ax.axhline(1.0, color="0.8", lw=0.8)
    _epoch_axis(ax)
    if drawn:
        ax.legend(fontsize=7)
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

    from .runs import load_run

    paths = [str(Path(p)) for p in run_dirs]
    if not paths:
        raise ValueError("run_dirs is empty: no BalanceMix run to explore")
    resolved = [Path(p).resolve() for p in paths]
    wanted = Path(run_dir).resolve() if run_dir is not None else resolved[0]
    start = paths[resolved.index(wanted)] if wanted in resolved else paths[0]
    cache: dict[str, Any] = {}
    load = lambda path: cache.setdefault(path, load_run(path))  # noqa: E731
    run_box = widgets.Dropdown(options=[(Path(p).name, p) for p in paths],
                               value=start,
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
