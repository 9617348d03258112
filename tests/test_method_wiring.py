"""Every method trains what it claims: its loss on a fixed batch equals its own loss
function (docs/method.md §4), with and without the paper's Mixup, and differs from plain BCE.

A linear "model" maps one-hot instance rows to preset logits, so a mixed row gives the
mixed logits λ·z_R + (1 − λ)·z_M and every expected value is computed from the public
loss functions directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bmxlib.config import load_config
from bmxlib.labels import ManagedLabels
from bmxlib.methods import REGISTRY, Batch, EpochResult, TrainingData, build_method
from bmxlib.methods.losses import (
    asymmetric_loss,
    distribution_balanced_loss,
    focal_loss,
    large_loss_clean_rate,
    large_loss_modify,
)
from bmxlib.methods.selection import coteaching_select, ros_instance_weights
from bmxlib.methods.transition import forward_corrected_bce

NOISY = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 0, 0]], float)
LOGITS = torch.tensor([[2.0, -1.0, 0.5], [-0.5, 1.5, -2.0], [1.0, 0.2, -0.3],
                       [-1.5, -0.7, 2.5], [0.3, -2.0, 1.0], [-1.0, 0.8, -0.2]])
INDEX_R, INDEX_M = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 0, 1])
EPOCH = 4  # after warm-up (warmup_epochs=2), LL's clean rate below 1


class Linear(torch.nn.Module):
    """logits = x @ L for one-hot (or mixed one-hot) rows x over the instances."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * (x.flatten(1) @ self.logits)


def _method(name: str, mixup: bool):
    config = load_config(None, [f"method={name}", "protocol=custom", f"mixup={mixup}",
                                "warmup_epochs=2", "ll_delta_rel=20", "mix_alpha=1"])
    data = TrainingData(torch.tensor(NOISY, dtype=torch.float32), NOISY.astype(np.uint8),
                        np.zeros(NOISY.shape, bool), noise_known=False)
    return build_method(config, data, model=Linear(LOGITS)), data


def _step(method):
    eye = torch.eye(len(NOISY))
    batch = Batch(x_r=eye[INDEX_R], index_r=INDEX_R, x_m=eye[INDEX_M], index_m=INDEX_M,
                  epoch=EPOCH, generator=torch.Generator().manual_seed(3))
    method.start_epoch(EPOCH)
    return method.training_step(Linear(LOGITS), batch)


def _inputs(out, targets_of=lambda index: torch.tensor(NOISY, dtype=torch.float32)[index]):
    """(logits, targets, observed) of the step as the method must have seen them."""
    observed = torch.tensor(NOISY, dtype=torch.float32)[INDEX_R]
    if "lambda" not in out:
        return LOGITS[INDEX_R], targets_of(INDEX_R), observed
    lam = out["lambda"]
    logits = lam * LOGITS[INDEX_R] + (1 - lam) * LOGITS[INDEX_M]
    return logits, lam * targets_of(INDEX_R) + (1 - lam) * targets_of(INDEX_M), observed


def _bce(z, y):
    return F.binary_cross_entropy_with_logits(z, y, reduction="none")


def _reduce(per_label):
    return float(per_label.sum(dim=1).mean())


TRANSITION = torch.tensor([[[0.9, 0.1], [0.3, 0.7]], [[0.8, 0.2], [0.1, 0.9]],
                           [[1.0, 0.0], [0.25, 0.75]]])
MANAGED = ManagedLabels(
    targets=torch.tensor(NOISY[:, ::-1].copy(), dtype=torch.float32),  # refined labels
    state=torch.zeros(NOISY.shape, dtype=torch.uint8),
    weight=torch.linspace(0.2, 1.0, NOISY.size).view(NOISY.shape),
)


def _prepare(name, method):
    """Put a method in the state whose rule the expected loss checks."""
    if name == "t_estimator":
        method.transition = TRANSITION
    if name == "balancemix":
        method.managed = MANAGED


def _expected(name, method, out, data):
    config = method.config
    if name == "balancemix":
        z, y, _ = _inputs(out, targets_of=lambda index: MANAGED.targets[index])
        return _reduce(_bce(z, y) * MANAGED.weight[INDEX_R])
    z, y, observed = _inputs(out)
    if name in ("bce", "mixup", "ros"):
        return _reduce(_bce(z, y))
    if name == "focal":
        return _reduce(focal_loss(z, y, gamma=config.focal_gamma))
    if name == "asl":
        return _reduce(asymmetric_loss(z, y, gamma_pos=config.asl_gamma_pos,
                                       gamma_neg=config.asl_gamma_neg, clip=config.asl_clip))
    if name == "db":
        return _reduce(distribution_balanced_loss(z, y, data.noisy_labels.sum(0),
                                                  float(len(NOISY))))
    if name in ("ll_r", "ll_ct"):
        rate = large_loss_clean_rate(EPOCH, delta_rel=config.ll_delta_rel / 100)
        result = large_loss_modify(z, y, clean_rate=rate, mode="reject" if name == "ll_r"
                                   else "correct", candidates=observed == 0)
        assert result.modified.any()  # the rule fires on this batch
        return _reduce(result.loss)
    if name == "t_estimator":
        return _reduce(forward_corrected_bce(z, y, TRANSITION))
    raise KeyError(f"no expected loss for method {name!r}: add it to this test")


SINGLE_NETWORK = sorted(set(REGISTRY) - {"coteaching"})


@pytest.mark.parametrize("mixup", [False, True], ids=["plain", "mixup"])
@pytest.mark.parametrize("name", SINGLE_NETWORK)
def test_the_loss_is_the_methods_own(name, mixup):
    if name in ("mixup", "balancemix") and not mixup:
        pytest.skip(f"{name} mixes by definition")
    method, data = _method(name, mixup)
    _prepare(name, method)
    out = _step(method)
    assert ("lambda" in out) == mixup  # the protocol switch reaches the step
    expected = _expected(name, method, out, data)
    assert float(out["loss"].detach()) == pytest.approx(expected, rel=1e-5)
    if name not in ("bce", "mixup", "ros"):  # the check can tell the method from BCE
        z, y, _ = _inputs(out)
        assert abs(expected - _reduce(_bce(z, y))) > 1e-3


def test_ros_draws_its_batches_from_the_oversampling_weights():
    plain, _ = _method("ros", False)
    np.testing.assert_allclose(plain.instance_weights(), ros_instance_weights(NOISY))
    assert plain.second_sampler is None
    mixing, _ = _method("ros", True)
    assert mixing.second_sampler == "weighted"  # both mixed batches oversample


@pytest.mark.parametrize("mixup", [False, True], ids=["plain", "mixup"])
def test_coteaching_trains_each_network_on_its_peers_selection(mixup):
    method, _ = _method("coteaching", mixup)
    peer_logits = LOGITS.flip(0) * 0.5
    method.peer = Linear(peer_logits)
    method.keep_for_model = torch.tensor([True, False, True, True, False, True])
    method.keep_for_peer = torch.tensor([False, True, True, False, True, True])
    out = _step(method)
    expected = 0.0
    for logits, keep in ((LOGITS, method.keep_for_model), (peer_logits, method.keep_for_peer)):
        z, y = logits[INDEX_R], torch.tensor(NOISY, dtype=torch.float32)[INDEX_R]
        if mixup:
            lam = out["lambda"]
            z = lam * z + (1 - lam) * logits[INDEX_M]
            y = lam * y + (1 - lam) * torch.tensor(NOISY, dtype=torch.float32)[INDEX_M]
        kept = keep[INDEX_R].float()  # the random-sampler instance decides
        expected += float((_bce(z, y).sum(1) * kept).sum() / kept.sum())
    assert float(out["loss"].detach()) == pytest.approx(expected, rel=1e-5)


class _TwoNetworkContext:
    """End-of-epoch context whose full-data pass returns preset logits per network."""

    def __init__(self, logits_of: dict, epoch: int) -> None:
        self.logits_of, self.epoch, self.full_diagnostics = logits_of, epoch, False
        self.model = None

    def full_data_pass(self, model=None):
        return self.logits_of[id(model)].clone()

    def predict_views(self, rows, *, n_views=2):
        raise AssertionError("co-teaching takes no views")


def test_coteaching_selects_with_the_other_networks_losses():
    rng = np.random.default_rng(0)
    n = 200
    noisy = (rng.random((n, 3)) < 0.3).astype(float)
    data = TrainingData(torch.tensor(noisy, dtype=torch.float32), noisy.astype(np.uint8),
                        np.zeros(noisy.shape, bool), noise_known=False)
    config = load_config(None, ["method=coteaching", "warmup_epochs=1"])
    model = Linear(torch.zeros(n, 3))
    method = build_method(config, data, model=model)
    sign = torch.tensor(noisy * 2 - 1, dtype=torch.float32)
    # the model fits the first 150 instances, the peer the last 150: different selections
    model_logits, peer_logits = 4 * sign.clone(), 4 * sign.clone()
    model_logits[150:] *= -1
    peer_logits[:50] *= -1
    context = _TwoNetworkContext({id(model): model_logits, id(method.peer): peer_logits},
                                 epoch=1)
    context.model = model
    result = method.end_of_epoch(context)
    assert isinstance(result, EpochResult)
    model_loss = _bce(model_logits, data.noisy_labels).mean(dim=1)
    peer_loss = _bce(peer_logits, data.noisy_labels).mean(dim=1)
    assert torch.equal(method.keep_for_model, coteaching_select(peer_loss))
    assert torch.equal(method.keep_for_peer, coteaching_select(model_loss))
    assert not method.keep_for_model[:50].any() and method.keep_for_model[50:].all()
    assert method.keep_for_peer[:150].all() and not method.keep_for_peer[150:].any()


@pytest.mark.parametrize("detach", [False, True], ids=["spec", "detached"])
def test_asl_detach_focusing_reaches_the_gradient(detach):
    config = load_config(None, ["method=asl", "protocol=custom", "mixup=false",
                                f"asl_detach_focusing={detach}"])
    data = TrainingData(torch.tensor(NOISY, dtype=torch.float32), NOISY.astype(np.uint8),
                        np.zeros(NOISY.shape, bool), noise_known=False)
    model = Linear(LOGITS)
    method = build_method(config, data, model=model)
    method.start_epoch(EPOCH)
    out = method.training_step(model, Batch(x_r=torch.eye(len(NOISY))[INDEX_R],
                                            index_r=INDEX_R, epoch=EPOCH))
    (got,) = torch.autograd.grad(out["loss"], model.scale)

    def scale_gradient(detach_focusing):
        scale = torch.ones((), requires_grad=True)
        per_label = asymmetric_loss(
            scale * LOGITS[INDEX_R], torch.tensor(NOISY, dtype=torch.float32)[INDEX_R],
            gamma_pos=config.asl_gamma_pos, gamma_neg=config.asl_gamma_neg,
            clip=config.asl_clip, detach_focusing=detach_focusing)
        loss = per_label.sum(dim=1).mean()
        return torch.autograd.grad(loss, scale)[0]

    assert float(got) == pytest.approx(float(scale_gradient(detach)), rel=1e-5)
    assert abs(float(scale_gradient(True)) - float(scale_gradient(False))) > 1e-4
