"""Confidence-based minority sampler (docs/method.md §1.2).

``minority_probabilities`` turns the latest full-data confidences F into per-instance
sampling probabilities; ``MinoritySampler`` draws indices with replacement from them,
deterministically per (seed, epoch) and split across DDP ranks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from .labels import as_tensor, check_binary, float_matrix_and_labels, row_chunks

__all__ = ["SCORE_FLOOR", "class_confidences", "minority_probabilities", "MinoritySampler"]

#: Scores below this are raised to it before inverting. A zero score means every label of
#: the instance sits in a class the model predicts with zero confidence, so the instance
#: should be drawn (almost) always: the floor gives it (almost) all the mass, the limit of
#: 1/Score, instead of a division by zero. If every score is 0 the result is uniform.
SCORE_FLOOR = 1e-12
SCORE_TERMS = ("all", "positive", "uniform")  # what ``minority_probabilities`` scores by


def _validate(confidences, labels) -> tuple[torch.Tensor, torch.Tensor]:
    confidences, labels = float_matrix_and_labels(confidences, labels, "confidences")
    # amin / amax propagate NaN, so a NaN fails the range test too
    if confidences.numel() and not (
        bool(confidences.amin() >= 0) and bool(confidences.amax() <= 1)
    ):
        raise ValueError("confidences must lie in [0, 1] (and not be NaN)")
    check_binary(labels, "labels")
    return confidences, labels


def _class_terms(confidences, labels):
    """P(k), A(k) as float64 (K,) with NaN where a class has no such instance.

    Accumulated in float64 over row chunks, so no (N, K) float64 copy is ever made.
    """
    num_items, num_classes = confidences.shape
    sums = torch.zeros(3, num_classes, dtype=torch.float64, device=confidences.device)
    for rows in row_chunks(num_items, num_classes):
        f = confidences[rows].double()
        y = labels[rows].double()
        sums[0] += y.sum(dim=0)  # positives
        sums[1] += ((1 - f) * (1 - y)).sum(dim=0)  # Σ (1 − F)(1 − Y)
        sums[2] += (f * y).sum(dim=0)  # Σ F·Y
    positives = sums[0]
    negatives = num_items - positives
    presence = sums[2] / positives  # 0/0 -> NaN
    # summed directly: negatives − Σ F + Σ F·Y cancels for a class of few, confident negatives
    absence = sums[1] / negatives
    return presence, absence


def _scores(labels, presence, absence) -> torch.Tensor:
    """Score(n) = Σ_k Y·P + (1 − Y)·A in float64 (N,), row chunk by row chunk."""
    # An undefined term only ever multiplies zeros; nan_to_num makes that product 0, not NaN.
    presence, absence = presence.nan_to_num(0.0), absence.nan_to_num(0.0)
    score = torch.empty(labels.shape[0], dtype=torch.float64, device=labels.device)
    gap, base = presence - absence, absence.sum()  # Σ_k Y·P + (1 − Y)·A = Σ A + Y·(P − A)
    for rows in row_chunks(*labels.shape):
        score[rows] = labels[rows].double() @ gap + base
    return score


def _positive_scores(labels, presence) -> torch.Tensor:
    """Mean P(k) over each instance's positive labels, float64 (N,); 1 without positives."""
    presence = presence.nan_to_num(0.0)
    score = torch.ones(labels.shape[0], dtype=torch.float64, device=labels.device)
    for rows in row_chunks(*labels.shape):
        y = labels[rows].double()
        count = y.sum(dim=1)
        score[rows] = torch.where(count > 0, (y @ presence) / count.clamp_min(1), 1.0)
    return score


def class_confidences(confidences, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class confidence in presence P(k) and in absence A(k) (docs/method.md §1.2).

    Parameters
    ----------
    confidences : torch.Tensor or np.ndarray, shape (N, K), float in [0, 1]
        F from the full-data pass.
    labels : torch.Tensor or np.ndarray, shape (N, K), values in {0, 1}
        The given (noisy) labels.

    Returns
    -------
    (P, A) : two torch.Tensor of shape (K,), float64
        P(k) = mean F[n, k] over instances with label 1, A(k) = mean 1 - F[n, k] over
        instances with label 0; NaN where a class has no such instance. On the input device.
    """
    confidences, labels = _validate(confidences, labels)
    return _class_terms(confidences, labels)


def minority_probabilities(
    confidences, labels, *, terms: str = "all", positive_floor: float = 0.05
) -> torch.Tensor:
    """Sampling probability of every instance, p(n) ∝ 1 / Score(n) (docs/method.md §1.2).

    Score(n) = Σ_k (Ỹ[n,k]·P(k) + (1 − Ỹ[n,k])·A(k)); a class lacking positives
    (negatives) contributes nothing to the P (A) term. Scores are floored at
    :data:`SCORE_FLOOR` before inverting (see there).

    Parameters
    ----------
    confidences : torch.Tensor or np.ndarray, shape (N, K), float in [0, 1]
    labels : torch.Tensor or np.ndarray, shape (N, K), values in {0, 1}
        Any dtype (bool / uint8 save memory at scale).
    terms : {"all", "positive", "uniform"}
        "all" is docs/method.md §1.2. "positive" is an opt-in variant (not the paper's): Score(n) =
        mean of P(k) over the instance's positive labels, floored at ``positive_floor``
        (instances without a positive get Score 1). With many classes the absence terms
        dominate the §1.2 score and p stays close to uniform (max/min ≈ 1.4 on
        digits-lt); the variant lets rare-class confidence drive the sampler.
        "uniform" is the control for the sampler's ablation row: p(n) = 1/N, so the second
        batch is drawn with replacement like the minority sampler's but without its score.
    positive_floor : float in (0, 1]
        Floor of the "positive" score (bounds the oversampling at 1/floor).

    Returns
    -------
    torch.Tensor, shape (N,), float64, non-negative, summing to 1, on the input device.
        Work is done in float64 over row chunks: beyond the output, memory stays
        O(2^24 values) whatever N and K.

    Raises
    ------
    ValueError
        An unknown ``terms`` or ``positive_floor``, confidences outside [0, 1] or NaN,
        non-binary labels, mismatched shapes, or N = 0 (no distribution to return).
    """
    if terms not in SCORE_TERMS:
        raise ValueError(f"terms must be one of {', '.join(SCORE_TERMS)}, got {terms!r}")
    if terms == "positive" and not 0 < positive_floor <= 1:
        raise ValueError(f"positive_floor must be in (0, 1], got {positive_floor!r}")
    confidences, labels = _validate(confidences, labels)
    n = labels.shape[0]
    if n == 0:  # no distribution over zero instances sums to 1
        raise ValueError("confidences and labels hold no instance (N = 0): nothing to sample")
    if terms == "uniform":
        return torch.full((n,), 1.0 / n, dtype=torch.float64, device=labels.device)
    presence, absence = _class_terms(confidences, labels)
    if terms == "positive":
        inverse = 1.0 / _positive_scores(labels, presence).clamp_min(positive_floor)
        return inverse / inverse.sum()
    inverse = 1.0 / _scores(labels, presence, absence).clamp_min(SCORE_FLOOR)
    return inverse / inverse.sum()


class MinoritySampler(Sampler[int]):
    """Draws instance indices with replacement from a probability vector (docs/method.md §1.2).

    Uniform until :meth:`set_probabilities` is first called. Each epoch draws
    ``num_samples`` indices in total (rounded up to a multiple of ``num_replicas``) from a
    CPU generator seeded with ``seed + epoch``, so every rank draws the same global
    sequence from the same probabilities; rank r keeps positions r, r + R, r + 2R, ...,
    so the draws are split across ranks, not duplicated.

    Parameters
    ----------
    num_items : int
        N, the size of the dataset.
    num_samples : int, optional
        Draws per epoch over all ranks (default N).
    seed : int
        Base seed; call :meth:`set_epoch` every epoch.
    num_replicas, rank : int
        DDP world size and this process's rank (defaults 1 and 0).
    """

    def __init__(
        self,
        num_items: int,
        *,
        num_samples: int | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if not isinstance(num_items, int) or num_items < 1:
            raise ValueError(f"num_items must be an int >= 1, got {num_items!r}")
        num_samples = num_items if num_samples is None else num_samples
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an int >= 1, got {num_samples!r}")
        if not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"num_replicas must be an int >= 1, got {num_replicas!r}")
        if not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be an int in [0, {num_replicas}), got {rank!r}")
        self.num_items = num_items
        self.num_samples = num_samples
        self.seed = int(seed)
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.probabilities: torch.Tensor | None = None  # None = uniform

    @property
    def samples_per_rank(self) -> int:
        """Draws this rank yields per epoch (equal on every rank, as DDP requires)."""
        return math.ceil(self.num_samples / self.num_replicas)

    def __len__(self) -> int:
        return self.samples_per_rank

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; the draws are a function of (seed, epoch, probabilities)."""
        self.epoch = int(epoch)

    def set_probabilities(self, probabilities) -> None:
        """Replace the sampling distribution (after a full-data pass); it is renormalised.

        Parameters
        ----------
        probabilities : torch.Tensor or np.ndarray, shape (num_items,), finite, >= 0,
            positive sum; any device (a CPU float64 copy is kept).
        """
        probabilities = as_tensor(probabilities, "probabilities").detach()
        probabilities = probabilities.to("cpu", torch.float64)
        if probabilities.shape != (self.num_items,):
            raise ValueError(
                f"probabilities must have shape ({self.num_items},), "
                f"got {tuple(probabilities.shape)}"
            )
        if not torch.isfinite(probabilities).all() or (probabilities < 0).any():
            raise ValueError("probabilities must be finite and non-negative")
        total = probabilities.sum()
        if total <= 0:
            raise ValueError("probabilities must have a positive sum")
        self.probabilities = probabilities / total

    def global_indices(self) -> torch.Tensor:
        """The epoch's full draw sequence over all ranks, int64 (R · samples_per_rank,)."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        total = self.samples_per_rank * self.num_replicas
        weights = self.probabilities
        if weights is None:
            weights = torch.ones(self.num_items, dtype=torch.float64)
        return torch.multinomial(weights, total, replacement=True, generator=generator)

    def __iter__(self) -> Iterator[int]:
        shard = self.global_indices()[self.rank :: self.num_replicas]
        return iter(shard.tolist())

    def state_dict(self) -> dict:
        """Everything needed to resume the exact draws: seed, epoch and probabilities."""
        probabilities = None if self.probabilities is None else self.probabilities.clone()
        return {
            "num_items": self.num_items,
            "num_samples": self.num_samples,
            "seed": self.seed,
            "epoch": self.epoch,
            "probabilities": probabilities,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`; the dataset size must match."""
        if state.get("num_items") != self.num_items:
            raise ValueError(
                f"state num_items {state.get('num_items')!r} does not match {self.num_items}"
            )
        self.num_samples = int(state["num_samples"])
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        if state["probabilities"] is None:
            self.probabilities = None
        else:
            self.set_probabilities(state["probabilities"])
