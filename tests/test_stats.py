"""Tests for bmxlib.stats (docs/method.md §3 imbalance ratios and shot groups)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bmxlib.stats import dataset_facts, format_stats, group_oversampling, imbalance, shot_groups

# 5 instances, 3 classes. Positives per class: [4, 1, 1], total 6 of 15 entries.
HAND_LABELS = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 0, 0], [0, 0, 0]])


def test_imbalance_by_hand():
    stats = imbalance(HAND_LABELS)
    np.testing.assert_array_equal(stats["positives"], [4, 1, 1])
    assert stats["positives"].dtype == np.int64
    assert stats["class_imbalance"] == pytest.approx(4 / 1)  # max 4 / min 1
    assert stats["pos_neg"] == pytest.approx(9 / 6)  # negatives 15 − 6 = 9
    assert stats["positives_per_instance"] == pytest.approx(6 / 5)
    assert (stats["n_instances"], stats["n_classes"]) == (5, 3)


def test_imbalance_accepts_torch_and_bool():
    from_torch = imbalance(torch.tensor(HAND_LABELS, dtype=torch.bool))
    assert from_torch["class_imbalance"] == pytest.approx(4.0)


def test_imbalance_is_infinite_with_an_empty_class():
    stats = imbalance(np.array([[1, 0], [1, 0]]))
    assert math.isinf(stats["class_imbalance"])
    assert stats["pos_neg"] == pytest.approx(1.0)
    assert math.isinf(imbalance(np.zeros((2, 2)))["pos_neg"])


@pytest.mark.parametrize(
    "labels", [np.array([1, 0]), np.zeros((0, 3)), np.array([[0, 2]])],
    ids=["1d", "empty", "non-binary"],
)
def test_imbalance_rejects_bad_labels(labels):
    with pytest.raises(ValueError, match="labels"):
        imbalance(labels)


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 10), st.integers(1, 5)),
                  elements=st.integers(0, 1)))
def test_imbalance_matches_definitions(labels):
    stats = imbalance(labels)
    positives = labels.sum(axis=0)
    assert stats["positives"].tolist() == positives.tolist()
    if positives.min() > 0:
        assert stats["class_imbalance"] == pytest.approx(positives.max() / positives.min())
        assert stats["class_imbalance"] >= 1.0
    if positives.sum() > 0:
        assert stats["pos_neg"] == pytest.approx((labels == 0).sum() / positives.sum())


def test_shot_groups_paper_thresholds():
    # many: N_k > 10,000; few: N_k < 1,000; boundaries 10,000 and 1,000 are medium.
    groups = shot_groups([20_000, 10_000, 5_000, 1_000, 999, 0])
    assert groups.tolist() == ["many", "medium", "medium", "medium", "few", "few"]


def test_shot_groups_custom_thresholds():
    groups = shot_groups(np.array([1500, 1499, 300, 299]), many=1499, few=300)
    assert groups.tolist() == ["many", "medium", "medium", "few"]


def test_shot_groups_validation():
    with pytest.raises(ValueError, match="few"):
        shot_groups([5], many=10, few=20)
    with pytest.raises(TypeError):
        shot_groups([5], 10, 1)  # thresholds are keyword-only
    with pytest.raises(ValueError, match="positives"):
        shot_groups([[1, 2]])


def test_format_stats_lists_every_class():
    stats = imbalance(HAND_LABELS)
    text = format_stats(stats, ["cat", "dog", "bird"], shot_groups(stats["positives"], many=3,
                                                                    few=2))
    lines = text.splitlines()
    assert "class imbalance ratio (max/min): 4.00" in text
    assert any(line.startswith("cat") and line.endswith("many") for line in lines)
    assert any(line.startswith("bird") and line.endswith("few") for line in lines)
    assert "group" not in format_stats(stats, ["a", "b", "c"])
    with pytest.raises(ValueError, match="class_names"):
        format_stats(stats, ["a"])


def test_dataset_facts_by_hand():
    groups = np.array(["many", "few", "few"])
    corrupted = np.zeros_like(HAND_LABELS, dtype=bool)
    corrupted[0, 1] = corrupted[4, 2] = True  # 2 of the 15 labels flipped
    facts = dataset_facts(HAND_LABELS, class_names=["cat", "dog", "bird"], n_test=7,
                          groups=groups, shot_thresholds={"many": 3, "few": 2},
                          corrupted=corrupted)
    assert facts["class_names"] == ["cat", "dog", "bird"]
    assert (facts["n_train"], facts["n_test"]) == (5, 7)
    np.testing.assert_array_equal(facts["positives"], [4, 1, 1])
    assert facts["class_imbalance"] == pytest.approx(4.0)
    assert facts["pos_neg"] == pytest.approx(9 / 6)
    assert facts["shot_groups"] is groups
    assert facts["shot_thresholds"] == {"many": 3, "few": 2}
    assert facts["noise_rate_observed"] == pytest.approx(2 / 15)


# --------------------------------------------------------------------------------------
# group_oversampling: the minority sampler's draws per shot group
# --------------------------------------------------------------------------------------
def test_group_oversampling_by_hand():
    # many: (0.4 + 0.2) / (0.5 + 0.3); few: 0.2 / 0.05; medium: 0.2 / 0.15
    factors = group_oversampling([0.4, 0.2, 0.2, 0.2], [0.5, 0.3, 0.05, 0.15],
                                 ["many", "many", "few", "medium"])
    assert factors == pytest.approx({"many": 0.75, "few": 4.0, "medium": 0.2 / 0.15})


def test_group_oversampling_of_the_samplers_own_shares():
    # draw_share = Yᵀp and natural_share = mean of Y, as BalanceMix writes them: a uniform
    # p gives 1 in every group; all mass on the one instance holding the rare class gives
    # 1/mean for it
    labels = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=float)
    groups = np.array(["many", "medium", "few"])
    natural = labels.mean(axis=0)
    uniform = group_oversampling(labels.T @ np.full(4, 0.25), natural, groups)
    assert uniform == pytest.approx({"many": 1.0, "medium": 1.0, "few": 1.0})
    rare = group_oversampling(labels.T @ np.array([0.0, 0.0, 0.0, 1.0]), natural, groups)
    assert rare == pytest.approx({"many": 0.0, "medium": 1 / 0.75, "few": 4.0})


def test_group_oversampling_skips_empty_groups_and_marks_unobserved_ones():
    factors = group_oversampling([0.1, 0.0], [0.2, 0.0], ["many", "few"])
    assert factors["many"] == pytest.approx(0.5) and "medium" not in factors
    assert math.isnan(factors["few"])


@pytest.mark.parametrize("draw, natural, groups", [
    ([0.1, 0.2], [0.1], ["many", "few"]),
    ([[0.1, 0.2]], [[0.1, 0.2]], [["many", "few"]]),
], ids=["lengths differ", "not 1-D"])
def test_group_oversampling_rejects_mismatched_shapes(draw, natural, groups):
    with pytest.raises(ValueError, match="1-D of one length K"):
        group_oversampling(draw, natural, groups)
