"""Noise transition matrices for multi-label learning (the T-estimator baseline, docs/method.md §4).

Li, Xia, Zhang, Zhan, Ge & Liu, "Estimating Noise Transition Matrix with Label Correlations
for Noisy Multi-Label Learning", NeurIPS 2022. Per class i the transition matrix is

    T_i = [[1 − ρ0, ρ0], [ρ1, 1 − ρ1]],   T_i[a, b] = P(ỹ_i = b | y_i = a),

(ρ0 = P(ỹ_i = 1 | y_i = 0), false positives; ρ1 = P(ỹ_i = 0 | y_i = 1), false negatives).
Class-conditional noise makes ỹ_i independent of another class's noisy label ỹ_k given
y_i, so with π1 = P(y_i = 1), c[a, b] = P(ỹ_k = b | y_i = a) and N[a, b] = P(ỹ_i = a,
ỹ_k = b)::

    P(ỹ_k = 0) = (1 − π1)·c[0, 0] + π1·c[1, 0]                         → π1
    N[1, b] = J[0, b]·ρ0 + J[1, b]·(1 − ρ1),  N[0, b] = J[0, b]·(1 − ρ0) + J[1, b]·ρ1,

with J[a, b] = π_a·c[a, b] = P(y_i = a, ỹ_k = b): two linear equations in (ρ0, ρ1) per
partner class k (the paper's bilinear decomposition). N comes from the noisy labels of
the whole training set, c from the instances whose class-i label a sample selection
calls clean (there ỹ_i = y_i). Every partner k with a valid solution gives a candidate;
the one with the smallest total residual over all partners is kept. A class without a
valid partner falls back to the Dual-T estimator on the model's predictions
(:func:`dual_t_estimate`), as in the authors' code; so does a class with fewer than
``min_selected`` selected positives or negatives, which their code skips, leaving it an
all-zero matrix that no loss can train on.

Functions here are pure (arrays in, arrays out) so that each step is testable by hand.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["TransitionEstimate", "dual_t_estimate", "empirical_transition",
           "estimate_transitions", "forward_corrected_bce", "solve_pair", "transition_error"]

SOLVED_BY = ("correlation", "dual_t", "identity")


def solve_pair(noisy_joint: np.ndarray, clean_conditional: np.ndarray) -> np.ndarray:
    """(π1, ρ0, ρ1) of class i from one partner class k; NaN where undefined.

    Parameters
    ----------
    noisy_joint : array-like, shape (..., 2, 2)
        N[a, b] = P(ỹ_i = a, ỹ_k = b) over the training set.
    clean_conditional : array-like, shape (..., 2, 2)
        c[a, b] = P(ỹ_k = b | y_i = a), rows summing to 1.

    Returns
    -------
    np.ndarray float64, shape (..., 3)
        π1 = P(y_i = 1), ρ0 = P(ỹ_i = 1 | y_i = 0), ρ1 = P(ỹ_i = 0 | y_i = 1).
    """
    n = np.asarray(noisy_joint, dtype=np.float64)
    c = np.asarray(clean_conditional, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pi1 = (n[..., 0, 0] + n[..., 1, 0] - c[..., 0, 0]) / (c[..., 1, 0] - c[..., 0, 0])
        j = c * np.stack([1 - pi1, pi1], axis=-1)[..., None]  # J[a, b] = π_a · c[a, b]
        det = j[..., 0, 0] * j[..., 1, 1] - j[..., 0, 1] * j[..., 1, 0]
        rho0 = (j[..., 1, 1] * n[..., 1, 0] - j[..., 1, 0] * n[..., 1, 1]) / det
        rho1 = (j[..., 0, 0] * n[..., 0, 1] - j[..., 0, 1] * n[..., 0, 0]) / det
    return np.stack([pi1, rho0, rho1], axis=-1)


def _residuals(rates: np.ndarray, noisy_joint: np.ndarray, clean_conditional: np.ndarray):
    """Σ over partners of |equation residuals| for candidate (ρ0, ρ1) pairs of one class.

    rates (C, 2); noisy_joint, clean_conditional (P, 2, 2) over the P partners.
    """
    n, c = noisy_joint, clean_conditional
    with np.errstate(divide="ignore", invalid="ignore"):
        pi1 = (n[:, 0, 0] + n[:, 1, 0] - c[:, 0, 0]) / (c[:, 1, 0] - c[:, 0, 0])
        j = c * np.stack([1 - pi1, pi1], axis=-1)[..., None]
        det = j[:, 0, 0] * j[:, 1, 1] - j[:, 0, 1] * j[:, 1, 0]
        first = j[:, 1, 1] * n[:, 1, 0] - j[:, 1, 0] * n[:, 1, 1]
        second = j[:, 0, 0] * n[:, 0, 1] - j[:, 0, 1] * n[:, 0, 0]
        error = (np.abs(rates[:, :1] * det - first) + np.abs(rates[:, 1:] * det - second))
    return np.nansum(np.where(np.isfinite(error), error, np.nan), axis=1)


class TransitionEstimate(NamedTuple):
    """Per-class transition matrices and how each was obtained.

    Attributes
    ----------
    matrices : np.ndarray float64, shape (K, 2, 2)
        T[i, a, b] = P(ỹ_i = b | y_i = a), rows summing to 1.
    solved_by : np.ndarray of str, shape (K,)
        "correlation" (label-correlation estimate), "dual_t" (fallback) or "identity".
    partner : np.ndarray int64, shape (K,)
        The partner class of the kept estimate (-1 when not a correlation estimate).
    """

    matrices: np.ndarray
    solved_by: np.ndarray
    partner: np.ndarray


def _as_binary(name: str, array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (N, K), got {array.shape}")
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold 0 / 1 values")
    return array.astype(np.float64)


def estimate_transitions(noisy, selected, *, min_selected: int = 50, tolerance: float | None = None,
                         fallback=None) -> TransitionEstimate:
    """The label-correlation estimate of every class's transition matrix.

    Parameters
    ----------
    noisy : array-like, shape (N, K), values in {0, 1}
        The given (noisy) training labels.
    selected : array-like, bool, shape (N, K)
        ``selected[n, i]``: the class-i label of instance n is believed clean (a sample
        selection such as a small-loss GMM).
    min_selected : int
        A class needs at least this many selected positives *and* negatives (authors: 50).
    tolerance : float, optional
        Solutions down to ``-tolerance`` are clamped to 0 (authors: 0.3 / K, the default).
    fallback : callable, optional
        ``fallback(i) -> (2, 2)`` for a class without a valid estimate (e.g. a bound
        :func:`dual_t_estimate`); the identity when it is None or its matrix is not
        row-stochastic with ρ0 + ρ1 < 0.99.

    Returns
    -------
    TransitionEstimate
    """
    y = _as_binary("noisy", noisy)
    s = _as_binary("selected", selected)
    if s.shape != y.shape:
        raise ValueError(f"selected shape {s.shape} differs from noisy shape {y.shape}")
    num_items, num_classes = y.shape
    tolerance = 0.3 / num_classes if tolerance is None else float(tolerance)
    joint = np.empty((num_classes, num_classes, 2, 2))  # N[i, k, a, b] = P(ỹ_i=a, ỹ_k=b)
    for a in (0, 1):
        for b in (0, 1):
            joint[:, :, a, b] = ((y if a else 1 - y).T @ (y if b else 1 - y)) / num_items
    matrices = np.tile(np.eye(2), (num_classes, 1, 1))
    solved_by = np.full(num_classes, "identity", dtype=object)
    partner = np.full(num_classes, -1, dtype=np.int64)
    for i in range(num_classes):
        chosen = s[:, i] > 0
        positives, negatives = y[chosen, i], 1 - y[chosen, i]
        others = [k for k in range(num_classes) if k != i]
        solution = None
        if positives.sum() >= min_selected and negatives.sum() >= min_selected and others:
            # c[k, a, b] = P(ỹ_k = b | y_i = a) on the selected instances (ỹ_i = y_i there)
            conditional = np.empty((num_classes, 2, 2))
            for a, weight in ((0, negatives), (1, positives)):
                share_one = (weight @ y[chosen]) / weight.sum()
                conditional[:, a, 1], conditional[:, a, 0] = share_one, 1 - share_one
            rates = solve_pair(joint[i, others], conditional[others])  # (P, 3)
            solution = _choose(rates, joint[i, others], conditional[others], tolerance)
        if solution is not None:
            index, (rho0, rho1) = solution
            matrices[i] = [[1 - rho0, rho0], [rho1, 1 - rho1]]
            solved_by[i], partner[i] = "correlation", others[index]
        elif fallback is not None and _usable(matrix := np.asarray(fallback(i), float)):
            matrices[i] = matrix
            solved_by[i] = "dual_t"
    return TransitionEstimate(matrices, solved_by.astype(str), partner)


MAX_FLIP_SUM = 0.99  # ρ0 + ρ1 must stay below 1: above, the noisy labels carry no signal


def _usable(matrix: np.ndarray) -> bool:
    """A 2×2 row-stochastic matrix with ρ0 + ρ1 < 1 (the forward correction needs it)."""
    return (matrix.shape == (2, 2) and bool(np.isfinite(matrix).all())
            and bool((matrix >= 0).all()) and np.allclose(matrix.sum(axis=1), 1.0)
            and matrix[0, 1] + matrix[1, 0] < MAX_FLIP_SUM)


def _choose(rates, joint, conditional, tolerance):
    """The valid (ρ0, ρ1) candidate with the smallest total residual: (partner, rates)."""
    pi1, rho = rates[:, 0], rates[:, 1:].copy()
    near_zero = (rho < 0) & (rho > -tolerance)  # sampling noise around an exact 0
    rho[near_zero] = 0.0
    valid = ((pi1 >= 0) & (pi1 <= 1) & (rho >= 0).all(axis=1) & (rho <= 1).all(axis=1)
             & (rho.sum(axis=1) < MAX_FLIP_SUM) & np.isfinite(rates).all(axis=1))
    if not valid.any():
        return None
    candidates = np.flatnonzero(valid)
    error = _residuals(rho[candidates], joint, conditional)
    best = candidates[int(np.argmin(error))]
    return int(best), (float(rho[best, 0]), float(rho[best, 1]))


def dual_t_estimate(probability, noisy) -> np.ndarray:
    """The Dual-T estimate (Yao et al., NeurIPS 2020) of one class's 2×2 matrix.

    The anchor estimate T' takes as row r the predicted (1 − p, p) of the instance most
    confidently of value r; the intermediate matrix T♠[r, b] is the share of noisy label b
    among the instances predicted r (p > 0.5 ⇔ r = 1); the estimate is T'·T♠.

    Parameters
    ----------
    probability : array-like, shape (N,), in [0, 1]
        The model's predicted P(ỹ = 1 | x) of the class.
    noisy : array-like, shape (N,), in {0, 1}
        The given labels of the class.

    Returns
    -------
    np.ndarray float64, shape (2, 2), rows summing to 1 (a row without predictions is
    taken from the identity).
    """
    p = np.asarray(probability, dtype=np.float64).ravel()
    y = np.asarray(noisy).ravel().astype(np.int64)
    if p.shape != y.shape or p.size == 0:
        raise ValueError("probability and noisy must be non-empty and of the same length")
    both = np.stack([1 - p, p], axis=1)
    anchor = both[[int(np.argmax(both[:, 0])), int(np.argmax(both[:, 1]))]]
    predicted = (p > 0.5).astype(np.int64)
    counts = np.zeros((2, 2))
    np.add.at(counts, (predicted, y), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    spade = np.where(totals > 0, counts / np.maximum(totals, 1), np.eye(2))
    return anchor @ spade


def empirical_transition(clean, noisy) -> np.ndarray:
    """The realised transition matrices of synthetic noise: (K, 2, 2), T[i, a, b] = share of
    labels with true value a observed as b (identity rows for an absent value)."""
    y = _as_binary("clean", clean)
    z = _as_binary("noisy", noisy)
    out = np.empty((y.shape[1], 2, 2))
    for a in (0, 1):
        rows = y == a
        total = rows.sum(axis=0)
        ones = (rows * z).sum(axis=0)
        share = np.divide(ones, total, out=np.full(total.shape, float(a)), where=total > 0)
        out[:, a, 1], out[:, a, 0] = share, 1 - share
    return out


def transition_error(estimated, true) -> np.ndarray:
    """Per-class estimation error Σ|T̂ − T| / Σ|T| (the authors' measure; = |Δρ0| + |Δρ1|)."""
    estimated, true = np.asarray(estimated, float), np.asarray(true, float)
    return np.abs(estimated - true).sum(axis=(-2, -1)) / np.abs(true).sum(axis=(-2, -1))


def forward_corrected_bce(logits: torch.Tensor, targets: torch.Tensor,
                          transition: torch.Tensor) -> torch.Tensor:
    """BCE of the noisy-label posterior implied by the model and T (forward correction).

    p̃ = P(ỹ = 1 | x) = ρ0·(1 − p) + (1 − ρ1)·p = ρ0 + (1 − ρ0 − ρ1)·p with p = sigmoid(z),
    and 1 − p̃ = ρ1 + (1 − ρ0 − ρ1)·(1 − p); both logs are taken as log-sum-exps of
    log ρ and log-sigmoid terms, so no probability is ever rounded to 0 or 1.

    Parameters
    ----------
    logits : torch.Tensor, float, shape (B, K)
    targets : torch.Tensor, shape (B, K), values in [0, 1] (soft targets allowed)
    transition : torch.Tensor, shape (K, 2, 2), rows summing to 1, ρ0 + ρ1 < 1

    Returns
    -------
    torch.Tensor, shape (B, K): −[y·log p̃ + (1 − y)·log(1 − p̃)], >= 0.
    """
    transition = transition.to(device=logits.device, dtype=logits.dtype)
    rho0, rho1 = transition[:, 0, 1], transition[:, 1, 0]
    log_scale = torch.log1p(-(rho0 + rho1)).clamp_min(-60.0)  # log(1 − ρ0 − ρ1)
    log_p_noisy = torch.logaddexp(torch.log(rho0), log_scale + F.logsigmoid(logits))
    log_not_noisy = torch.logaddexp(torch.log(rho1), log_scale + F.logsigmoid(-logits))
    targets = targets.to(logits.dtype)
    return -(targets * log_p_noisy + (1 - targets) * log_not_noisy)
