"""T-estimator (Li et al., NeurIPS 2022) as the BalanceMix paper configures it (docs/method.md §4).

1. ``t_holdout`` (10%) of the training set is held out as a *noisy* validation set: it is
   never trained on; its BCE against the given labels tracks each class's fit.
2. Warm-up (``warmup_epochs``): plain BCE (with Mixup under the paper's protocol). After
   every warm-up epoch the full-data pass's logits are kept: the last ``t_history``
   epochs, and per class those of the epoch with the lowest validation loss.
3. At the end of the last warm-up epoch: a sample selection per (class, label value) — a
   two-component GMM on the min-max normalised BCE losses averaged over the kept epochs,
   clean if p > 0.5 (the authors' recipe, ``bmxlib.gmm.clean_probability``) — then the
   label-correlation estimate of every class's 2×2 transition matrix
   (``transition.estimate_transitions``; classes without a valid estimate fall back to
   Dual-T on their best-validation epoch's predictions).
4. Afterwards: forward-corrected BCE, BCE(ρ0 + (1 − ρ0 − ρ1)·p, y) on the (mixed)
   targets. Evaluation uses the clean posterior p = sigmoid(z).

Deviations from the authors' code, each for the shared protocol of the comparison: the
network keeps training through one cosine schedule instead of being reset to its
best-validation warm-up weights and retrained with Adam; the loss is the forward
correction docs/method.md §4 names instead of the authors' importance reweighting; no knowledge of
the noise type is used (their code zeroes ρ0 or ρ1 when the *true* matrix has a zero). The
sample selection reads the last ``t_history`` warm-up epochs, at the end of the warm-up;
the authors' code reads the 5 epochs up to its ``sample_epoch``, the middle of its warm-up
in their scripts (VOC: epochs 6–10 of 20; COCO: 11–15 of 30).
Under Mixup the correction applies to the mixed targets: T is a property of the class, so
nothing depends on a label's observed value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..gmm import clean_probability
from .base import EpochContext, EpochResult, Hyperparameter, Method, StepLabels, reduce_loss
from .transition import (
    dual_t_estimate,
    empirical_transition,
    estimate_transitions,
    forward_corrected_bce,
    transition_error,
)


class TEstimator(Method):
    name = "t_estimator"
    after_warm_up = "loss correction by the estimated transition"
    # (Li et al., NeurIPS 2022)
    hyperparameters = {
        "t_holdout": Hyperparameter(
            0.1, "share of the training set held out as the noisy validation set (the "
                 "BalanceMix paper's 10%)", low=0.0, high=0.5),
        "t_history": Hyperparameter(
            5, "epochs of losses averaged for its sample selection (the authors' 5)",
            low=1, high=100),
        "t_min_selected": Hyperparameter(
            50, "fewest selected positives and negatives of a class for the "
                "label-correlation estimate (the authors' 50; else Dual-T)", low=1),
    }

    @classmethod
    def config_problem(cls, config) -> str | None:
        if config.warmup_epochs < 1:
            return ("config key 'warmup_epochs': t_estimator estimates its transition "
                    "matrices at the end of warm-up, so it needs warmup_epochs >= 1")
        return super().config_problem(config)

    def __init__(self, config, data) -> None:
        super().__init__(config, data)
        n = data.noisy_labels.shape[0]
        generator = torch.Generator().manual_seed(config.seed * 7_919 + 17)
        order = torch.randperm(n, generator=generator)
        held = max(1, round(config.t_holdout * n)) if config.t_holdout > 0 else 0
        self.holdout = torch.sort(order[:held]).values
        self.train_rows = torch.sort(order[held:]).values
        self.history: list[torch.Tensor] = []  # logits (N_train, K) float16, last epochs
        self.best_logits: torch.Tensor | None = None  # per class: its best-validation epoch
        self.best_val = torch.full((data.noisy_labels.shape[1],), float("inf"))
        self.transition: torch.Tensor | None = None  # (K, 2, 2) once estimated

    def training_indices(self) -> torch.Tensor:
        return self.train_rows

    def step_loss(self, logits: torch.Tensor, labels: StepLabels) -> dict[str, Any]:
        if self.transition is None:  # warm-up: plain BCE
            return super().step_loss(logits, labels)
        loss = forward_corrected_bce(logits, labels.targets, self.transition)
        return {"loss": reduce_loss(loss * labels.weights)}

    # --- end of epoch: keep predictions during warm-up, estimate T at its end -----------
    def end_of_epoch(self, ctx: EpochContext) -> EpochResult:
        c = self.config
        if self.transition is not None or ctx.epoch > c.warmup_epochs:
            return EpochResult()
        logits = ctx.full_data_pass().float()
        noisy = self.data.noisy_labels
        device = logits.device
        train, held = self.train_rows.to(device), self.holdout.to(device)
        logs: dict[str, Any] = {}
        if len(held):
            val = F.binary_cross_entropy_with_logits(logits[held], noisy[held],
                                                     reduction="none").mean(dim=0).cpu()
            better = val < self.best_val
            kept = logits[train].half()
            if self.best_logits is None:
                self.best_logits = kept.clone()
            else:
                self.best_logits[:, better.to(device)] = kept[:, better.to(device)]
            self.best_val = torch.where(better, val, self.best_val)
            logs["t_validation_loss"] = float(val.mean())
        self.history = [*self.history, logits[train].half()][-c.t_history:]
        if ctx.epoch < c.warmup_epochs:
            return EpochResult(logs)
        return self._estimate(logs)

    def _estimate(self, logs: dict[str, Any]) -> EpochResult:
        noisy = self.data.noisy_labels
        device = noisy.device
        train = self.train_rows.to(device)
        given = noisy[train]
        losses = torch.stack([_normalised_losses(h.float(), given) for h in self.history])
        p_clean = clean_probability(losses.mean(dim=0), given)
        selected = (p_clean > 0.5).cpu().numpy()
        labels = given.cpu().numpy().astype(np.uint8)
        best = self.best_logits if self.best_logits is not None else self.history[-1]
        best_probability = torch.sigmoid(best.float()).cpu().numpy()
        estimate = estimate_transitions(
            labels, selected, min_selected=self.config.t_min_selected,
            fallback=lambda i: dual_t_estimate(best_probability[:, i], labels[:, i]),
        )
        self.transition = torch.from_numpy(estimate.matrices).float().to(device)
        self.history, self.best_logits = [], None  # not needed any more
        diagnostics = {"transition": estimate.matrices, "transition_partner": estimate.partner,
                       "transition_solved_by": estimate.solved_by}
        logs["t_correlation_classes"] = int((estimate.solved_by == "correlation").sum())
        if self.data.noise_known:
            truth = empirical_transition(self.data.clean_labels[self.train_rows.numpy()],
                                         labels)
            error = transition_error(estimate.matrices, truth)
            diagnostics.update(transition_true=truth, transition_error=error)
            logs["t_estimation_error"] = float(error.mean())
        return EpochResult(logs, diagnostics)

    # --- resume ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "best_logits": self.best_logits,
                "best_val": self.best_val, "transition": self.transition}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state["history"])
        self.best_logits = state["best_logits"]
        self.best_val = state["best_val"]
        self.transition = state["transition"]


def _normalised_losses(logits: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
    """BCE losses (N, K) min-max normalised per (class, label value), as the authors'
    selection averages them over epochs."""
    losses = F.binary_cross_entropy_with_logits(logits, given, reduction="none")
    out = torch.zeros_like(losses)
    for value in (0.0, 1.0):
        member = given == value
        low = torch.where(member, losses, torch.inf).amin(dim=0)
        high = torch.where(member, losses, -torch.inf).amax(dim=0)
        span = (high - low).clamp_min(1e-30)
        out = torch.where(member, (losses - low) / span, out)
    return out
