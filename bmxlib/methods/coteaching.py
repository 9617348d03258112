"""Co-teaching with GMM selection (docs/method.md §4): two networks teach each other.

At the end of every epoch each network's per-instance mean BCE on the given labels comes
from a full-data pass; an instance-level two-component GMM on it marks the instances that
network calls clean (p > 0.5). In the next epoch each network trains only on the
instances its *peer* calls clean. The warm-up epochs (``warmup_epochs``) use every
instance. Evaluation uses the first network.

With Mixup (the paper's protocol) both networks see the same mixed batch, and a mixed
instance is kept for a network when its random-sampler instance (λ ≥ 0.5) is among the
instances that network's peer calls clean.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

from .base import Batch, EpochContext, EpochResult, Method
from .selection import coteaching_select


class CoTeaching(Method):
    name = "coteaching"
    after_warm_up = "small-loss selection by the peer"

    @classmethod
    def build(cls, config, data, *, model: torch.nn.Module) -> CoTeaching:
        return cls(config, data, model=model)

    def __init__(self, config, data, *, model: torch.nn.Module) -> None:
        super().__init__(config, data)
        self.peer = copy.deepcopy(model)
        # a differently initialised head so the two networks disagree from the start
        with torch.random.fork_rng():
            torch.manual_seed(config.seed + 1)
            for module in self.peer.modules():
                if isinstance(module, torch.nn.Linear):
                    module.reset_parameters()
        n = data.noisy_labels.shape[0]
        device = data.noisy_labels.device
        self.keep_for_model = torch.ones(n, dtype=torch.bool, device=device)
        self.keep_for_peer = torch.ones(n, dtype=torch.bool, device=device)

    def extra_modules(self) -> dict[str, torch.nn.Module]:
        return {"peer": self.peer}

    def wrap_extra_modules(self, wrap) -> None:
        self.peer = wrap(self.peer)

    def training_step(self, model: torch.nn.Module, batch: Batch) -> dict[str, Any]:
        x, labels = self.step_inputs(batch)  # one (mixed) batch for both networks
        loss = 0.0
        for net, keep in ((model, self.keep_for_model), (self.peer, self.keep_for_peer)):
            per_instance = (self.loss(net(x).float(), labels.targets) * labels.weights).sum(1)
            kept = keep[labels.index].float()  # the random-sampler instance decides
            loss = loss + (per_instance * kept).sum() / kept.sum().clamp_min(1.0)
        out = {"loss": loss}
        if labels.lam is not None:
            out["lambda"] = float(labels.lam.float().mean())
        return out

    def end_of_epoch(self, ctx: EpochContext) -> EpochResult:
        if ctx.epoch < self.config.warmup_epochs:
            return EpochResult()
        noisy = self.data.noisy_labels
        mean_bce = {}
        for key, net in (("model", ctx.model), ("peer", self.peer)):
            logits = ctx.full_data_pass(net)
            loss = F.binary_cross_entropy_with_logits(logits, noisy, reduction="none")
            mean_bce[key] = loss.mean(dim=1)
        self.keep_for_model = coteaching_select(mean_bce["peer"]).to(noisy.device)
        self.keep_for_peer = coteaching_select(mean_bce["model"]).to(noisy.device)
        logs = {
            "kept_model": float(self.keep_for_model.float().mean()),
            "kept_peer": float(self.keep_for_peer.float().mean()),
        }
        if self.data.noise_known:
            clean_rows = torch.from_numpy(~self.data.corrupted.any(axis=1)).to(noisy.device)
            kept = self.keep_for_model
            logs["selection_precision"] = float((kept & clean_rows).sum() / kept.sum().clamp_min(1))
            logs["selection_recall"] = float(
                (kept & clean_rows).sum() / clean_rows.sum().clamp_min(1)
            )
        return EpochResult(logs)

    def state_dict(self) -> dict[str, Any]:
        return {"keep_for_model": self.keep_for_model, "keep_for_peer": self.keep_for_peer}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.keep_for_model = state["keep_for_model"]
        self.keep_for_peer = state["keep_for_peer"]
