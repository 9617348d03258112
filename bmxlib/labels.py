"""Label-wise management: clean / re-labeled / ambiguous labels (SPEC §1.4–§1.6, §3).

``manage_labels`` turns the given labels, the clean probabilities p_G and the two-view
confidences into refined targets, a reliability state and a loss weight per label;
``managed_bce_loss`` is the loss of §1.5 on a mixed batch; ``selection_quality`` measures
the selection against known true labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "LabelState",
    "CLEAN",
    "RELABELED",
    "AMBIGUOUS",
    "ManagedLabels",
    "manage_labels",
    "managed_bce_loss",
    "selection_quality",
]


class LabelState(IntEnum):
    """Reliability class of one label."""

    CLEAN = 0
    RELABELED = 1
    AMBIGUOUS = 2


CLEAN, RELABELED, AMBIGUOUS = LabelState.CLEAN, LabelState.RELABELED, LabelState.AMBIGUOUS


@dataclass
class ManagedLabels:
    """Refined labels of N instances × K classes, on the device of the inputs.

    Attributes
    ----------
    targets : torch.Tensor, (N, K), float — refined labels in {0, 1}.
    state : torch.Tensor, (N, K), uint8 — a :class:`LabelState` per label.
    weight : torch.Tensor, (N, K), float in [0, 1] — loss weight per label.
    """

    targets: torch.Tensor
    state: torch.Tensor
    weight: torch.Tensor

    def counts(self) -> dict[str, int]:
        """Number of labels per state, e.g. ``{"clean": 10, "relabeled": 2, "ambiguous": 3}``."""
        return {s.name.lower(): int((self.state == s).sum()) for s in LabelState}


def _as_tensor(array, name: str, device=None) -> torch.Tensor:
    if isinstance(array, np.ndarray):
        array = torch.from_numpy(array)
    if not isinstance(array, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(array)}")
    return array if device is None else array.to(device)


def _check_binary(tensor: torch.Tensor, name: str) -> None:
    if not ((tensor == 0) | (tensor == 1)).all():
        raise ValueError(f"{name} must contain only 0 and 1")


def _check_same_shape(reference: torch.Tensor, ref_name: str, **others) -> None:
    if reference.dim() != 2:
        raise ValueError(f"{ref_name} must have shape (N, K), got {tuple(reference.shape)}")
    for name, tensor in others.items():
        if tensor.shape != reference.shape:
            raise ValueError(
                f"{name} must have the shape of {ref_name} {tuple(reference.shape)}, "
                f"got {tuple(tensor.shape)}"
            )


def _relabel(confidence, candidates, epsilon, relabel_to_zero):
    """Masks of labels re-labeled to 1 and to 0; NaN confidence ('not computed') never is."""
    to_one = candidates & (confidence > epsilon)
    to_zero = candidates & (confidence < 1.0 - epsilon)
    if not relabel_to_zero:
        to_zero = torch.zeros_like(to_zero)
    return to_one, to_zero


def manage_labels(
    noisy_labels,
    clean_prob,
    relabel_confidence=None,
    *,
    epsilon: float = 0.975,
    use_clean: bool = True,
    use_relabel: bool = True,
    use_ambiguous: bool = True,
    relabel_to_zero: bool = True,
) -> ManagedLabels:
    """Split labels into clean / re-labeled / ambiguous and set targets and weights.

    - clean: p_G > 0.5 → given target, weight 1.
    - re-labeled (``use_relabel``): p_G ≤ 0.5 and two-view mean confidence > ε → target 1,
      or < 1 − ε → target 0 (only with ``relabel_to_zero``); weight 1.
    - ambiguous: the rest → given target, weight p_G (``use_ambiguous``) or 0 (dropped).
    - ``use_clean=False`` (the Mixup / +minority-sampler ablation rows): no management;
      every label is reported CLEAN with its given target and weight 1, and the other
      switches are ignored.

    Parameters
    ----------
    noisy_labels : torch.Tensor or np.ndarray, (N, K), values in {0, 1}
    clean_prob : torch.Tensor or np.ndarray, (N, K), float in [0, 1] — p_G of §1.4.
    relabel_confidence : torch.Tensor or np.ndarray, (N, K), float in [0, 1] or NaN, optional
        Mean confidence over two augmented views; NaN means "not computed" (such a label
        cannot be re-labeled). Required when ``use_clean`` and ``use_relabel``.
    epsilon : float in [0.5, 1]
        Re-labeling threshold ε (SPEC default 0.975; 0.55 for single-positive labels).

    Returns
    -------
    ManagedLabels
        float tensors in the dtype of ``clean_prob`` (float32 if it is not float32/64), on
        the device of ``clean_prob``.
    """
    if not (isinstance(epsilon, (int, float)) and 0.5 <= epsilon <= 1):
        raise ValueError(f"epsilon must be a number in [0.5, 1], got {epsilon!r}")
    clean_prob = _as_tensor(clean_prob, "clean_prob")
    noisy_labels = _as_tensor(noisy_labels, "noisy_labels", clean_prob.device)
    _check_same_shape(clean_prob, "clean_prob", noisy_labels=noisy_labels)
    _check_binary(noisy_labels, "noisy_labels")
    if not clean_prob.is_floating_point() or not ((clean_prob >= 0) & (clean_prob <= 1)).all():
        raise ValueError("clean_prob must be a float array with values in [0, 1] (no NaN)")
    dtype = clean_prob.dtype if clean_prob.dtype in (torch.float32, torch.float64) else None
    dtype = dtype or torch.float32
    given = noisy_labels.to(dtype)
    state = torch.full(given.shape, int(CLEAN), dtype=torch.uint8, device=given.device)
    if not use_clean:
        return ManagedLabels(targets=given, state=state, weight=torch.ones_like(given))

    clean = clean_prob > 0.5
    targets = given.clone()
    weight = torch.where(clean, 1.0, clean_prob.to(dtype) if use_ambiguous else 0.0)
    state[~clean] = int(AMBIGUOUS)
    if use_relabel:
        if relabel_confidence is None:
            raise ValueError("relabel_confidence is required when use_relabel is True")
        confidence = _as_tensor(relabel_confidence, "relabel_confidence", clean_prob.device)
        _check_same_shape(clean_prob, "clean_prob", relabel_confidence=confidence)
        to_one, to_zero = _relabel(confidence, ~clean, epsilon, relabel_to_zero)
        relabeled = to_one | to_zero
        targets = torch.where(to_one, 1.0, torch.where(to_zero, 0.0, targets))
        weight = torch.where(relabeled, 1.0, weight)
        state[relabeled] = int(RELABELED)
    return ManagedLabels(targets=targets.to(dtype), state=state, weight=weight.to(dtype))


def managed_bce_loss(logits, mixed_targets, weights=None) -> torch.Tensor:
    """Weighted BCE of SPEC §1.5: mean over the batch of Σ_k w_k · BCE(σ(z_k), y_k).

    Parameters
    ----------
    logits : torch.Tensor, (B, K), float — model outputs z.
    mixed_targets : torch.Tensor, (B, K), float in [0, 1] — mixed refined labels.
    weights : torch.Tensor, (B, K), float, optional — the random-sampler instances'
        label weights (1 clean / re-labeled, p_G ambiguous, 0 dropped); None means all 1
        (plain BCE, as in warm-up).

    Returns
    -------
    torch.Tensor, 0-dim, dtype of ``logits``.
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(mixed_targets, torch.Tensor):
        raise TypeError("logits and mixed_targets must be torch tensors")
    _check_same_shape(logits, "logits", mixed_targets=mixed_targets)
    per_label = F.binary_cross_entropy_with_logits(
        logits, mixed_targets.to(logits.dtype), reduction="none"
    )
    if weights is not None:
        if not isinstance(weights, torch.Tensor):
            raise TypeError(f"weights must be a torch tensor or None, got {type(weights)}")
        _check_same_shape(logits, "logits", weights=weights)
        per_label = per_label * weights.to(per_label.dtype)
    return per_label.sum(dim=1).mean()


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> np.ndarray:
    """numerator / denominator as float64 numpy, NaN where the denominator is 0."""
    num = numerator.double().cpu().numpy()
    den = denominator.double().cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _per_group(mask: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
    """Counts of a (N, K) mask per (class, given label value), shape (K, 2)."""
    return torch.stack([(mask & (noisy == 0)).sum(0), (mask & (noisy == 1)).sum(0)], dim=1)


def selection_quality(state, noisy_labels, true_labels, refined_targets) -> dict:
    """Quality of the label management when the true labels are known (SPEC §3).

    A label is "correct" when its given value equals the truth. Clean-selection
    precision = P(correct | selected clean), recall = P(selected clean | correct);
    re-labeling accuracy = P(refined target == truth | re-labeled). Per-group arrays are
    indexed [class k, given label value l].

    Parameters
    ----------
    state : (N, K) uint8 :class:`LabelState` values
    noisy_labels, true_labels : (N, K) values in {0, 1}
    refined_targets : (N, K) values in {0, 1} (``ManagedLabels.targets``)
        Torch tensors (any device) or numpy arrays.

    Returns
    -------
    dict with floats "precision", "recall", "relabel_accuracy" (NaN when undefined) and
    float64 numpy arrays (K, 2) "precision_per_group", "recall_per_group",
    "relabel_accuracy_per_group" (NaN where undefined).
    """
    state = _as_tensor(state, "state", "cpu")
    noisy = _as_tensor(noisy_labels, "noisy_labels", "cpu")
    truth = _as_tensor(true_labels, "true_labels", "cpu")
    refined = _as_tensor(refined_targets, "refined_targets", "cpu")
    _check_same_shape(
        state, "state", noisy_labels=noisy, true_labels=truth, refined_targets=refined
    )
    for tensor, name in ((noisy, "noisy_labels"), (truth, "true_labels")):
        _check_binary(tensor, name)
    correct = noisy == truth
    selected = state == int(CLEAN)
    relabeled = state == int(RELABELED)
    hits = selected & correct
    right = relabeled & (refined == truth)
    result = {
        "precision": float(_ratio(hits.sum(), selected.sum())),
        "recall": float(_ratio(hits.sum(), correct.sum())),
        "relabel_accuracy": float(_ratio(right.sum(), relabeled.sum())),
        "precision_per_group": _ratio(_per_group(hits, noisy), _per_group(selected, noisy)),
        "recall_per_group": _ratio(_per_group(hits, noisy), _per_group(correct, noisy)),
        "relabel_accuracy_per_group": _ratio(
            _per_group(right, noisy), _per_group(relabeled, noisy)
        ),
    }
    return result
