"""Tests for bmxlib.metrics (docs/method.md §3); scikit-learn's average_precision_score is the
oracle for AP."""

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import average_precision_score

from bmxlib.metrics import (
    average_precision,
    confidence_vs_ap,
    map_summary,
    mean_average_precision,
    noisy_label_fit,
    pearson,
)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def sklearn_ap(scores, targets):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([
            average_precision_score(targets[:, k], scores[:, k]) if targets[:, k].any()
            else np.nan
            for k in range(targets.shape[1])
        ])


# ---------------------------------------------------------------- AP by hand


def test_ap_hand_example_with_a_tie():
    # Sorted scores 0.9, 0.8, 0.8, 0.3, 0.1 with targets 1, 0, 1, 0, 1 (3 positives).
    # Distinct thresholds (the tied 0.8 pair enters together):
    #   0.9: TP 1 of 1 -> P = 1,   R = 1/3
    #   0.8: TP 2 of 3 -> P = 2/3, R = 2/3
    #   0.3: TP 2 of 4 -> R unchanged, contributes 0
    #   0.1: TP 3 of 5 -> P = 3/5, R = 1
    # AP = 1/3·1 + 1/3·2/3 + 1/3·3/5 = 34/45
    scores = np.array([0.8, 0.1, 0.9, 0.3, 0.8])
    targets = np.array([1, 1, 1, 0, 0])  # same pairs, unsorted
    np.testing.assert_allclose(average_precision(scores, targets), [34 / 45], rtol=0, atol=1e-12)


def test_ap_all_tied_scores_is_prevalence():
    # One threshold: AP = precision there = 2 positives / 5 instances.
    scores = np.full((5, 1), 0.5)
    targets = np.array([[1], [0], [1], [0], [0]])
    np.testing.assert_allclose(average_precision(scores, targets), [0.4])


def test_ap_all_positive_class_is_one_and_empty_class_is_nan():
    scores = np.random.default_rng(0).random((6, 3))
    targets = np.array([[1, 0, 1]] * 3 + [[1, 0, 0]] * 3)
    ap = average_precision(scores, targets)
    assert ap.dtype == np.float64 and ap.shape == (3,)
    assert ap[0] == pytest.approx(1.0)
    assert math.isnan(ap[1])
    assert ap[2] == pytest.approx(sklearn_ap(scores, targets)[2])


# ---------------------------------------------------------------- AP vs scikit-learn


def test_ap_matches_sklearn_with_heavy_ties():
    rng = np.random.default_rng(1)
    scores = rng.random((300, 12)).round(1)  # 11 distinct values -> heavy ties
    targets = (rng.random((300, 12)) < np.linspace(0.02, 0.6, 12)).astype(np.int64)
    np.testing.assert_allclose(average_precision(scores, targets), sklearn_ap(scores, targets),
                               rtol=0, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    shape=st.tuples(st.integers(1, 12), st.integers(1, 4)),
)
def test_ap_matches_sklearn_property(data, shape):
    scores = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 0.25, 0.5,
                                                                               0.75, 1.0])))
    targets = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 1)))
    ours, oracle = average_precision(scores, targets), sklearn_ap(scores, targets)
    np.testing.assert_array_equal(np.isnan(ours), targets.sum(axis=0) == 0)
    np.testing.assert_allclose(ours, oracle, rtol=0, atol=1e-9)
    assert np.all((ours[~np.isnan(ours)] >= 0) & (ours[~np.isnan(ours)] <= 1))


def test_ap_torch_cpu_tensors_float32_and_bool():
    rng = np.random.default_rng(2)
    scores = rng.random((200, 5)).round(2).astype(np.float32)
    targets = rng.random((200, 5)) < 0.3
    ours = average_precision(torch.from_numpy(scores), torch.from_numpy(targets))
    np.testing.assert_allclose(ours, sklearn_ap(scores, targets), rtol=0, atol=1e-9)
    # Mixed numpy / torch inputs go to the tensor's device.
    mixed = average_precision(torch.from_numpy(scores), targets.astype(np.float32))
    np.testing.assert_allclose(mixed, ours)


@pytest.mark.gpu
@needs_cuda
def test_ap_cuda_matches_cpu():
    rng = np.random.default_rng(3)
    scores = torch.from_numpy(rng.random((5000, 20)).round(2))
    targets = torch.from_numpy((rng.random((5000, 20)) < 0.1).astype(np.uint8))
    on_gpu = average_precision(scores.cuda(), targets.cuda())
    assert isinstance(on_gpu, np.ndarray)
    np.testing.assert_allclose(on_gpu, average_precision(scores, targets), rtol=0, atol=1e-12)


def test_ap_one_dimensional_input_is_one_class():
    scores, targets = np.array([0.2, 0.9, 0.4]), np.array([0, 1, 1])
    ap = average_precision(scores, targets)
    assert ap.shape == (1,)
    assert ap[0] == pytest.approx(average_precision_score(targets, scores))


@pytest.mark.parametrize(
    "scores, targets, error, match",
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), ValueError, "same shape"),
        (np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), ValueError, "2-D"),
        (np.zeros((3, 2)), np.full((3, 2), 0.5), ValueError, "targets"),
        (np.full((3, 1), np.nan), np.ones((3, 1)), ValueError, "NaN"),
        ([[0.1]], [[1]], TypeError, "scores"),
    ],
    ids=["shape-mismatch", "3d", "soft-targets", "nan-scores", "list-input"],
)
def test_ap_rejects_bad_inputs(scores, targets, error, match):
    with pytest.raises(error, match=match):
        average_precision(scores, targets)


# ---------------------------------------------------------------- mAP and summary


def test_map_excludes_classes_without_positives():
    # Class 0: perfect ranking -> AP 1. Class 1: positive ranked last of 4 -> AP 1/4.
    # Class 2: no positive -> NaN, left out. mAP = (1 + 1/4) / 2 = 0.625.
    scores = np.array([[0.9, 0.1, 0.5], [0.8, 0.2, 0.5], [0.1, 0.3, 0.5], [0.2, 0.05, 0.5]])
    targets = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0]])
    assert mean_average_precision(scores, targets) == pytest.approx(0.625)
    summary = map_summary(scores, targets)
    assert summary["mAP"] == pytest.approx(0.625)
    assert summary["n_excluded"] == 1
    assert summary["ap"][:2] == pytest.approx([1.0, 0.25]) and math.isnan(summary["ap"][2])
    assert "mAP_many" not in summary
    assert math.isnan(mean_average_precision(scores, np.zeros_like(targets)))


def test_map_summary_shot_groups():
    # APs: [1, 1/4, NaN, 1/2]; groups many = {0, 3}, few = {1, 2}, medium empty.
    scores = np.array([[0.9, 0.1, 0.5, 0.4], [0.8, 0.2, 0.5, 0.6], [0.1, 0.3, 0.5, 0.3],
                       [0.2, 0.05, 0.5, 0.7]])
    targets = np.array([[1, 0, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]])
    # Class 3: sorted 0.7(0) 0.6(1) 0.4(0) 0.3(0) -> AP = P@2 = 1/2.
    summary = map_summary(scores, targets, groups=["many", "few", "few", "many"])
    assert summary["mAP_many"] == pytest.approx((1.0 + 0.5) / 2)
    assert summary["mAP_few"] == pytest.approx(0.25)  # class 2 excluded
    assert math.isnan(summary["mAP_medium"])
    with pytest.raises(ValueError, match="groups"):
        map_summary(scores, targets, groups=["many", "few", "few", "tail"])
    with pytest.raises(ValueError, match="groups"):
        map_summary(scores, targets, groups=["many"])


# ---------------------------------------------------------------- Pearson and confidence vs AP


def test_pearson_by_hand_and_against_numpy():
    # x = [1,2,3], y = [2,4,7]: dx = [-1,0,1], dy = [-7/3,-1/3,8/3]
    # Σdxdy = 5, Σdx² = 2, Σdy² = 114/9 -> r = 5 / sqrt(2·114/9) = 0.99339927
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(5 / math.sqrt(2 * 114 / 9))
    rng = np.random.default_rng(4)
    x, y = rng.random(30), rng.random(30)
    assert pearson(torch.from_numpy(x), y) == pytest.approx(np.corrcoef(x, y)[0, 1])


@pytest.mark.parametrize("x, y", [([1.0], [2.0]), ([1, 1, 1], [1, 2, 3]), ([], [])],
                         ids=["one-point", "constant", "empty"])
def test_pearson_degenerate_is_nan(x, y):
    assert math.isnan(pearson(x, y))


def test_confidence_vs_ap_by_hand():
    # positives [10, 40, 20, 30] -> descending order: classes 1, 3, 2, 0.
    # 3 groups (array_split of 4): {1, 3}, {2}, {0}.
    # P:  (0.9+0.8)/2 = 0.85, 0.4, 0.2.   AP: class 3 is NaN -> 0.7, 0.5, 0.1.
    # dx = [0.3667, -0.0833, -0.2833], dy = [0.2667, 0.0667, -0.3333]
    # r = 0.18667 / sqrt(0.22167 · 0.18667) = 0.917663
    result = confidence_vs_ap([0.2, 0.9, 0.4, 0.8], [0.1, 0.7, 0.5, np.nan], [10, 40, 20, 30],
                              n_groups=3)
    np.testing.assert_allclose(result["group_confidence"], [0.85, 0.4, 0.2])
    np.testing.assert_allclose(result["group_ap"], [0.7, 0.5, 0.1])
    assert [group.tolist() for group in result["group_classes"]] == [[1, 3], [2], [0]]
    assert result["pearson_r"] == pytest.approx(0.917663, abs=1e-6)


def test_confidence_vs_ap_one_class_per_group_when_few_classes():
    positives = np.array([5, 50, 20])
    result = confidence_vs_ap([0.3, 0.9, 0.6], [0.2, 0.8, 0.7], positives)  # G = 10 > K
    assert [group.tolist() for group in result["group_classes"]] == [[1], [2], [0]]
    np.testing.assert_allclose(result["group_confidence"], [0.9, 0.6, 0.3])
    assert result["pearson_r"] == pytest.approx(pearson([0.9, 0.6, 0.3], [0.8, 0.7, 0.2]))


def test_confidence_vs_ap_nan_when_fewer_than_two_valid_groups():
    result = confidence_vs_ap([0.3, np.nan], [0.2, 0.8], [5, 50])
    assert math.isnan(result["group_confidence"][0]) and math.isnan(result["pearson_r"])
    with pytest.raises(ValueError, match="n_groups"):
        confidence_vs_ap([0.3], [0.2], [5], n_groups=0)
    with pytest.raises(ValueError, match="same length"):
        confidence_vs_ap([0.3, 0.1], [0.2], [5])


def test_noisy_label_fit_by_hand():
    # 3 instances × 2 classes; decisions (logit > 0): [[1,0],[0,0],[1,1]]
    logits = torch.tensor([[2.0, -1.0], [-0.5, -3.0], [0.1, 4.0]])
    noisy = np.array([[1, 1], [0, 0], [0, 1]])
    corrupted = np.array([[False, True], [False, False], [True, False]])
    # corrupted labels: (0,1) given 1, decided 0 -> not fitted; (2,0) given 0, decided 1 -> not
    # clean labels: (0,0) yes, (1,0) yes, (1,1) yes, (2,1) yes
    assert noisy_label_fit(logits, noisy, corrupted) == {
        "memorized_noisy": 0.0, "fit_clean": 1.0,
        "memorized_false_positives": 0.0, "memorized_false_negatives": 0.0}
    corrupted_all = np.ones((3, 2), dtype=bool)
    out = noisy_label_fit(logits.numpy(), torch.as_tensor(noisy), corrupted_all)
    assert out["memorized_noisy"] == pytest.approx(4 / 6) and math.isnan(out["fit_clean"])
    # given 1 at (0,0) (0,1) (2,1), decided 1 at (0,0) (2,1); given 0 at (1,0) (1,1) (2,0),
    # decided 0 at (1,0) (1,1)
    assert out["memorized_false_positives"] == pytest.approx(2 / 3)
    assert out["memorized_false_negatives"] == pytest.approx(2 / 3)
    only_given_one = np.array([[True, True], [False, False], [False, False]])
    out = noisy_label_fit(logits, noisy, only_given_one)
    assert out["memorized_false_positives"] == 0.5 and math.isnan(out["memorized_false_negatives"])
    with pytest.raises(ValueError, match="one \\(N, K\\) shape"):
        noisy_label_fit(logits, noisy[:2], corrupted[:2])


def test_selection_by_bins_by_hand():
    from bmxlib.metrics import selection_by_bins

    score = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    selected = np.array([1, 1, 0, 1, 0, 1], bool)
    correct = np.array([1, 1, 1, 0, 1, 0], bool)
    out = selection_by_bins(selected, correct, score, bins=2)
    # easy half: 2 selected, both correct; 3 correct, 2 of them selected
    assert out["precision"][0] == 1.0 and out["recall"][0] == pytest.approx(2 / 3)
    # hard half: 2 selected, none correct; 1 correct, not selected
    assert out["precision"][1] == 0.0 and out["recall"][1] == 0.0
    assert list(out["count"]) == [3, 3] and out["share_correct"][1] == pytest.approx(1 / 3)
