"""Batched two-component 1-D Gaussian mixtures for clean-label detection (SPEC §1.4).

BalanceMix fits 2K independent mixtures per epoch, one per (class k, given label value l),
on the min-max normalised BCE losses of the labels in that group. This module fits all
of them at once with tensor operations, replicating scikit-learn's
``GaussianMixture(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4)``:

* initialisation: sklearn runs k-means (k-means++ seeding + Lloyd). In 1-D we use the
  *optimal* 2-means split (found exactly from sorted prefix sums, no randomness); each
  value is then assigned to the nearer of the two centres, exactly as k-means labels do,
  and the initial weights / means / variances come from those hard responsibilities.
* EM: the same E- and M-steps as sklearn (``nk + 10·eps``, ``var + reg_covar``), stopping a
  group once the change of its mean log-likelihood is below ``tol``; the parameters of a
  converged group are frozen, as sklearn breaks out of its loop.

Everything is computed in float64 (also on CUDA): the data are tiny (2K × N values), the
prefix-sum split and the log-likelihood bound lose precision in float32, and sklearn, the
parity oracle, works in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "GMMFit",
    "CleanProbabilityFit",
    "fit_gmm_batched",
    "clean_probability",
    "clean_probability_with_fit",
]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class GMMFit:
    """Parameters of G independent two-component 1-D Gaussian mixtures.

    Attributes
    ----------
    means, variances, weights : torch.Tensor, shape (G, 2), float64
        Component parameters (variances include ``reg_covar``; weights sum to 1 per group).
        NaN for groups that were not fitted (fewer than 2 members).
    converged : torch.Tensor, shape (G,), bool
        Whether the change of the mean log-likelihood fell below ``tol``.
    n_iter : torch.Tensor, shape (G,), int64
        EM iterations run per group (0 for groups that were not fitted).
    fitted : torch.Tensor, shape (G,), bool
        False for groups with fewer than 2 members.
    """

    means: torch.Tensor
    variances: torch.Tensor
    weights: torch.Tensor
    converged: torch.Tensor
    n_iter: torch.Tensor
    fitted: torch.Tensor

    def log_responsibilities(self, values: torch.Tensor) -> torch.Tensor:
        """Log posterior of each component, shape (G, N, 2), for values of shape (G, N)."""
        values = torch.as_tensor(values, device=self.means.device).to(self.means.dtype)
        weighted = _weighted_log_prob(values, self.means, self.variances, self.weights)
        return weighted - torch.logsumexp(weighted, dim=-1, keepdim=True)

    def posterior_low(self, values: torch.Tensor) -> torch.Tensor:
        """Posterior of the smaller-mean component, shape (G, N), float64 in [0, 1].

        NaN for groups that were not fitted.
        """
        log_resp = self.log_responsibilities(values)
        low = self.means.argmin(dim=1)  # (G,)
        index = low[:, None, None].expand(-1, log_resp.shape[1], 1)
        return log_resp.gather(2, index).squeeze(2).exp()


@dataclass
class CleanProbabilityFit:
    """The 2K mixtures behind :func:`clean_probability`, shaped (K, 2 label values, ...).

    Index ``[k, l]`` is the group of class k with given label value l; the last axis of
    ``means`` / ``variances`` / ``weights`` indexes the two components (in fit order, not
    sorted). Parameters live on the min-max normalised loss scale; ``loss_min`` and
    ``loss_max`` are the raw-loss bounds used to normalise. Degenerate groups (fewer than
    2 members or all losses equal) have NaN parameters and ``degenerate`` True; their
    labels get p_G = 1. ``low_component`` (K, 2) is the index of the smaller-mean (clean)
    component. All tensors are float64 (bool / int64 for flags) on the input device.
    """

    means: torch.Tensor
    variances: torch.Tensor
    weights: torch.Tensor
    low_component: torch.Tensor
    loss_min: torch.Tensor
    loss_max: torch.Tensor
    counts: torch.Tensor
    degenerate: torch.Tensor
    converged: torch.Tensor
    n_iter: torch.Tensor


def _component_log_prob(values, mean, variance, weight):
    """log w + log N(x | mu, var) for one component; params (G,), values (G, N)."""
    tiny = torch.finfo(variance.dtype).tiny  # guards zero variance / weight against -inf
    variance = variance.clamp_min(tiny)
    offset = weight.clamp_min(tiny).log() - 0.5 * (_LOG_2PI + variance.log())
    diff = values - mean[:, None]
    return offset[:, None] - 0.5 * diff * diff / variance[:, None]


def _weighted_log_prob(values, means, variances, weights):
    """log w_c + log N(x | mu_c, var_c), shape (G, N, 2)."""
    return torch.stack(
        [_component_log_prob(values, means[:, c], variances[:, c], weights[:, c]) for c in (0, 1)],
        dim=2,
    )


def _moments(values, weight):
    """Per-group zeroth, first and second moments of ``values`` under ``weight``, (G, 3)."""
    weighted = weight * values
    return torch.stack(
        [weight.sum(dim=1), weighted.sum(dim=1), (weighted * values).sum(dim=1)], dim=1
    )


def _m_step(member_moments, high_moments, reg_covar):
    """sklearn's M-step in closed form for two components.

    The low component's moments are the members' minus the high component's, because
    its responsibilities are ``1 - r_high`` on members; this halves the work per step.
    """
    eps = torch.finfo(member_moments.dtype).eps
    moments = torch.stack([member_moments - high_moments, high_moments], dim=1)  # (G, 2, 3)
    nk = moments[..., 0] + 10.0 * eps  # the eps keeps empty components finite (sklearn)
    means = moments[..., 1] / nk
    # sum r (x - mu)^2 / nk, expanded; float64 on centred data keeps this accurate.
    spread = moments[..., 2] - means * (2.0 * moments[..., 1] - means * moments[..., 0])
    variances = (spread / nk).clamp_min(0.0) + reg_covar
    weights = nk / nk.sum(dim=1, keepdim=True)
    return means, variances, weights


def _e_step(values, member, means, variances, weights):
    """Responsibility of the second component (G, N) and the mean log-likelihood (G,)."""
    log_w0 = _component_log_prob(values, means[:, 0], variances[:, 0], weights[:, 0])
    log_w1 = _component_log_prob(values, means[:, 1], variances[:, 1], weights[:, 1])
    # log(e^a0 + e^a1) = a0 + softplus(a1 - a0); the posterior of 1 is sigmoid(a1 - a0).
    gap = log_w1 - log_w0
    log_norm = log_w0 + torch.nn.functional.softplus(gap)
    resp_high = torch.sigmoid(gap) * member
    bound = (log_norm * member).sum(dim=1) / member.sum(dim=1).clamp_min(1.0)
    return resp_high, bound


def _two_means_init(values, mask, counts):
    """Hard responsibility (G, N) of the upper cluster of the optimal 1-D 2-means split."""
    num_groups, num_items = values.shape
    # Members sorted ascending; non-members pushed to the end and then zeroed for the sums.
    ordered = torch.where(mask, values, torch.inf).sort(dim=1).values
    position = torch.arange(num_items, device=values.device)
    member = position[None, :] < counts[:, None]
    ordered = torch.where(member, ordered, 0.0)
    prefix_sum = ordered.cumsum(dim=1)
    prefix_sq = (ordered * ordered).cumsum(dim=1)
    left_n = (position + 1).to(values.dtype)[None, :]  # split after position i
    right_n = counts[:, None].to(values.dtype) - left_n
    total_sum, total_sq = prefix_sum[:, -1:], prefix_sq[:, -1:]
    left_sse = prefix_sq - prefix_sum**2 / left_n
    right_sse = (total_sq - prefix_sq) - (total_sum - prefix_sum) ** 2 / right_n.clamp_min(1)
    valid_split = right_n >= 1
    split = torch.where(valid_split, left_sse + right_sse, torch.inf).argmin(dim=1)  # (G,)
    left_sum = prefix_sum.gather(1, split[:, None]).squeeze(1)
    left_count = (split + 1).to(values.dtype)
    right_count = (counts.to(values.dtype) - left_count).clamp_min(1)
    centre_low = left_sum / left_count
    centre_high = (total_sum.squeeze(1) - left_sum) / right_count
    # Like k-means labels_: each member goes to the nearer centre (ties to the first).
    to_high = (values - centre_high[:, None]).abs() < (values - centre_low[:, None]).abs()
    return (to_high & mask).to(values.dtype)


def _check_fit_options(max_iter, tol, reg_covar):
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    if not (tol >= 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    if not (reg_covar >= 0 and math.isfinite(reg_covar)):
        raise ValueError(f"reg_covar must be a finite number >= 0, got {reg_covar!r}")


def _compute_dtype(device: torch.device) -> torch.dtype:
    # MPS has no float64; everywhere else float64 (see module docstring).
    return torch.float32 if device.type == "mps" else torch.float64


def fit_gmm_batched(
    values: torch.Tensor,
    mask: torch.Tensor,
    *,
    max_iter: int = 10,
    tol: float = 1e-2,
    reg_covar: float = 5e-4,
) -> GMMFit:
    """Fit G independent two-component 1-D Gaussian mixtures by EM, all at once.

    Parameters
    ----------
    values : torch.Tensor, shape (G, N), float
        Row g holds the data of group g at the positions where ``mask[g]`` is True;
        other entries are ignored (they may be anything finite or not).
    mask : torch.Tensor, shape (G, N), bool
        Group membership.
    max_iter, tol, reg_covar
        As in sklearn's ``GaussianMixture``: at most ``max_iter`` EM iterations; a group
        stops when its mean log-likelihood changes by less than ``tol``; ``reg_covar`` is
        added to every variance.

    Returns
    -------
    GMMFit
        float64 parameters on the device of ``values``.
    """
    _check_fit_options(max_iter, tol, reg_covar)
    values = torch.as_tensor(values)
    mask = torch.as_tensor(mask, device=values.device)
    if values.dim() != 2 or mask.shape != values.shape:
        raise ValueError(
            f"values and mask must both have shape (G, N); got {tuple(values.shape)} "
            f"and {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, got {mask.dtype}")
    if not values.is_floating_point():
        raise TypeError(f"values must be a float tensor, got {values.dtype}")
    dtype = _compute_dtype(values.device)
    counts = mask.sum(dim=1)
    fitted = counts >= 2
    member = mask.to(dtype)
    # Centre each group (EM and 2-means are shift-equivariant) so moments stay accurate;
    # non-members are zeroed so that no NaN/inf can leak into the masked sums.
    raw = torch.where(mask, values.to(dtype), 0.0)
    shift = raw.sum(dim=1) / counts.clamp_min(1)
    data = torch.where(mask, raw - shift[:, None], 0.0)
    member_moments = _moments(data, member)
    resp_high = _two_means_init(data, mask, counts)
    means, variances, weights = _m_step(member_moments, _moments(data, resp_high), reg_covar)
    active = fitted.clone()
    converged = torch.zeros_like(fitted)
    n_iter = torch.zeros_like(counts)
    lower_bound = torch.full_like(shift, -torch.inf)
    for _ in range(max_iter):
        resp_high, new_bound = _e_step(data, member, means, variances, weights)
        new_means, new_vars, new_weights = _m_step(
            member_moments, _moments(data, resp_high), reg_covar
        )
        # Converged groups keep their parameters, as sklearn leaves its loop.
        keep = ~active[:, None]
        means = torch.where(keep, means, new_means)
        variances = torch.where(keep, variances, new_vars)
        weights = torch.where(keep, weights, new_weights)
        n_iter = n_iter + active.long()
        just_converged = active & ((new_bound - lower_bound).abs() < tol)
        lower_bound = torch.where(active, new_bound, lower_bound)
        converged = converged | just_converged
        active = active & ~just_converged
    means = means + shift[:, None]
    nan = torch.full_like(means, torch.nan)
    unfit = ~fitted[:, None]
    return GMMFit(
        means=torch.where(unfit, nan, means),
        variances=torch.where(unfit, nan, variances),
        weights=torch.where(unfit, nan, weights),
        converged=converged,
        n_iter=n_iter,
        fitted=fitted,
    )


def _as_float_tensor(array, name: str) -> torch.Tensor:
    if isinstance(array, np.ndarray):
        array = torch.from_numpy(array)
    if not isinstance(array, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(array)}")
    return array


def _validate_inputs(losses, labels):
    losses = _as_float_tensor(losses, "losses")
    labels = _as_float_tensor(labels, "labels").to(losses.device)
    if losses.dim() != 2 or labels.shape != losses.shape:
        raise ValueError(
            f"losses and labels must both have shape (N, K); got {tuple(losses.shape)} "
            f"and {tuple(labels.shape)}"
        )
    if not losses.is_floating_point():
        raise TypeError(f"losses must be a float array, got {losses.dtype}")
    if not torch.isfinite(losses).all():
        raise ValueError("losses must be finite")
    if not ((labels == 0) | (labels == 1)).all():
        raise ValueError("labels must contain only 0 and 1")
    return losses, labels.long()


def _group_layout(losses, labels, dtype):
    """Per-group (row 2k + l) normalised losses, membership, and the min / max used."""
    values = losses.to(dtype).T.repeat_interleave(2, dim=0)  # (2K, N)
    label_value = torch.arange(2, device=losses.device).repeat(losses.shape[1])  # (2K,)
    mask = labels.T.repeat_interleave(2, dim=0) == label_value[:, None]
    low = torch.where(mask, values, torch.inf).amin(dim=1)
    high = torch.where(mask, values, -torch.inf).amax(dim=1)
    # "All losses equal": a spread of a few ulps of the input dtype is rounding noise.
    scale = torch.maximum(high.abs(), torch.ones_like(high))
    flat = (high - low) <= 4 * torch.finfo(losses.dtype).eps * scale
    degenerate = (mask.sum(dim=1) < 2) | flat
    span = torch.where(degenerate, 1.0, high - low)
    normalised = torch.where(mask, (values - low[:, None]) / span[:, None], 0.0)
    low = torch.where(mask.any(dim=1), low, torch.nan)
    high = torch.where(mask.any(dim=1), high, torch.nan)
    return normalised, mask & ~degenerate[:, None], degenerate, low, high, mask.sum(dim=1)


def clean_probability_with_fit(
    losses,
    labels,
    *,
    max_iter: int = 10,
    tol: float = 1e-2,
    reg_covar: float = 5e-4,
) -> tuple[torch.Tensor, CleanProbabilityFit]:
    """:func:`clean_probability` plus the 2K fitted mixtures (see :class:`CleanProbabilityFit`).

    Returns
    -------
    (p_clean, fit) : (torch.Tensor (N, K) float32, CleanProbabilityFit)
    """
    _check_fit_options(max_iter, tol, reg_covar)
    losses, labels = _validate_inputs(losses, labels)
    num_items, num_classes = losses.shape
    dtype = _compute_dtype(losses.device)
    values, mask, degenerate, low, high, counts = _group_layout(losses, labels, dtype)
    fit = fit_gmm_batched(values, mask, max_iter=max_iter, tol=tol, reg_covar=reg_covar)
    posterior = fit.posterior_low(values)  # (2K, N); NaN rows for unfitted groups
    posterior = torch.where(degenerate[:, None], 1.0, posterior)
    # Pick, for every label, the row of its own group: row 2k + label.
    per_class = posterior.view(num_classes, 2, num_items)
    p_clean = per_class.gather(1, labels.T[:, None, :]).squeeze(1).T
    out_dtype = losses.dtype if losses.dtype in (torch.float32, torch.float64) else torch.float32
    shape3 = (num_classes, 2, 2)
    record = CleanProbabilityFit(
        means=fit.means.view(shape3),
        variances=fit.variances.view(shape3),
        weights=fit.weights.view(shape3),
        low_component=torch.nan_to_num(fit.means).argmin(dim=1).view(num_classes, 2),
        loss_min=low.view(num_classes, 2),
        loss_max=high.view(num_classes, 2),
        counts=counts.view(num_classes, 2),
        degenerate=degenerate.view(num_classes, 2),
        converged=fit.converged.view(num_classes, 2),
        n_iter=fit.n_iter.view(num_classes, 2),
    )
    return p_clean.to(out_dtype).contiguous(), record


def clean_probability(
    losses,
    labels,
    *,
    max_iter: int = 10,
    tol: float = 1e-2,
    reg_covar: float = 5e-4,
) -> torch.Tensor:
    """Clean probability p_G of every label from 2K loss mixtures (SPEC §1.4).

    For each class k and given label value l, the BCE losses of the labels with
    ``labels[n, k] == l`` are min-max normalised and a two-component Gaussian mixture is
    fitted (sklearn settings, see module docstring); p_G is the posterior of the component
    with the smaller mean. Degenerate groups (fewer than 2 members, or all losses equal up
    to a few ulps of the input dtype) give p_G = 1.

    Parameters
    ----------
    losses : torch.Tensor or np.ndarray, shape (N, K), float, finite
        BCE of each label against its given value.
    labels : torch.Tensor or np.ndarray, shape (N, K), values in {0, 1}
        The given (noisy) labels.
    max_iter, tol, reg_covar
        EM settings (sklearn ``GaussianMixture`` semantics).

    Returns
    -------
    torch.Tensor, shape (N, K), dtype of ``losses`` (float32 for other dtypes), in [0, 1]
        On the device of ``losses``; never NaN.
    """
    p_clean, _ = clean_probability_with_fit(
        losses, labels, max_iter=max_iter, tol=tol, reg_covar=reg_covar
    )
    return p_clean
