"""glyphs-coco (issue 20): COCO-shaped label statistics, determinism, disjoint sources,
the atomic cache fill, generation time."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.stats import spearmanr

import bmxlib.io
from bmxlib.data import glyphs_coco, load_dataset
from bmxlib.data.coco_stats import COCO2014_TRAIN_IMAGES_PER_CLASS, coco_label_stats, coco_profile
from bmxlib.data.glyph_sources import CLASS_NAMES, source_pools
from bmxlib.stats import imbalance, shot_groups


@pytest.fixture(scope="module")
def splits():
    return glyphs_coco.generate(seed=0)


def test_coco_counts_are_the_cited_ones():
    stats = coco_label_stats()
    assert len(COCO2014_TRAIN_IMAGES_PER_CLASS) == 80
    assert COCO2014_TRAIN_IMAGES_PER_CLASS["person"] == 45174
    assert sorted(COCO2014_TRAIN_IMAGES_PER_CLASS, key=COCO2014_TRAIN_IMAGES_PER_CLASS.get)[:2] \
        == ["hair drier", "toaster"]
    assert sum(COCO2014_TRAIN_IMAGES_PER_CLASS.values()) == 241_035
    assert stats["labels_per_image"] == pytest.approx(2.937, abs=1e-3)
    assert stats["negatives_per_positive"] == pytest.approx(26.24, abs=1e-2)


def test_train_split_has_cocos_label_statistics(splits):
    labels = splits["train_labels"]
    stats = imbalance(labels)
    positives = stats["positives"]
    assert labels.shape == (2000, 80) and len(CLASS_NAMES) == len(set(CLASS_NAMES)) == 80
    assert 2.5 <= stats["positives_per_instance"] <= 3.0
    assert stats["pos_neg"] >= 20
    assert positives.min() >= 20
    assert positives.max() / positives.min() >= 50
    by_coco_rank = positives[splits["class_order"]]  # the class holding each COCO rank
    assert spearmanr(by_coco_rank, coco_profile()).statistic >= 0.95
    assert labels.sum(axis=1).min() >= 1 and labels.sum(axis=1).max() <= 6


def test_test_split_covers_every_class_with_a_flatter_profile(splits):
    positives = splits["test_labels"].sum(axis=0)
    train = splits["train_labels"].sum(axis=0)
    assert positives.min() >= 50
    assert positives.max() / positives.min() < train.max() / train.min()
    assert spearmanr(positives[splits["class_order"]], coco_profile()).statistic >= 0.95


def test_profiles_keep_the_head_linear_and_compress_only_the_tail():
    train = glyphs_coco.train_profile(2000)
    coco = coco_profile()
    assert train.sum() == round(2.9 * 2000) and train.min() == 20
    assert np.all(np.diff(train) <= 0)  # COCO's order, most frequent first
    # the head is COCO scaled linearly: person / chair as in COCO (45,174 / 8,950)
    assert train[0] / train[1] == pytest.approx(coco[0] / coco[1], rel=0.02)
    assert np.all(train[coco >= 2000] >= 40) and np.all(train[coco < 2000] <= 45)
    test = glyphs_coco.test_profile(2000)
    assert test.min() == 50 and test.sum() == round(2.9 * 2000) and np.all(np.diff(test) <= 0)


def test_assign_labels_gives_each_class_exactly_its_count():
    rng = np.random.default_rng(3)
    counts = np.array([150, 120, 80, 40, 20, 20, 5])
    labels = glyphs_coco.assign_labels(counts, 200, rng)
    assert np.array_equal(labels.sum(axis=0), counts)
    assert labels.sum(axis=1).min() >= 1
    with pytest.raises(ValueError, match="positives"):
        glyphs_coco.assign_labels(np.array([201, 1]), 200, rng)


def test_generation_is_deterministic_per_seed(splits):
    source_pools.cache_clear()  # re-render the source glyphs too
    again = glyphs_coco.generate(seed=0)
    other = glyphs_coco.generate(seed=1, n_train=1400, n_test=1400)
    for key in splits:
        assert np.array_equal(splits[key], again[key]), key
    assert not np.array_equal(splits["train_labels"][:1400], other["train_labels"])


def test_train_and_test_use_disjoint_source_glyphs(splits):
    train = set(splits["train_sources"][splits["train_sources"] >= 0].tolist())
    test = set(splits["test_sources"][splits["test_sources"] >= 0].tolist())
    assert train and test and not train & test
    pools = source_pools(0)
    # no rendering is shared either: the largest tiles differ byte for byte
    train_tiles = {tile.tobytes() for tile in pools["train"]["tiles"][-1]}
    assert not any(tile.tobytes() in train_tiles for tile in pools["test"]["tiles"][-1])


def test_glyphs_drawn_match_the_labels(splits):
    pools = source_pools(0)
    for split in ("train", "test"):
        target_of = dict(zip(pools[split]["source"].tolist(), pools[split]["targets"].tolist()))
        sources, labels = splits[f"{split}_sources"], splits[f"{split}_labels"]
        drawn = np.zeros_like(labels)
        for i, j in zip(*np.nonzero(sources >= 0)):
            drawn[i, target_of[int(sources[i, j])]] = 1
        assert np.array_equal(drawn, labels)
    images = splits["train_images"]
    assert images.shape == (2000, 1, 48, 48) and images.dtype == np.uint8
    assert images.reshape(2000, -1).max(axis=1).min() > 100  # every canvas has ink


def test_default_training_set_generates_in_seconds():
    source_pools.cache_clear()
    start = time.perf_counter()
    glyphs_coco.generate(seed=2)  # 2,000 + 2,000 canvases, source glyphs rendered afresh
    assert time.perf_counter() - start < 15  # ~2.5 s measured on a 2-vCPU EPYC guest


def test_cache_is_filled_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("BMXLIB_CACHE", str(tmp_path))

    def die_before_rename(*args):
        raise KeyboardInterrupt("killed before the rename")

    monkeypatch.setattr(bmxlib.io.os, "replace", die_before_rename)
    with pytest.raises(KeyboardInterrupt):
        load_dataset("glyphs-coco", "train", seed=4, n_train=1400, n_test=1400)
    assert list(tmp_path.iterdir()) == []  # neither a half-written file nor a temporary
    monkeypatch.undo()
    monkeypatch.setenv("BMXLIB_CACHE", str(tmp_path))
    first = load_dataset("glyphs-coco", "train", seed=4, n_train=1400, n_test=1400)
    assert [p.name for p in tmp_path.iterdir()] == [first.cache_file.name]

    def no_generation(**_):
        raise AssertionError("a cached dataset was generated again")

    monkeypatch.setattr(glyphs_coco.GlyphsCOCO, "generate", staticmethod(no_generation))
    cached = load_dataset("glyphs-coco", "test", seed=4, n_train=1400, n_test=1400)
    assert cached.labels.shape == (1400, 80) and cached.cache_file == first.cache_file
    monkeypatch.undo()
    monkeypatch.setenv("BMXLIB_CACHE", str(tmp_path))
    first.cache_file.write_bytes(b"truncated")  # a corrupt cache is rebuilt
    rebuilt = load_dataset("glyphs-coco", "train", seed=4, n_train=1400, n_test=1400)
    assert np.array_equal(rebuilt.labels, first.labels)


def test_dataset_contract_and_shot_groups():
    data = load_dataset("glyphs-coco", "train")
    image, target = data[5]
    assert image.shape == (1, 48, 48) and target.shape == (80,)
    assert np.array_equal(target.numpy(), data.labels[5])
    assert (data.shot_many, data.shot_few) == (100, 35)
    groups = shot_groups(data.labels.sum(axis=0), many=data.shot_many, few=data.shot_few)
    assert set(groups) == {"many", "medium", "few"}


@pytest.mark.parametrize("split, options, message", [
    ("valid", {}, "split"),
    ("train", {"n_train": 500}, "n_train"),
    ("train", {"n_test": True}, "n_test"),
    # refused before anything is allocated, not killed by the kernel mid-generation
    ("train", {"n_train": 10**12}, "glyphs-coco n_train \\+ n_test .* more than half"),
], ids=["bad-split", "too-few-canvases", "bool-size", "beyond-memory"])
def test_bad_requests_name_the_problem(split, options, message):
    with pytest.raises(ValueError, match=message):
        load_dataset("glyphs-coco", split, **options)


def test_label_profile_draws_cocos_counts_beside_the_dataset():
    import matplotlib.pyplot as plt

    from bmxlib import plots

    positives = glyphs_coco.train_profile(2000)
    fig = plots.label_profile(positives, reference=coco_profile(), shot_many=100, shot_few=35)
    line = next(ln for ln in fig.axes[0].lines if ln.get_label().startswith("COCO 2014 train"))
    expected = coco_profile() * positives.sum() / coco_profile().sum()  # same total
    assert np.allclose(line.get_ydata(), np.maximum(expected, 0.5))
    plt.close(fig)
    with pytest.raises(ValueError, match="reference"):
        plots.label_profile(positives, reference=coco_profile()[:10])


def test_profiles_of_80_classes_stay_readable():
    """80 class names stand rotated under the bars: the label profile leaves headroom for
    its legend above the tallest bar; the noise profile stacks its two panels, and a clean
    run's panels read 0-1% with a note instead of a scale around zero."""
    from bmxlib import plots

    positives = glyphs_coco.train_profile(2000)
    fig = plots.label_profile(positives, reference=coco_profile(), shot_many=100, shot_few=35)
    assert fig.axes[0].get_ylim()[1] >= 8 * positives.max()
    clean = np.zeros((50, 80), dtype=np.uint8)
    clean[np.arange(50), np.arange(50) % 80] = 1
    fig = plots.noise_profile(clean, clean)
    top, bottom = fig.axes[0].get_position(), fig.axes[1].get_position()
    assert top.y0 > bottom.y1  # stacked, not side by side
    for ax in fig.axes:
        assert ax.get_ylim() == (0.0, 1.0)
        assert any("no label changed" in t.get_text() for t in ax.texts)


def test_config_accepts_the_dataset_and_its_backbone():
    from bmxlib.config import ConfigError, from_dict
    from bmxlib.pretrain import backbone_cache_key, backbone_cache_path

    config = from_dict({"dataset": "glyphs-coco"})
    assert config.pretrained == "glyphs" and not config.data_root
    with pytest.raises(ConfigError, match="pretrained"):
        from_dict({"dataset": "digits-lt", "pretrained": "glyphs"})
    glyphs = backbone_cache_key(width=16, seed=0, source="glyphs")
    assert glyphs != backbone_cache_key(width=16, seed=0, source="digits")
    assert backbone_cache_path(source="glyphs").name.startswith("glyphs-backbone-")
    assert backbone_cache_path().name.startswith("digits-backbone-")
