"""The batched EM behind ``bmxlib.gmm``: G independent two-component 1-D Gaussian
mixtures fitted at once, replicating scikit-learn's ``GaussianMixture(n_components=2,
max_iter=10, tol=1e-2, reg_covar=5e-4)`` (see the ``bmxlib.gmm`` docstring for the design:
the optimal 2-means initialisation, the quadratic log-odds E-step, the moments from one
batched product with the planes [member, x, x²], converged groups leaving the working set).

Everything here works on padded (G, M) rows with a membership mask; ``bmxlib.gmm`` packs
and chunks the 2K label groups into such rows and is the public entry point.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------------------
# densities (the public GMMFit methods; the fit itself uses the quadratic form below)
# --------------------------------------------------------------------------------------
def component_log_prob(values, mean, variance, weight):
    """log w + log N(x | mu, var) for one component; params (G,), values (G, N)."""
    tiny = torch.finfo(variance.dtype).tiny  # guards zero variance / weight against -inf
    variance = variance.clamp_min(tiny)
    offset = weight.clamp_min(tiny).log() - 0.5 * (LOG_2PI + variance.log())
    diff = values - mean[:, None]
    return offset[:, None] - 0.5 * diff * diff / variance[:, None]


def weighted_log_prob(values, means, variances, weights):
    """log w_c + log N(x | mu_c, var_c), shape (G, N, 2)."""
    return torch.stack(
        [component_log_prob(values, means[:, c], variances[:, c], weights[:, c]) for c in (0, 1)],
        dim=2,
    )


def quadratic_coefficients(means, variances, weights):
    """Coefficients (q, l, k), each (G, 2), of log w_c + log N(x | mu_c, var_c) = q x² + l x + k.

    The variance floor sqrt(tiny) keeps 1/var and mu²/var finite even for a collapsed
    component (``reg_covar=0``), so no inf - inf can appear.
    """
    floor = torch.finfo(variances.dtype).tiny ** 0.5
    variances = variances.clamp_min(floor)
    q = -0.5 / variances
    l = means / variances
    log_weight = weights.clamp_min(torch.finfo(weights.dtype).tiny).log()
    k = log_weight - 0.5 * (LOG_2PI + variances.log()) + q * means * means
    return q, l, k


def log_odds(planes, q, l, k):
    """a_1(x) - a_0(x), shape (G, M), from planes (G, 3, M) = [member, x, x²]."""
    dq, dl, dk = (t[:, 1:] - t[:, :1] for t in (q, l, k))  # (G, 1) each
    return torch.addcmul(dk, dq, planes[:, 2]).addcmul_(dl, planes[:, 1])


# --------------------------------------------------------------------------------------
# the fit on planes [member, x, x²] of centred data
# --------------------------------------------------------------------------------------
def m_step(member_moments, high_moments, reg_covar):
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


def e_step(planes, member_moments, means, variances, weights):
    """Moments (G, 3) under the second component's responsibilities, and the bound (G,).

    The bound is the mean over members of a_0(x) + softplus(gap), gap = a_1(x) - a_0(x).
    Σ a_0 is a quadratic in the member moments, and softplus(gap) = relu(gap) -
    log max(r, 1 - r) with r = sigmoid(gap) (exact, and the log never sees a value below
    1/2), so one sigmoid and one log per value give everything.
    """
    q, l, k = quadratic_coefficients(means, variances, weights)
    gap = log_odds(planes, q, l, k)
    pair = gap.new_empty((gap.shape[0], 2, gap.shape[1]))  # [relu(gap), log max(r, 1 - r)]
    torch.clamp_min(gap, 0.0, out=pair[:, 0])
    resp_high = torch.sigmoid(clamp_log_odds(gap))
    high_moments = moments_under(planes, resp_high)
    torch.sub(resp_high, 0.5, out=pair[:, 1]).abs_().add_(0.5).log_()
    del gap, resp_high
    sums = torch.bmm(pair, planes[:, :1].transpose(1, 2)).squeeze(2)  # member sums (G, 2)
    softplus_sum = sums[:, 0] - sums[:, 1]
    count, first, second = member_moments.unbind(dim=1)
    quadratic_sum = q[:, 0] * second + l[:, 0] * first + k[:, 0] * count
    return high_moments, (quadratic_sum + softplus_sum) / count.clamp_min(1.0)


def clamp_log_odds(gap):
    """Clamp log-odds (in place) so that sigmoid never returns a subnormal number.

    sigmoid(-745 < g < -708) is subnormal in float64, and arithmetic on subnormals is
    ~100x slower on x86 CPUs; values beyond the clamp change the posterior by < 1e-300.
    """
    limit = -math.log(torch.finfo(gap.dtype).tiny) - 8.0
    return gap.clamp_(-limit, limit)


def moments_under(planes, weight):
    """Σ w·[member, x, x²] per group, (G, 3), for weights (G, M); x = 0 off-member.

    A batched product with a contiguous row vector on the left: on the CPU this is one
    streaming pass, several times faster than three multiply-and-sum passes.
    """
    return torch.bmm(weight.unsqueeze(1), planes.transpose(1, 2)).squeeze(1)


def two_means_init(data, mask, counts):
    """Hard responsibility (G, N) of the upper cluster of the optimal 1-D 2-means split.

    With prefix sums S_i of the sorted members and total T, the within-cluster sum of
    squares of the split after position i is Σx² - S_i²/n_L - (T - S_i)²/n_R; Σx² is the
    same for every split, so the best split maximises S_i²/n_L + (T - S_i)²/n_R.
    """
    num_items = data.shape[1]
    # Members sorted ascending, non-members (+inf) at the end and then zeroed for the sums.
    ordered = sorted_rows(torch.where(mask, data, torch.inf)).nan_to_num_(posinf=0.0)
    prefix_sum = ordered.cumsum_(dim=1)
    total_sum = prefix_sum[:, -1:].clone()
    position = torch.arange(num_items, device=data.device)
    left_n = (position + 1).to(data.dtype)  # split after position i
    right_n = (counts[:, None].to(data.dtype) - left_n).clamp_(min=1.0)
    between = prefix_sum.square().div_(left_n)
    between += torch.sub(total_sum, prefix_sum).square_().div_(right_n)
    del right_n
    between.masked_fill_(position[None, :] >= counts[:, None] - 1, -torch.inf)  # no empty right
    split = between.argmax(dim=1)  # (G,)
    del between
    left_sum = prefix_sum.gather(1, split[:, None]).squeeze(1)
    left_count = (split + 1).to(data.dtype)
    right_count = (counts.to(data.dtype) - left_count).clamp_min(1)
    centre_low = left_sum / left_count
    centre_high = (total_sum.squeeze(1) - left_sum) / right_count
    # Like k-means labels_: each member goes to the nearer centre (ties to the first).
    to_high = (data - centre_high[:, None]).abs() < (data - centre_low[:, None]).abs()
    return (to_high & mask).to(data.dtype)


def sorted_rows(values: torch.Tensor) -> torch.Tensor:
    """Each row sorted ascending (values only); NumPy's vectorised sort on the CPU."""
    if values.device.type == "cpu":
        return torch.from_numpy(np.sort(values.numpy(), axis=1))
    return values.sort(dim=1).values


def centred_planes(values, mask, counts, dtype):
    """Planes (G, 3, M) = [member, x, x²] of x = value - group mean (0 off-member)."""
    planes = torch.empty((values.shape[0], 3, values.shape[1]), dtype=dtype, device=values.device)
    member = planes[:, 0]
    member.copy_(mask)
    centred = planes[:, 1]
    centred.copy_(values).masked_fill_(~mask, 0.0)  # no NaN / inf can leak into the sums
    shift = centred.sum(dim=1) / counts.clamp_min(1)
    centred.sub_(shift[:, None]).mul_(member)
    torch.square(centred, out=planes[:, 2])
    return planes, shift


@dataclass
class EMState:
    means: torch.Tensor
    variances: torch.Tensor
    weights: torch.Tensor
    converged: torch.Tensor
    n_iter: torch.Tensor


def run_em(planes, member_moments, resp_init, fitted, *, max_iter, tol, reg_covar) -> EMState:
    """EM from the hard initial responsibilities; converged groups leave the working set."""
    means, variances, weights = m_step(member_moments, moments_under(planes, resp_init),
                                        reg_covar)
    converged = torch.zeros_like(fitted)
    n_iter = torch.zeros(fitted.shape, dtype=torch.int64, device=fitted.device)
    lower_bound = torch.full_like(means[:, 0], -torch.inf)
    rows = torch.nonzero(fitted).flatten()  # the working set, as indices into all groups
    work = planes if bool(fitted.all()) else planes[rows]
    alive = torch.ones_like(rows, dtype=torch.bool)  # working rows still iterating
    for _ in range(max_iter):
        if rows.numel() == 0:
            break
        moments = member_moments[rows]
        high, bound = e_step(work, moments, means[rows], variances[rows], weights[rows])
        new_means, new_vars, new_weights = m_step(moments, high, reg_covar)
        keep = ~alive[:, None]  # rows that converged earlier keep their parameters
        means[rows] = torch.where(keep, means[rows], new_means)
        variances[rows] = torch.where(keep, variances[rows], new_vars)
        weights[rows] = torch.where(keep, weights[rows], new_weights)
        n_iter[rows] += alive.long()
        done = alive & ((bound - lower_bound[rows]).abs() < tol)
        lower_bound[rows] = torch.where(alive, bound, lower_bound[rows])
        converged[rows] |= done
        alive &= ~done
        n_alive = int(alive.sum())  # one host sync per iteration
        if n_alive <= rows.numel() // 2:  # shrink the working set (a copy) when worth it
            rows, work, alive = rows[alive], work[alive], alive[alive]
    return EMState(means, variances, weights, converged, n_iter)


def fit_core(values, mask, *, max_iter, tol, reg_covar, with_posterior):
    """Fit every row of ``values`` on its ``mask``: (the fields of a ``GMMFit`` as a dict,
    the low-mean posterior (G, M) or None)."""
    dtype = compute_dtype(values.device)
    counts = mask.sum(dim=1)
    fitted = counts >= 2
    planes, shift = centred_planes(values, mask, counts, dtype)
    member_moments = planes.sum(dim=2)
    resp_init = two_means_init(planes[:, 1], mask, counts)
    state = run_em(planes, member_moments, resp_init, fitted,
                    max_iter=max_iter, tol=tol, reg_covar=reg_covar)
    del resp_init
    posterior = None
    if with_posterior:
        q, l, k = quadratic_coefficients(state.means, state.variances, state.weights)
        gap = log_odds(planes, q, l, k)
        # posterior of component 1 is sigmoid(gap); of component 0, sigmoid(-gap)
        sign = torch.where(state.means[:, 1] < state.means[:, 0], 1.0, -1.0).to(dtype)
        posterior = torch.sigmoid(clamp_log_odds(gap.mul_(sign[:, None])))
    unfit = ~fitted[:, None]
    nan = torch.tensor(torch.nan, dtype=dtype, device=values.device)
    fit = {  # the fields of bmxlib.gmm.GMMFit
        "means": torch.where(unfit, nan, state.means + shift[:, None]),
        "variances": torch.where(unfit, nan, state.variances),
        "weights": torch.where(unfit, nan, state.weights),
        "converged": state.converged,
        "n_iter": state.n_iter,
        "fitted": fitted,
    }
    return fit, posterior


def check_fit_options(max_iter, tol, reg_covar):
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    for name, value in (("tol", tol), ("reg_covar", reg_covar)):
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not (value >= 0 and math.isfinite(value))):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def compute_dtype(device: torch.device) -> torch.dtype:
    # MPS has no float64; everywhere else float64 (see module docstring).
    return torch.float32 if device.type == "mps" else torch.float64
