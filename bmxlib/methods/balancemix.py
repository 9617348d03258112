"""BalanceMix (Song, Kim & Lee, AAAI 2024): docs/method.md §1.

Per step: a random-sampler batch is mixed with a minority-sampler batch
(``Method.step_inputs`` does the mixing, docs/method.md §1.3) and trained with the loss of §1.5 on
the refined labels. At the end of every epoch the full-data pass (§1.1) gives F; from it
the minority sampler's probabilities (§1.2) and, after warm-up, the label-wise
management (§1.4) are updated.
The ablation switches of §1.6 are config flags: ``minority_sampler``, ``clean_labels``,
``relabel``, ``ambiguous_weighting`` (``method: mixup`` is the first row).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..gmm import clean_probability_with_fit
from ..labels import (
    LabelState,
    ManagedLabels,
    label_losses,
    manage_labels,
    row_chunks,
    selection_quality,
)
from ..sampling import SCORE_TERMS, class_confidences, minority_probabilities
from .base import EpochContext, EpochResult, Hyperparameter, Method

HIST_BINS = 40  # bins of the per-(class, label value) loss histograms on the [0, 1] GMM scale

# Diagnostics keys this module writes (diagnostics/epoch_XXX.npz); the plots read them by
# these names.
PRESENCE_CONFIDENCE = "presence_confidence"  # P(k) per class (K,)
ABSENCE_CONFIDENCE = "absence_confidence"  # A(k) per class (K,)
NATURAL_SHARE = "natural_share"  # share of given positives per class (K,)
SAMPLING_PROBABILITIES = "sampling_probabilities"  # minority-sampler p(n) (N,)
DRAW_SHARE = "draw_share"  # expected share of minority draws holding class k (K,)
GMM_MEANS = "gmm_means"  # (K, 2, 2) per class, label value, component
GMM_VARIANCES = "gmm_variances"  # (K, 2, 2)
GMM_WEIGHTS = "gmm_weights"  # (K, 2, 2)
GMM_LOW_COMPONENT = "gmm_low_component"  # (K, 2) the clean component
GMM_DEGENERATE = "gmm_degenerate"  # (K, 2) mixtures that could not be fitted
LOSS_MIN = "loss_min"  # (K, 2) the GMM scale's 0
LOSS_MAX = "loss_max"  # (K, 2) the GMM scale's 1
LOSS_HIST = "loss_hist"  # (K, 2, HIST_BINS) loss histograms
STATE_COUNTS = "state_counts"  # (K, 2, 3) labels per class, given value, state
CLEAN_PROBABILITY = "clean_probability"  # p_G (N, K) float16, full-diagnostics epochs
CONFIDENCES = "confidences"  # sigmoid outputs (N, K) float16, full-diagnostics epochs
STATE = "state"  # LabelState (N, K), full-diagnostics epochs
TARGETS = "targets"  # refined targets (N, K) uint8, full-diagnostics epochs
#: the arrays of the 2K mixtures (``plots.gmm_arrays``)
GMM_KEYS = (LOSS_HIST, GMM_MEANS, GMM_VARIANCES, GMM_WEIGHTS, GMM_LOW_COMPONENT,
            GMM_DEGENERATE, LOSS_MIN, LOSS_MAX)
#: per shot group selection quality (synthetic noise): precision, recall, re-labeling accuracy
SELECTION_PER_GROUP = tuple(f"selection_{key}_per_group"
                            for key in ("precision", "recall", "relabel_accuracy"))


class BalanceMix(Method):
    name = "balancemix"
    mixes_by_definition = True
    after_warm_up = "label management"
    hyperparameters = {
        "minority_sampler": Hyperparameter(
            True, "BalanceMix: second batch from the minority sampler"),
        "minority_score": Hyperparameter(
            "all", "all (docs/method.md §1.2) | positive (opt-in: positive labels only) | "
            "uniform (control: p(n) = 1/N, drawn with replacement)",
            choices=SCORE_TERMS),
        "clean_labels": Hyperparameter(True, "BalanceMix: GMM clean-label selection"),
        "relabel": Hyperparameter(True, "BalanceMix: re-label confident non-clean labels"),
        "ambiguous_weighting": Hyperparameter(
            True, "BalanceMix: weight remaining labels by p_G"),
        "relabel_epsilon": Hyperparameter(
            0.975, "re-labeling threshold ε (0.55 for missing labels)", low=0.5, high=1.0),
        "relabel_to_zero": Hyperparameter(
            True, "re-label to 0 as well as to 1 (default: True, docs/method.md §1.4)"),
    }

    @classmethod
    def config_problem(cls, config) -> str | None:
        # without clean-label selection nothing waits for the warm-up (the ablation's Mixup
        # and minority-sampler rows)
        return super().config_problem(config) if config.clean_labels else None

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

    def needs_initial_pass(self) -> bool:
        """Without warm-up, label management applies from epoch 1 on (docs/method.md §1.1, §1.4)."""
        return self.config.clean_labels and self.config.warmup_epochs == 0

    def manages_labels(self, epoch: int) -> bool:
        """Label management is computed at the end of the last warm-up epoch and after."""
        return self.config.clean_labels and epoch >= self.config.warmup_epochs

    # --- end of epoch: full-data pass → sampler, GMMs, re-labeling, diagnostics -------
    def end_of_epoch(self, ctx: EpochContext) -> EpochResult:
        c, noisy = self.config, self.data.noisy_labels
        logits = ctx.full_data_pass()  # (N, K) float32 on the device
        losses = label_losses(logits, noisy)  # in row chunks: no (N, K) temporaries
        confidences = logits.sigmoid_()  # in place: the logits are not needed again
        presence, absence = class_confidences(confidences, noisy)
        logs: dict[str, Any] = {}
        diag: dict[str, np.ndarray] = {
            PRESENCE_CONFIDENCE: presence.cpu().numpy(),
            ABSENCE_CONFIDENCE: absence.cpu().numpy(),
            NATURAL_SHARE: noisy.mean(dim=0).cpu().numpy(),
        }
        if c.minority_sampler:
            self.probabilities = minority_probabilities(confidences, noisy, terms=c.minority_score)
            diag[SAMPLING_PROBABILITIES] = self.probabilities.float().cpu().numpy()
            # expected share of minority draws that contain class k: Σ_n p(n)·Ỹ[n, k]
            share = noisy.T @ self.probabilities.to(noisy.dtype)  # no (N, K) float64 copy
            diag[DRAW_SHARE] = share.double().cpu().numpy()
        if c.clean_labels:
            p_clean, fit = clean_probability_with_fit(losses, noisy)
            diag.update(_gmm_diagnostics(fit, losses, noisy))
            if self.manages_labels(ctx.epoch):
                self.managed = self._manage(ctx, noisy, p_clean)
                logs.update(self._management_logs(diag))
            if ctx.full_diagnostics:
                diag[CLEAN_PROBABILITY] = p_clean.half().cpu().numpy()
        if ctx.full_diagnostics:
            diag[CONFIDENCES] = confidences.half().cpu().numpy()
            if self.managed is not None:
                diag[STATE] = self.managed.state.cpu().numpy()
                diag[TARGETS] = self.managed.targets.to(torch.uint8).cpu().numpy()
        return EpochResult(logs, diag, class_confidence=presence.cpu().numpy())

    def _manage(self, ctx: EpochContext, noisy: torch.Tensor,
                p_clean: torch.Tensor) -> ManagedLabels:
        c = self.config
        confidence = None
        if c.relabel:
            # two RandAugment views, only for instances holding a non-clean label
            rows = torch.nonzero(p_clean.amin(dim=1) <= 0.5).flatten()
            confidence = torch.full_like(p_clean, float("nan"))
            if len(rows):
                confidence[rows] = ctx.predict_views(rows, n_views=2)
        # last epoch's buffers are free now: reuse them instead of 2 more (N, K) arrays
        reuse = self.managed is not None and self.managed.targets.shape == p_clean.shape
        return manage_labels(
            noisy,
            p_clean,
            confidence,
            epsilon=c.relabel_epsilon,
            use_clean=True,
            use_relabel=c.relabel,
            use_ambiguous=c.ambiguous_weighting,
            relabel_to_zero=c.relabel_to_zero,
            out=self.managed if reuse and self.managed.targets.dtype == p_clean.dtype else None,
        )

    def _management_logs(self, diag: dict[str, np.ndarray]) -> dict[str, Any]:
        managed, noisy = self.managed, self.data.noisy_labels
        logs: dict[str, Any] = {f"labels_{k}": v for k, v in managed.counts().items()}
        diag[STATE_COUNTS] = _state_counts(managed.state, noisy).cpu().numpy()
        if self.data.noise_known:
            quality = selection_quality(
                managed.state, noisy.to(torch.uint8), self.data.clean_labels, managed.targets
            )
            logs["selection_precision"] = quality["precision"]
            logs["selection_recall"] = quality["recall"]
            logs["relabel_accuracy"] = quality["relabel_accuracy"]
            for name, key in zip(SELECTION_PER_GROUP, ("precision_per_group", "recall_per_group",
                                                         "relabel_accuracy_per_group")):
                diag[name] = quality[key]
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


def _state_counts(state: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
    """Labels per (class, given label value, state), (K, 2, 3) int64, by row chunks."""
    num_classes = state.shape[1]
    offsets = torch.arange(num_classes, device=state.device) * 6
    counts = torch.zeros(num_classes * 6, dtype=torch.int64, device=state.device)
    for rows in row_chunks(*state.shape):
        code = offsets + 3 * noisy[rows].long() + state[rows].long()
        counts += torch.bincount(code.view(-1), minlength=num_classes * 6)
    return counts.view(num_classes, 2, 3)


def _loss_histograms(fit, losses: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
    """Histograms (K, 2, HIST_BINS) of the per-group losses on the [0, 1] GMM scale."""
    low, high = fit.loss_min, fit.loss_max  # (K, 2), NaN for empty groups
    span = torch.nan_to_num(high - low, nan=1.0).clamp_min(1e-12).T  # (2, K)
    low = torch.nan_to_num(low).T
    num_classes = losses.shape[1]
    base = torch.arange(num_classes, device=losses.device) * 2
    hist = torch.zeros(num_classes * 2 * HIST_BINS, dtype=torch.int64, device=losses.device)
    for rows in row_chunks(*losses.shape):
        label = noisy[rows].long()
        normalised = (losses[rows].double() - low.gather(0, label)) / span.gather(0, label)
        bins = (normalised.clamp_(0, 1) * HIST_BINS).long().clamp_max_(HIST_BINS - 1)
        flat = (base + label) * HIST_BINS + bins
        hist += torch.bincount(flat.view(-1), minlength=num_classes * 2 * HIST_BINS)
    return hist.view(num_classes, 2, HIST_BINS)


def _gmm_diagnostics(fit, losses: torch.Tensor, noisy: torch.Tensor) -> dict[str, np.ndarray]:
    """The 2K mixtures and histograms of their (min-max normalised) losses, (K, 2, ...)."""
    return {
        GMM_MEANS: fit.means.cpu().numpy(),
        GMM_VARIANCES: fit.variances.cpu().numpy(),
        GMM_WEIGHTS: fit.weights.cpu().numpy(),
        GMM_LOW_COMPONENT: fit.low_component.cpu().numpy(),
        GMM_DEGENERATE: fit.degenerate.cpu().numpy(),
        LOSS_MIN: fit.loss_min.cpu().numpy(),
        LOSS_MAX: fit.loss_max.cpu().numpy(),
        LOSS_HIST: _loss_histograms(fit, losses, noisy).cpu().numpy(),
    }


__all__ = ["BalanceMix", "LabelState"]
