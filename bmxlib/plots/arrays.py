"""Run → arrays: what the figure functions take, read from a :class:`bmxlib.runs.Run`.

Each helper returns plain NumPy arrays keyed like the parameters of a figure function, so
a notebook cell reads ``plots.loss_histograms(**plots.gmm_arrays(run, epochs), ...)``.
They go through the ``Run`` object only (``run.diagnostics``, ``run.diagnostics_keys``,
``run.metrics``, ...), never through the files of the run directory. The mixture
densities and posteriors come from :class:`bmxlib.gmm.GMMFit`, the code that fitted them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..gmm import GMMFit
from ..methods.balancemix import (
    ABSENCE_CONFIDENCE,
    CONFIDENCES,
    DRAW_SHARE,
    GMM_DEGENERATE,
    GMM_KEYS,
    GMM_LOW_COMPONENT,
    GMM_MEANS,
    GMM_VARIANCES,
    GMM_WEIGHTS,
    LOSS_HIST,
    LOSS_MAX,
    LOSS_MIN,
    NATURAL_SHARE,
    PRESENCE_CONFIDENCE,
    SAMPLING_PROBABILITIES,
    SELECTION_PER_GROUP,
    STATE,
    STATE_COUNTS,
)
from ..steps import GROUP_AP, GROUP_CONFIDENCE
from .style import STATE_NAMES

__all__ = [
    "GMM_KEYS", "default_classes", "default_epochs", "stack_diagnostics",
    "component_log_densities", "clean_boundary", "gmm_arrays", "selection_arrays",
    "epoch_ap", "confidence_arrays", "sampling_arrays", "default_explorer_epoch",
    "explorer_arrays",
]
# the diagnostics keys are the constants of the modules that write them: BalanceMix's
# (methods/balancemix.py) and the engine's confidence-vs-AP arrays (engine.py)



# ======================================================================================
# defaults
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
        raise ValueError("the run has no diagnostics (no epoch recorded any): nothing to show")
    after = [e for e in epochs if e > warmup_epochs] or epochs
    picked = [after[0], after[len(after) // 2], after[-1]]
    return sorted(dict.fromkeys(picked))


def epoch_rows(available: Sequence[int], wanted: Sequence[int]) -> list[int]:
    """Row of each of ``wanted`` in ``available`` (the ``epochs`` of a run → arrays helper).

    Raises ``ValueError`` naming the first wanted epoch that has no row, and the epochs that do.
    """
    rows = {int(e): i for i, e in enumerate(available)}
    for e in wanted:
        if int(e) not in rows:
            raise ValueError(f"epoch {e} has no diagnostics; available: {sorted(rows)}")
    return [rows[int(e)] for e in wanted]


def default_explorer_epoch(run) -> int:
    """The last epoch holding the full per-label arrays, else the last with diagnostics."""
    epochs = default_epochs(run.diagnostic_epochs)  # raises for a run without diagnostics
    full = [e for e in run.diagnostic_epochs if STATE in run.diagnostics_keys(e)]
    return int(full[-1]) if full else int(epochs[-1])


# ======================================================================================
# diagnostics over epochs
# ======================================================================================
def stack_diagnostics(run, keys: Sequence[str], *, epochs: Sequence[int] | None = None,
                      optional: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Stack diagnostics arrays over epochs: ``out[key]`` has shape (E, ...).

    ``keys`` must exist at every epoch (``ValueError`` naming the key otherwise);
    ``optional`` keys are float arrays with NaN at epochs that lack them and are left
    out when no epoch has them. ``out["epochs"]`` holds the epochs (E,) int.
    """
    epochs = list(run.diagnostic_epochs if epochs is None else epochs)
    if not epochs:
        raise ValueError(f"run {run.name} has no diagnostics (no epoch recorded any)")
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


# ======================================================================================
# the fitted mixtures (densities and posteriors from bmxlib.gmm)
# ======================================================================================
def _mixtures(means, variances, weights) -> tuple[GMMFit, tuple[int, ...]]:
    """(..., 2) parameter arrays as one :class:`GMMFit` of G = prod(...) groups, and (...)."""
    means, variances, weights = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (means, variances, weights)))
    if means.shape[-1:] != (2,):
        raise ValueError(f"mixture parameters must have shape (..., 2), got {means.shape}")
    flat = (np.ascontiguousarray(a.reshape(-1, 2)) for a in (means, variances, weights))
    return GMMFit.from_parameters(*flat), means.shape[:-1]


def component_log_densities(values, means, variances, weights) -> np.ndarray:
    """log(w_c · N(x; m_c, v_c)) of both components of every mixture at ``values``.

    Parameters
    ----------
    values : array-like, shape (N,)
        Points (normalised losses), shared by all mixtures.
    means, variances, weights : array-like, shape (..., 2)
        Mixture parameters (broadcast against each other).

    Returns
    -------
    np.ndarray float64, shape (..., N, 2)
        From :meth:`bmxlib.gmm.GMMFit.weighted_log_density`; NaN for unfitted mixtures.
    """
    values = np.asarray(values, dtype=float)
    fit, batch = _mixtures(means, variances, weights)
    return fit.weighted_log_density(values).numpy().reshape(*batch, values.size, 2)


def clean_boundary(means, variances, weights, low_component, *, degenerate=None,
                   resolution: int = 2001) -> np.ndarray:
    """Where the clean posterior p_G of a two-component mixture falls below 0.5.

    The posterior is :meth:`bmxlib.gmm.GMMFit.log_responsibilities` of the clean
    component, evaluated on ``resolution`` evenly spaced points of [0, 1].

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
        The first normalised loss in [0, 1] with p_G < 0.5; NaN when there is none, for
        degenerate groups and for groups with a non-finite parameter.
    """
    grid = np.linspace(0.0, 1.0, resolution)
    fit, batch = _mixtures(means, variances, weights)
    log_resp = fit.log_responsibilities(grid).numpy()  # (G, R, 2)
    low = np.broadcast_to(np.asarray(low_component, dtype=int), batch).reshape(-1)
    clean = np.take_along_axis(log_resp, low[:, None, None], axis=2)[..., 0]  # (G, R)
    with np.errstate(invalid="ignore"):
        noisy_side = clean < np.log(0.5)  # p_G < 0.5; False where undefined (NaN)
    # fitted: finite means and variances
    found = (noisy_side.any(axis=-1) & fit.fitted.numpy()).reshape(batch)
    if degenerate is not None:
        found &= ~np.asarray(degenerate, dtype=bool)
    return np.where(found, grid[noisy_side.argmax(axis=-1)].reshape(batch), np.nan)


def gmm_arrays(run, epochs: Sequence[int]) -> dict[str, Any]:
    """The 2K mixtures, loss histograms and clean boundaries at ``epochs``.

    Returns keys ``epochs`` (E,), ``hist`` (E, K, 2, B) counts, ``means``, ``variances``,
    ``weights`` (E, K, 2, 2), ``low_component``, ``degenerate``, ``boundary``,
    ``loss_min``, ``loss_max`` (E, K, 2) and ``state_counts`` (E, K, 2, 3) float (NaN
    before label management) or None: the parameters of :func:`loss_histograms`.
    """
    data = stack_diagnostics(run, GMM_KEYS, epochs=epochs, optional=(STATE_COUNTS,))
    boundary = clean_boundary(data[GMM_MEANS], data[GMM_VARIANCES], data[GMM_WEIGHTS],
                              data[GMM_LOW_COMPONENT], degenerate=data[GMM_DEGENERATE])
    return {
        "epochs": data["epochs"],
        "hist": data[LOSS_HIST],
        "means": data[GMM_MEANS],
        "variances": data[GMM_VARIANCES],
        "weights": data[GMM_WEIGHTS],
        "low_component": data[GMM_LOW_COMPONENT],
        "degenerate": data[GMM_DEGENERATE],
        "boundary": boundary,
        "loss_min": data[LOSS_MIN],
        "loss_max": data[LOSS_MAX],
        "state_counts": data.get("state_counts"),
    }


# ======================================================================================
# per-epoch metrics and diagnostics of the other notebooks
# ======================================================================================
def selection_arrays(run) -> dict[str, Any]:
    """Label-management quality and counts over all epochs, from ``run.metrics``.

    Returns ``epochs`` (E,), ``precision``, ``recall``, ``relabel_accuracy`` (E,) float
    (NaN when the truth is unknown or before management), ``counts`` {state name: (E,)}
    and ``warmup_epochs``: the parameters of :func:`selection_curves`.
    """
    if not run.metrics:
        raise ValueError(f"run {run.name} has no per-epoch metrics records")
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
    """Per-class test AP at ``epochs`` from ``run.metrics``: (E, K) float, NaN if absent."""
    by_epoch = {int(r["epoch"]): r for r in run.metrics}
    rows = []
    for epoch in epochs:
        if int(epoch) not in by_epoch or by_epoch[int(epoch)].get("ap") is None:
            raise ValueError(f"run {run.name}: no per-class AP recorded at epoch {epoch}")
        rows.append([np.nan if v is None else v for v in by_epoch[int(epoch)]["ap"]])
    return np.asarray(rows, dtype=float)


def confidence_arrays(run) -> dict[str, Any]:
    """Confidence-vs-AP data (docs/method.md §3) at every epoch with diagnostics.

    Returns ``epochs`` (E,), ``group_confidence``, ``group_ap`` (E, G), ``presence`` (E, K)
    P(k), ``ap`` (E, K) test AP, ``pearson_r`` (E,) and ``positives`` (K,) clean positive
    training labels (the grouping key used during training).
    """
    # epochs without a test evaluation (eval_every > 1) have no group AP
    epochs = [e for e in run.diagnostic_epochs if GROUP_AP in run.diagnostics_keys(e)]
    data = stack_diagnostics(run, (PRESENCE_CONFIDENCE, GROUP_CONFIDENCE, GROUP_AP),
                             epochs=epochs)
    epochs = data["epochs"]
    by_epoch = {int(r["epoch"]): r for r in run.metrics}
    pearson_r = [by_epoch.get(int(e), {}).get("confidence_ap_pearson") for e in epochs]
    if run.clean_labels is None:
        raise ValueError(f"run {run.name} has no clean training labels")
    return {
        "epochs": epochs,
        "group_confidence": data[GROUP_CONFIDENCE],
        "group_ap": data[GROUP_AP],
        "presence": data[PRESENCE_CONFIDENCE],
        "ap": epoch_ap(run, epochs),
        "pearson_r": np.array([np.nan if r is None else r for r in pearson_r], dtype=float),
        "positives": run.clean_labels.sum(axis=0),
    }


def sampling_arrays(run) -> dict[str, Any]:
    """Minority-sampler state at every epoch with diagnostics (docs/method.md §1.2).

    Returns ``epochs`` (E,), ``probabilities`` (E, N) p(n), ``draw_share`` (E, K) the
    expected share of minority draws containing class k, ``natural_share`` (K,) the
    share of instances holding class k (= the random sampler's share).
    """
    data = stack_diagnostics(run, (SAMPLING_PROBABILITIES, DRAW_SHARE, NATURAL_SHARE))
    return {
        "epochs": data["epochs"],
        "probabilities": data[SAMPLING_PROBABILITIES].astype(float),
        "draw_share": data[DRAW_SHARE],
        "natural_share": data[NATURAL_SHARE][-1].astype(float),
    }


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
    precision_key, recall_key, _ = SELECTION_PER_GROUP
    history = stack_diagnostics(run, (PRESENCE_CONFIDENCE, ABSENCE_CONFIDENCE),
                                optional=(DRAW_SHARE, NATURAL_SHARE, precision_key, recall_key))
    current = run.diagnostics(int(epoch))
    given = run.noisy_labels[:, k] == lv
    confidence = current[CONFIDENCES][given, k].astype(float) if CONFIDENCES in current \
        else None
    state = current[STATE][given, k] if STATE in current else None
    corrupted = run.corrupted[given, k] if run.corrupted is not None else None
    share = history.get(DRAW_SHARE)
    natural = history.get(NATURAL_SHARE)
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
        "presence": history[PRESENCE_CONFIDENCE][:, k],
        "absence": history[ABSENCE_CONFIDENCE][:, k],
        "oversampling": None if share is None else share[:, k] / natural[:, k],
        "precision": _optional_column(history, precision_key, k, lv),
        "recall": _optional_column(history, recall_key, k, lv),
        "class_name": run.class_names[k],
        "epoch": int(epoch),
        "label_value": lv,
    }


def _optional_column(history: dict[str, np.ndarray], key: str, k: int, lv: int):
    return history[key][:, k, lv] if key in history else None
