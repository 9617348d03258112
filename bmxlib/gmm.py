"""Batched two-component 1-D Gaussian mixtures for clean-label detection (docs/method.md §1.4).

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

Everything is computed in float64 (also on CUDA): the prefix-sum split and the
log-likelihood bound lose precision in float32, and sklearn, the parity oracle, works in
float64.

Speed and memory (the fit runs every epoch on all N·K losses):

* the log-odds of the two components is a quadratic in x per group, so an E-step is two
  fused multiply-adds, one sigmoid and one softplus per value; every moment the M-step and
  the bound need comes from one batched matrix product with the planes [member, x, x²];
* converged groups leave the working set and the loop ends once all have converged;
* :func:`clean_probability` packs each group's members to the left of a row and pads
  groups of similar size (within 2×) together, so it works on ~N·K values, not 2K·N, and
  it processes classes in chunks sized from a memory budget (``workspace_bytes``), so its
  peak memory beyond the (N, K) input and output is bounded; the result does not depend on
  the chunking;
* on the CPU the sort of the initialisation runs in NumPy (vectorised, values only),
  about 15× faster there than ``torch.sort``.

The EM on padded rows lives in ``bmxlib.gmm_em``; this module packs, chunks and wraps it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import gmm_em as em
from .labels import float_matrix_and_labels

__all__ = [
    "GMMFit",
    "CleanProbabilityFit",
    "WORKSPACE_BYTES",
    "DEVICE_WORKSPACE_BYTES",
    "fit_gmm_batched",
    "clean_probability",
    "clean_probability_with_fit",
]


#: Default working memory of :func:`clean_probability` beyond its input and output on the
#: CPU: chunks this small stay in the allocator's reused heap (no page faults on fresh
#: allocations) and mostly in cache, which is faster than one big chunk.
WORKSPACE_BYTES = 64 << 20
#: The default on accelerators, where fewer, larger chunks mean fewer kernel launches.
DEVICE_WORKSPACE_BYTES = 1 << 30
#: Peak working bytes per (padded) label of a chunk of classes (measured: ~150).
_BYTES_PER_LABEL = 192


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

    def weighted_log_density(self, values: torch.Tensor) -> torch.Tensor:
        """log(w_c · N(x; mu_c, var_c)) of each component, shape (G, N, 2), for values of
        shape (G, N) (or (N,), shared by all groups). NaN for groups not fitted."""
        values = torch.as_tensor(values, device=self.means.device).to(self.means.dtype)
        if values.dim() == 1:
            values = values.expand(self.means.shape[0], -1)
        return em.weighted_log_prob(values, self.means, self.variances, self.weights)

    def log_responsibilities(self, values: torch.Tensor) -> torch.Tensor:
        """Log posterior of each component, shape (G, N, 2), for values of shape (G, N)
        (or (N,), shared by all groups)."""
        weighted = self.weighted_log_density(values)
        return weighted - torch.logsumexp(weighted, dim=-1, keepdim=True)

    @classmethod
    def from_parameters(cls, means, variances, weights) -> GMMFit:
        """A fit from stored parameters (e.g. a run's diagnostics), each (G, 2); groups with
        a NaN parameter count as not fitted."""
        means, variances, weights = (torch.as_tensor(np.asarray(a, dtype=np.float64))
                                     for a in (means, variances, weights))
        fitted = torch.isfinite(means).all(dim=1) & torch.isfinite(variances).all(dim=1)
        return cls(means, variances, weights, converged=fitted.clone(),
                   n_iter=torch.zeros(means.shape[0], dtype=torch.int64), fitted=fitted)

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
    em.check_fit_options(max_iter, tol, reg_covar)
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
    fields, _ = em.fit_core(values, mask, max_iter=max_iter, tol=tol, reg_covar=reg_covar,
                            with_posterior=False)
    return GMMFit(**fields)


# --------------------------------------------------------------------------------------
# clean probability: 2K groups, packed and chunked
# --------------------------------------------------------------------------------------
def _classes_per_chunk(num_items, num_classes, workspace_bytes, device) -> int:
    default = WORKSPACE_BYTES if device.type == "cpu" else DEVICE_WORKSPACE_BYTES
    budget = default if workspace_bytes is None else workspace_bytes
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"workspace_bytes must be a positive int, got {workspace_bytes!r}")
    per_class = max(num_items, 1) * _BYTES_PER_LABEL
    return max(1, min(num_classes, budget // per_class))


def _size_buckets(counts: torch.Tensor) -> list[torch.Tensor]:
    """Indices of the groups with >= 2 members, bucketed by floor(log2(count)).

    A bucket is padded to its largest count, so padding wastes at most half of it.
    """
    eligible = counts >= 2
    level = torch.where(eligible, counts.clamp_min(1).double().log2().floor(), -1.0)
    levels = torch.unique(level[eligible]).tolist()
    return [torch.nonzero(level == value).flatten() for value in sorted(levels, reverse=True)]


@dataclass
class _ChunkRecord:
    """Per-group results (2K,) of all classes, group 2k + l; chunks write into row views."""

    means: torch.Tensor
    variances: torch.Tensor
    weights: torch.Tensor
    loss_min: torch.Tensor
    loss_max: torch.Tensor
    counts: torch.Tensor
    degenerate: torch.Tensor
    converged: torch.Tensor
    n_iter: torch.Tensor

    def rows(self, start: int, stop: int) -> _ChunkRecord:
        """Views of groups ``start:stop`` (writes go to this record)."""
        return _ChunkRecord(**{f: getattr(self, f)[start:stop] for f in self.__dataclass_fields__})


def _empty_record(counts, dtype, device) -> _ChunkRecord:
    groups = counts.shape[0]
    nan = lambda *shape: torch.full(shape, torch.nan, dtype=dtype, device=device)  # noqa: E731
    return _ChunkRecord(
        means=nan(groups, 2), variances=nan(groups, 2), weights=nan(groups, 2),
        loss_min=nan(groups), loss_max=nan(groups), counts=counts,
        degenerate=torch.ones(groups, dtype=torch.bool, device=device),
        converged=torch.zeros(groups, dtype=torch.bool, device=device),
        n_iter=torch.zeros(groups, dtype=torch.int64, device=device),
    )


def _fit_bucket(values, member, flat_eps, options):
    """Normalise and fit one bucket of packed groups; low-mean posterior (Gb, Mb) and fit."""
    low = torch.where(member, values, torch.inf).amin(dim=1)
    high = torch.where(member, values, -torch.inf).amax(dim=1)
    # "All losses equal": a spread of a few epsilons of the input dtype (relative to 1 for
    # losses below 1, the size of a BCE's rounding error) is rounding noise.
    scale = torch.maximum(high.abs(), torch.ones_like(high))
    degenerate = (high - low) <= 4 * flat_eps * scale
    span = torch.where(degenerate, 1.0, high - low)
    normalised = values.sub_(low[:, None]).div_(span[:, None])
    fields, posterior = em.fit_core(normalised, member & ~degenerate[:, None],
                                    with_posterior=True, **options)
    fit = GMMFit(**fields)
    return posterior.masked_fill_(degenerate[:, None], 1.0), fit, low, high, degenerate


def _partition(upper: torch.Tensor):
    """Per row, where each value goes so that label-0 members come first, then label-1.

    Returns the destination (c, N) int64 and the counts n0, n1 (c,). Stable: members keep
    their order inside each group.
    """
    n1 = upper.sum(dim=1)
    n0 = upper.shape[1] - n1
    rank1 = upper.cumsum(dim=1)
    position = torch.arange(upper.shape[1], device=upper.device)
    rank0 = position - rank1  # 0-based rank among the label-0 members
    destination = torch.where(upper, rank1.add_(n0[:, None] - 1), rank0)
    return destination, n0, n1


def _clean_probability_chunk(losses, labels, record, *, flat_eps, options):
    """p_G (c, N) float64 of the classes in ``losses`` / ``labels`` (N, c).

    The per-group results are written into ``record``, views (2c,) of the whole record:
    keeping no small tensors alive from chunk to chunk lets the allocator reuse (and give
    back) each chunk's memory; otherwise heap fragmentation grows with the chunk count.
    """
    dtype = em.compute_dtype(losses.device)
    num_items, num_classes = losses.shape
    values = torch.empty((num_classes, num_items), dtype=dtype, device=losses.device)
    values.copy_(losses.T)
    if not bool(torch.isfinite(values).all()):
        raise ValueError("losses must be finite")
    upper = labels.T == 1
    if not bool((upper | (labels.T == 0)).all()):
        raise ValueError("labels must contain only 0 and 1")
    destination, n0, n1 = _partition(upper)
    del upper
    # All rows back to back, label-0 members then label-1 members per class; the extra
    # last slot is where the padding of a bucket reads from and writes to.
    trash = num_classes * num_items
    flat = values.new_zeros(trash + 1)
    flat[:trash].view(num_classes, num_items).scatter_(1, destination, values)
    del values
    row_start = torch.arange(num_classes, device=losses.device) * num_items
    starts = torch.stack([row_start, row_start + n0], dim=1).flatten()
    counts = torch.stack([n0, n1], dim=1).flatten()
    record.counts.copy_(counts)
    single = counts == 1  # a one-member group: its bounds are its value
    record.loss_min[single] = record.loss_max[single] = flat[starts[single]]
    posterior_flat = torch.ones_like(flat)
    for groups in _size_buckets(counts):
        width = int(counts[groups].max())
        offsets = torch.arange(width, device=flat.device)
        member = offsets < counts[groups, None]
        index = (starts[groups, None] + offsets).masked_fill_(~member, trash)
        posterior, fit, low, high, degenerate = _fit_bucket(
            flat[index], member, flat_eps, options
        )
        posterior_flat.scatter_(0, index.view(-1), posterior.view(-1))
        record.means[groups], record.variances[groups] = fit.means, fit.variances
        record.weights[groups], record.converged[groups] = fit.weights, fit.converged
        record.n_iter[groups], record.degenerate[groups] = fit.n_iter, degenerate
        record.loss_min[groups], record.loss_max[groups] = low, high
    return posterior_flat[:trash].view(num_classes, num_items).gather(1, destination)


def _as_fit(record: _ChunkRecord, num_classes: int) -> CleanProbabilityFit:
    shape3, shape2 = (num_classes, 2, 2), (num_classes, 2)
    means = record.means.view(shape3)
    return CleanProbabilityFit(
        means=means,
        variances=record.variances.view(shape3),
        weights=record.weights.view(shape3),
        low_component=torch.nan_to_num(means).argmin(dim=2),
        loss_min=record.loss_min.view(shape2),
        loss_max=record.loss_max.view(shape2),
        counts=record.counts.view(shape2),
        degenerate=record.degenerate.view(shape2),
        converged=record.converged.view(shape2),
        n_iter=record.n_iter.view(shape2),
    )


def clean_probability_with_fit(
    losses,
    labels,
    *,
    max_iter: int = 10,
    tol: float = 1e-2,
    reg_covar: float = 5e-4,
    workspace_bytes: int | None = None,
) -> tuple[torch.Tensor, CleanProbabilityFit]:
    """:func:`clean_probability` plus the 2K fitted mixtures (see :class:`CleanProbabilityFit`).

    Returns
    -------
    (p_clean, fit) : (torch.Tensor (N, K) float32, CleanProbabilityFit)
    """
    em.check_fit_options(max_iter, tol, reg_covar)
    losses, labels = float_matrix_and_labels(losses, labels, "losses")
    num_items, num_classes = losses.shape
    chunk = _classes_per_chunk(num_items, num_classes, workspace_bytes, losses.device)
    out_dtype = losses.dtype if losses.dtype in (torch.float32, torch.float64) else torch.float32
    p_clean = torch.empty((num_items, num_classes), dtype=out_dtype, device=losses.device)
    options = {"max_iter": max_iter, "tol": tol, "reg_covar": reg_covar}
    flat_eps = torch.finfo(losses.dtype).eps
    counts = torch.zeros(2 * num_classes, dtype=torch.int64, device=losses.device)
    record = _empty_record(counts, em.compute_dtype(losses.device), losses.device)
    for start in range(0, num_classes, chunk):  # chunks of classes bound the memory
        stop = min(start + chunk, num_classes)
        p_rows = _clean_probability_chunk(
            losses[:, start:stop], labels[:, start:stop], record.rows(2 * start, 2 * stop),
            flat_eps=flat_eps, options=options,
        )
        p_clean[:, start:stop] = p_rows.T
        del p_rows
    return p_clean, _as_fit(record, num_classes)


def clean_probability(
    losses,
    labels,
    *,
    max_iter: int = 10,
    tol: float = 1e-2,
    reg_covar: float = 5e-4,
    workspace_bytes: int | None = None,
) -> torch.Tensor:
    """Clean probability p_G of every label from 2K loss mixtures (docs/method.md §1.4).

    For each class k and given label value l, the BCE losses of the labels with
    ``labels[n, k] == l`` are min-max normalised and a two-component Gaussian mixture is
    fitted (sklearn settings, see module docstring); p_G is the posterior of the component
    with the smaller mean. Degenerate groups (fewer than 2 members, or all losses equal:
    a spread of at most 4 machine epsilons of the input dtype times max(1, largest loss),
    so an absolute 4.8e-7 in float32 for losses below 1) give p_G = 1.

    Parameters
    ----------
    losses : torch.Tensor or np.ndarray, shape (N, K), float, finite
        BCE of each label against its given value.
    labels : torch.Tensor or np.ndarray, shape (N, K), values in {0, 1}
        The given (noisy) labels (bool, integer or float).
    max_iter, tol, reg_covar
        EM settings (sklearn ``GaussianMixture`` semantics).
    workspace_bytes : int, optional, keyword-only
        Memory budget of the working arrays beyond input and output (default
        :data:`WORKSPACE_BYTES`, 64 MiB, on the CPU and :data:`DEVICE_WORKSPACE_BYTES`,
        1 GiB, elsewhere); classes are fitted in chunks that fit it (at least one class
        per chunk). The result does not depend on it.

    Returns
    -------
    torch.Tensor, shape (N, K), dtype of ``losses`` (float32 for other dtypes), in [0, 1]
        On the device of ``losses``; never NaN.
    """
    p_clean, _ = clean_probability_with_fit(
        losses, labels, max_iter=max_iter, tol=tol, reg_covar=reg_covar,
        workspace_bytes=workspace_bytes,
    )
    return p_clean
