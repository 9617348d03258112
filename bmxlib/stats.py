"""Dataset statistics of docs/method.md §3: imbalance ratios and shot groups."""

from __future__ import annotations

import numbers

import numpy as np

GROUP_NAMES = ("many", "medium", "few")


def imbalance(labels) -> dict:
    """Class-imbalance and positive–negative ratios of a label matrix.

    Parameters
    ----------
    labels : np.ndarray or torch.Tensor, shape (N, K), N ≥ 1, K ≥ 1
        Labels in {0, 1} (any bool, integer or float dtype).

    Returns
    -------
    dict
        ``"class_imbalance"`` : float, max_k N_k / min_k N_k; ``inf`` when some class has
        no positive (including when no class has one).
        ``"pos_neg"`` : float, Σ_k negatives / Σ_k positives; ``inf`` without positives.
        ``"positives"`` : np.ndarray, int64, shape (K,), N_k.
        ``"n_instances"`` : int, N. ``"n_classes"`` : int, K.
        ``"positives_per_instance"`` : float, mean number of positives per instance.
    """
    matrix = _as_binary_matrix(labels)
    n_instances, n_classes = matrix.shape
    positives = matrix.sum(axis=0, dtype=np.int64)
    total_positives = int(positives.sum())
    total_negatives = n_instances * n_classes - total_positives
    smallest = int(positives.min())
    return {
        "class_imbalance": float(positives.max() / smallest) if smallest > 0 else float("inf"),
        "pos_neg": total_negatives / total_positives if total_positives > 0 else float("inf"),
        "positives": positives,
        "n_instances": int(n_instances),
        "n_classes": int(n_classes),
        "positives_per_instance": total_positives / n_instances,
    }


def shot_groups(positives, *, many: int = 10_000, few: int = 1_000) -> np.ndarray:
    """Assign each class to a shot group by its number of positive training labels.

    Parameters
    ----------
    positives : array-like of int, shape (K,)
        N_k, positive training labels per class (non-negative).
    many : int, keyword-only
        T_many: a class is "many" when N_k > T_many (paper: 10,000). A dataset whose
        rule reads "N_k ≥ 1,500" passes ``many=1499``.
    few : int, keyword-only
        T_few: a class is "few" when N_k < T_few (paper: 1,000). Must not exceed ``many``.

    Returns
    -------
    np.ndarray of str, shape (K,)
        Values in {"many", "medium", "few"}.
    """
    counts = np.asarray(positives)
    if counts.ndim != 1 or counts.dtype.kind not in "iuf" or np.any(counts < 0):
        raise ValueError("positives must be a 1-D array of non-negative counts")
    for name, value in (("many", many), ("few", few)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if few > many:
        raise ValueError(f"few ({few}) must not exceed many ({many})")
    groups = np.full(counts.shape, "medium", dtype="<U6")
    groups[counts > many] = "many"
    groups[counts < few] = "few"
    return groups


def group_oversampling(draw_share, natural_share, groups) -> dict[str, float]:
    """How much more often the minority sampler (docs/method.md §1.2) draws each shot
    group's positive labels than the random sampler does.

    Parameters
    ----------
    draw_share : array-like of float, shape (K,)
        Expected positive labels of class k per minority draw, Σ_n p(n)·Ỹ[n, k].
    natural_share : array-like of float, shape (K,)
        The same per uniform draw, mean_n Ỹ[n, k].
    groups : array-like of str, shape (K,)
        Shot group per class (:func:`shot_groups`).

    Returns
    -------
    dict
        Group name → Σ_{k∈g} draw_share[k] / Σ_{k∈g} natural_share[k], for the groups of
        ``GROUP_NAMES`` present; 1.0 means drawn as often as at random, NaN where the
        group's classes have no observed positive.
    """
    draw = np.asarray(draw_share, dtype=np.float64)
    natural = np.asarray(natural_share, dtype=np.float64)
    group_of = np.asarray(groups)
    if not (draw.ndim == natural.ndim == group_of.ndim == 1
            and len(draw) == len(natural) == len(group_of)):
        raise ValueError("draw_share, natural_share and groups must be 1-D of one length K")
    factors = {}
    for name in GROUP_NAMES:
        members = group_of == name
        if members.any():
            base = natural[members].sum()
            factors[name] = float(draw[members].sum() / base) if base > 0 else float("nan")
    return factors


def dataset_facts(labels, *, class_names, n_test: int, groups: np.ndarray,
                  shot_thresholds: dict[str, int], corrupted: np.ndarray) -> dict:
    """A run's dataset.json: class names, split sizes, imbalance, shot groups, observed noise.

    Parameters
    ----------
    labels : np.ndarray, shape (N, K)
        The clean training labels.
    class_names : sequence of str, length K
    n_test : int
        Size of the test split.
    groups : np.ndarray of str, shape (K,)
        Shot group per class (:func:`shot_groups`).
    shot_thresholds : dict
        ``{"many": T_many, "few": T_few}`` the groups were cut at.
    corrupted : np.ndarray of bool, shape (N, K)
        Which training labels the injected noise flipped.
    """
    stats = imbalance(labels)
    return {"class_names": class_names, "n_train": int(stats["n_instances"]),
            "n_test": n_test, "positives": stats["positives"],
            "class_imbalance": stats["class_imbalance"], "pos_neg": stats["pos_neg"],
            "shot_groups": groups, "shot_thresholds": shot_thresholds,
            "noise_rate_observed": float(np.mean(corrupted))}


def format_stats(stats: dict, class_names, groups=None) -> str:
    """Plain-text report of :func:`imbalance` output (used by ``bmx data stats``).

    Parameters
    ----------
    stats : dict
        The result of :func:`imbalance`.
    class_names : sequence of str, length K
        Class names in column order.
    groups : sequence of str, length K, optional
        Shot group per class (from :func:`shot_groups`); the column is left out if None.

    Returns
    -------
    str
        A summary block followed by one row per class: name, positives, fraction of
        instances holding the class, and group.
    """
    positives = np.asarray(stats["positives"])
    names = [str(name) for name in class_names]
    if len(names) != positives.size:
        raise ValueError(f"class_names has {len(names)} entries, expected {positives.size}")
    if groups is not None and len(groups) != positives.size:
        raise ValueError(f"groups has {len(groups)} entries, expected {positives.size}")
    lines = [
        f"instances: {stats['n_instances']}   classes: {stats['n_classes']}",
        f"positives per instance: {stats['positives_per_instance']:.3f}",
        f"class imbalance ratio (max/min): {stats['class_imbalance']:.2f}",
        f"positive-negative ratio: {stats['pos_neg']:.2f}",
        "",
    ]
    width = max([len("class")] + [len(name) for name in names])
    header = f"{'class':<{width}}  {'positives':>9}  {'freq':>6}"
    lines.append(header + ("  group" if groups is not None else ""))
    frequency = positives / max(int(stats["n_instances"]), 1)
    for index, name in enumerate(names):
        row = f"{name:<{width}}  {int(positives[index]):>9d}  {frequency[index]:>6.1%}"
        lines.append(row + (f"  {groups[index]}" if groups is not None else ""))
    return "\n".join(lines)


def _as_binary_matrix(labels) -> np.ndarray:
    if hasattr(labels, "detach") and hasattr(labels, "cpu"):  # torch tensor
        labels = labels.detach().cpu()
        # NumPy has no bfloat16 (this module does not import torch: compare by name)
        labels = (labels.float() if str(labels.dtype) == "torch.bfloat16" else labels).numpy()
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[0] == 0 or labels.shape[1] == 0:
        raise ValueError(f"labels must be a non-empty 2-D (N, K) array, got shape {labels.shape}")
    if labels.dtype.kind not in "biuf" or not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must contain only 0 and 1")
    return labels.astype(np.uint8)
