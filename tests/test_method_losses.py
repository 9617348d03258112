"""Tests of bmxlib.methods.losses (docs/method.md §4 baseline losses and selection rules)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from bmxlib.methods.losses import (
    LargeLossResult,
    asymmetric_loss,
    distribution_balanced_loss,
    focal_loss,
    large_loss_clean_rate,
    large_loss_modify,
)
from bmxlib.methods.selection import (
    coteaching_clean_probability,
    coteaching_select,
    ros_instance_weights,
)

LN3 = math.log(3.0)
DTYPE = torch.float64


def bce(logits, targets):
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")


def random_pair(seed, shape=(6, 5), soft=False):
    generator = torch.Generator().manual_seed(seed)
    logits = 4 * torch.randn(shape, generator=generator, dtype=DTYPE)
    targets = torch.rand(shape, generator=generator, dtype=DTYPE)
    return logits, targets if soft else (targets > 0.6).to(DTYPE)


# --------------------------------------------------------------------------- focal


def test_focal_hand_computed():
    # p = sigmoid(z): z = 0 -> 0.5, ln 3 -> 0.75, -ln 3 -> 0.25.
    logits = torch.tensor([[0.0, LN3], [-LN3, 0.0]], dtype=DTYPE)
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=DTYPE)
    expected = torch.tensor(
        [
            [0.5**2 * math.log(2), 0.75**2 * math.log(4)],  # (1-p)^2·(-ln p), p^2·(-ln(1-p))
            [0.75**2 * math.log(4), 0.5**2 * math.log(2)],
        ],
        dtype=DTYPE,
    )
    torch.testing.assert_close(focal_loss(logits, targets), expected)
    alpha_weights = torch.tensor([[0.25, 0.75], [0.25, 0.75]], dtype=DTYPE)
    torch.testing.assert_close(focal_loss(logits, targets, alpha=0.25), alpha_weights * expected)


def test_focal_soft_target_hand_computed():
    # y = 0.5 at p = 0.5: 0.5·0.25·ln2 + 0.5·0.25·ln2 = 0.25·ln2.
    value = focal_loss(torch.zeros(1, 1, dtype=DTYPE), torch.full((1, 1), 0.5, dtype=DTYPE))
    assert value.item() == pytest.approx(0.25 * math.log(2))


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_focal_gamma_zero_is_bce(soft):
    logits, targets = random_pair(0, soft=soft)
    torch.testing.assert_close(focal_loss(logits, targets, gamma=0.0), bce(logits, targets))


def test_focal_is_finite_for_extreme_logits():
    logits = torch.tensor([[-200.0, 200.0]])
    targets = torch.tensor([[1.0, 0.0]])
    value = focal_loss(logits, targets)
    assert torch.isfinite(value).all() and value[0, 0].item() == pytest.approx(200.0)


# --------------------------------------------------------------------------- ASL


def test_asl_hand_computed():
    logits = torch.tensor([[LN3, -LN3, 0.0, -math.log(19.0)]], dtype=DTYPE)
    targets = torch.tensor([[0.0, 0.0, 1.0, 0.0]], dtype=DTYPE)
    expected = torch.tensor(
        [
            [
                0.70**4 * -math.log(0.30),  # p=.75 -> p_m=.70
                0.20**4 * -math.log(0.80),  # p=.25 -> p_m=.20
                math.log(2.0),  # positive, gamma_pos=0: -ln .5
                0.0,  # p=.05 <= clip: hard-thresholded
            ]
        ],
        dtype=DTYPE,
    )
    torch.testing.assert_close(asymmetric_loss(logits, targets), expected)


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_asl_gamma_zero_clip_zero_is_bce(soft):
    logits, targets = random_pair(1, soft=soft)
    value = asymmetric_loss(logits, targets, gamma_pos=0.0, gamma_neg=0.0, clip=0.0, eps=0.0)
    torch.testing.assert_close(value, bce(logits, targets))


def test_asl_symmetric_gammas_no_clip_equal_focal():
    logits, targets = random_pair(2, soft=True)
    value = asymmetric_loss(logits, targets, gamma_pos=2.0, gamma_neg=2.0, clip=0.0, eps=0.0)
    torch.testing.assert_close(value, focal_loss(logits, targets, gamma=2.0))


def test_asl_gradient_flows_through_focusing_weight_by_default():
    logits, targets = random_pair(3)
    logits = (logits / 4).requires_grad_(True)

    def grad(detach):
        loss = asymmetric_loss(logits, targets, gamma_pos=1.0, detach_focusing=detach)
        return torch.autograd.grad(loss.sum(), logits)[0]

    flowing, detached = grad(False), grad(True)
    assert not torch.allclose(flowing, detached)
    # The detached gradient is exactly the weighted BCE gradient with constant weights.
    p = torch.sigmoid(logits.detach())
    weight_pos = (1 - p) ** 1.0
    weight_neg = (p - 0.05).clamp(min=0) ** 4
    one_minus_shifted = (1 - p + 0.05).clamp(max=1)
    # d/dz of -log p is -(1-p); d/dz of -log(1 - p + m) is p(1-p)/(1-p+m) where unclamped.
    neg_grad = torch.where(one_minus_shifted < 1, p * (1 - p) / one_minus_shifted, 0.0)
    expected = targets * weight_pos * -(1 - p) + (1 - targets) * weight_neg * neg_grad
    torch.testing.assert_close(detached, expected)
    # The flowing gradient adds the focusing weight's own derivative (product rule, with
    # dp/dz = p(1 - p)): for -(1 - p)^1 log p it is p(1 - p) log p - (1 - p)^2; for
    # -p_m^4 log(1 - p_m) it is p(1 - p) (-4 p_m^3 log(1 - p_m) + p_m^4 / (1 - p_m)).
    p_m = (p - 0.05).clamp(min=0)
    pos_flowing = p * (1 - p) * torch.log(p) - (1 - p) ** 2
    neg_flowing = torch.where(
        p_m > 0, p * (1 - p) * (-4 * p_m**3 * torch.log(1 - p_m) + p_m**4 / (1 - p_m)), 0.0)
    torch.testing.assert_close(flowing, targets * pos_flowing + (1 - targets) * neg_flowing)


def test_asl_eps_floors_the_log():
    value = asymmetric_loss(torch.tensor([[-100.0]]), torch.ones(1, 1), eps=1e-8)
    assert value.item() == pytest.approx(-math.log(1e-8), rel=1e-5)


# --------------------------------------------------------------------------- DB


def db_simple(**overrides):
    """Options under which DB reduces to a plain (possibly focal) BCE."""
    options = dict(alpha=0.5, beta=0.0, kappa=0.0, neg_lambda=1.0, gamma=0.0, balance_param=1.0)
    options.update(overrides)
    return options


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_db_reduces_to_bce(soft):
    # beta = 0 -> r̂ = alpha + sigmoid(0) = 1; kappa = 0 -> no shift; lambda = 1; gamma = 0.
    logits, targets = random_pair(4, soft=soft)
    freq = np.array([3, 10, 40, 80, 99])
    value = distribution_balanced_loss(logits, targets, freq, 100, **db_simple())
    torch.testing.assert_close(value, bce(logits, targets))


def test_db_reduces_to_focal():
    logits, targets = random_pair(5, soft=True)
    freq = np.array([3, 10, 40, 80, 99])
    value = distribution_balanced_loss(logits, targets, freq, 100, **db_simple(gamma=2.0))
    torch.testing.assert_close(value, focal_loss(logits, targets, gamma=2.0))


def test_db_negative_tolerance_hand_computed():
    # r̂ = 1, no shift, gamma = 0, lambda = 2: negatives give (1/2)·softplus(2z).
    logits = torch.tensor([[LN3, 0.0]], dtype=DTYPE)
    targets = torch.tensor([[0.0, 1.0]], dtype=DTYPE)
    value = distribution_balanced_loss(logits, targets, [10, 10], 100, **db_simple(neg_lambda=2))
    # softplus(2 ln 3) = ln(1 + 9) = ln 10; positive: -ln sigmoid(0) = ln 2.
    torch.testing.assert_close(
        value, torch.tensor([[0.5 * math.log(10.0), math.log(2.0)]], dtype=DTYPE)
    )


def test_db_defaults_hand_computed():
    # K = 2, n = (10, 90), N = 100; instance positive for class 0 only.
    logits = torch.tensor([[0.5, -1.0]], dtype=DTYPE)
    targets = torch.tensor([[1.0, 0.0]], dtype=DTYPE)
    # r = (1/n_k) / (1/10) = (1, 1/9); r̂ = 0.1 + sigmoid(10·(r − 0.2)).
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    weight = [0.1 + sig(10 * (1 - 0.2)), 0.1 + sig(10 * (1 / 9 - 0.2))]
    # b̂ = log(ρ/(1−ρ)): ρ = 0.1 -> log(1/9); ρ = 0.9 -> log 9. Shift = 0.05·b̂/2.
    shift = [0.05 * math.log(1 / 9) / 2, 0.05 * math.log(9) / 2]
    z0, z1 = 0.5 + shift[0], -1.0 + shift[1]
    positive = (1 - sig(z0)) ** 2 * -math.log(sig(z0))
    negative = sig(2 * z1) ** 2 * -math.log(1 - sig(2 * z1)) / 2
    expected = torch.tensor([[2 * weight[0] * positive, 2 * weight[1] * negative]], dtype=DTYPE)
    value = distribution_balanced_loss(logits, targets, torch.tensor([10.0, 90.0]), 100)
    torch.testing.assert_close(value, expected)


def test_db_weights_co_occurrence_and_no_positive_instances():
    # With lambda = 1, no shift, gamma = 0, the loss is r̂·BCE, so r̂ = loss / BCE.
    logits = torch.zeros(3, 2, dtype=DTYPE)
    targets = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]], dtype=DTYPE)
    options = db_simple(alpha=0.1, beta=10.0)
    weight = distribution_balanced_loss(logits, targets, [10, 90], 100, **options) / math.log(2)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    rate_both = 1 / 10 + 1 / 90  # both positive: r = (0.9, 0.1)
    expected = [
        [0.1 + sig(10 * (0.1 / rate_both - 0.2)), 0.1 + sig(10 * ((1 / 90) / rate_both - 0.2))],
        [0.1 + sig(10 * 0.8), 0.1 + sig(10 * (1 / 9 - 0.2))],
        [1.1, 1.1],  # no positives: r = inf
    ]
    torch.testing.assert_close(weight, torch.tensor(expected, dtype=DTYPE))


def test_db_handles_zero_count_classes():
    logits, targets = random_pair(6, shape=(4, 3))
    value = distribution_balanced_loss(logits, targets, [0, 5, 100], 100)
    assert torch.isfinite(value).all()


@pytest.mark.parametrize(
    "freq, train_num, error",
    [([1, 2], 100, ValueError), ([1, 2, 200], 100, ValueError), ([-1, 2, 3], 100, ValueError)],
    ids=["wrong-length", "above-train-num", "negative"],
)
def test_db_rejects_bad_class_freq(freq, train_num, error):
    logits, targets = random_pair(7, shape=(2, 3))
    with pytest.raises(error, match="class_freq"):
        distribution_balanced_loss(logits, targets, freq, train_num)


# --------------------------------------------------------------------------- large loss


def test_large_loss_reject_selects_k_largest_negatives():
    # B·K = 6, clean_rate = 0.6 -> k = ceil(6·0.4) = ceil(2.4) = 3.
    logits = torch.tensor([[5.0, 1.0, -2.0], [3.0, 0.5, 9.0]], dtype=DTYPE)
    targets = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=DTYPE)
    # Negative losses softplus(z): 5.0067, 1.3133, 0.1269, 3.0486, 0.9741; the positive with
    # z = 9 has a small loss but must never be a candidate anyway.
    result = large_loss_modify(logits, targets, clean_rate=0.6, mode="reject")
    assert isinstance(result, LargeLossResult)
    expected_mask = torch.tensor([[True, True, False], [True, False, False]])
    assert torch.equal(result.modified, expected_mask)
    expected_loss = torch.where(expected_mask, 0.0, bce(logits, targets))
    torch.testing.assert_close(result.loss, expected_loss)
    assert torch.equal(result.targets, targets)


def test_large_loss_correct_sets_target_one():
    logits = torch.tensor([[5.0, 1.0, -2.0], [3.0, 0.5, 9.0]], dtype=DTYPE)
    targets = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=DTYPE)
    loss, modified, new_targets = large_loss_modify(logits, targets, clean_rate=0.6, mode="correct")
    assert torch.equal(new_targets, torch.where(modified, 1.0, targets).to(DTYPE))
    torch.testing.assert_close(loss, bce(logits, new_targets))
    assert loss[0, 0].item() == pytest.approx(math.log1p(math.exp(-5.0)))


def test_large_loss_never_selects_positives_when_k_exceeds_candidates():
    logits = torch.tensor([[-9.0, 2.0], [7.0, 8.0]], dtype=DTYPE)
    targets = torch.tensor([[1.0, 0.0], [0.7, 1.0]], dtype=DTYPE)  # one candidate
    result = large_loss_modify(logits, targets, clean_rate=0.0, mode="reject")  # k = 4
    assert torch.equal(result.modified, torch.tensor([[False, True], [False, False]]))


def test_large_loss_clean_rate_one_modifies_nothing():
    logits, targets = random_pair(8)
    result = large_loss_modify(logits, targets, clean_rate=1.0, mode="correct")
    assert not result.modified.any()
    torch.testing.assert_close(result.loss, bce(logits, targets))


def test_large_loss_k_is_robust_to_float_noise():
    # 1 − 0.7 = 0.30000000000000004 in floats; k must be 30, not 31, for B·K = 100.
    logits = torch.linspace(-3, 3, 100, dtype=DTYPE).reshape(10, 10)
    result = large_loss_modify(logits, torch.zeros_like(logits), clean_rate=0.7, mode="reject")
    assert int(result.modified.sum()) == 30


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), clean_rate=st.floats(0.0, 1.0))
def test_large_loss_selection_property(seed, clean_rate):
    logits, targets = random_pair(seed, shape=(4, 5))
    result = large_loss_modify(logits, targets, clean_rate=clean_rate, mode="reject")
    candidate = targets == 0
    k = math.ceil(round(20 * (1 - clean_rate), 6))
    assert int(result.modified.sum()) == min(k, int(candidate.sum()))
    assert not (result.modified & ~candidate).any()
    negative_loss = F.softplus(logits)
    kept = candidate & ~result.modified
    if result.modified.any() and kept.any():
        assert negative_loss[result.modified].min() >= negative_loss[kept].max()


@pytest.mark.parametrize(
    "epoch, delta_rel, expected",
    [(1, 0.1, 1.0), (2, 0.1, 0.9), (5, 0.1, 0.6), (11, 0.1, 0.0), (30, 0.1, 0.0), (3, 0.04, 0.92)],
    ids=["epoch1", "epoch2", "epoch5", "reaches0", "clamped", "delta004"],
)
def test_large_loss_clean_rate_schedule(epoch, delta_rel, expected):
    assert large_loss_clean_rate(epoch, delta_rel=delta_rel) == pytest.approx(expected)


def test_large_loss_rejects_bad_input():
    logits, targets = random_pair(9)
    with pytest.raises(ValueError, match="mode"):
        large_loss_modify(logits, targets, clean_rate=0.5, mode="drop")
    with pytest.raises(ValueError, match="epoch"):
        large_loss_clean_rate(0, delta_rel=0.1)


# --------------------------------------------------------------------------- co-teaching


def two_clusters():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(0.2, 0.02, 80), rng.normal(2.0, 0.05, 20)])


def test_coteaching_select_two_clusters():
    mask = coteaching_select(two_clusters())
    assert mask.dtype == np.bool_
    assert mask[:80].all() and not mask[80:].any()


def test_coteaching_probability_matches_an_independent_em():
    # oracle: bmxlib's own batched EM (optimal 2-means start, checked against sklearn in
    # test_gmm), not the sklearn call the implementation makes
    from bmxlib.gmm import clean_probability

    rng = np.random.default_rng(1)
    losses = np.concatenate([rng.gamma(2.0, 0.1, 300), rng.normal(1.5, 0.3, 60).clip(0)])
    reference = clean_probability(losses[:, None], np.ones((losses.size, 1))).numpy()[:, 0]
    ours = coteaching_clean_probability(losses)
    assert np.mean((ours > 0.5) == (reference > 0.5)) > 0.99
    np.testing.assert_allclose(ours, reference, atol=0.02)


def test_coteaching_tensor_in_tensor_out():
    losses = torch.tensor(two_clusters(), dtype=torch.float32)
    mask = coteaching_select(losses)
    assert isinstance(mask, torch.Tensor) and mask.dtype == torch.bool
    assert mask.device == losses.device and int(mask.sum()) == 80


@pytest.mark.parametrize(
    "losses", [np.full(7, 0.3), np.array([1.5]), np.array([])], ids=["all-equal", "one", "empty"]
)
def test_coteaching_degenerate_is_all_clean(losses):
    mask = coteaching_select(losses)
    assert mask.shape == losses.shape and mask.all()


def test_coteaching_rejects_nan():
    with pytest.raises(ValueError, match="per_instance_loss"):
        coteaching_select(np.array([0.1, np.nan, 0.3]))


# --------------------------------------------------------------------------- ROS


def test_ros_hand_computed():
    # N_k = (3, 1). Scores: 1/3, 1/3, no positive -> 1/max N_k = 1/3, max(1/3, 1/1) = 1,
    # 1/3 (no positive); sum = 7/3, so weights = (1, 1, 1, 3, 1) / 7.
    labels = np.array([[1, 0], [1, 0], [0, 0], [1, 1], [0, 0]], dtype=np.uint8)
    expected = np.array([1, 1, 1, 3, 1]) / 7
    weights = ros_instance_weights(labels)
    assert weights.dtype == np.float64
    np.testing.assert_allclose(weights, expected)


def test_ros_favours_rare_class_instances_and_sums_to_one():
    rng = np.random.default_rng(1)
    labels = (rng.random((200, 6)) < np.array([0.6, 0.4, 0.2, 0.1, 0.05, 0.02])).astype(np.uint8)
    weights = ros_instance_weights(torch.from_numpy(labels))
    assert weights.sum() == pytest.approx(1.0) and (weights > 0).all()
    rare = labels[:, 5] == 1
    only_common = (labels[:, 0] == 1) & (labels[:, 1:].sum(1) == 0)
    assert weights[rare].min() > weights[only_common].max()


def test_ros_all_negative_is_uniform():
    np.testing.assert_allclose(ros_instance_weights(np.zeros((4, 3))), np.full(4, 0.25))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "loss_fn",
    [focal_loss, asymmetric_loss, lambda z, y: distribution_balanced_loss(z, y, [1, 2, 3], 10)],
    ids=["focal", "asl", "db"],
)
def test_losses_validate_inputs(loss_fn):
    logits = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="targets"):
        loss_fn(logits, torch.full((2, 3), 1.5))
    with pytest.raises(ValueError, match="shape"):
        loss_fn(logits, torch.zeros(3, 2))
    with pytest.raises(TypeError, match="logits"):
        loss_fn(np.zeros((2, 3)), torch.zeros(2, 3))


# --------------------------------------------------------------------------- GPU parity


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_losses_on_cuda_match_cpu():
    logits, targets = random_pair(10, shape=(8, 5), soft=True)
    freq = [3, 10, 40, 80, 99]
    for fn in (
        focal_loss,
        asymmetric_loss,
        lambda z, y: distribution_balanced_loss(z, y, freq, 100),
        lambda z, y: large_loss_modify(z, (y > 0.5).to(y.dtype), clean_rate=0.7, mode="correct")[0],
    ):
        on_gpu = fn(logits.cuda(), targets.cuda())
        assert on_gpu.is_cuda
        torch.testing.assert_close(on_gpu.cpu(), fn(logits, targets))
    mask = coteaching_select(torch.tensor(two_clusters()).cuda())
    assert mask.is_cuda and int(mask.sum()) == 80
