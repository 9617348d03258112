"""Evaluation measures of docs/method.md §3: per-class AP, mAP (overall and per shot group),
Pearson correlation and the confidence-vs-AP analysis.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .arrays import tensor_from_numpy

GROUP_NAMES = ("many", "medium", "few")


def average_precision(scores, targets, *, implementation: str = "auto") -> np.ndarray:
    """Per-class non-interpolated average precision, as scikit-learn defines it.

    AP = Σ_t (R_t − R_{t−1}) · P_t over the distinct score thresholds t in decreasing
    order, so tied scores enter together (``sklearn.metrics.average_precision_score``).
    Equivalently, AP is the mean over positives of the precision at the threshold equal to
    their own score, which is what is computed: per class, sort once, then for each
    positive count the items and positives scoring at least as high. All K classes at once
    on the inputs' device (CPU: NumPy's vectorised sort, float32 scores sorted together
    with their targets as one 64-bit key).

    Parameters
    ----------
    scores : np.ndarray or torch.Tensor, shape (N, K) or (N,)
        Real-valued scores (probabilities or logits), higher means "present"; no NaN.
        A 1-D input is treated as a single class (K = 1).
    targets : np.ndarray or torch.Tensor, same shape as ``scores``
        Ground truth in {0, 1}, any bool, integer or float dtype.
    implementation : {"auto", "numpy", "torch"}, keyword-only
        "auto": NumPy on the CPU, the dense torch computation on other devices (the same
        numbers either way; "torch" runs the accelerator path on any device).

    Returns
    -------
    np.ndarray, float64, shape (K,)
        AP in [0, 1] per class; NaN for classes without a positive target.
    """
    if implementation not in ("auto", "numpy", "torch"):
        raise ValueError(f"implementation must be 'auto', 'numpy' or 'torch', got "
                         f"{implementation!r}")
    scores, targets = _as_tensor_pair(scores, targets)
    if scores.shape[0] == 0:
        return np.full(scores.shape[1], np.nan)
    if implementation == "numpy":
        scores, targets = scores.cpu(), targets.cpu()
    numpy_path = scores.device.type == "cpu" and implementation != "torch"
    if numpy_path:
        rows = np.ascontiguousarray(scores.numpy().T)
        labels = np.ascontiguousarray(targets.numpy().T)
        return _ap_from_sorted_numpy(*_sort_rows_numpy(rows, labels))
    return _average_precision_torch(scores.T.contiguous(), targets.T.contiguous())


def _sort_rows_numpy(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of (K, N) scores sorted ascending with its targets: (order codes, int32 targets).

    Scores exactly representable in float32 are mapped to order-preserving 32-bit codes and
    sorted as one 64-bit key ``code << 1 | target`` (no argsort, no gathers); others are
    argsorted. Equal scores get equal codes, so ties stay ties.
    """
    single = scores.astype(np.float32, copy=False)
    if scores.dtype == np.float32 or np.array_equal(single, scores):
        bits = (single + np.float32(0.0)).view(np.uint32)  # + 0 turns -0.0 into +0.0
        flip = np.where(bits >> np.uint32(31), np.uint32(0xFFFFFFFF), np.uint32(0x80000000))
        keys = (bits ^ flip).astype(np.uint64)
        keys <<= np.uint64(1)
        keys |= targets.astype(np.uint64)
        keys.sort(axis=1)
        return keys >> np.uint64(1), (keys & np.uint64(1)).astype(np.int32)
    order = np.argsort(scores, axis=1)
    sorted_targets = np.take_along_axis(targets, order, axis=1).astype(np.int32)
    return np.take_along_axis(scores, order, axis=1), sorted_targets


def _ap_from_sorted_numpy(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """AP per row from ascending-sorted (K, N) values and their int32 targets."""
    num_classes, num_items = values.shape
    is_start = np.empty(values.shape, dtype=bool)  # first item of a run of equal scores
    is_start[:, 0] = True
    np.not_equal(values[:, 1:], values[:, :-1], out=is_start[:, 1:])
    index_type = np.int32 if num_items < 2**31 else np.int64
    position = np.arange(num_items, dtype=index_type)
    run_start = np.maximum.accumulate(np.where(is_start, position, 0), axis=1)
    positives_before = np.cumsum(targets, axis=1, dtype=np.int64)
    n_positives = positives_before[:, -1].copy()
    positives_before -= targets  # exclusive count: positives strictly before each position
    rows, cols = np.nonzero(targets)  # only positives contribute
    start = run_start[rows, cols]
    at_least = n_positives[rows] - positives_before[rows, start]  # positives scoring >= s
    precision = at_least / (num_items - start).astype(np.float64)
    summed = np.bincount(rows, weights=precision, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_positives > 0, summed / np.maximum(n_positives, 1), np.nan)


def _average_precision_torch(scores: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """The same computation on (K, N) tensors of any device (dense, deterministic)."""
    num_items = scores.shape[1]
    values, order = torch.sort(scores, dim=1)
    sorted_targets = torch.gather(targets.long(), 1, order)
    is_start = torch.ones_like(values, dtype=torch.bool)
    is_start[:, 1:] = values[:, 1:] != values[:, :-1]
    position = torch.arange(num_items, device=scores.device)
    run_start = torch.cummax(torch.where(is_start, position, 0), dim=1).values
    positives_before = sorted_targets.cumsum(dim=1)
    n_positives = positives_before[:, -1].clone()
    positives_before -= sorted_targets
    at_least = n_positives[:, None] - positives_before.gather(1, run_start)
    precision = at_least.double() / (num_items - run_start).double()
    summed = torch.where(sorted_targets > 0, precision, 0.0).sum(dim=1)
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
    """mAP with the bookkeeping of docs/method.md §3, optionally per shot group.

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


def noisy_label_fit(logits, noisy_labels, corrupted) -> dict[str, float]:
    """How far a model has memorized the label noise (a diagnostic beyond docs/method.md §3 and §7).

    A label counts as fitted when the model's decision (logit > 0, i.e. confidence > 0.5)
    equals the given, noisy label.

    Parameters
    ----------
    logits : np.ndarray or torch.Tensor, shape (N, K)
        Model outputs on the training images (evaluation transform).
    noisy_labels : array, shape (N, K), values in {0, 1}
        The training labels the model was given.
    corrupted : np.ndarray, bool, shape (N, K)
        True where the given label differs from the clean one.

    Returns
    -------
    dict
        ``memorized_noisy``: share of corrupted labels fitted (in [0, 1]; high = the noise
        is memorized), ``fit_clean``: share of uncorrupted labels fitted;
        ``memorized_false_positives`` / ``memorized_false_negatives``: the share fitted
        among the corrupted labels given as 1 (the model says "present" where the class is
        absent) / given as 0 (it says "absent" where the class is present). NaN where
        there are no such labels.
    """
    logits = torch.as_tensor(logits).detach().cpu()
    noisy = torch.as_tensor(noisy_labels).detach().cpu().to(torch.bool)
    mask = torch.as_tensor(np.asarray(corrupted, dtype=bool))
    if not (logits.shape == noisy.shape == mask.shape) or logits.dim() != 2:
        raise ValueError(f"logits {tuple(logits.shape)}, noisy_labels {tuple(noisy.shape)} and "
                         f"corrupted {tuple(mask.shape)} must share one (N, K) shape")
    agree = (logits > 0) == noisy

    def share(where: torch.Tensor) -> float:
        count = int(where.sum())
        return int(agree[where].sum()) / count if count else math.nan

    return {"memorized_noisy": share(mask), "fit_clean": share(~mask),
            "memorized_false_positives": share(mask & noisy),
            "memorized_false_negatives": share(mask & ~noisy)}


def selection_by_bins(selected, correct, score, *, bins: int = 5) -> dict[str, np.ndarray]:
    """Clean-label selection precision and recall within quantile bins of a score.

    Bin b holds the labels whose ``score`` falls in its quantile range (equal counts);
    precision = P(correct | selected) and recall = P(selected | correct) within the bin.

    Parameters
    ----------
    selected, correct : array-like of bool, any shape (flattened)
        Whether each label was selected clean, and whether its given value is the truth.
    score : array-like of float, same shape
        E.g. hardness: the reference model's error on the true label (instance noise).
    bins : int >= 1

    Returns
    -------
    dict with "edges" (bins + 1,), "precision", "recall", "share_correct" and "count"
    (bins,) — NaN where a bin selects nothing or holds no correct label.
    """
    selected = np.asarray(selected, dtype=bool).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    score = np.asarray(score, dtype=np.float64).ravel()
    if not selected.shape == correct.shape == score.shape:
        raise ValueError("selected, correct and score must have the same size")
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    edges = np.quantile(score, np.linspace(0, 1, bins + 1)) if score.size else np.zeros(bins + 1)
    which = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, bins - 1)
    out = {k: np.full(bins, np.nan) for k in ("precision", "recall", "share_correct")}
    out["count"] = np.bincount(which, minlength=bins).astype(np.int64)
    for b in range(bins):
        member = which == b
        chosen, right = selected & member, correct & member
        if chosen.any():
            out["precision"][b] = (chosen & correct).sum() / chosen.sum()
        if right.any():
            out["recall"][b] = (chosen & correct).sum() / right.sum()
        if member.any():
            out["share_correct"][b] = right.sum() / member.sum()
    out["edges"] = edges
    return out


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
    """Group classes by frequency and correlate mean confidence with mean AP (docs/method.md §3).

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


def _as_tensor_pair(scores, targets) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated (N, K) scores (float32 or float64) and targets (uint8) on one device."""
    device = next(
        (value.device for value in (scores, targets) if isinstance(value, torch.Tensor)),
        torch.device("cpu"),
    )
    scores = _to_tensor(scores, "scores", device)
    targets = _to_tensor(targets, "targets", device)
    if scores.shape != targets.shape:
        raise ValueError(
            f"scores and targets must have the same shape, got {tuple(scores.shape)} "
            f"and {tuple(targets.shape)}"
        )
    if scores.ndim == 1:
        scores, targets = scores[:, None], targets[:, None]
    if scores.ndim != 2:
        raise ValueError(f"scores must be 1-D or 2-D (N, K), got shape {tuple(scores.shape)}")
    if not scores.is_floating_point() and scores.numel() and _beyond_float64(scores):
        # integers float64 cannot tell apart: their dense ranks keep order and ties exactly
        scores = torch.unique(scores.cpu(), sorted=True, return_inverse=True)[1].to(device)
    if scores.dtype not in (torch.float32, torch.float64):
        scores = scores.to(torch.float64)  # exact for half precision and ints below 2**53
    if _has_nan(scores):
        raise ValueError("scores contain NaN")
    if not _is_binary(targets):
        raise ValueError("targets must contain only 0 and 1")
    return scores, targets.to(torch.uint8)


def _beyond_float64(values: torch.Tensor) -> bool:
    """Whether integer ``values`` hold a magnitude above 2**53, where float64 rounds."""
    array = values.cpu().numpy()
    return bool(array.max() > 2**53) or bool(array.min() < -(2**53))


def _has_nan(values: torch.Tensor) -> bool:
    if values.device.type == "cpu":  # NumPy's reductions are several times faster here
        return bool(np.isnan(values.numpy()).any())
    return bool(torch.isnan(values).any())


def _is_binary(values: torch.Tensor) -> bool:
    if values.dtype == torch.bool or values.numel() == 0:
        return True
    if values.dtype == torch.bfloat16:  # NumPy has no bfloat16
        values = values.float()
    array = values.numpy() if values.device.type == "cpu" else None
    if not values.is_floating_point():  # integers: the range says it all
        if array is not None:
            return bool(array.min() >= 0) and bool(array.max() <= 1)
        return bool(values.amin() >= 0) and bool(values.amax() <= 1)
    if array is not None:
        return bool(((array == 0) | (array == 1)).all())
    return bool(((values == 0) | (values == 1)).all())


def _to_tensor(value, name: str, device: torch.device) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        if value.device != device:
            raise ValueError(f"{name} is on {value.device} but the other input on {device}")
        if value.is_complex():
            raise TypeError(f"{name} must have a real dtype, got {value.dtype}")
        return value.detach()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{name} must have a numeric dtype, got {value.dtype}")
        return tensor_from_numpy(value).to(device)
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
