"""BalanceMix (Song, Kim & Lee, AAAI 2024): SPEC §1.

Per step: a random-sampler batch is mixed with a minority-sampler batch (``Mixup`` does
the mixing, SPEC §1.3) and trained with the loss of §1.5 on the refined labels. At the
end of every epoch the full-data pass (§1.1) gives F; from it the minority sampler's
probabilities (§1.2) and, after warm-up, the label-wise management (§1.4) are updated.
The ablation switches of §1.6 are config flags: ``minority_sampler``, ``clean_labels``,
``relabel``, ``ambiguous_weighting`` (``method: mixup`` is the first row).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..gmm import clean_probability_with_fit
from ..labels import LabelState, ManagedLabels, manage_labels, selection_quality
from ..sampling import class_confidences, minority_probabilities
from .mixup import Mixup

HIST_BINS = 40  # bins of the per-(class, label value) loss histograms on the [0, 1] GMM scale


class BalanceMix(Mixup):
    name = "balancemix"

    def __init__(self, config, data) -> None:
        super().__init__(config, data)
        self.second_sampler = "minority" if config.minority_sampler else "random"
        self.probabilities: torch.Tensor | None = None  # None = uniform (no pass yet)
        self.managed: ManagedLabels | None = None  # None = given labels (warm-up)

    # --- the step: refined targets and weights of the random / minority instances -----
    def step_targets(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.managed is None:
            return super().step_targets(index)
        return self.managed.targets[index], self.managed.weight[index]

    def minority_probabilities(self) -> torch.Tensor | None:
        return self.probabilities

    def manages_labels(self, epoch: int) -> bool:
        """Label management is computed at the end of the last warm-up epoch and after."""
        return self.config.clean_labels and epoch >= self.config.warmup_epochs

    # --- end of epoch: full-data pass → sampler, GMMs, re-labeling, diagnostics -------
    def end_of_epoch(self, ctx) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        c, noisy = self.config, self.data.noisy_labels
        logits = ctx.full_data_pass()  # (N, K) float32 on the device
        confidences = torch.sigmoid(logits)
        losses = F.binary_cross_entropy_with_logits(logits, noisy, reduction="none")
        presence, absence = class_confidences(confidences, noisy)
        logs: dict[str, Any] = {"class_presence_confidence": presence.cpu().numpy()}
        diag: dict[str, np.ndarray] = {
            "presence_confidence": presence.cpu().numpy(),
            "absence_confidence": absence.cpu().numpy(),
            "natural_share": noisy.mean(dim=0).cpu().numpy(),
        }
        if c.minority_sampler:
            self.probabilities = minority_probabilities(confidences, noisy)
            diag["sampling_probabilities"] = self.probabilities.float().cpu().numpy()
            # expected share of minority draws that contain class k: Σ_n p(n)·Ỹ[n, k]
            diag["draw_share"] = (self.probabilities.double() @ noisy.double()).cpu().numpy()
        if c.clean_labels:
            p_clean, fit = clean_probability_with_fit(losses, noisy)
            diag.update(_gmm_diagnostics(fit, losses, noisy))
            if self.manages_labels(ctx.epoch):
                self.managed = self._manage(ctx, noisy, p_clean)
                logs.update(self._management_logs(diag))
            if ctx.full_diagnostics:
                diag["clean_probability"] = p_clean.half().cpu().numpy()
        if ctx.full_diagnostics:
            diag["confidences"] = confidences.half().cpu().numpy()
            if self.managed is not None:
                diag["state"] = self.managed.state.cpu().numpy()
                diag["targets"] = self.managed.targets.to(torch.uint8).cpu().numpy()
        return logs, diag

    def _manage(self, ctx, noisy: torch.Tensor, p_clean: torch.Tensor) -> ManagedLabels:
        c = self.config
        confidence = None
        if c.relabel:
            # two RandAugment views, only for instances holding a non-clean label
            rows = torch.nonzero((p_clean <= 0.5).any(dim=1)).flatten()
            confidence = torch.full_like(p_clean, float("nan"))
            if len(rows):
                confidence[rows] = ctx.predict_views(rows, n_views=2)
        return manage_labels(
            noisy,
            p_clean,
            confidence,
            epsilon=c.relabel_epsilon,
            use_clean=True,
            use_relabel=c.relabel,
            use_ambiguous=c.ambiguous_weighting,
            relabel_to_zero=c.relabel_to_zero,
        )

    def _management_logs(self, diag: dict[str, np.ndarray]) -> dict[str, Any]:
        managed, noisy = self.managed, self.data.noisy_labels
        logs: dict[str, Any] = {f"labels_{k}": v for k, v in managed.counts().items()}
        # counts per (class, given label value, state): (K, 2, 3)
        state = managed.state.long() + 3 * noisy.long()
        counts = F.one_hot(state, 6).sum(dim=0).view(-1, 2, 3)
        diag["state_counts"] = counts.cpu().numpy()
        if self.data.noise_known:
            quality = selection_quality(
                managed.state, noisy.to(torch.uint8), self.data.clean_labels, managed.targets
            )
            logs["selection_precision"] = quality["precision"]
            logs["selection_recall"] = quality["recall"]
            logs["relabel_accuracy"] = quality["relabel_accuracy"]
            for key in ("precision_per_group", "recall_per_group", "relabel_accuracy_per_group"):
                diag[f"selection_{key}"] = quality[key]
        return logs

    # --- resume ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"probabilities": self.probabilities}
        if self.managed is not None:
            state.update(
                targets=self.managed.targets, state=self.managed.state, weight=self.managed.weight
            )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.probabilities = state.get("probabilities")
        if "targets" in state:
            self.managed = ManagedLabels(state["targets"], state["state"], state["weight"])


def _gmm_diagnostics(fit, losses: torch.Tensor, noisy: torch.Tensor) -> dict[str, np.ndarray]:
    """The 2K mixtures and histograms of their (min-max normalised) losses, (K, 2, ...)."""
    low, high = fit.loss_min, fit.loss_max  # (K, 2), NaN for empty groups
    span = torch.nan_to_num(high - low, nan=1.0).clamp_min(1e-12)
    label = noisy.long()  # (N, K)
    lo = torch.nan_to_num(low.gather(1, label.T).T)
    sp = span.gather(1, label.T).T
    normalised = ((losses.double() - lo) / sp).clamp(0, 1)
    bins = (normalised * HIST_BINS).long().clamp_max(HIST_BINS - 1)
    num_classes = losses.shape[1]
    flat = (torch.arange(num_classes, device=losses.device) * 2 + label) * HIST_BINS + bins
    hist = torch.bincount(flat.flatten(), minlength=num_classes * 2 * HIST_BINS)
    return {
        "gmm_means": fit.means.cpu().numpy(),
        "gmm_variances": fit.variances.cpu().numpy(),
        "gmm_weights": fit.weights.cpu().numpy(),
        "gmm_low_component": fit.low_component.cpu().numpy(),
        "gmm_degenerate": fit.degenerate.cpu().numpy(),
        "loss_min": low.cpu().numpy(),
        "loss_max": high.cpu().numpy(),
        "loss_hist": hist.view(num_classes, 2, HIST_BINS).cpu().numpy(),
    }


__all__ = ["BalanceMix", "LabelState"]
