"""Mixup as BalanceMix's first ablation row: the second batch is another random batch.

The mixing itself is SPEC §1.3 (``bmxlib.mixing.minority_mix``, λ ≥ 0.5, α = 4), done in
this one place for every mixing method; BalanceMix only changes where the second batch
comes from and which targets and weights enter the loss.
"""

from __future__ import annotations

from typing import Any

import torch

from ..mixing import minority_mix
from .base import Batch, Method, reduce_loss


class Mixup(Method):
    """Random sampler only: mix two random batches, BCE on the mixed given labels."""

    name = "mixup"
    second_sampler = "random"

    def step_targets(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(targets, loss weights) of the instances ``index``; given labels, weight 1."""
        targets = self.data.noisy_labels[index]
        return targets, torch.ones_like(targets)

    def training_step(self, model: torch.nn.Module, batch: Batch) -> dict[str, Any]:
        y_r, w_r = self.step_targets(batch.index_r)
        y_m, _ = self.step_targets(batch.index_m)
        x_mix, y_mix, lam = minority_mix(
            batch.x_r,
            y_r,
            batch.x_m,
            y_m,
            alpha=self.config.mix_alpha,
            per_sample=self.config.per_sample_lambda,
            generator=batch.generator,
        )
        logits = model(x_mix).float()
        # the reliability (weight) of each mixed label is the random-sampler instance's
        per_label = self.loss(logits, y_mix) * w_r
        return {"loss": reduce_loss(per_label), "lambda": float(lam.float().mean())}
