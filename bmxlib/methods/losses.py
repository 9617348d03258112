"""Loss functions and selection rules of the docs/method.md §4 baselines.

Every loss takes ``logits`` (B, K) float and ``targets`` (B, K) float in [0, 1] (targets
may be soft, e.g. mixed by mixup) and returns the *per-element* loss matrix (B, K) in the
logits' dtype and on their device. Callers reduce with ``loss.sum(1).mean()`` (sum over
labels, mean over the batch), the convention BalanceMix uses (docs/method.md §1.5), so that all
methods are compared on the same scale.

Contents
--------
focal_loss                  Lin et al. 2017, soft-target generalisation.
asymmetric_loss             Ridnik et al. 2021 (ASL).
distribution_balanced_loss  Wu et al. 2020 (DB loss).
large_loss_modify           Kim et al. 2022, LL-R ("reject") and LL-Ct ("correct").
large_loss_clean_rate       the LL clean-rate schedule.

The instance-level rules (co-teaching's selection, ROS's weights) are in
``bmxlib.methods.selection``.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "LargeLossResult",
    "asymmetric_loss",
    "check_real",
    "distribution_balanced_loss",
    "focal_loss",
    "large_loss_clean_rate",
    "large_loss_modify",
]


# --------------------------------------------------------------------------- validation


def _check_logits_targets(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Validate the (logits, targets) pair; return targets cast to the logits' dtype."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError("logits must be a floating-point torch.Tensor")
    if not isinstance(targets, torch.Tensor):
        raise TypeError("targets must be a torch.Tensor")
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (B, K), got {tuple(logits.shape)}")
    if targets.shape != logits.shape:
        raise ValueError(
            f"targets shape {tuple(targets.shape)} differs from logits shape {tuple(logits.shape)}"
        )
    if targets.device != logits.device:
        raise ValueError(f"targets are on {targets.device} but logits on {logits.device}")
    targets = targets.to(logits.dtype)
    # One combined check keeps it to a single device synchronisation.
    if targets.numel() and bool(((targets < 0) | (targets > 1) | targets.isnan()).any()):
        raise ValueError("targets must lie in [0, 1]")
    return targets


def check_real(name: str, value, *, low: float = -math.inf, high: float = math.inf) -> float:
    """Return ``value`` as float if it is a real number in [low, high], else raise."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not low <= value <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value}")
    return value


# --------------------------------------------------------------------------- focal


def focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | None = None,
) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al., ICCV 2017), per element.

    ``−[a·y·(1−p)^γ·log p + (1−a)·(1−y)·p^γ·log(1−p)]`` with ``p = sigmoid(z)``; this is
    the standard generalisation to soft targets ``y`` and equals the usual focal loss for
    y ∈ {0, 1}. ``a = alpha`` when given, otherwise both terms have weight 1. Gradients
    flow through the modulating factor, as in the original.

    Parameters
    ----------
    logits : torch.Tensor, float, shape (B, K)
    targets : torch.Tensor, shape (B, K), values in [0, 1]
    gamma : float >= 0
        Focusing parameter; 0 gives plain BCE.
    alpha : float in [0, 1] or None
        Weight of the positive term (the negative term gets ``1 − alpha``).

    Returns
    -------
    torch.Tensor, shape (B, K), logits' dtype and device, values >= 0.
    """
    targets = _check_logits_targets(logits, targets)
    gamma = check_real("gamma", gamma, low=0.0)
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    # (1 − p)^γ and p^γ through exp(γ·log) stay finite for any logit.
    positive = targets * torch.exp(gamma * log_not_p) * (-log_p)
    negative = (1 - targets) * torch.exp(gamma * log_p) * (-log_not_p)
    if alpha is not None:
        alpha = check_real("alpha", alpha, low=0.0, high=1.0)
        positive = alpha * positive
        negative = (1 - alpha) * negative
    return positive + negative


# --------------------------------------------------------------------------- ASL


def asymmetric_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    eps: float = 1e-8,
    detach_focusing: bool = False,
) -> torch.Tensor:
    """Asymmetric loss (Ridnik et al., ICCV 2021), per element.

    With ``p = sigmoid(z)`` and the shifted probability ``p_m = max(p − clip, 0)``::

        L = −[ y·(1−p)^γ+·log p + (1−y)·p_m^γ−·log(1 − p_m) ]

    (the soft-target generalisation; equal to ASL for y ∈ {0, 1}). Probability shifting
    hard-thresholds easy negatives (p <= clip gives exactly 0 loss) and, with γ− > γ+,
    down-weights the abundant negatives.

    Gradients flow through the focusing weights by default (docs/method.md §4). The public
    implementation's ``disable_torch_grad_focal_loss`` option toggles the *global*
    ``torch.set_grad_enabled`` switch around the weight computation, a known pitfall (it
    leaks into other code if an exception occurs and is not thread-local to the loss);
    here the same intent is an explicit ``detach_focusing=True``, which computes the
    weights from detached logits.

    Parameters
    ----------
    logits : torch.Tensor, float, shape (B, K)
    targets : torch.Tensor, shape (B, K), values in [0, 1]
    gamma_pos, gamma_neg : float >= 0
        Focusing parameters of the positive and negative terms.
    clip : float in [0, 1)
        Probability margin ``m`` of the negative term; 0 disables shifting.
    eps : float in [0, 1)
        Log-probabilities are floored at ``log(eps)`` as in the reference implementation
        (this caps each term and zeroes its gradient for extreme logits); 0 disables the
        floor. Logs are computed with log-sigmoid, so no eps is needed for stability.
    detach_focusing : bool
        If True, no gradient flows through ``(1−p)^γ+`` and ``p_m^γ−``.

    Returns
    -------
    torch.Tensor, shape (B, K), logits' dtype and device, values >= 0.
    """
    targets = _check_logits_targets(logits, targets)
    gamma_pos = check_real("gamma_pos", gamma_pos, low=0.0)
    gamma_neg = check_real("gamma_neg", gamma_neg, low=0.0)
    clip = check_real("clip", clip, low=0.0, high=1.0 - 1e-12)
    eps = check_real("eps", eps, low=0.0, high=1.0 - 1e-12)

    log_p = F.logsigmoid(logits)
    if clip > 0:
        # log(1 − p_m) = log(min(1 − p + m, 1)); 1 − p + m >= m > 0, so the log is safe.
        log_not_shifted = torch.log((torch.sigmoid(-logits) + clip).clamp(max=1.0))
    else:
        log_not_shifted = F.logsigmoid(-logits)
    if eps > 0:
        log_p = log_p.clamp(min=math.log(eps))
        log_not_shifted = log_not_shifted.clamp(min=math.log(eps))

    focus_logits = logits.detach() if detach_focusing else logits
    weight_pos = torch.exp(gamma_pos * F.logsigmoid(-focus_logits))  # (1 − p)^γ+
    if gamma_neg == 0:
        weight_neg = torch.ones_like(focus_logits)  # avoids 0^0 and its gradient
    else:
        shifted = (torch.sigmoid(focus_logits) - clip).clamp(min=0.0)
        weight_neg = shifted.pow(gamma_neg)
    return -(targets * weight_pos * log_p + (1 - targets) * weight_neg * log_not_shifted)


# --------------------------------------------------------------------------- DB loss


def _class_counts(class_freq, num_classes: int, train_num: float, like: torch.Tensor):
    """Validate per-class positive counts; return them as float64 on ``like``'s device."""
    if isinstance(class_freq, torch.Tensor):
        counts = class_freq.detach().to(device=like.device, dtype=torch.float64)
    else:
        counts = torch.as_tensor(np.asarray(class_freq, dtype=np.float64), device=like.device)
    if counts.shape != (num_classes,):
        raise ValueError(f"class_freq must have shape ({num_classes},), got {tuple(counts.shape)}")
    if not bool(torch.isfinite(counts).all()) or bool((counts < 0).any()):
        raise ValueError("class_freq must hold finite non-negative counts")
    if bool((counts > train_num).any()):
        raise ValueError(f"class_freq counts must not exceed train_num={train_num}")
    # A class absent from (or present in every instance of) the training set would give
    # an infinite weight or bias; clamping keeps both finite.
    return counts.clamp(min=1.0, max=train_num - 1.0)


def _rebalanced_weight(
    targets: torch.Tensor, counts: torch.Tensor, *, alpha: float, beta: float, mu: float
) -> torch.Tensor:
    """r̂ = alpha + sigmoid(beta·(r − mu)), r = (1/n_k) / Σ_{i ∈ pos(x)} 1/n_i, (B, K)."""
    inverse = 1.0 / counts  # (K,)
    positives = (targets > 0.5).to(torch.float64)
    instance_rate = positives @ inverse  # (B,) expected repeat rate of the instance
    has_positive = instance_rate > 0
    ratio = inverse.unsqueeze(0) / instance_rate.clamp(min=1e-300).unsqueeze(1)
    weight = alpha + torch.sigmoid(beta * (ratio - mu))
    # No positives: r = inf, so r̂ is the limit alpha + sigmoid(beta·inf) (the authors' code
    # divides by zero and gets alpha + 1; beta = 0 gives alpha + 1/2, not their NaN).
    limit = alpha + (1.0 if beta > 0 else 0.5)
    weight = torch.where(has_positive.unsqueeze(1), weight, torch.full_like(weight, limit))
    return weight.to(targets.dtype)


def distribution_balanced_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    class_freq,
    train_num: int,
    *,
    alpha: float = 0.1,
    beta: float = 10.0,
    mu: float = 0.2,
    neg_lambda: float = 2.0,
    kappa: float = 0.05,
    gamma: float = 2.0,
    balance_param: float = 2.0,
) -> torch.Tensor:
    """Distribution-Balanced loss (Wu et al., ECCV 2020), per element.

    Re-balanced weighting. With ``n_k`` the positive count of class k,
    ``P^C_k(x) = (1/K)·(1/n_k)`` and ``P^I(x) = (1/K)·Σ_{i ∈ pos(x)} 1/n_i`` (the 1/K
    cancels), ``r = P^C / P^I`` and ``r̂ = alpha + sigmoid(beta·(r − mu))``, applied to
    all K labels of the instance (positives and negatives alike, as in the paper).
    ``pos(x)`` are the labels with ``target > 0.5`` so that soft (mixed) targets get the
    weights of their dominant labels. An instance without positives has ``r = ∞`` and
    ``r̂ = alpha + 1`` (the value the authors' code reaches; ``alpha + 1/2`` if beta = 0).

    Negative-tolerant regularisation. ``ρ_k = n_k / train_num``, prior log-odds
    ``b̂_k = −log(1/ρ_k − 1)``, shifted logit ``z' = z + ν_k`` with ``ν_k = kappa·b̂_k/λ``,
    ``λ = neg_lambda``::

        L = balance_param · r̂ · [ y·(1−q⁺)^γ·(−log q⁺) + (1−y)/λ·(1−q⁻)^γ·(−log q⁻) ]
        q⁺ = sigmoid(z'),  q⁻ = sigmoid(−λ·z')

    The shift and its scale follow the authors' public implementation (it adds
    ``kappa·b̂_k/λ`` to the logits before multiplying negative logits by λ), rather than
    the paper's ``z − ν`` notation: b̂_k < 0 for classes rarer than 50%, so the shift lowers
    the logits and negatives are suppressed less — the stated intent. ``balance_param``
    is the constant factor of the authors' focal term (2.0 in their DB configs).

    Parameters
    ----------
    logits : torch.Tensor, float, shape (B, K)
    targets : torch.Tensor, shape (B, K), values in [0, 1]
    class_freq : array-like or torch.Tensor, shape (K,)
        Positive count per class in the training set; clamped to [1, train_num − 1].
    train_num : int >= 2
        Number of training instances N.
    alpha, beta, mu : float
        Smoothing map of the re-balanced weight; beta >= 0.
    neg_lambda : float > 0
        λ of the negative-tolerant regularisation.
    kappa : float >= 0
        Scale of the class-prior bias.
    gamma : float >= 0
        Focal focusing parameter.
    balance_param : float >= 0
        Constant loss multiplier.

    Returns
    -------
    torch.Tensor, shape (B, K), logits' dtype and device, values >= 0 when alpha >= 0.
    """
    targets = _check_logits_targets(logits, targets)
    train_num = check_real("train_num", train_num, low=2.0)
    alpha = check_real("alpha", alpha)
    beta = check_real("beta", beta, low=0.0)
    mu = check_real("mu", mu)
    neg_lambda = check_real("neg_lambda", neg_lambda, low=1e-12)
    kappa = check_real("kappa", kappa, low=0.0)
    gamma = check_real("gamma", gamma, low=0.0)
    balance_param = check_real("balance_param", balance_param, low=0.0)
    counts = _class_counts(class_freq, logits.shape[1], train_num, logits)

    weight = _rebalanced_weight(targets, counts, alpha=alpha, beta=beta, mu=mu)
    prior = counts / train_num
    prior_log_odds = torch.log(prior) - torch.log1p(-prior)  # b̂_k = −log(1/ρ_k − 1)
    shifted = logits + (kappa * prior_log_odds / neg_lambda).to(logits.dtype)

    # Positive term: BCE on z' with focal factor (1 − sigmoid(z'))^γ.
    positive = torch.exp(gamma * F.logsigmoid(-shifted)) * (-F.logsigmoid(shifted))
    # Negative term: BCE on λ·z' scaled by 1/λ, focal factor sigmoid(λ·z')^γ.
    scaled = neg_lambda * shifted
    negative = torch.exp(gamma * F.logsigmoid(scaled)) * (-F.logsigmoid(-scaled)) / neg_lambda
    return balance_param * weight * (targets * positive + (1 - targets) * negative)


# --------------------------------------------------------------------------- large loss


class LargeLossResult(NamedTuple):
    """Output of :func:`large_loss_modify`.

    Attributes
    ----------
    loss : torch.Tensor, shape (B, K)
        Per-element loss after rejection or correction.
    modified : torch.Tensor, bool, shape (B, K)
        The entries that were rejected or corrected.
    targets : torch.Tensor, shape (B, K)
        Targets after modification (1 at corrected entries; unchanged for "reject").
    """

    loss: torch.Tensor
    modified: torch.Tensor
    targets: torch.Tensor


def large_loss_clean_rate(epoch: int, *, delta_rel: float) -> float:
    """Clean rate of the Large-Loss schedule (Kim et al., CVPR 2022).

    ``1`` at epoch 1 (nothing is modified), then ``1 − delta_rel·(epoch − 1)``, clamped
    at 0.

    Parameters
    ----------
    epoch : int >= 1
        1-based epoch number.
    delta_rel : float in [0, 1]
        Drop of the clean rate per epoch (e.g. 0.1 for 20 epochs, 0.04 for 50).

    Returns
    -------
    float in [0, 1]
    """
    if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer):
        raise TypeError(f"epoch must be an int, got {type(epoch).__name__}")
    if epoch < 1:
        raise ValueError(f"epoch must be >= 1 (1-based), got {epoch}")
    delta_rel = check_real("delta_rel", delta_rel, low=0.0, high=1.0)
    return max(0.0, 1.0 - delta_rel * (int(epoch) - 1))


def _num_to_modify(num_entries: int, clean_rate: float) -> int:
    """k = ceil(B·K·(1 − clean_rate)), robust to float noise such as 1 − 0.7 > 0.3."""
    return min(num_entries, math.ceil(round(num_entries * (1.0 - clean_rate), 6)))


def _largest_candidates(loss: torch.Tensor, candidate: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of the k largest ``loss`` entries among ``candidate`` (all if fewer)."""
    selected = torch.zeros(loss.numel(), dtype=torch.bool, device=loss.device)
    if k > 0:
        scores = loss.detach().masked_fill(~candidate, -math.inf).flatten()
        selected[torch.topk(scores, k, sorted=False).indices] = True
    # topk may fill up with non-candidates when there are fewer than k candidates.
    return selected.view_as(candidate) & candidate


def large_loss_modify(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    clean_rate: float,
    mode: str,
    candidates: torch.Tensor | None = None,
) -> LargeLossResult:
    """Large-loss rejection (LL-R) or temporary correction (LL-Ct), Kim et al. CVPR 2022.

    Candidates are the unobserved / negative labels, ``target == 0`` (or the given
    ``candidates`` mask, e.g. the observed zeros of a mixed batch's dominant instances).
    Among them the ``k = ceil(B·K·(1 − clean_rate))`` entries with the largest BCE
    (against their target) are modified: ``mode="reject"`` sets their loss to 0,
    ``mode="correct"`` sets their target to 1 (their loss becomes BCE against 1). All
    candidates are modified when there are fewer than k. All other entries keep BCE
    against their (possibly soft) target.

    Exactly k candidates are selected (ties broken arbitrarily). The public
    implementation thresholds at the k-th largest value with strict comparisons, so ties
    are all modified and, when k exceeds the candidates, observed positives (masked to
    loss 0) get modified too; here only candidates are ever selected. For permanent
    correction (LL-Cp) the intent is ``k = ceil(B·K·δ_rel)`` every epoch with the
    corrected targets written back to the stored labels; the public code selects that k
    with ``mod_scheme is 'LL-Cp'`` (an identity, not equality, comparison, so it may fall
    through to the LL-Ct rate). Here LL-Cp is ``mode="correct"`` with
    ``clean_rate = 1 − δ_rel`` and the caller storing ``result.targets``.

    Parameters
    ----------
    logits : torch.Tensor, float, shape (B, K)
    targets : torch.Tensor, shape (B, K), values in [0, 1]
    clean_rate : float in [0, 1]
        From :func:`large_loss_clean_rate`; 1 modifies nothing.
    mode : {"reject", "correct"}
    candidates : torch.Tensor, bool, shape (B, K), optional
        The entries that may be modified (default: ``targets == 0``).

    Returns
    -------
    LargeLossResult
        ``(loss (B, K), modified (B, K) bool, targets (B, K))`` on the logits' device.
        Reduce ``loss`` with ``.sum(1).mean()``.
    """
    targets = _check_logits_targets(logits, targets)
    clean_rate = check_real("clean_rate", clean_rate, low=0.0, high=1.0)
    if mode not in ("reject", "correct"):
        raise ValueError(f"mode must be 'reject' or 'correct', got {mode!r}")

    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    if candidates is None:
        candidate = targets == 0
    else:
        if candidates.shape != targets.shape or candidates.dtype != torch.bool:
            raise ValueError("candidates must be a bool tensor shaped like targets")
        candidate = candidates.to(targets.device)
    # On candidates `loss` is the BCE against their target (0 when unmixed) used for ranking.
    modified = _largest_candidates(loss, candidate, _num_to_modify(loss.numel(), clean_rate))
    if mode == "reject":
        return LargeLossResult(loss.masked_fill(modified, 0.0), modified, targets)
    corrected_loss = F.softplus(-logits)  # BCE against target 1
    new_targets = targets.masked_fill(modified, 1.0)
    return LargeLossResult(torch.where(modified, corrected_loss, loss), modified, new_targets)
