"""LL-R and LL-Ct (Kim et al., CVPR 2022, "Large Loss Matters").

Among the unobserved / negative labels of each batch, the k = ceil(B·K·(1 − clean_rate))
with the largest BCE are rejected (LL-R: loss 0) or temporarily corrected (LL-Ct:
target 1). The clean rate is 1 in epoch 1 and drops by ``ll_delta_rel`` percent per epoch:
as in the authors' code, where ``delta_rel`` is given in percent and divided by 100 (with
0.1 for 20 epochs, 2% of the labels are modified by the end).

With Mixup (the paper's protocol) the candidates are the labels whose *observed* value in
the random-sampler instance is 0 (the instance that dominates the mix, λ ≥ 0.5); they are
ranked by their BCE against the mixed target, rejected (loss 0) or corrected (target 1).
"""

from __future__ import annotations

from typing import Any

import torch

from .base import Hyperparameter, Method, StepLabels, reduce_loss
from .losses import large_loss_clean_rate, large_loss_modify


class LargeLoss(Method):
    """Shared body of LL-R and LL-Ct; ``mode`` is "reject" or "correct"."""

    mode = "reject"
    hyperparameters = {
        "ll_delta_rel": Hyperparameter(
            0.18, "LL-R / LL-Ct: percent of labels whose rejection rate grows per epoch (the "
                  "authors' delta_rel, divided by 100 in their code); ≈ 2% by the last "
                  "epoch: 0.1 for 20 epochs, 0.04 for 50, 0.18 for our 12",
            low=0.0, high=100.0),
    }

    def step_loss(self, logits: torch.Tensor, labels: StepLabels) -> dict[str, Any]:
        rate = large_loss_clean_rate(labels.epoch, delta_rel=self.config.ll_delta_rel / 100)
        result = large_loss_modify(logits, labels.targets, clean_rate=rate, mode=self.mode,
                                   candidates=labels.observed == 0)
        return {"loss": reduce_loss(result.loss), "modified": float(result.modified.float().mean())}


class LargeLossRejection(LargeLoss):
    name = "ll_r"
    mode = "reject"


class LargeLossCorrection(LargeLoss):
    name = "ll_ct"
    mode = "correct"
