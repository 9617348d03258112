"""Tests for bmxlib.labels: label-wise management, its loss and selection quality."""

import math

import numpy as np
import pytest
import torch

from bmxlib.labels import (
    AMBIGUOUS,
    CLEAN,
    RELABEL_OUTCOMES,
    RELABELED,
    LabelState,
    manage_labels,
    managed_bce_loss,
    relabel_outcomes,
    selection_quality,
)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
C, R, A = int(CLEAN), int(RELABELED), int(AMBIGUOUS)
NAN = math.nan

# One instance, eight labels, epsilon = 0.975 (1 - epsilon = 0.025):
#  col  given  p_G   conf   ->  branch
#  0    1      0.9   nan        clean (p_G > 0.5)
#  1    0      0.6   0.99       clean; the confidence is not consulted
#  2    0      0.5   0.98       p_G <= 0.5, 0.98 > 0.975  -> re-labeled to 1
#  3    1      0.2   0.01       0.01 < 0.025               -> re-labeled to 0
#  4    1      0.3   0.97       0.97 is not > 0.975         -> ambiguous, weight 0.3
#  5    0      0.4   0.03       0.03 is not < 0.025         -> ambiguous, weight 0.4
#  6    1      0.1   0.5        in between                  -> ambiguous, weight 0.1
#  7    0      0.05  nan        confidence not computed     -> ambiguous, weight 0.05
GIVEN = torch.tensor([[1, 0, 0, 1, 1, 0, 1, 0]])
P_CLEAN = torch.tensor([[0.9, 0.6, 0.5, 0.2, 0.3, 0.4, 0.1, 0.05]])
CONFIDENCE = torch.tensor([[NAN, 0.99, 0.98, 0.01, 0.97, 0.03, 0.5, NAN]])

ABLATIONS = {
    # name: (switches, state, targets, weight)
    "mixup": (
        {"use_clean": False},
        [C, C, C, C, C, C, C, C],
        [1, 0, 0, 1, 1, 0, 1, 0],
        [1, 1, 1, 1, 1, 1, 1, 1],
    ),
    "clean-only": (
        {"use_relabel": False, "use_ambiguous": False},
        [C, C, A, A, A, A, A, A],
        [1, 0, 0, 1, 1, 0, 1, 0],
        [1, 1, 0, 0, 0, 0, 0, 0],
    ),
    "clean+relabel": (
        {"use_ambiguous": False},
        [C, C, R, R, A, A, A, A],
        [1, 0, 1, 0, 1, 0, 1, 0],
        [1, 1, 1, 1, 0, 0, 0, 0],
    ),
    "balancemix": (
        {},
        [C, C, R, R, A, A, A, A],
        [1, 0, 1, 0, 1, 0, 1, 0],
        [1, 1, 1, 1, 0.3, 0.4, 0.1, 0.05],
    ),
    "clean+ambiguous": (
        {"use_relabel": False},
        [C, C, A, A, A, A, A, A],
        [1, 0, 0, 1, 1, 0, 1, 0],
        [1, 1, 0.5, 0.2, 0.3, 0.4, 0.1, 0.05],
    ),
    "relabel-to-one-only": (
        {"relabel_to_zero": False},
        [C, C, R, A, A, A, A, A],
        [1, 0, 1, 1, 1, 0, 1, 0],
        [1, 1, 1, 0.2, 0.3, 0.4, 0.1, 0.05],
    ),
}


@pytest.mark.parametrize("name", list(ABLATIONS), ids=list(ABLATIONS))
def test_branches_and_ablation_switches(name):
    switches, state, targets, weight = ABLATIONS[name]
    managed = manage_labels(GIVEN, P_CLEAN, CONFIDENCE, epsilon=0.975, **switches)
    assert managed.state.tolist() == [state]
    assert managed.state.dtype == torch.uint8
    torch.testing.assert_close(managed.targets, torch.tensor([targets], dtype=torch.float32))
    torch.testing.assert_close(managed.weight, torch.tensor([weight], dtype=torch.float32))


def test_exactly_at_threshold_is_not_relabeled():
    # epsilon = 0.75 is exact in binary, so 1 - epsilon = 0.25 exactly. docs/method.md
    # §1.4: mean > eps -> 1 and mean < 1 - eps -> 0, so the thresholds themselves stay ambiguous.
    confidence = torch.tensor([[0.75, 0.25, 0.7500001, 0.2499999]], dtype=torch.float64)
    managed = manage_labels(
        torch.tensor([[0, 1, 0, 1]]), torch.full((1, 4), 0.1), confidence, epsilon=0.75
    )
    assert managed.state.tolist() == [[A, A, R, R]]
    assert managed.targets.tolist() == [[0.0, 1.0, 1.0, 0.0]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_the_default_thresholds_mirror_each_other(dtype):
    # epsilon = 0.975 is not exact in binary, and float(1 - 0.975) = 0.025000000000000022:
    # a confidence of 0.025 is exactly as far from 0 as 0.975 from 1 and, like it, stays
    # ambiguous; one step further out is re-labeled either way.
    confidence = torch.tensor([[0.975, 0.025, 0.9751, 0.0249]], dtype=dtype)
    managed = manage_labels(torch.tensor([[0, 1, 0, 1]]), torch.full((1, 4), 0.1), confidence)
    assert managed.state.tolist() == [[A, A, R, R]]
    assert managed.targets.tolist() == [[0.0, 1.0, 1.0, 0.0]]


def test_counts():
    managed = manage_labels(GIVEN, P_CLEAN, CONFIDENCE)
    assert managed.counts() == {"clean": 2, "relabeled": 2, "ambiguous": 4}
    assert [s.value for s in LabelState] == [0, 1, 2]


def test_numpy_inputs_and_no_confidence_without_relabel():
    managed = manage_labels(
        GIVEN.numpy().astype(np.uint8), P_CLEAN.numpy(), None, use_relabel=False
    )
    assert managed.counts() == {"clean": 2, "relabeled": 0, "ambiguous": 6}


@pytest.mark.parametrize(
    ("args", "options", "match"),
    [
        ((GIVEN, P_CLEAN, None), {}, "relabel_confidence"),
        ((GIVEN, P_CLEAN, CONFIDENCE), {"epsilon": 0.4}, "epsilon"),
        ((GIVEN, P_CLEAN, CONFIDENCE[:, :3]), {}, "relabel_confidence"),
        ((GIVEN[:, :3], P_CLEAN, CONFIDENCE), {}, "noisy_labels"),
        ((GIVEN * 2, P_CLEAN, CONFIDENCE), {}, "noisy_labels"),
        ((GIVEN, P_CLEAN * NAN, CONFIDENCE), {}, "clean_prob"),
    ],
    ids=[
        "missing-confidence",
        "epsilon-range",
        "confidence-shape",
        "labels-shape",
        "labels-not-binary",
        "nan-clean-prob",
    ],
)
def test_bad_inputs_raise(args, options, match):
    with pytest.raises(ValueError, match=match):
        manage_labels(*args, **options)


def test_managed_bce_loss_by_hand():
    # sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4.
    # Instance 0: clean (y=1, z=0): ln 2; re-labeled (y=0, z=ln 3): -ln(1/4) = ln 4;
    #   ambiguous (y=0.8 after mixing, z=ln 3, p_G=0.3): 0.3 * -(0.8 ln 3/4 + 0.2 ln 1/4)
    #   = 0.3 * (0.8 * 0.287682 + 0.2 * 1.386294) = 0.152222 -> total 2.231663
    # Instance 1: clean (y=0, z=-ln 3): -ln(3/4) = 0.287682; clean (y=1, z=0): ln 2;
    #   ambiguous (y=1, z=0, p_G=0.5): 0.5 ln 2 -> total 1.327403
    # Batch mean: (2.231663 + 1.327403) / 2 = 1.779533
    ln3 = math.log(3.0)
    logits = torch.tensor([[0.0, ln3, ln3], [-ln3, 0.0, 0.0]], dtype=torch.float64)
    targets = torch.tensor([[1.0, 0.0, 0.8], [0.0, 1.0, 1.0]], dtype=torch.float64)
    weights = torch.tensor([[1.0, 1.0, 0.3], [1.0, 1.0, 0.5]], dtype=torch.float64)
    first = math.log(2) + math.log(4) - 0.3 * (0.8 * math.log(0.75) + 0.2 * math.log(0.25))
    second = -math.log(0.75) + math.log(2) + 0.5 * math.log(2)
    loss = managed_bce_loss(logits, targets, weights)
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-12)
    assert loss.item() == pytest.approx(1.779533, abs=1e-6)
    # Without weights every label counts fully: only the two ambiguous terms change.
    plain = managed_bce_loss(logits, targets)
    full_first = first + 0.7 * -(0.8 * math.log(0.75) + 0.2 * math.log(0.25))
    assert plain.item() == pytest.approx((full_first + second + 0.5 * math.log(2)) / 2)


def test_managed_bce_loss_drops_zero_weight_labels_and_has_gradients():
    logits = torch.tensor([[5.0, -2.0]], requires_grad=True)
    loss = managed_bce_loss(logits, torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 1.0]]))
    loss.backward()
    assert logits.grad[0, 0] == 0.0 and logits.grad[0, 1] < 0.0
    with pytest.raises(ValueError, match="weights"):
        managed_bce_loss(logits, torch.zeros(1, 2), torch.zeros(2, 2))


def test_selection_quality_by_hand():
    # truth   noisy   correct?     state      refined
    # [1, 0]  [1, 1]  [T, F]       [C, C]     [1, 1]
    # [0, 0]  [0, 0]  [T, T]       [A, R]     [0, 0]   R right (0 == 0)
    # [1, 1]  [0, 1]  [F, T]       [R, C]     [0, 1]   R wrong (0 != 1)
    # selected clean: (0,0) (0,1) (2,1), of which correct (0,0) (2,1) -> precision 2/3;
    # correct labels: 4, selected among them 2 -> recall 1/2; re-labeling accuracy 1/2.
    truth = torch.tensor([[1, 0], [0, 0], [1, 1]])
    noisy = torch.tensor([[1, 1], [0, 0], [0, 1]])
    state = torch.tensor([[C, C], [A, R], [R, C]], dtype=torch.uint8)
    refined = torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    quality = selection_quality(state, noisy, truth, refined)
    assert quality["precision"] == pytest.approx(2 / 3)
    assert quality["recall"] == pytest.approx(1 / 2)
    assert quality["relabel_accuracy"] == pytest.approx(1 / 2)
    # Per [class, given value]: class 0 l=0 = {(1,0) A correct, (2,0) R wrong};
    # class 0 l=1 = {(0,0) C correct}; class 1 l=0 = {(1,1) R right};
    # class 1 l=1 = {(0,1) C wrong, (2,1) C correct}.
    np.testing.assert_equal(quality["precision_per_group"], [[NAN, 1.0], [NAN, 0.5]])
    np.testing.assert_equal(quality["recall_per_group"], [[0.0, 1.0], [0.0, 1.0]])
    np.testing.assert_equal(quality["relabel_accuracy_per_group"], [[0.0, NAN], [1.0, NAN]])


def test_selection_quality_undefined_is_nan():
    # Nothing selected and nothing re-labeled: precision and accuracy are undefined.
    state = np.full((2, 1), A, dtype=np.uint8)
    quality = selection_quality(state, np.ones((2, 1)), np.ones((2, 1)), np.ones((2, 1)))
    assert math.isnan(quality["precision"]) and math.isnan(quality["relabel_accuracy"])
    assert quality["recall"] == 0.0


@pytest.mark.gpu
@cuda
def test_cuda_inputs():
    managed = manage_labels(GIVEN.cuda(), P_CLEAN.cuda(), CONFIDENCE.cuda())
    assert managed.targets.device.type == managed.weight.device.type == "cuda"
    assert managed.state.cpu().tolist() == [ABLATIONS["balancemix"][1]]
    loss = managed_bce_loss(torch.zeros(1, 8, device="cuda"), managed.targets, managed.weight)
    assert loss.device.type == "cuda"
    quality = selection_quality(managed.state, GIVEN.cuda(), GIVEN.cuda(), managed.targets)
    assert quality["precision"] == 1.0


def test_relabel_outcomes_by_hand():
    # truth   noisy   state    refined
    # [1, 0]  [1, 1]  [R, C]   [0, 1]   (0,0) correct positive -> 0; (0,1) wrong positive kept
    # [1, 1]  [1, 0]  [A, R]   [1, 1]   (1,0) correct positive ambiguous; (1,1) hidden -> 1
    # [0, 0]  [1, 0]  [R, R]   [0, 1]   (2,0) wrong positive -> 0; (2,1) true negative -> 1
    # [1, 0]  [1, 0]  [C, C]   [1, 0]   (3,0) correct positive kept; (3,1) negative kept
    truth = np.array([[1, 0], [1, 1], [0, 0], [1, 0]])
    noisy = np.array([[1, 1], [1, 0], [1, 0], [1, 0]])
    state = np.array([[R, C], [A, R], [R, R], [C, C]], dtype=np.uint8)
    refined = np.array([[0, 1], [1, 1], [0, 1], [1, 0]])
    # correct positives (0,0) (1,0) (3,0): one to 0, one ambiguous; wrong positives (0,1)
    # (2,0): one to 0; hidden (1,1): recovered; turned to 1: (1,1) right, (2,1) wrong
    assert relabel_outcomes(state, noisy, truth, refined) == pytest.approx({
        "correct_positives_to_zero": 1 / 3, "correct_positives_ambiguous": 1 / 3,
        "wrong_positives_to_zero": 1 / 2, "hidden_positives_to_one": 1.0,
        "to_one_precision": 1 / 2})
    assert tuple(relabel_outcomes(state, noisy, truth, refined)) == tuple(RELABEL_OUTCOMES)
    first = relabel_outcomes(state, noisy, truth, refined, classes=[True, False])
    assert first == pytest.approx({
        "correct_positives_to_zero": 1 / 3, "correct_positives_ambiguous": 1 / 3,
        "wrong_positives_to_zero": 1.0, "hidden_positives_to_one": NAN,
        "to_one_precision": NAN}, nan_ok=True)
    second = relabel_outcomes(torch.from_numpy(state), torch.from_numpy(noisy),
                              torch.from_numpy(truth), torch.from_numpy(refined).float(),
                              classes=np.array([False, True]))
    assert second == pytest.approx({
        "correct_positives_to_zero": NAN, "correct_positives_ambiguous": NAN,
        "wrong_positives_to_zero": 0.0, "hidden_positives_to_one": 1.0,
        "to_one_precision": 1 / 2}, nan_ok=True)


def test_relabel_outcomes_rejects_bad_input():
    state = np.zeros((2, 2), dtype=np.uint8)
    ones = np.ones((2, 2))
    with pytest.raises(ValueError, match="classes must be a bool mask of shape"):
        relabel_outcomes(state, ones, ones, ones, classes=[True])
    with pytest.raises(ValueError, match="refined_targets"):
        relabel_outcomes(state, ones, ones, np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="shape"):
        relabel_outcomes(state, ones, ones, np.ones((3, 2)))
