"""Synthetic label-noise protocols (docs/method.md §2).

Every protocol takes clean multi-label targets ``Y`` (N, K) in {0, 1} and a seed,
is deterministic for that seed, and returns the noisy labels together with the
boolean mask of the entries that differ from ``Y``.

Kinds
-----
``"none"``
    A copy of ``Y``; ``rate`` must be ``None`` or ``0``.
``"mislabel"``
    Class-dependent noise ρ(i→j) = τ·N_j / (N − N_i): each positive (n, i) is turned off
    with probability τ and one target class j ≠ i, drawn with probability
    N_j / (N − N_i), is turned on. All removals and targets are drawn from ``Y`` first,
    then removals are applied, then additions, so an instance never gains positives.
    When no other class has a positive (N − N_i = 0) a positive of class i has no
    possible target and is left untouched (ρ(i→j) = 0 for every j).
``"flip"``
    Every entry, positive or negative, flips independently with probability τ.
``"missing"``
    Single positive label: each instance with a positive keeps exactly one of them,
    chosen uniformly; ``rate`` is meaningless here and must be ``None``.
``"instance"`` (not in the paper; its open question)
    Instance-dependent mislabeling at overall rate τ, driven by ``confidence`` c[n, k] ∈
    [0, 1], a reference model's confidence that class k is present in instance n (the
    engine trains it on the *clean* labels and saves c with the run):

    - a positive (n, i) is hard when the reference misses it: hardness h = 1 − c[n, i].
      Each positive is removed independently with probability π = min(1, λ·h), λ chosen
      (by bisection) so that the mean of π over all positives is τ: hard positives are
      dropped more often, and τ of the positives are removed in expectation. When every
      positive has h = 0, π = τ for all.
    - for each removed positive one target j is drawn with probability ∝ c[n, j] + 1e-3
      over the classes absent in the instance (y[n, j] = 0): the absent classes the
      reference confuses with the instance are added more often (the 1e-3 keeps every
      absent class reachable). So every removal adds exactly one false positive (none
      when the instance has no absent class), the instance never gains positives, and the
      realised removal rate is τ in expectation.
    - order: one removal uniform per positive (row-major order of Y's positives), then one
      target uniform per removal, all from ``default_rng(seed)`` and from Y and c alone;
      then removals are applied, then additions.
"""

from __future__ import annotations

import numbers

import numpy as np

KINDS = ("none", "mislabel", "flip", "missing", "instance")


def inject(labels, kind: str, rate: float | None = None, *, seed: int = 0, confidence=None):
    """Apply one label-noise protocol of docs/method.md §2 to clean labels.

    Parameters
    ----------
    labels : np.ndarray or torch.Tensor, shape (N, K)
        Clean labels with values in {0, 1} (any bool, integer or float dtype).
    kind : {"none", "mislabel", "flip", "missing", "instance"}
        The protocol.
    rate : float in [0, 1] or None
        Noise rate τ; required for ``"mislabel"``, ``"flip"`` and ``"instance"``, must be
        ``None`` (or 0) for ``"none"`` and ``None`` for ``"missing"``.
    seed : int, keyword-only
        Non-negative seed of the numpy Generator; the result is a function of
        (labels, kind, rate, seed) only (and of ``confidence`` for ``"instance"``).
    confidence : array-like, shape (N, K), values in [0, 1], keyword-only
        The reference model's per-label confidence; required for ``"instance"`` only.

    Returns
    -------
    noisy : np.ndarray, uint8, shape (N, K)
        Noisy labels in {0, 1}.
    corrupted : np.ndarray, bool, shape (N, K)
        ``noisy != labels``.
    """
    clean = _as_binary_matrix(labels)
    _check_kind_and_rate(kind, rate)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    if (confidence is not None) != (kind == "instance"):
        raise ValueError("confidence is required for kind 'instance' and only for it")

    if kind == "none":
        noisy = clean.copy()
    elif kind == "mislabel":
        noisy = _mislabel(clean, float(rate), rng)
    elif kind == "flip":
        noisy = clean ^ (rng.random(clean.shape) < float(rate)).astype(np.uint8)
    elif kind == "instance":
        noisy = _instance(clean, float(rate), _as_confidence(confidence, clean.shape), rng)
    else:
        noisy = _single_positive(clean, rng)
    return noisy, noisy != clean


def transition_matrix(positives) -> np.ndarray:
    """Target distribution of the mislabel protocol.

    Parameters
    ----------
    positives : array-like of int, shape (K,)
        N_k, the number of positive labels per class.

    Returns
    -------
    np.ndarray, float64, shape (K, K)
        Row i holds N_j / (N − N_i) for j ≠ i and 0 on the diagonal; a row is all
        zeros when no other class has a positive (N − N_i = 0).
    """
    counts = np.asarray(positives, dtype=np.float64)
    if counts.ndim != 1 or np.any(counts < 0):
        raise ValueError("positives must be a 1-D array of non-negative counts")
    others = counts.sum() - counts  # N − N_i
    matrix = np.broadcast_to(counts, (counts.size, counts.size)).copy()
    np.fill_diagonal(matrix, 0.0)
    np.divide(matrix, others[:, None], out=matrix, where=others[:, None] > 0)
    matrix[others <= 0] = 0.0
    return matrix


def _mislabel(clean: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    rows, sources = np.nonzero(clean)
    transition = transition_matrix(clean.sum(axis=0, dtype=np.int64))
    # Draw everything from Y first: one removal coin per positive, one target per removal.
    removed = rng.random(rows.size) < rate
    removed &= transition[sources].sum(axis=1) > 0  # no possible target -> leave untouched
    rows, sources = rows[removed], sources[removed]
    targets = _draw_targets(transition, sources, rng)

    noisy = clean.copy()
    noisy[rows, sources] = 0
    noisy[rows, targets] = 1  # at most one addition per removal: positives never grow
    return noisy


def _draw_targets(transition: np.ndarray, sources: np.ndarray, rng) -> np.ndarray:
    """Inverse-CDF draw of one target per source class, vectorized over all draws."""
    cdf = np.cumsum(transition, axis=1)
    totals = cdf[:, -1:]
    # Dividing by the row total makes every entry from the last reachable class on
    # exactly 1.0, so u < 1 can never land on a zero-probability class at the end.
    np.divide(cdf, totals, out=cdf, where=totals > 0)
    uniforms = rng.random(sources.size)
    return (uniforms[:, None] >= cdf[sources]).sum(axis=1)


def removal_probabilities(hardness: np.ndarray, rate: float) -> np.ndarray:
    """π = min(1, λ·h) with mean(π) = ``rate`` (λ by bisection); uniform when Σh = 0.

    Parameters
    ----------
    hardness : np.ndarray, shape (P,), values in [0, 1]
        Hardness of each positive label.
    rate : float in [0, 1]

    Returns
    -------
    np.ndarray float64 (P,), values in [0, 1], mean ``rate`` (to 1e-12) when achievable.
    """
    h = np.asarray(hardness, dtype=np.float64)
    if h.size == 0:
        return h
    if h.max() <= 0 or rate >= 1:
        return np.full(h.shape, min(rate, 1.0))
    low, high = 0.0, rate / h[h > 0].min() + 1.0  # high·h >= 1 wherever h > 0
    while np.minimum(1.0, high * h).mean() < rate:  # more mass than the positives allow
        if np.all(np.minimum(1.0, high * h)[h > 0] == 1.0):
            break
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if np.minimum(1.0, middle * h).mean() < rate:
            low = middle
        else:
            high = middle
    return np.minimum(1.0, high * h)


def _instance(clean: np.ndarray, rate: float, confidence: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    rows, sources = np.nonzero(clean)
    removal = removal_probabilities(1.0 - confidence[rows, sources], rate)
    removed = rng.random(rows.size) < removal
    if clean.shape[1] < 2:  # no other class to add
        removed[:] = False
    rows, sources = rows[removed], sources[removed]
    weights = (confidence[rows] + 1e-3) * (clean[rows] == 0)  # absent classes only
    totals = weights.sum(axis=1)
    cdf = np.cumsum(weights, axis=1)
    np.divide(cdf, totals[:, None], out=cdf, where=totals[:, None] > 0)
    targets = (rng.random(rows.size)[:, None] >= cdf).sum(axis=1)
    noisy = clean.copy()
    noisy[rows, sources] = 0
    has_target = totals > 0  # an instance holding every class gets no addition
    noisy[rows[has_target], targets[has_target]] = 1
    return noisy


def _as_confidence(confidence, shape: tuple[int, int]) -> np.ndarray:
    if hasattr(confidence, "detach") and hasattr(confidence, "cpu"):
        confidence = confidence.detach().cpu().numpy()
    array = np.asarray(confidence, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"confidence must have the labels' shape {shape}, got {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any() or (array > 1).any():
        raise ValueError("confidence must hold finite values in [0, 1]")
    return array


def _single_positive(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if clean.shape[1] == 0:  # no classes: no positive to keep (argmax needs a column)
        return clean.copy()
    # Uniform random keys; the arg-max over a row's positives is a uniform choice.
    keys = np.where(clean == 1, rng.random(clean.shape), -1.0)
    kept = keys.argmax(axis=1)
    has_positive = clean.any(axis=1)
    noisy = np.zeros_like(clean)
    noisy[np.nonzero(has_positive)[0], kept[has_positive]] = 1
    return noisy


def _as_binary_matrix(labels) -> np.ndarray:
    if hasattr(labels, "detach") and hasattr(labels, "cpu"):  # torch tensor
        labels = labels.detach().cpu()
        # NumPy has no bfloat16 (this module does not import torch: compare by name)
        labels = (labels.float() if str(labels.dtype) == "torch.bfloat16" else labels).numpy()
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"labels must be a numpy array or torch tensor, got {type(labels)}")
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D (N, K), got shape {labels.shape}")
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"labels must have a bool, integer or float dtype, got {labels.dtype}")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must contain only 0 and 1")
    return labels.astype(np.uint8)


def _check_kind_and_rate(kind, rate) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if kind == "missing":
        if rate is not None:
            raise ValueError("rate must be None for kind 'missing' (it has no rate)")
        return
    if rate is None:
        if kind == "none":
            return
        raise ValueError(f"rate is required for kind {kind!r}")
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"rate must be a real number, got {type(rate).__name__}")
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"rate must lie in [0, 1], got {rate}")
    if kind == "none" and float(rate) != 0.0:
        raise ValueError(f"rate must be None or 0 for kind 'none', got {rate}")
