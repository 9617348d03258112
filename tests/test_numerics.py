"""Numerical guards (hypothesis): the GMM, sampler, AP, label management, T-estimator and
loss code stay finite on empty classes, single-instance groups, constant losses and
probabilities of exactly 0 or 1 — the inputs a diverging or degenerate run produces."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bmxlib.gmm import clean_probability
from bmxlib.labels import manage_labels
from bmxlib.methods.losses import asymmetric_loss, distribution_balanced_loss, focal_loss
from bmxlib.methods.transition import (
    dual_t_estimate,
    estimate_transitions,
    forward_corrected_bce,
)
from bmxlib.metrics import average_precision
from bmxlib.sampling import minority_probabilities

SMALL = settings(max_examples=40, deadline=None)
shapes = st.tuples(st.integers(1, 12), st.integers(1, 4))


@st.composite
def labels_and_values(draw, *, low=0.0, high=1.0, edges=(0.0, 1.0)):
    """(labels uint8 (N, K), values float (N, K)) with classes that may be empty or full and
    values that hit the edges exactly or are all equal."""
    n, k = draw(shapes)
    labels = draw(arrays(np.uint8, (n, k), elements=st.integers(0, 1)))
    pick = st.one_of(st.sampled_from(edges), st.floats(low, high, allow_nan=False))
    values = draw(arrays(np.float64, (n, k), elements=pick))
    if draw(st.booleans()):
        values[:] = values.flat[0]  # constant: every group degenerate
    return labels, values


@SMALL
@given(labels_and_values(low=0.0, high=50.0, edges=(0.0, 50.0)))
def test_gmm_clean_probability_is_finite_and_in_range(case):
    labels, losses = case
    p = clean_probability(losses, labels).numpy()
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()


@SMALL
@given(labels_and_values())
def test_minority_probabilities_sum_to_one_at_extreme_confidences(case):
    labels, confidences = case
    p = minority_probabilities(confidences, labels).double().numpy()
    assert np.isfinite(p).all() and (p >= 0).all()
    assert abs(p.sum() - 1.0) < 1e-9


@SMALL
@given(labels_and_values())
def test_average_precision_is_nan_only_for_classes_without_positives(case):
    labels, scores = case
    ap = average_precision(scores, labels)
    has_positive = labels.sum(axis=0) > 0
    assert np.isnan(ap[~has_positive]).all()
    assert np.isfinite(ap[has_positive]).all() and (ap[has_positive] <= 1 + 1e-12).all()


@SMALL
@given(labels_and_values(), st.floats(0.5, 1.0))
def test_label_management_keeps_weights_and_targets_finite(case, epsilon):
    labels, p_clean = case
    confidence = np.where(p_clean > 0.5, np.nan, 1 - p_clean)  # views only where non-clean
    managed = manage_labels(labels, p_clean, confidence, epsilon=epsilon)
    assert torch.isfinite(managed.weight).all() and torch.isfinite(managed.targets).all()
    assert ((managed.targets == 0) | (managed.targets == 1)).all()


@SMALL
@given(labels_and_values(), st.booleans())
def test_transition_estimate_is_row_stochastic(case, select_all):
    labels, values = case
    selected = np.ones_like(labels, bool) if select_all else values > 0.5
    estimate = estimate_transitions(labels, selected, min_selected=1,
                                    fallback=lambda i: dual_t_estimate(values[:, i],
                                                                       labels[:, i]))
    matrices = estimate.matrices
    assert np.isfinite(matrices).all() and (matrices >= 0).all()
    np.testing.assert_allclose(matrices.sum(axis=2), 1.0)
    assert (matrices[:, 0, 1] + matrices[:, 1, 0] < 1).all()


@SMALL
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=8),
       st.floats(0.0, 0.49), st.floats(0.0, 0.49), st.sampled_from([0.0, 0.3, 1.0]))
def test_losses_are_finite_with_finite_gradients(logits, rho0, rho1, target):
    z = torch.tensor([logits], dtype=torch.float32, requires_grad=True)
    y = torch.full_like(z, target)
    transition = torch.tensor([[[1 - rho0, rho0], [rho1, 1 - rho1]]] * z.shape[1])
    counts = torch.ones(z.shape[1])
    for loss in (focal_loss(z, y), asymmetric_loss(z, y), forward_corrected_bce(z, y, transition),
                 distribution_balanced_loss(z, y, counts, 4.0)):
        assert torch.isfinite(loss).all() and (loss >= -1e-6).all()
        (grad,) = torch.autograd.grad(loss.sum(), z)
        assert torch.isfinite(grad).all()
