"""digits-lt (docs/method.md §5): determinism, disjoint sources, the imbalance band, coverage."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bmxlib.data import load_dataset
from bmxlib.data.digits_lt import DigitsLT, generate
from bmxlib.stats import imbalance


@pytest.fixture(scope="module", params=[0, 1, 2], ids=lambda s: f"seed{s}")
def splits(request):
    return generate(seed=request.param)


def test_train_split_is_long_tailed_like_voc(splits):
    stats = imbalance(splits["train_labels"])
    assert 50 <= stats["class_imbalance"] <= 100
    assert 1.3 <= stats["positives_per_instance"] <= 1.6
    assert splits["train_labels"].mean(axis=0).max() <= 0.5  # no class in > half
    assert splits["train_labels"].sum(axis=1).min() >= 1


def test_test_split_covers_every_class(splits):
    assert splits["test_labels"].sum(axis=0).min() >= 300


def test_train_and_test_use_disjoint_source_digits(splits):
    train = set(splits["train_sources"][splits["train_sources"] >= 0].tolist())
    test = set(splits["test_sources"][splits["test_sources"] >= 0].tolist())
    assert train and test and not train & test


def test_labels_match_the_digits_drawn(splits):
    # each canvas has as many distinct labels as digits placed on it
    placed = (splits["train_sources"] >= 0).sum(axis=1)
    assert np.array_equal(placed, splits["train_labels"].sum(axis=1))
    assert splits["train_images"].shape[1:] == (1, 32, 32)
    assert splits["train_images"].dtype == np.uint8


def test_generation_is_deterministic_per_seed():
    a, b, c = generate(seed=5), generate(seed=5), generate(seed=6)
    assert np.array_equal(a["train_images"], b["train_images"])
    assert np.array_equal(a["test_labels"], b["test_labels"])
    assert not np.array_equal(a["train_labels"], c["train_labels"])


def test_second_load_is_cached_and_fast():
    DigitsLT("train", seed=11)
    start = time.perf_counter()
    again = load_dataset("digits-lt", "train", seed=11)
    assert time.perf_counter() - start < 0.5
    assert again.labels.shape == (8000, 10)


def test_dataset_contract():
    data = load_dataset("digits-lt", "test", n_test=50)
    image, target = data[3]
    assert image.shape == (1, 32, 32)
    assert target.dtype.is_floating_point and target.shape == (10,)
    assert np.array_equal(target.numpy(), data.labels[3])
    assert data.class_names == [str(d) for d in range(10)]
    flipped = data.with_transform(lambda x: x.flip(-1))
    assert (flipped[3][0] == image.flip(-1)).all() and data.transform is None


@pytest.mark.parametrize(
    "name, split, options, message",
    [
        ("digits-lt", "valid", {}, "split"),
        ("digits-lt", "train", {"n_train": 3}, "n_train"),
        ("cifar", "train", {}, "unknown dataset"),
        ("coco", "train", {}, "root"),
    ],
    ids=["bad-split", "tiny-size", "unknown-name", "coco-without-root"],
)
def test_bad_dataset_requests_name_the_problem(name, split, options, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(name, split, **options)


@pytest.mark.parametrize("n_train", [2000, 8000], ids=["n2000", "n8000"])
def test_shot_thresholds_follow_the_training_set_size(n_train):
    from bmxlib.stats import shot_groups

    train = DigitsLT("train", n_train=n_train, n_test=100)
    assert (train.shot_many, train.shot_few) == (round(0.1875 * n_train), round(0.0375 * n_train))
    groups = shot_groups(train.labels.sum(axis=0), many=train.shot_many, few=train.shot_few)
    assert set(groups) == {"many", "medium", "few"}  # every group keeps classes
