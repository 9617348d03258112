"""Evaluation measures of SPEC §3: per-class AP, mAP (overall and per shot group),
Pearson correlation and the confidence-vs-AP analysis.
"""

from __future__ import annotations

import math

import numpy as np
import torch

GROUP_NAMES = ("many", "medium", "few")


def average_precision(scores, targets) -> np.ndarray:
    """Per-class non-interpolated average precision, as scikit-learn defines it.

    AP = Σ_t (R_t − R_{t−1}) · P_t over the distinct score thresholds t in decreasing
    order, so tied scores enter together (``sklearn.metrics.average_precision_score``).
    All K classes are computed at once in float64 on the inputs' device.

    Parameters
    ----------
    scores : np.ndarray or torch.Tensor, shape (N, K) or (N,)
        Real-valued scores (probabilities or logits), higher means "present"; no NaN.
        A 1-D input is treated as a single class (K = 1).
    targets : np.ndarray or torch.Tensor, same shape as ``scores``
        Ground truth in {0, 1}, any bool, integer or float dtype.

    Returns
    -------
    np.ndarray, float64, shape (K,)
        AP in [0, 1] per class; NaN for classes without a positive target.
    """
    scores, targets = _as_tensor_pair(scores, targets)
    sorted_scores, order = torch.sort(scores, dim=0, descending=True)
    sorted_targets = torch.gather(targets, 0, order)
    true_positives = torch.cumsum(sorted_targets, dim=0)
    ranks = torch.arange(1, scores.shape[0] + 1, device=scores.device, dtype=torch.float64)
    precision = true_positives / ranks[:, None]
    # Each positive counts with the precision at the end of its tie-run (the threshold).
    precision_at_threshold = torch.gather(precision, 0, _tie_run_ends(sorted_scores))
    n_positives = sorted_targets.sum(dim=0)
    summed = (sorted_targets * precision_at_threshold).sum(dim=0)
    ap = torch.where(n_positives > 0, summed / n_positives.clamp(min=1), torch.nan)
    return ap.cpu().numpy()


def mean_average_precision(scores, targets) -> float:
    """mAP: mean of :func:`average_precision` over classes that have a positive.

    Returns
    -------
    float
        In [0, 1]; NaN when no class has a positive.
    """
    return _nanmean(average_precision(scores, targets))


def map_summary(scores, targets, *, groups=None) -> dict:
    """mAP with the bookkeeping of SPEC §3, optionally per shot group.

    Parameters
    ----------
    scores, targets
        As for :func:`average_precision`, shape (N, K).
    groups : array-like of str, shape (K,), optional, keyword-only
        Shot group per class, values in {"many", "medium", "few"} (see
        ``bmxlib.stats.shot_groups``).

    Returns
    -------
    dict
        ``"mAP"`` (float, NaN if every class is excluded), ``"n_excluded"`` (int, classes
        without a positive), ``"ap"`` (list of K floats, NaN for excluded classes), and
        with ``groups`` also ``"mAP_many"``, ``"mAP_medium"``, ``"mAP_few"`` (NaN for a
        group that is empty or whose classes are all excluded).
    """
    ap = average_precision(scores, targets)
    summary = {
        "mAP": _nanmean(ap),
        "n_excluded": int(np.isnan(ap).sum()),
        "ap": [float(value) for value in ap],
    }
    if groups is not None:
        groups = np.asarray(groups).astype(str)
        if groups.shape != ap.shape:
            raise ValueError(f"groups must have shape {ap.shape}, got {groups.shape}")
        unknown = set(groups.tolist()) - set(GROUP_NAMES)
        if unknown:
            raise ValueError(f"groups must take values in {GROUP_NAMES}, got {sorted(unknown)}")
        for name in GROUP_NAMES:
            summary[f"mAP_{name}"] = _nanmean(ap[groups == name])
    return summary


def pearson(x, y) -> float:
    """Pearson correlation coefficient of two equally long 1-D sequences.

    Parameters
    ----------
    x, y : array-like, shape (G,)
        Finite real values (numpy, torch or lists).

    Returns
    -------
    float
        r in [−1, 1]; NaN when G < 2 or either sequence has zero variance.
    """
    x, y = _as_vector(x, "x"), _as_vector(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    if x.size < 2:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    if denominator == 0.0:
        return float("nan")
    return float(np.clip((dx * dy).sum() / denominator, -1.0, 1.0))


def confidence_vs_ap(class_confidence_P, ap, positives, *, n_groups: int = 10) -> dict:
    """Group classes by frequency and correlate mean confidence with mean AP (SPEC §3).

    Classes are sorted by positive-label count, descending (ties keep class order), and
    cut into ``min(n_groups, K)`` contiguous groups with ``np.array_split``. Each group
    reports the mean P(k) and mean AP of its classes, ignoring NaN entries.

    Parameters
    ----------
    class_confidence_P : array-like, shape (K,)
        P(k), mean confidence in presence per class (NaN allowed).
    ap : array-like, shape (K,)
        AP per class (NaN allowed, e.g. classes without test positives).
    positives : array-like of int, shape (K,)
        Positive training labels per class, the sorting key.
    n_groups : int, keyword-only
        G ≥ 1, the number of groups (default 10).

    Returns
    -------
    dict
        ``"group_confidence"``, ``"group_ap"`` : np.ndarray float64 (G,), NaN for a group
        with no valid value; ``"group_classes"`` : list of G int arrays (class indices);
        ``"pearson_r"`` : float over the groups where both means are defined, NaN when
        fewer than two such groups or zero variance.
    """
    confidence = _as_vector(class_confidence_P, "class_confidence_P", allow_nan=True)
    ap = _as_vector(ap, "ap", allow_nan=True)
    counts = _as_vector(positives, "positives")
    if not confidence.shape == ap.shape == counts.shape:
        raise ValueError("class_confidence_P, ap and positives must have the same length")
    if isinstance(n_groups, bool) or not isinstance(n_groups, int) or n_groups < 1:
        raise ValueError(f"n_groups must be a positive integer, got {n_groups!r}")
    if counts.size == 0:
        raise ValueError("confidence_vs_ap needs at least one class")

    order = np.argsort(-counts, kind="stable")
    group_classes = np.array_split(order, min(n_groups, counts.size))
    starts = np.cumsum([0] + [len(group) for group in group_classes[:-1]])
    group_confidence = _group_nanmean(confidence[order], starts)
    group_ap = _group_nanmean(ap[order], starts)
    valid = ~np.isnan(group_confidence) & ~np.isnan(group_ap)
    return {
        "group_confidence": group_confidence,
        "group_ap": group_ap,
        "group_classes": group_classes,
        "pearson_r": pearson(group_confidence[valid], group_ap[valid]),
    }


def _tie_run_ends(sorted_scores: torch.Tensor) -> torch.Tensor:
    """For each sorted position, the index of the last position with the same score."""
    n_rows = sorted_scores.shape[0]
    is_end = torch.ones_like(sorted_scores, dtype=torch.bool)
    is_end[:-1] = sorted_scores[:-1] != sorted_scores[1:]
    index = torch.arange(n_rows, device=sorted_scores.device)[:, None].expand_as(sorted_scores)
    end_index = torch.where(is_end, index, torch.full_like(index, n_rows))
    # Reverse cumulative minimum: the nearest run end at or after each position.
    return torch.flip(torch.cummin(torch.flip(end_index, [0]), dim=0).values, [0])


def _as_tensor_pair(scores, targets) -> tuple[torch.Tensor, torch.Tensor]:
    device = next(
        (value.device for value in (scores, targets) if isinstance(value, torch.Tensor)),
        torch.device("cpu"),
    )
    scores = _to_float64(scores, "scores", device)
    targets = _to_float64(targets, "targets", device)
    if scores.shape != targets.shape:
        raise ValueError(
            f"scores and targets must have the same shape, got {tuple(scores.shape)} "
            f"and {tuple(targets.shape)}"
        )
    if scores.ndim == 1:
        scores, targets = scores[:, None], targets[:, None]
    if scores.ndim != 2:
        raise ValueError(f"scores must be 1-D or 2-D (N, K), got shape {tuple(scores.shape)}")
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN")
    if not ((targets == 0) | (targets == 1)).all():
        raise ValueError("targets must contain only 0 and 1")
    return scores, targets


def _to_float64(value, name: str, device: torch.device) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        if value.device != device:
            raise ValueError(f"{name} is on {value.device} but the other input on {device}")
        return value.detach().to(torch.float64)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{name} must have a numeric dtype, got {value.dtype}")
        return torch.from_numpy(value.astype(np.float64)).to(device)
    raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(value).__name__}")


def _as_vector(value, name: str, *, allow_nan: bool = False) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if not allow_nan and np.isnan(array).any():
        raise ValueError(f"{name} contains NaN")
    return array


def _group_nanmean(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """NaN-ignoring mean of contiguous groups starting at ``starts`` (no Python loop)."""
    present = ~np.isnan(values)
    sums = np.add.reduceat(np.where(present, values, 0.0), starts)
    counts = np.add.reduceat(present.astype(np.int64), starts)
    return np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)


def _nanmean(values: np.ndarray) -> float:
    present = values[~np.isnan(values)]
    return float(present.mean()) if present.size else float("nan")
