"""Label-wise management: clean / re-labeled / ambiguous labels (docs/method.md §1.4–§1.6, §3).

``manage_labels`` turns the given labels, the clean probabilities p_G and the two-view
confidences into refined targets, a reliability state and a loss weight per label;
``label_losses`` gives the per-label BCE the mixtures are fitted on; ``managed_bce_loss``
is the loss of §1.5 on a mixed batch; ``selection_quality`` measures the selection against
known true labels.

At N = 10^6, K = 10^3 one float32 (N, K) array is 4 GB, so the (N, K) functions work in
row chunks (bounded temporaries) and ``manage_labels`` can write into caller-provided
buffers (``out``), including its own inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import torch
import torch.nn.functional as F

from .arrays import tensor_from_numpy

__all__ = [
    "LabelState",
    "CLEAN",
    "RELABELED",
    "AMBIGUOUS",
    "ManagedLabels",
    "label_losses",
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
        # one bincount pass; a bool mask's .sum() would copy it to int64 (8 GB at N·K = 10^9)
        counts = torch.bincount(self.state.reshape(-1), minlength=len(LabelState)).tolist()
        return {s.name.lower(): int(counts[s]) for s in LabelState}


def as_tensor(array, name: str, device=None) -> torch.Tensor:
    """``array`` (torch.Tensor or NumPy array, shared memory) as a tensor, or TypeError."""
    if isinstance(array, np.ndarray):
        array = tensor_from_numpy(array)
    if not isinstance(array, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(array)}")
    return array if device is None else array.to(device)


def float_matrix_and_labels(values, labels, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a float (N, K) matrix ``name`` and same-shape labels (moved to its device).

    Only shapes and dtypes: the values are the caller's to check, chunk by chunk, so that no
    (N, K) temporary is made.
    """
    values = as_tensor(values, name).detach()  # the equations take no gradient
    labels = as_tensor(labels, "labels", values.device)
    if values.dim() != 2 or labels.shape != values.shape:
        raise ValueError(f"{name} and labels must both have shape (N, K); got "
                         f"{tuple(values.shape)} and {tuple(labels.shape)}")
    if not values.is_floating_point():
        raise TypeError(f"{name} must be a float array, got {values.dtype}")
    return values, labels


#: Rows per chunk hold about this many values: float64 temporaries stay at 16 MB, below the
#: size at which glibc hands out fresh (page-faulting) mmap blocks, at any N and K.
_CHUNK_VALUES = 1 << 21


def row_chunks(num_rows: int, num_cols: int) -> list[slice]:
    """Slices of rows whose (rows, num_cols) blocks hold about 2^21 values (16 MB float64)."""
    step = max(1, _CHUNK_VALUES // max(num_cols, 1))
    return [slice(start, min(start + step, num_rows)) for start in range(0, num_rows, step)]


WIDE_UNSIGNED = (torch.uint16, torch.uint32, torch.uint64)


def check_binary(tensor: torch.Tensor, name: str) -> None:
    """Raise unless every value is 0 or 1; no full-size temporaries."""
    if tensor.numel() == 0 or tensor.dtype == torch.bool:
        return
    if not tensor.is_floating_point() and tensor.dtype not in WIDE_UNSIGNED:
        ok = bool(tensor.amin() >= 0) and bool(tensor.amax() <= 1)
    else:  # floats, and the unsigned integers torch has no min / max for on the CPU
        flat = tensor.reshape(tensor.shape[0], -1) if tensor.dim() else tensor.reshape(1, 1)
        ok = all(
            bool(((flat[rows] == 0) | (flat[rows] == 1)).all())
            for rows in row_chunks(flat.shape[0], flat.shape[1])
        )
    if not ok:
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
    # the mirror of the 1-direction: ``confidence < 1 - epsilon`` would not be, as
    # float(1 - 0.975) is 0.025000000000000022, which re-labels a confidence of 0.025
    to_zero = candidates & (1.0 - confidence > epsilon)
    if not relabel_to_zero:
        to_zero = torch.zeros_like(to_zero)
    return to_one, to_zero


def _manage_block(given, clean_prob, confidence, *, dtype, epsilon, switches):
    """(targets, state, weight) of one row block; reads every input before returning."""
    targets = given.to(dtype, copy=True)
    if not switches["use_clean"]:
        state = torch.full(given.shape, int(CLEAN), dtype=torch.uint8, device=given.device)
        return targets, state, torch.ones_like(targets)
    weight = clean_prob.to(dtype, copy=True)  # a copy: ``out.weight`` may be clean_prob
    clean = weight > 0.5
    if not switches["use_ambiguous"]:
        weight.zero_()
    weight.masked_fill_(clean, 1.0)
    state = torch.where(clean, int(CLEAN), int(AMBIGUOUS)).to(torch.uint8)
    if confidence is not None:
        to_one, to_zero = _relabel(confidence, ~clean, epsilon, switches["relabel_to_zero"])
        relabeled = to_one | to_zero
        targets.masked_fill_(to_one, 1.0).masked_fill_(to_zero, 0.0)
        weight.masked_fill_(relabeled, 1.0)
        state.masked_fill_(relabeled, int(RELABELED))
    return targets, state, weight


def _check_out(out, shape, dtype, device) -> ManagedLabels:
    if out is None:
        return ManagedLabels(
            targets=torch.empty(shape, dtype=dtype, device=device),
            state=torch.empty(shape, dtype=torch.uint8, device=device),
            weight=torch.empty(shape, dtype=dtype, device=device),
        )
    if not isinstance(out, ManagedLabels):
        raise TypeError(f"out must be a ManagedLabels or None, got {type(out).__name__}")
    expected = {"targets": dtype, "state": torch.uint8, "weight": dtype}
    for name, want in expected.items():
        tensor = getattr(out, name)
        if tensor.shape != shape or tensor.dtype != want or tensor.device != device:
            raise ValueError(
                f"out.{name} must be a {want} tensor of shape {tuple(shape)} on {device}, "
                f"got {tensor.dtype} {tuple(tensor.shape)} on {tensor.device}"
            )
    return out


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
    out: ManagedLabels | None = None,
) -> ManagedLabels:
    """Split labels into clean / re-labeled / ambiguous and set targets and weights.

    - clean: p_G > 0.5 → given target, weight 1.
    - re-labeled (``use_relabel``): p_G ≤ 0.5 and two-view mean confidence > ε → target 1,
      or 1 − confidence > ε → target 0 (only with ``relabel_to_zero``); weight 1.
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
        Re-labeling threshold ε (docs/method.md §1.4 default 0.975; 0.55 for
        single-positive labels).
    out : ManagedLabels, optional, keyword-only
        Buffers to write the result into (targets and weight of the result dtype, state
        uint8, all (N, K) on the device of ``clean_prob``). They may be the inputs
        themselves (e.g. ``weight=clean_prob``, ``targets=relabel_confidence``), which are
        then overwritten: at N·K = 10^9 this saves two 4 GB allocations.

    Returns
    -------
    ManagedLabels
        float tensors in the dtype of ``clean_prob`` (float32 if it is not float32/64), on
        the device of ``clean_prob``; ``out`` when given. Computed in row chunks, so the
        temporaries stay small whatever N·K.
    """
    if not (isinstance(epsilon, (int, float)) and 0.5 <= epsilon <= 1):
        raise ValueError(f"epsilon must be a number in [0.5, 1], got {epsilon!r}")
    clean_prob = as_tensor(clean_prob, "clean_prob")
    noisy_labels = as_tensor(noisy_labels, "noisy_labels", clean_prob.device)
    _check_same_shape(clean_prob, "clean_prob", noisy_labels=noisy_labels)
    check_binary(noisy_labels, "noisy_labels")
    if not clean_prob.is_floating_point() or not (
        clean_prob.numel() == 0
        or (bool(clean_prob.amin() >= 0) and bool(clean_prob.amax() <= 1))  # NaN fails too
    ):
        raise ValueError("clean_prob must be a float array with values in [0, 1] (no NaN)")
    dtype = clean_prob.dtype if clean_prob.dtype in (torch.float32, torch.float64) else None
    dtype = dtype or torch.float32
    confidence = None
    if use_clean and use_relabel:
        if relabel_confidence is None:
            raise ValueError("relabel_confidence is required when use_relabel is True")
        confidence = as_tensor(relabel_confidence, "relabel_confidence", clean_prob.device)
        _check_same_shape(clean_prob, "clean_prob", relabel_confidence=confidence)
    result = _check_out(out, clean_prob.shape, dtype, clean_prob.device)
    switches = {"use_clean": use_clean, "use_ambiguous": use_ambiguous,
                "relabel_to_zero": relabel_to_zero}
    for rows in row_chunks(*clean_prob.shape):
        targets, state, weight = _manage_block(
            noisy_labels[rows], clean_prob[rows],
            None if confidence is None else confidence[rows],
            dtype=dtype, epsilon=epsilon, switches=switches,
        )
        result.targets[rows], result.state[rows], result.weight[rows] = targets, state, weight
    return result


def label_losses(logits, labels, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """Per-label BCE(sigmoid(z), y) of every instance and class, the GMM input of §1.4.

    Parameters
    ----------
    logits : torch.Tensor, (N, K), float — the full-data pass outputs z.
    labels : torch.Tensor, (N, K), values in {0, 1}, any dtype (not checked here).
    out : torch.Tensor, optional, keyword-only — (N, K) buffer of the logits' dtype; may
        be ``logits`` itself (overwritten).

    Returns
    -------
    torch.Tensor, (N, K), dtype of ``logits``, ≥ 0, on its device. Computed in row chunks,
    so ``F.binary_cross_entropy_with_logits``'s several (N, K) temporaries stay small.
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise TypeError("logits and labels must be torch tensors")
    _check_same_shape(logits, "logits", labels=labels)
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a float tensor, got {logits.dtype}")
    result = torch.empty_like(logits) if out is None else out
    if result.shape != logits.shape or result.dtype != logits.dtype:
        raise ValueError(f"out must be a {logits.dtype} tensor of shape {tuple(logits.shape)}")
    for rows in row_chunks(*logits.shape):
        block = logits[rows]
        result[rows] = F.binary_cross_entropy_with_logits(
            block, labels[rows].to(device=block.device, dtype=block.dtype), reduction="none"
        )
    return result


def managed_bce_loss(logits, mixed_targets, weights=None) -> torch.Tensor:
    """Weighted BCE of docs/method.md §1.5: mean over the batch of Σ_k w_k · BCE(σ(z_k), y_k).

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
    # count_nonzero: a bool .sum() would first copy the mask to int64 (8 bytes per label)
    total = torch.count_nonzero(mask, dim=0)
    positive = torch.count_nonzero(mask & (noisy == 1), dim=0)
    return torch.stack([total - positive, positive], dim=1)


def _judged_labels(state, noisy_labels, true_labels, refined_targets):
    """The four (N, K) arrays of a label-management outcome as CPU tensors, checked to share
    one shape, with binary given and true labels."""
    state = as_tensor(state, "state", "cpu")
    noisy = as_tensor(noisy_labels, "noisy_labels", "cpu")
    truth = as_tensor(true_labels, "true_labels", "cpu")
    refined = as_tensor(refined_targets, "refined_targets", "cpu")
    _check_same_shape(
        state, "state", noisy_labels=noisy, true_labels=truth, refined_targets=refined
    )
    for tensor, name in ((noisy, "noisy_labels"), (truth, "true_labels")):
        check_binary(tensor, name)
    return state, noisy, truth, refined


def selection_quality(state, noisy_labels, true_labels, refined_targets) -> dict:
    """Quality of the label management when the true labels are known (docs/method.md §3).

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
    state, noisy, truth, refined = _judged_labels(state, noisy_labels, true_labels,
                                                  refined_targets)
    correct = noisy == truth
    selected = state == int(CLEAN)
    relabeled = state == int(RELABELED)
    hits = selected & correct
    right = relabeled & (refined == truth)
    count = torch.count_nonzero
    result = {
        "precision": float(_ratio(count(hits), count(selected))),
        "recall": float(_ratio(count(hits), count(correct))),
        "relabel_accuracy": float(_ratio(count(right), count(relabeled))),
        "precision_per_group": _ratio(_per_group(hits, noisy), _per_group(selected, noisy)),
        "recall_per_group": _ratio(_per_group(hits, noisy), _per_group(correct, noisy)),
        "relabel_accuracy_per_group": _ratio(
            _per_group(right, noisy), _per_group(relabeled, noisy)
        ),
    }
    return result


#: the outcomes :func:`relabel_outcomes` measures (name → what share of which labels)
RELABEL_OUTCOMES = {
    "correct_positives_to_zero": "correct positives re-labeled to 0",
    "correct_positives_ambiguous": "correct positives set ambiguous",
    "wrong_positives_to_zero": "wrong positives re-labeled to 0",
    "hidden_positives_to_one": "hidden positives re-labeled to 1",
    "to_one_precision": "labels re-labeled to 1 that are positive",
}


def relabel_outcomes(state, noisy_labels, true_labels, refined_targets, *,
                     classes=None) -> dict[str, float]:
    """What label management (docs/method.md §1.4) did to each kind of given label, when
    the true labels are known: the shares of :data:`RELABEL_OUTCOMES`.

    Where :func:`selection_quality` asks how well labels are sorted, this asks what
    happened to the positives: correct positives lost to 0 or down-weighted as ambiguous,
    wrong positives corrected to 0, hidden (given as 0) positives recovered as 1, and how
    many of the labels turned to 1 are truly positive. A correct positive is given 1 and
    truly 1, a wrong positive given 1 and truly 0, a hidden positive given 0 and truly 1;
    "re-labeled to v" is state RELABELED with refined target v.

    Parameters
    ----------
    state : (N, K) uint8 :class:`LabelState` values
    noisy_labels, true_labels : (N, K) values in {0, 1}
    refined_targets : (N, K) values in {0, 1} (``ManagedLabels.targets``)
        Torch tensors (any device) or numpy arrays.
    classes : (K,) bool, optional
        Count only these classes (e.g. one shot group); default all.

    Returns
    -------
    dict
        Outcome name → share in [0, 1], NaN where no label of the named kind exists
        (e.g. wrong positives without synthetic noise).
    """
    state, noisy, truth, refined = _judged_labels(state, noisy_labels, true_labels,
                                                  refined_targets)
    check_binary(refined, "refined_targets")
    given, true, target = noisy.bool(), truth.bool(), refined.bool()
    if classes is not None:
        keep = torch.as_tensor(np.asarray(classes, dtype=bool))
        if keep.shape != (given.shape[1],):
            raise ValueError(f"classes must be a bool mask of shape ({given.shape[1]},), "
                             f"got {tuple(keep.shape)}")
        state, given, true, target = state[:, keep], given[:, keep], true[:, keep], target[:, keep]
    relabeled = state == int(RELABELED)
    to_zero, to_one = relabeled & ~target, relabeled & target
    correct_positive, wrong_positive, hidden = given & true, given & ~true, ~given & true

    def share(part: torch.Tensor, whole: torch.Tensor) -> float:
        return float(_ratio(torch.count_nonzero(part), torch.count_nonzero(whole)))

    return {
        "correct_positives_to_zero": share(correct_positive & to_zero, correct_positive),
        "correct_positives_ambiguous": share(correct_positive & (state == int(AMBIGUOUS)),
                                             correct_positive),
        "wrong_positives_to_zero": share(wrong_positive & to_zero, wrong_positive),
        "hidden_positives_to_one": share(hidden & to_one, hidden),
        "to_one_precision": share(~given & to_one & true, ~given & to_one),
    }
