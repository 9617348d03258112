"""Tests for bmxlib.sampling: minority probabilities (docs/method.md §1.2) and MinoritySampler."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from bmxlib.sampling import (
    SCORE_FLOOR,
    MinoritySampler,
    class_confidences,
    minority_probabilities,
)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

# 4 instances x 3 classes; class 2 has no positive label.
LABELS = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
CONFIDENCES = torch.tensor(
    [[0.9, 0.2, 0.1], [0.7, 0.6, 0.3], [0.4, 0.8, 0.0], [0.1, 0.5, 0.2]], dtype=torch.float64
)


def test_hand_example_class_confidences():
    # P(0) = (0.9 + 0.7) / 2 = 0.8       A(0) = ((1-0.4) + (1-0.1)) / 2 = 0.75
    # P(1) = (0.6 + 0.8) / 2 = 0.7       A(1) = ((1-0.2) + (1-0.5)) / 2 = 0.65
    # P(2) = undefined (no positives)    A(2) = (0.9 + 0.7 + 1.0 + 0.8) / 4 = 0.85
    presence, absence = class_confidences(CONFIDENCES, LABELS)
    torch.testing.assert_close(presence[:2], torch.tensor([0.8, 0.7], dtype=torch.float64))
    assert torch.isnan(presence[2])
    torch.testing.assert_close(absence, torch.tensor([0.75, 0.65, 0.85], dtype=torch.float64))


def test_absence_of_a_class_with_one_confident_negative_among_millions():
    """A(k) = 1 − F of the single negative, 1e-9: the old negatives − Σ F + Σ F·Y form lost
    it to cancellation (7% relative error at N = 2·10^6)."""
    num_items = 2_000_000
    confidences = torch.full((num_items, 1), 1 - 1e-9, dtype=torch.float64)
    labels = torch.ones(num_items, 1, dtype=torch.uint8)
    labels[123] = 0
    _, absence = class_confidences(confidences, labels)
    expected = 1 - confidences[123, 0].item()
    assert absence[0].item() == pytest.approx(expected, rel=1e-6)


def test_hand_example_probabilities():
    # Score(0) = P(0) + A(1) + A(2) = 0.8 + 0.65 + 0.85 = 2.30
    # Score(1) = P(0) + P(1) + A(2) = 0.8 + 0.7  + 0.85 = 2.35
    # Score(2) = A(0) + P(1) + A(2) = 0.75 + 0.7 + 0.85 = 2.30
    # Score(3) = A(0) + A(1) + A(2) = 0.75 + 0.65 + 0.85 = 2.25   (P(2) is never needed)
    # p(n) = (1/Score(n)) / (1/2.3 + 1/2.35 + 1/2.3 + 1/2.25)
    inverse = [1 / 2.30, 1 / 2.35, 1 / 2.30, 1 / 2.25]
    expected = torch.tensor([v / sum(inverse) for v in inverse], dtype=torch.float64)
    probabilities = minority_probabilities(CONFIDENCES, LABELS)
    torch.testing.assert_close(probabilities, expected)
    assert probabilities.dtype == torch.float64 and probabilities.shape == (4,)
    # The instance with the least confident labels (n=3) is the most likely draw.
    assert probabilities.argmax() == 3


def test_numpy_input_matches_tensor():
    from_numpy = minority_probabilities(CONFIDENCES.numpy(), LABELS.numpy().astype(np.uint8))
    torch.testing.assert_close(from_numpy, minority_probabilities(CONFIDENCES, LABELS))


def test_zero_score_is_floored():
    # n0: labels [1, 0]; P(0) = F[0,0] = 0 and A(1) = 1 - F[0,1] = 0 -> Score(0) = 0.
    # n1, n2: labels [0, 1]; A(0) = 1 - 0.5 = 0.5, P(1) = 0.5 -> Score = 1.
    # With the floor: p(0) = (1/1e-12) / (1/1e-12 + 2) -> almost all of the mass.
    confidences = torch.tensor([[0.0, 1.0], [0.5, 0.5], [0.5, 0.5]])
    labels = torch.tensor([[1, 0], [0, 1], [0, 1]])
    probabilities = minority_probabilities(confidences, labels)
    assert torch.isfinite(probabilities).all()
    expected_first = (1 / SCORE_FLOOR) / (1 / SCORE_FLOOR + 2)
    assert probabilities[0].item() == pytest.approx(expected_first, rel=1e-12)
    assert probabilities.sum().item() == pytest.approx(1.0)


def test_all_scores_zero_gives_uniform():
    # Every label positive with confidence 0: every P(k) = 0, every Score = 0.
    probabilities = minority_probabilities(torch.zeros(5, 3), torch.ones(5, 3))
    torch.testing.assert_close(probabilities, torch.full((5,), 0.2, dtype=torch.float64))


@settings(max_examples=25, deadline=None)
@given(
    num_items=st.integers(1, 20),
    num_classes=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
)
def test_probabilities_are_a_distribution(num_items, num_classes, seed):
    generator = torch.Generator().manual_seed(seed)
    confidences = torch.rand(num_items, num_classes, generator=generator)
    labels = (torch.rand(num_items, num_classes, generator=generator) < 0.3).long()
    probabilities = minority_probabilities(confidences, labels)
    assert (probabilities >= 0).all()
    assert probabilities.sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("confidences", "labels", "match"),
    [
        (torch.zeros(3, 2), torch.zeros(3, 3), "shape"),
        (torch.full((3, 2), 1.5), torch.zeros(3, 2), r"\[0, 1\]"),
        (torch.full((3, 2), torch.nan), torch.zeros(3, 2), r"\[0, 1\]"),
        (torch.zeros(3, 2), torch.full((3, 2), 2), "0 and 1"),
        (torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 2), "float"),
        (torch.zeros(0, 2), torch.zeros(0, 2), r"N = 0"),
    ],
    ids=["shape", "above-one", "nan", "labels-not-binary", "int-confidences", "no-instance"],
)
@pytest.mark.parametrize("terms", ["all", "positive", "uniform"])
def test_bad_inputs_raise(confidences, labels, match, terms):
    with pytest.raises((ValueError, TypeError), match=match):
        minority_probabilities(confidences, labels, terms=terms)


@pytest.mark.parametrize(("options", "match"), [
    ({"terms": "inverse"}, "terms must be"),
    ({"terms": "positive", "positive_floor": 0.0}, "positive_floor"),
], ids=["unknown-terms", "zero-floor"])
def test_bad_options_are_named_even_without_instances(options, match):
    # the option is named, even when the inputs hold no instance
    with pytest.raises(ValueError, match=match):
        minority_probabilities(torch.zeros(0, 2), torch.zeros(0, 2), **options)


def test_draw_frequencies_follow_probabilities():
    probabilities = torch.tensor([0.1, 0.2, 0.3, 0.4])
    sampler = MinoritySampler(4, num_samples=20000, seed=7)
    sampler.set_probabilities(probabilities)
    counts = np.bincount(list(sampler), minlength=4)
    assert chisquare(counts, 20000 * probabilities.numpy()).pvalue > 1e-3


def test_uniform_before_first_update():
    sampler = MinoritySampler(5, num_samples=10000, seed=1)
    assert sampler.probabilities is None
    counts = np.bincount(list(sampler), minlength=5)
    assert chisquare(counts).pvalue > 1e-3


def test_shards_split_one_global_sequence():
    # 11 draws over 2 ranks -> 6 per rank, 12 in all; the ranks interleave to the
    # sequence a single process draws with the same seed, epoch and count.
    probabilities = torch.tensor([0.5, 0.1, 0.1, 0.1, 0.2])
    shards = []
    for rank in (0, 1):
        sampler = MinoritySampler(5, num_samples=11, seed=3, num_replicas=2, rank=rank)
        sampler.set_probabilities(probabilities)
        sampler.set_epoch(4)
        assert len(sampler) == 6
        shards.append(list(sampler))
    single = MinoritySampler(5, num_samples=12, seed=3)
    single.set_probabilities(probabilities)
    single.set_epoch(4)
    whole = list(single)
    assert shards[0] == whole[0::2] and shards[1] == whole[1::2]


def test_determinism_per_seed_and_epoch():
    def draws(seed, epoch):
        sampler = MinoritySampler(50, seed=seed)
        sampler.set_probabilities(torch.linspace(0.1, 1.0, 50))
        sampler.set_epoch(epoch)
        return list(sampler)

    assert draws(0, 2) == draws(0, 2)
    assert draws(0, 2) != draws(0, 3)
    assert draws(0, 2) != draws(1, 2)


def test_state_dict_round_trip():
    sampler = MinoritySampler(30, num_samples=40, seed=9)
    sampler.set_probabilities(np.arange(1, 31, dtype=np.float32))
    sampler.set_epoch(5)
    restored = MinoritySampler(30, seed=0)
    restored.load_state_dict(sampler.state_dict())
    assert list(restored) == list(sampler)
    assert len(restored) == 40 and restored.epoch == 5
    with pytest.raises(ValueError, match="num_items"):
        MinoritySampler(31).load_state_dict(sampler.state_dict())


@pytest.mark.parametrize(
    "probabilities",
    [
        torch.ones(3),
        torch.tensor([1.0, -1.0, 1.0, 1.0]),
        torch.zeros(4),
        torch.full((4,), math.inf),
    ],
    ids=["wrong-length", "negative", "zero-sum", "infinite"],
)
def test_bad_probabilities_raise(probabilities):
    with pytest.raises(ValueError, match="probabilities"):
        MinoritySampler(4).set_probabilities(probabilities)


@pytest.mark.parametrize(
    "options",
    [{"num_items": 0}, {"num_items": 4, "num_samples": 0}, {"num_items": 4, "rank": 2}],
    ids=["no-items", "no-samples", "rank-out-of-range"],
)
def test_bad_sampler_options_raise(options):
    with pytest.raises(ValueError):
        MinoritySampler(**options)


@pytest.mark.gpu
@cuda
def test_cuda_inputs():
    probabilities = minority_probabilities(CONFIDENCES.cuda(), LABELS.cuda())
    assert probabilities.device.type == "cuda"
    torch.testing.assert_close(probabilities.cpu(), minority_probabilities(CONFIDENCES, LABELS))
    sampler = MinoritySampler(4, seed=0)
    sampler.set_probabilities(probabilities)
    assert len(list(sampler)) == 4


def test_positive_terms_variant_by_hand():
    # P = (mean F over positives) = class 0: (0.9+0.5)/2 = 0.7, class 1: 0.02 → floored 0.05
    confidences = torch.tensor([[0.9, 0.1], [0.5, 0.2], [0.3, 0.02], [0.1, 0.3]])
    labels = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 0]])
    p = minority_probabilities(confidences, labels, terms="positive", positive_floor=0.05)
    # scores: 0.7, 0.7, max(0.02, 0.05) = 0.05, no positive → 1
    inverse = torch.tensor([1 / 0.7, 1 / 0.7, 1 / 0.05, 1.0], dtype=torch.float64)
    assert torch.allclose(p, inverse / inverse.sum())
    with pytest.raises(ValueError, match="terms"):
        minority_probabilities(confidences, labels, terms="some")


def test_uniform_terms_control_ignores_the_confidences():
    """The ablation's control (minority_score: uniform): p(n) = 1/N whatever the model
    says, where the §1.2 score of the same inputs is far from uniform."""
    confidences = torch.tensor([[0.9, 0.1], [0.5, 0.2], [0.3, 0.02], [0.1, 0.3]])
    labels = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 0]])
    p = minority_probabilities(confidences, labels, terms="uniform")
    assert p.dtype == torch.float64
    torch.testing.assert_close(p, torch.full((4,), 0.25, dtype=torch.float64))
    scored = minority_probabilities(confidences, labels)
    assert float(scored.max() / scored.min()) > 1.1
