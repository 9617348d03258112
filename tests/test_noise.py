"""Tests for bmxlib.noise (docs/method.md §2). Statistical checks use ~10^5 labels and a
4-standard-error tolerance against exact expectations."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bmxlib.noise import KINDS, inject, removal_probabilities, transition_matrix

RATES = {"none": None, "mislabel": 0.3, "flip": 0.1, "missing": None, "instance": 0.3}


def single_positive_labels(n_rows, frequencies, seed):
    """One positive per row, its class drawn from ``frequencies``."""
    rng = np.random.default_rng(seed)
    classes = rng.choice(len(frequencies), size=n_rows, p=frequencies)
    labels = np.zeros((n_rows, len(frequencies)), dtype=np.uint8)
    labels[np.arange(n_rows), classes] = 1
    return labels, classes


def within_4_se(observed, expected_p, n):
    standard_error = np.sqrt(expected_p * (1 - expected_p) / n)
    return np.all(np.abs(observed - expected_p) <= 4 * standard_error + 1e-12)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "labels, kind, rate, error, match",
    [
        (np.array([1, 0, 1]), "flip", 0.1, ValueError, "2-D"),
        (np.array([[1, 2]]), "flip", 0.1, ValueError, "only 0 and 1"),
        (np.array([["a", "b"]]), "flip", 0.1, TypeError, "dtype"),
        (np.eye(3), "shuffle", None, ValueError, "none, mislabel, flip, missing"),
        (np.eye(3), "mislabel", None, ValueError, "rate is required"),
        (np.eye(3), "flip", 1.5, ValueError, r"\[0, 1\]"),
        (np.eye(3), "flip", -0.1, ValueError, r"\[0, 1\]"),
        (np.eye(3), "flip", "0.1", TypeError, "real number"),
        (np.eye(3), "missing", 0.5, ValueError, "None for kind 'missing'"),
        (np.eye(3), "none", 0.2, ValueError, "None or 0"),
    ],
    ids=["1d", "non-binary", "string-dtype", "unknown-kind", "rate-missing-for-mislabel",
         "rate-above-1", "rate-negative", "rate-string", "rate-given-for-missing",
         "rate-given-for-none"],
)
def test_invalid_inputs_raise(labels, kind, rate, error, match):
    with pytest.raises(error, match=match):
        inject(labels, kind, rate)


def test_negative_seed_raises():
    with pytest.raises(ValueError, match="seed"):
        inject(np.eye(3), "flip", 0.1, seed=-1)


# ---------------------------------------------------------------- all kinds


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_output_types_and_mask(kind):
    labels, _ = single_positive_labels(500, [0.5, 0.3, 0.2], seed=1)
    labels[::7, 2] = 1  # some multi-positive rows
    confidence = np.full(labels.shape, 0.5) if kind == "instance" else None
    noisy, corrupted = inject(labels, kind, RATES[kind], seed=3, confidence=confidence)
    assert noisy.dtype == np.uint8 and corrupted.dtype == np.bool_
    assert noisy.shape == corrupted.shape == labels.shape
    assert set(np.unique(noisy)) <= {0, 1}
    np.testing.assert_array_equal(corrupted, noisy != labels)


@pytest.mark.parametrize("shape", [(3, 0), (0, 3), (0, 0)], ids=["no-class", "no-row", "empty"])
@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_empty_label_matrix_gives_empty_results(kind, shape):
    # "missing" took an arg-max over zero classes here and failed inside NumPy
    confidence = np.full(shape, 0.5) if kind == "instance" else None
    noisy, corrupted = inject(np.zeros(shape), kind, RATES[kind], confidence=confidence)
    assert noisy.shape == corrupted.shape == shape
    assert noisy.dtype == np.uint8 and corrupted.dtype == np.bool_


@pytest.mark.parametrize("kind", ["mislabel", "flip", "missing"])
def test_deterministic_per_seed_and_seeds_differ(kind):
    labels = (np.random.default_rng(0).random((400, 6)) < 0.4).astype(np.uint8)
    first = inject(labels, kind, RATES[kind], seed=7)[0]
    again = inject(labels, kind, RATES[kind], seed=7)[0]
    other = inject(labels, kind, RATES[kind], seed=8)[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_accepts_torch_tensor_and_leaves_input_untouched():
    labels = torch.tensor([[1, 0, 1], [0, 1, 0]], dtype=torch.float32)
    before = labels.clone()
    noisy, _ = inject(labels, "flip", 0.5, seed=0)
    expected, _ = inject(labels.numpy().astype(np.uint8), "flip", 0.5, seed=0)
    np.testing.assert_array_equal(noisy, expected)
    assert torch.equal(labels, before)


@pytest.mark.parametrize("rate", [None, 0, 0.0], ids=["None", "int-0", "float-0"])
def test_none_returns_copy_and_empty_mask(rate):
    labels = np.array([[1, 0], [1, 1]], dtype=np.uint8)
    noisy, corrupted = inject(labels, "none", rate)
    np.testing.assert_array_equal(noisy, labels)
    assert not corrupted.any()
    noisy[0, 0] = 0
    assert labels[0, 0] == 1  # a copy, not a view


# ---------------------------------------------------------------- mislabel


def test_transition_matrix_by_hand():
    # N_k = [6, 3, 1], N = 10. Row i: N_j / (N − N_i) for j ≠ i.
    # row 0: N − N_0 = 4 -> [0, 3/4, 1/4]; row 1: 7 -> [6/7, 0, 1/7]; row 2: 9 -> [6/9, 3/9, 0]
    expected = np.array([[0, 3 / 4, 1 / 4], [6 / 7, 0, 1 / 7], [6 / 9, 3 / 9, 0]])
    np.testing.assert_allclose(transition_matrix([6, 3, 1]), expected)
    # Rows sum to 1, so ρ(i→·) = τ·row sums to τ.
    np.testing.assert_allclose(transition_matrix([6, 3, 1]).sum(axis=1), 1.0)


def test_transition_matrix_without_other_classes_is_zero():
    # Only class 0 has positives: N − N_0 = 0, so row 0 has no target at all
    # (row 1 would send everything to class 0, but class 1 has nothing to remove).
    np.testing.assert_array_equal(transition_matrix([5, 0]), [[0, 0], [1, 0]])
    noisy, corrupted = inject(np.array([[1, 0], [1, 0]]), "mislabel", 1.0)
    assert not corrupted.any()


def test_mislabel_full_rate_by_hand():
    # N_0 = N_1 = 2, so each class can only target the other one (probability 1).
    # τ = 1 removes everything: row [1,1] swaps to [1,1] (both re-added, unchanged),
    # row [1,0] becomes [0,1], row [0,1] becomes [1,0].
    labels = np.array([[1, 1], [1, 0], [0, 1]])
    noisy, corrupted = inject(labels, "mislabel", 1.0, seed=123)
    np.testing.assert_array_equal(noisy, [[1, 1], [0, 1], [1, 0]])
    np.testing.assert_array_equal(corrupted, [[False, False], [True, True], [True, True]])


def test_mislabel_loss_rate_and_targets_on_single_positive_rows():
    # With one positive per row a removed label can never be re-added (the only
    # removal of the row targets another class), so the loss rate is exactly τ and
    # the new class of a removed label follows N_j / (N − N_i) exactly.
    rate, frequencies = 0.3, [0.45, 0.25, 0.15, 0.1, 0.05]
    labels, classes = single_positive_labels(100_000, frequencies, seed=0)
    noisy, _ = inject(labels, "mislabel", rate, seed=11)

    lost = noisy[np.arange(len(classes)), classes] == 0
    assert within_4_se(lost.mean(), rate, len(classes))
    np.testing.assert_array_equal(noisy.sum(axis=1), 1)  # row keeps one positive

    expected = transition_matrix(labels.sum(axis=0))
    new_class = noisy.argmax(axis=1)
    for source in range(len(frequencies)):
        moved = lost & (classes == source)
        observed = np.bincount(new_class[moved], minlength=len(frequencies)) / moved.sum()
        assert within_4_se(observed, expected[source], moved.sum()), source


def test_mislabel_matches_exact_expectation_on_multi_positive_rows():
    # Rows with several positives: (n, i) is positive afterwards if it was not removed,
    # or if some other removed label l of the row drew i. Each other label does so
    # independently with probability τ·T[l, i], hence
    #   P(positive) = (1 − τ) + τ · (1 − Π_{l ≠ i}(1 − τ T[l, i]))      for i in the row,
    #   P(positive) = 1 − Π_l (1 − τ T[l, j])                            for j not in it.
    rate = 0.4
    patterns = np.array([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 1, 0], [1, 0, 0, 0, 1]])
    repeats = np.array([8000, 10000, 5000, 2000])
    labels = np.repeat(patterns, repeats, axis=0)
    noisy, _ = inject(labels, "mislabel", rate, seed=5)

    positives = labels.sum(axis=0)
    transition = positives[None, :] / (positives.sum() - positives[:, None])
    np.fill_diagonal(transition, 0.0)
    boundaries = np.concatenate([[0], np.cumsum(repeats)])
    for index, pattern in enumerate(patterns):
        present = np.nonzero(pattern)[0]
        expected = np.empty(5)
        for k in range(5):
            others = present[present != k]
            keep_none = np.prod(1 - rate * transition[others, k])
            expected[k] = (1 - rate) + rate * (1 - keep_none) if pattern[k] else 1 - keep_none
        rows = noisy[boundaries[index]:boundaries[index + 1]]
        assert within_4_se(rows.mean(axis=0), expected, repeats[index]), pattern


@settings(max_examples=25, deadline=None)
@given(
    labels=hnp.arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 6)),
                      elements=st.integers(0, 1)),
    rate=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_mislabel_never_gains_positives_or_targets_empty_classes(labels, rate, seed):
    noisy, corrupted = inject(labels, "mislabel", rate, seed=seed)
    assert np.all(noisy.sum(axis=1) <= labels.sum(axis=1))
    empty_classes = labels.sum(axis=0) == 0
    assert not noisy[:, empty_classes].any()
    np.testing.assert_array_equal(corrupted, noisy != labels)


# ---------------------------------------------------------------- flip and missing


def test_flip_touches_positives_and_negatives_at_rate():
    rate = 0.15
    labels = (np.random.default_rng(2).random((400, 250)) < 0.3).astype(np.uint8)
    _, corrupted = inject(labels, "flip", rate, seed=9)
    for value in (0, 1):
        holds = labels == value
        assert within_4_se(corrupted[holds].mean(), rate, holds.sum()), value


def test_missing_keeps_one_uniformly_chosen_positive():
    labels = np.repeat(np.array([[1, 1, 0, 1, 1], [0, 0, 0, 0, 0], [0, 1, 0, 0, 0]]),
                       [20000, 50, 100], axis=0)
    noisy, corrupted = inject(labels, "missing", seed=4)
    assert np.all(noisy <= labels)  # only removals
    np.testing.assert_array_equal(noisy.sum(axis=1), np.minimum(labels.sum(axis=1), 1))
    four_positive = noisy[:20000]
    share = four_positive.sum(axis=0) / 20000
    assert within_4_se(share[[0, 1, 3, 4]], 0.25, 20000)
    assert not corrupted[20000:].any()  # empty and single-positive rows unchanged


@settings(max_examples=25, deadline=None)
@given(
    labels=hnp.arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 6)),
                      elements=st.integers(0, 1)),
    seed=st.integers(0, 2**32 - 1),
)
def test_missing_property(labels, seed):
    noisy, _ = inject(labels, "missing", seed=seed)
    assert np.all(noisy <= labels)
    np.testing.assert_array_equal(noisy.sum(axis=1), (labels.sum(axis=1) > 0).astype(int))


# --------------------------------------------------------------------------- instance
def _instance_case(n=20_000, k=6, seed=0):
    rng = np.random.default_rng(seed)
    clean = (rng.random((n, k)) < 0.25).astype(np.uint8)
    confidence = np.where(clean == 1, rng.beta(5, 1.5, clean.shape), rng.beta(1.2, 6, clean.shape))
    return clean, confidence


def test_instance_removes_tau_of_the_positives_hard_ones_more_often():
    clean, confidence = _instance_case()
    tau = 0.3
    noisy, corrupted = inject(clean, "instance", tau, seed=1, confidence=confidence)
    positives = clean == 1
    removed = positives & (noisy == 0)
    rate = removed.sum() / positives.sum()
    se = np.sqrt(tau * (1 - tau) / positives.sum())
    assert abs(rate - tau) < 4 * se + 1e-3  # the overall rate is τ
    hardness = 1 - confidence[positives]
    was_removed = removed[positives]
    low, high = np.quantile(hardness, [0.2, 0.8])
    assert was_removed[hardness >= high].mean() > 2 * was_removed[hardness <= low].mean()
    assert np.array_equal(corrupted, noisy != clean)
    assert (noisy.sum(axis=1) <= clean.sum(axis=1)).all()  # never gains positives


def test_instance_adds_the_classes_the_reference_confuses():
    clean, confidence = _instance_case(seed=2)
    noisy, _ = inject(clean, "instance", 0.4, seed=3, confidence=confidence)
    added = (clean == 0) & (noisy == 1)
    negatives = clean == 0
    # added labels sit where the reference's confidence was high among the negatives
    assert confidence[added].mean() > 1.25 * confidence[negatives].mean()


def test_removal_probabilities_hit_the_rate_and_respect_hardness():
    hardness = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    pi = removal_probabilities(hardness, 0.4)
    assert pi.mean() == pytest.approx(0.4, abs=1e-12)
    assert (np.diff(pi) >= 0).all() and pi[0] == 0.0 and pi.max() <= 1.0
    assert removal_probabilities(np.zeros(4), 0.2) == pytest.approx(np.full(4, 0.2))


def test_instance_is_deterministic_and_validated():
    clean, confidence = _instance_case(n=500)
    a = inject(clean, "instance", 0.2, seed=5, confidence=confidence)
    b = inject(clean, "instance", 0.2, seed=5, confidence=confidence)
    assert np.array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="confidence"):
        inject(clean, "instance", 0.2, seed=5)
    with pytest.raises(ValueError, match="confidence"):
        inject(clean, "mislabel", 0.2, seed=5, confidence=confidence)
    with pytest.raises(ValueError, match="shape"):
        inject(clean, "instance", 0.2, seed=5, confidence=confidence[:10])
    with pytest.raises(ValueError, match="rate is required"):
        inject(clean, "instance", None, seed=5, confidence=confidence)
