"""Method wiring: each method's step on a tiny batch, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bmxlib.config import load_config
from bmxlib.labels import ManagedLabels
from bmxlib.methods import REGISTRY, Batch, TrainingData, build_method


class Fixed(torch.nn.Module):
    """Returns preset logits for instance indices encoded in the input."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x holds one-hot rows over instances (mixed rows mix the logits linearly)
        return self.scale * (x.flatten(1) @ self.logits)


def _data(noisy: np.ndarray) -> TrainingData:
    return TrainingData(torch.tensor(noisy, dtype=torch.float32), noisy.astype(np.uint8),
                        np.zeros_like(noisy, dtype=bool), noise_known=False)


def test_large_loss_delta_rel_is_in_percent():
    # the authors give delta_rel in percent: 10 → clean rate 0.8 at epoch 3 → 20% modified
    n, k = 10, 10
    noisy = np.zeros((n, k))
    noisy[:, 0] = 1
    config = load_config(None, ["method=ll_r", "ll_delta_rel=10"])
    method = build_method(config, _data(noisy), model=torch.nn.Identity())
    logits = torch.randn(n, k)
    out = method.training_step(Fixed(logits), Batch(x_r=torch.eye(n), index_r=torch.arange(n),
                                                    epoch=3))
    assert out["modified"] == pytest.approx(0.2)


def test_balancemix_weights_follow_the_random_instance():
    noisy = np.array([[1, 0], [0, 1]], dtype=float)
    config = load_config(None, ["method=balancemix", "mix_alpha=1"])
    method = build_method(config, _data(noisy), model=torch.nn.Identity())
    method.managed = ManagedLabels(
        targets=torch.tensor([[1.0, 1.0], [0.0, 1.0]]),
        state=torch.tensor([[0, 1], [2, 0]], dtype=torch.uint8),
        weight=torch.tensor([[1.0, 1.0], [0.3, 1.0]]),
    )
    logits = torch.tensor([[2.0, -1.0], [0.5, 1.5]])
    generator = torch.Generator().manual_seed(0)
    batch = Batch(x_r=torch.eye(2), index_r=torch.tensor([0, 1]), x_m=torch.eye(2)[[1, 0]],
                  index_m=torch.tensor([1, 0]), generator=generator)
    out = method.training_step(Fixed(logits), batch)
    lam = out["lambda"]
    assert 0.5 <= lam <= 1
    mixed_logits = lam * logits + (1 - lam) * logits[[1, 0]]
    targets = method.managed.targets
    mixed_targets = lam * targets + (1 - lam) * targets[[1, 0]]
    weights = method.managed.weight  # of the random-sampler instances 0 and 1
    expected = (F.binary_cross_entropy_with_logits(mixed_logits, mixed_targets,
                                                   reduction="none") * weights).sum(1).mean()
    assert float(out["loss"].detach()) == pytest.approx(float(expected), rel=1e-5)


def test_registry_holds_every_spec_method():
    assert set(REGISTRY) == {"bce", "mixup", "focal", "asl", "ros", "ll_r", "ll_ct",
                             "coteaching", "db", "balancemix"}
