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


class EpochEnd:
    """The part of an epoch context LL-R / LL-Ct read at the end of an epoch."""

    def __init__(self, *, full_diagnostics: bool = False) -> None:
        self.epoch, self.full_diagnostics = 2, full_diagnostics


def _data(noisy: np.ndarray) -> TrainingData:
    return TrainingData(torch.tensor(noisy, dtype=torch.float32), noisy.astype(np.uint8),
                        np.zeros_like(noisy, dtype=bool), noise_known=False)


@pytest.mark.parametrize("name", ["ll_r", "ll_ct"])
def test_large_loss_counts_its_modified_labels_against_the_truth_by_hand(name):
    clean = np.array([[1, 1], [1, 0], [0, 1], [0, 0]])
    noisy = np.array([[1, 0], [1, 0], [0, 0], [1, 0]])  # hidden positives (0,1), (2,1)
    data = TrainingData(torch.tensor(noisy, dtype=torch.float32), clean.astype(np.uint8),
                        noisy != clean, noise_known=True)
    # 25% per epoch: clean rate 0.75 at epoch 2, so k = ceil(B·K·0.25) entries per step
    config = load_config(None, [f"method={name}", "ll_delta_rel=25", "protocol=custom"])
    method = build_method(config, data, model=torch.nn.Identity())
    # BCE against 0 grows with the logit; the candidates (given 0) ranked (0,1) > (1,1) > (2,1)
    logits = torch.tensor([[0.0, 3.0], [0.0, 2.0], [-2.0, 1.0], [0.0, -1.0]])
    method.start_epoch(2)
    eye = torch.eye(4)
    for rows in ([0, 1, 2, 3], [2]):  # k = 2: (0,1) hidden, (1,1) not; k = 1: (2,1) hidden
        index = torch.tensor(rows)
        method.training_step(Fixed(logits), Batch(x_r=eye[index], index_r=index, epoch=2))
    result = method.end_of_epoch(EpochEnd(full_diagnostics=True))
    # 3 of 10 entries modified, 2 of them hidden positives; 3 hidden positives were candidates
    assert result.logs == pytest.approx({"ll_modified": 0.3, "ll_modified_precision": 2 / 3,
                                         "ll_hidden_modified": 2 / 3})
    # per class over the 5 rows: class 0 none, class 1 three entries, two of them hidden
    assert set(result.diagnostics) == {"ll_modified_by_class", "ll_modified_hidden_by_class"}
    np.testing.assert_allclose(result.diagnostics["ll_modified_by_class"], [0.0, 3 / 5])
    np.testing.assert_allclose(result.diagnostics["ll_modified_hidden_by_class"], [0.0, 2 / 5])
    method.start_epoch(3)  # the counts are per epoch
    assert method.end_of_epoch(EpochEnd(full_diagnostics=True)).logs == {}
    unknown = build_method(config, _data(noisy.astype(float)), model=torch.nn.Identity())
    unknown.start_epoch(2)
    unknown.training_step(Fixed(logits), Batch(x_r=eye, index_r=torch.arange(4), epoch=2))
    result = unknown.end_of_epoch(EpochEnd())  # per-class arrays at full epochs only
    assert result.logs == pytest.approx({"ll_modified": 0.25}) and result.diagnostics == {}
    result = unknown.end_of_epoch(EpochEnd(full_diagnostics=True))
    assert set(result.diagnostics) == {"ll_modified_by_class"}  # no truth, no hidden share
    np.testing.assert_allclose(result.diagnostics["ll_modified_by_class"], [0.0, 2 / 4])


@pytest.mark.parametrize("candidates, modified_label", [("dominant_zero", 1),
                                                        ("mixed_zero", 2)])
def test_large_loss_candidates_under_mixup_by_hand(candidates, modified_label):
    # instance 0 (random sampler) given [1, 0, 0], truly [1, 0, 1]; its partner given [0, 1, 0]
    clean = np.array([[1, 0, 1], [0, 1, 0]])
    noisy = np.array([[1, 0, 0], [0, 1, 0]])
    data = TrainingData(torch.tensor(noisy, dtype=torch.float32), clean.astype(np.uint8),
                        noisy != clean, noise_known=True)
    config = load_config(None, ["method=ll_r", "ll_delta_rel=25", "protocol=custom",
                                "mixup=true", f"ll_candidates={candidates}"])
    method = build_method(config, data, model=torch.nn.Identity())
    method.start_epoch(2)  # k = ceil(1·3·0.25) = 1
    # both instances score label 1 at −5, so the mix does too: its BCE against the
    # partner's target 1 − λ >= 0.5 is >= 2.5, label 2's against 0 is log 2
    logits = torch.tensor([[0.0, -5.0, 0.0], [0.0, -5.0, 0.0]])
    eye = torch.eye(2)
    out = method.training_step(Fixed(logits), Batch(
        x_r=eye[[0]], index_r=torch.tensor([0]), x_m=eye[[1]], index_m=torch.tensor([1]),
        epoch=2, generator=torch.Generator().manual_seed(0)))
    assert 0.5 <= out["lambda"] <= 1.0
    logs = method.end_of_epoch(EpochEnd()).logs
    hit = float(modified_label == 2)  # label 2 of instance 0 is the hidden positive
    assert logs == pytest.approx({"ll_modified": 1 / 3, "ll_modified_precision": hit,
                                  "ll_hidden_modified": hit})


def test_large_loss_delta_rel_is_in_percent():
    # the authors give delta_rel in percent: 10 → clean rate 0.8 at epoch 3 → 20% modified
    n, k = 10, 10
    noisy = np.zeros((n, k))
    noisy[:, 0] = 1
    config = load_config(None, ["method=ll_r", "ll_delta_rel=10", "protocol=custom"])
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
    """docs/method.md §4's methods are registered (a new method may join them without a
    test edit)."""
    assert {"bce", "mixup", "focal", "asl", "ros", "ll_r", "ll_ct", "coteaching",
            "t_estimator", "db", "balancemix"} <= set(REGISTRY)


def test_config_keys_and_choices_come_from_the_registry():
    from bmxlib.config import METHODS, Config, ConfigError
    from bmxlib.methods import method_hyperparameters

    assert set(METHODS) == set(REGISTRY)
    declared = method_hyperparameters()
    assert {"focal_gamma", "relabel_epsilon", "ll_delta_rel", "t_history"} <= set(declared)
    defaults = Config()
    for key, hyper in declared.items():
        assert getattr(defaults, key) == hyper.default, key
        if hyper.high is not None:  # the declared range is what validation enforces
            with pytest.raises(ConfigError, match=key):
                load_config(None, [f"{key}={hyper.high * 2 + 1}"])
        if hyper.choices is not None:
            with pytest.raises(ConfigError, match=key):
                load_config(None, [f"{key}=not-a-choice"])


def test_methods_with_a_warm_up_refuse_a_run_that_ends_before_it():
    """A run that ends before its warm-up trains the warm-up's plain loss alone under the
    method's name: refused for each method that declares what follows its warm-up. A
    warm-up as long as the run is allowed: the method's end-of-warm-up work (selection,
    estimate) runs once, at the last epoch, and its diagnostics are recorded."""
    from bmxlib.config import ConfigError

    waiting = {name for name, cls in REGISTRY.items() if cls.after_warm_up}
    assert {"balancemix", "coteaching", "t_estimator"} <= waiting
    for name in REGISTRY:
        load_config(None, [f"method={name}", "epochs=3", "warmup_epochs=3"])
        if name in waiting:
            with pytest.raises(ConfigError, match=f"'warmup_epochs': 4 exceeds epochs 3, "
                                                  f"so {name}'s"):
                load_config(None, [f"method={name}", "epochs=3", "warmup_epochs=4"])
        else:
            load_config(None, [f"method={name}", "epochs=3", "warmup_epochs=4"])
    # without clean-label selection BalanceMix has nothing that waits for the warm-up
    load_config(None, ["method=balancemix", "clean_labels=false", "epochs=3",
                       "warmup_epochs=4"])


class _SyntheticContext:
    """End-of-epoch context with given logits and random re-label views (no model)."""

    def __init__(self, logits: torch.Tensor, *, epoch: int, full_diagnostics: bool) -> None:
        self.logits, self.epoch, self.full_diagnostics = logits, epoch, full_diagnostics

    def full_data_pass(self, model=None) -> torch.Tensor:
        return self.logits.clone()

    def predict_views(self, rows: torch.Tensor, *, n_views: int = 2) -> torch.Tensor:
        return torch.rand(len(rows), self.logits.shape[1])


@pytest.mark.parametrize("score", ["all", "uniform"], ids=str)
def test_the_minority_score_decides_the_second_batch_probabilities(score):
    """Wiring of the sampler's control row: minority_score=uniform keeps BalanceMix's
    with-replacement second batch (the minority sampler) but draws it uniformly; the
    default draws by §1.2, away from uniform on a model that gets class 1 wrong."""
    n, k = 64, 3
    g = torch.Generator().manual_seed(0)
    noisy = (torch.rand(n, k, generator=g) < 0.3).to(torch.uint8)
    noisy[:8, 1] = 1  # class 1's positives: the ones the model below misses
    logits = (noisy.float() * 2 - 1) * 3
    logits[:, 1] = -3.0
    data = TrainingData(noisy.float(), noisy.numpy(), np.zeros((n, k), bool), noise_known=True)
    config = load_config(None, ["method=balancemix", "warmup_epochs=1",
                                f"minority_score={score}"])
    method = build_method(config, data, model=torch.nn.Identity())
    assert method.second_sampler == "minority"
    method.end_of_epoch(_SyntheticContext(logits, epoch=1, full_diagnostics=False))
    p = method.minority_probabilities()
    uniform = torch.full((n,), 1 / n, dtype=torch.float64)
    if score == "uniform":
        torch.testing.assert_close(p, uniform)
    else:  # §1.2's p, which draws class 1's positives more often
        from bmxlib.sampling import minority_probabilities

        torch.testing.assert_close(p, minority_probabilities(logits.sigmoid(), noisy))
        assert float(p[:8].mean()) > 1.1 / n


def test_coco_sized_diagnostics_stay_under_50_mb(tmp_path):
    """Issue #3: a full-diagnostics epoch of an 82,783 × 80 run, as written, is < 50 MB."""
    from bmxlib.io import atomic_savez

    n, k = 82_783, 80
    g = torch.Generator().manual_seed(0)
    clean = (torch.rand(n, k, generator=g) < 0.036).to(torch.uint8)  # COCO: 2.9 labels / image
    flip = torch.rand(n, k, generator=g) < 0.02
    noisy = (clean.bool() ^ flip).to(torch.uint8)
    logits = torch.randn(n, k, generator=g) * 3 + (clean.float() * 2 - 1) * 2
    data = TrainingData(noisy.float(), clean.numpy(), flip.numpy(), noise_known=True)
    config = load_config(None, ["method=balancemix", "warmup_epochs=1"])
    method = build_method(config, data, model=torch.nn.Identity())
    result = method.end_of_epoch(_SyntheticContext(logits, epoch=5, full_diagnostics=True))
    logs, diagnostics = result.logs, result.diagnostics
    assert result.class_confidence.shape == (k,)  # P(k), typed, not hidden in the logs
    for key in ("clean_probability", "confidences", "state", "targets",
                "sampling_probabilities", "loss_hist", "gmm_means"):
        assert key in diagnostics, key
    assert diagnostics["confidences"].shape == (n, k)
    path = tmp_path / "epoch_005.npz"
    atomic_savez(path, **diagnostics)
    size = path.stat().st_size
    assert size < 50e6, f"{size / 1e6:.1f} MB"
    assert logs["labels_clean"] + logs["labels_relabeled"] + logs["labels_ambiguous"] == n * k
