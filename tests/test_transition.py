"""T-estimator's transition matrices (Li et al., NeurIPS 2022): hand-computed cases and a
statistical check on labels with a known class-conditional flip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bmxlib.methods.transition import (
    dual_t_estimate,
    empirical_transition,
    estimate_transitions,
    forward_corrected_bce,
    solve_pair,
    transition_error,
)


def test_solve_pair_recovers_a_hand_computed_case():
    # π1 = 0.4, c = P(ỹ_k | y_i) = [[0.8, 0.2], [0.3, 0.7]], ρ0 = 0.1, ρ1 = 0.2 give
    # J = [[0.48, 0.12], [0.12, 0.28]] and N[1, b] = J[0, b]·0.1 + J[1, b]·0.8,
    # N[0, b] = J[0, b]·0.9 + J[1, b]·0.2, i.e. N = [[0.456, 0.164], [0.144, 0.236]].
    noisy_joint = np.array([[0.456, 0.164], [0.144, 0.236]])
    conditional = np.array([[0.8, 0.2], [0.3, 0.7]])
    np.testing.assert_allclose(solve_pair(noisy_joint, conditional), [0.4, 0.1, 0.2],
                               atol=1e-12)


def test_solve_pair_without_correlation_is_undefined():
    # ỹ_k independent of y_i: c has equal rows, so π1 (and everything after it) is NaN/inf
    result = solve_pair(np.full((2, 2), 0.25), np.full((2, 2), 0.5))
    assert not np.isfinite(result).all()


def _correlated_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """Four classes that co-occur through a latent scene z (and class 3 through class 0)."""
    z = rng.random(n) < 0.3
    p = np.stack([np.where(z, 0.8, 0.1), np.where(z, 0.7, 0.2), np.where(z, 0.6, 0.15)], 1)
    y = (rng.random((n, 3)) < p).astype(np.uint8)
    y3 = (rng.random(n) < np.where(y[:, 0] == 1, 0.5, 0.1)).astype(np.uint8)
    return np.column_stack([y, y3])


RHO0 = np.array([0.05, 0.10, 0.02, 0.08])  # P(ỹ = 1 | y = 0) per class
RHO1 = np.array([0.20, 0.30, 0.10, 0.25])  # P(ỹ = 0 | y = 1) per class


def test_estimates_are_within_tolerance_of_a_known_class_conditional_flip():
    rng = np.random.default_rng(0)
    clean = _correlated_labels(60_000, rng)
    flip = np.where(clean == 1, rng.random(clean.shape) < RHO1,
                    rng.random(clean.shape) < RHO0)
    noisy = (clean ^ flip).astype(np.uint8)
    oracle = noisy == clean  # a perfect sample selection
    estimate = estimate_transitions(noisy, oracle)
    assert list(estimate.solved_by) == ["correlation"] * 4
    truth = np.stack([[[1 - a, a], [b, 1 - b]] for a, b in zip(RHO0, RHO1)])
    # sampling error of ~60k instances: every rate within 0.02 of the truth
    np.testing.assert_allclose(estimate.matrices, truth, atol=0.02)
    assert (transition_error(estimate.matrices, truth) < 0.03).all()
    # the realised flip rates agree with the nominal ones to the same tolerance
    np.testing.assert_allclose(empirical_transition(clean, noisy), truth, atol=0.01)


def test_a_class_too_small_for_the_estimate_falls_back():
    rng = np.random.default_rng(1)
    clean = _correlated_labels(400, rng)
    selected = np.ones_like(clean, dtype=bool)
    fallback = np.array([[0.9, 0.1], [0.3, 0.7]])
    estimate = estimate_transitions(clean, selected, min_selected=10_000,
                                    fallback=lambda i: fallback)
    assert list(estimate.solved_by) == ["dual_t"] * 4 and (estimate.partner == -1).all()
    np.testing.assert_array_equal(estimate.matrices[2], fallback)
    # an unusable fallback (ρ0 + ρ1 >= 1) leaves the identity
    bad = estimate_transitions(clean, selected, min_selected=10_000,
                               fallback=lambda i: np.array([[0.4, 0.6], [0.6, 0.4]]))
    assert list(bad.solved_by) == ["identity"] * 4
    np.testing.assert_array_equal(bad.matrices, np.tile(np.eye(2), (4, 1, 1)))


def test_dual_t_on_a_hand_computed_case():
    # anchors: p = 0.05 (most confidently 0) and p = 0.9 (most confidently 1)
    probability = np.array([0.05, 0.2, 0.9, 0.8, 0.7])
    noisy = np.array([0, 1, 1, 1, 0])
    # predicted 0: instances 0, 1 with noisy 0, 1 → [0.5, 0.5]; predicted 1: noisy 1, 1, 0
    expected = np.array([[0.95, 0.05], [0.1, 0.9]]) @ np.array([[0.5, 0.5], [1 / 3, 2 / 3]])
    np.testing.assert_allclose(dual_t_estimate(probability, noisy), expected, atol=1e-12)


def test_forward_correction_by_hand_and_at_the_identity():
    logits = torch.tensor([[0.0, 2.0]])
    targets = torch.tensor([[1.0, 0.0]])
    transition = torch.tensor([[[0.9, 0.1], [0.2, 0.8]], [[1.0, 0.0], [0.0, 1.0]]])
    loss = forward_corrected_bce(logits, targets, transition)
    # class 0: p = 0.5 → p̃ = 0.1 + 0.7·0.5 = 0.45; class 1: identity → plain BCE
    assert float(loss[0, 0]) == pytest.approx(-math.log(0.45), rel=1e-6)
    assert float(loss[0, 1]) == pytest.approx(
        float(F.binary_cross_entropy_with_logits(logits[0, 1], targets[0, 1])), rel=1e-6)


def test_forward_correction_is_finite_at_extreme_logits_and_rates():
    logits = torch.tensor([[-200.0, 200.0, 0.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 0.5]])
    transition = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.3, 0.7]],
                               [[0.51, 0.49], [0.5, 0.5]]])
    loss = forward_corrected_bce(logits, targets, transition)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(logits.grad).all()
    assert (loss >= 0).all()


def test_inputs_are_validated():
    with pytest.raises(ValueError, match="0 / 1"):
        estimate_transitions(np.full((3, 2), 0.5), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="shape"):
        estimate_transitions(np.zeros((3, 2)), np.ones((3, 3), bool))
