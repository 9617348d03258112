"""LL-R and LL-Ct (Kim et al., CVPR 2022, "Large Loss Matters").

Among the unobserved / negative labels of each batch, the k = ceil(B·K·(1 − clean_rate))
with the largest BCE are rejected (LL-R: loss 0) or temporarily corrected (LL-Ct:
target 1). The clean rate is 1 in epoch 1 and drops by ``ll_delta_rel`` percent per epoch:
as in the authors' code, where ``delta_rel`` is given in percent and divided by 100 (with
0.1 for 20 epochs, 2% of the labels are modified by the end).

With Mixup (the paper's protocol) the candidates are, by default
(``ll_candidates: dominant_zero``), the labels whose *observed* value in the
random-sampler instance is 0 (the instance that dominates the mix, λ ≥ 0.5), as every
rule on observed values follows that instance; ``ll_candidates: mixed_zero`` keeps only
those whose mixed target is 0 too (absent from both instances: "unobserved" in the mix,
LL's own definition). They are ranked by their BCE against the mixed target, rejected
(loss 0) or corrected (target 1). Without mixing the two readings coincide. The first
takes in the labels only the partner instance holds (mixed target 1 − λ), whose BCE is
large wherever the faint partner is missed; the logs below show how many of the
modified labels are hidden positives either way.

Each epoch logs the share of the label entries its steps modified (``ll_modified``) and,
when the noise was injected (so the hidden positives — labels given as 0 that are truly
1 — are known), how many of the modified entries were hidden positives
(``ll_modified_precision``) and how many of the hidden positives among the candidates were
modified (``ll_hidden_modified``): the rule's premise, "a large loss on an unobserved label
marks a false negative", measured (docs/method.md §3 "Large-loss modification"). At the
full-diagnostics epochs the same counts are kept per class (``MODIFIED_BY_CLASS``,
``MODIFIED_HIDDEN_BY_CLASS``), so ``management.large_loss_by_group`` can say on which shot
groups' classes the modified labels fall.
"""

from __future__ import annotations

from typing import Any

import torch

from .. import distributed as dist
from .base import EpochContext, EpochResult, Hyperparameter, Method, StepLabels, reduce_loss
from .losses import large_loss_clean_rate, large_loss_modify

# Epoch log keys (bmxlib.measures)
MODIFIED = "ll_modified"
MODIFIED_PRECISION = "ll_modified_precision"
HIDDEN_MODIFIED = "ll_hidden_modified"
# Diagnostics arrays (full-diagnostics epochs), summed over the epoch's steps
# (K,) share of each class's label entries modified (their mean over classes: ll_modified)
MODIFIED_BY_CLASS = "ll_modified_by_class"
# (K,) share of each class's label entries modified that were hidden positives
MODIFIED_HIDDEN_BY_CLASS = "ll_modified_hidden_by_class"


class LargeLoss(Method):
    """Shared body of LL-R and LL-Ct; ``mode`` is "reject" or "correct"."""

    mode = "reject"
    hyperparameters = {
        "ll_delta_rel": Hyperparameter(
            0.18, "LL-R / LL-Ct: percent of labels whose rejection rate grows per epoch (the "
                  "authors' delta_rel, divided by 100 in their code); ≈ 2% by the last "
                  "epoch: 0.1 for 20 epochs, 0.04 for 50, 0.18 for our 12",
            low=0.0, high=100.0),
        "ll_candidates": Hyperparameter(
            "dominant_zero", "LL-R / LL-Ct under Mixup: dominant_zero (labels given 0 in the "
                             "random-sampler instance) | mixed_zero (and absent from the "
                             "partner: mixed target 0)",
            choices=("dominant_zero", "mixed_zero")),
    }

    def __init__(self, config, data) -> None:
        super().__init__(config, data)
        device = data.noisy_labels.device
        # the hidden positives (given 0, truly 1), known only for injected noise
        self._hidden = (torch.from_numpy(data.corrupted & (data.clean_labels == 1)).to(device)
                        if data.noise_known else None)
        self._counts = self._no_counts()

    def _no_counts(self) -> torch.Tensor:
        """This epoch's counts per class, (4, K): label entries, modified, modified hidden
        positives, hidden positives among the candidates; summed over its steps on the
        device (no host syncs). The epoch's totals are their sums over the classes."""
        labels = self.data.noisy_labels
        return torch.zeros(4, labels.shape[1], dtype=torch.float64, device=labels.device)

    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)
        self._counts = self._no_counts()

    def step_loss(self, logits: torch.Tensor, labels: StepLabels) -> dict[str, Any]:
        rate = large_loss_clean_rate(labels.epoch, delta_rel=self.config.ll_delta_rel / 100)
        candidates = labels.observed == 0
        if self.config.ll_candidates == "mixed_zero":
            candidates &= labels.targets == 0
        result = large_loss_modify(logits, labels.targets, clean_rate=rate, mode=self.mode,
                                   candidates=candidates)
        modified = result.modified
        self._counts[0] += modified.shape[0]  # every row holds each class once
        self._counts[1] += modified.sum(dim=0)
        if self._hidden is not None:
            hidden = self._hidden[labels.index] & candidates
            self._counts[2] += (modified & hidden).sum(dim=0)
            self._counts[3] += hidden.sum(dim=0)
        return {"loss": reduce_loss(result.loss), "modified": float(modified.float().mean())}

    def end_of_epoch(self, ctx: EpochContext) -> EpochResult:
        by_class = dist.sum_across_ranks(self._counts).cpu().numpy()
        entries, modified, modified_hidden, hidden = by_class.sum(axis=1).tolist()
        logs: dict[str, Any] = {}
        if entries:
            logs[MODIFIED] = modified / entries
        if self._hidden is not None:
            if modified:  # nothing is modified while the clean rate is 1
                logs[MODIFIED_PRECISION] = modified_hidden / modified
            if hidden:
                logs[HIDDEN_MODIFIED] = modified_hidden / hidden
        diagnostics = {}
        if ctx.full_diagnostics and entries:
            diagnostics[MODIFIED_BY_CLASS] = by_class[1] / by_class[0]
            if self._hidden is not None:
                diagnostics[MODIFIED_HIDDEN_BY_CLASS] = by_class[2] / by_class[0]
        return EpochResult(logs, diagnostics)


class LargeLossRejection(LargeLoss):
    name = "ll_r"
    mode = "reject"


class LargeLossCorrection(LargeLoss):
    name = "ll_ct"
    mode = "correct"
