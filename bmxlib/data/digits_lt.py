"""digits-lt: the embedded long-tailed multi-label dataset (docs/method.md §5).

Each instance is a 32×32 one-channel canvas holding 1–4 upscaled handwritten digits
(scikit-learn's bundled ``load_digits``) placed in the cells of a 2×2 grid with a random
jitter; its labels are the digit classes present. The classes present are drawn without
replacement from a long-tailed prior (train) or a flatter one (test), so that the
training split has a class imbalance ratio in [50, 100], about 1.3–1.6 positives per
instance and no class in more than half of the instances, while every test class has
at least 300 positives. Train and test canvases use disjoint source digits.

Generation is deterministic for a seed, takes well under a second, and is cached as an
``.npz`` under the bmxlib cache directory so a second load is instant.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .generated import GeneratedDataset

CLASS_NAMES = [str(d) for d in range(10)]
CANVAS = 32  # canvas side in pixels
CELL = 16  # 2×2 grid of 16-pixel cells
DIGIT = 12  # upscaled digit side (source digits are 8×8)
MAX_JITTER = CELL - DIGIT  # digit offset inside its cell, 0..4 pixels
# number of digits per canvas: 1, 2, 3, 4 with these probabilities (mean 1.37; VOC has ~1.5)
DIGITS_PER_CANVAS_PROBS = np.array([0.72, 0.21, 0.05, 0.02])
TRAIN_PRIOR_DECAY = 0.61  # class k has prior weight decay**rank: a steep long tail
TEST_PRIOR_DECAY = 0.96  # flatter prior so every test class has ≥ 300 positives
SOURCE_TEST_FRACTION = 0.4  # share of the 1,797 source digits reserved for the test split
GENERATOR_VERSION = 1  # bump when the generation recipe changes (invalidates the cache)


def _source_digits(seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Upscaled source digits split into disjoint train/test pools, stratified by class."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    big = F.interpolate(images, size=(DIGIT, DIGIT), mode="bilinear", align_corners=False)
    big = (big.clamp(0, 1) * 255).round().to(torch.uint8).squeeze(1).numpy()
    train_idx, test_idx = train_test_split(
        np.arange(len(digits.target)),
        test_size=SOURCE_TEST_FRACTION,
        stratify=digits.target,
        random_state=seed,
    )
    pools = {}
    for split, idx in (("train", train_idx), ("test", test_idx)):
        pools[split] = {"images": big[idx], "targets": digits.target[idx], "source": idx}
    return pools["train"], pools["test"]


def class_prior(decay: float, *, seed: int) -> np.ndarray:
    """Long-tailed prior over the 10 classes; the head class is chosen by the seed."""
    rank = np.random.default_rng(seed).permutation(10)
    weights = decay ** rank.astype(np.float64)
    return weights / weights.sum()


def _compose(
    pool: dict[str, np.ndarray], n: int, prior: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw n canvases: (images uint8 (n,1,32,32), labels uint8 (n,10), source ids)."""
    by_class = [np.flatnonzero(pool["targets"] == k) for k in range(10)]
    counts = rng.choice(np.arange(1, 5), size=n, p=DIGITS_PER_CANVAS_PROBS)
    images = np.zeros((n, 1, CANVAS, CANVAS), dtype=np.uint8)
    labels = np.zeros((n, 10), dtype=np.uint8)
    sources = np.full((n, 4), -1, dtype=np.int64)
    for i, m in enumerate(counts):
        classes = rng.choice(10, size=m, replace=False, p=prior)
        cells = rng.permutation(4)[:m]
        for slot, (k, cell) in enumerate(zip(classes, cells)):
            j = by_class[k][rng.integers(len(by_class[k]))]
            dy, dx = rng.integers(0, MAX_JITTER + 1, size=2)
            y0 = (cell // 2) * CELL + dy
            x0 = (cell % 2) * CELL + dx
            images[i, 0, y0 : y0 + DIGIT, x0 : x0 + DIGIT] = pool["images"][j]
            labels[i, k] = 1
            sources[i, slot] = pool["source"][j]
    return images, labels, sources


def single_digit_canvases(
    *, seed: int = 0, copies: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Canvases holding one clean source digit of the *train* pool, for pretraining.

    Returns images uint8 (copies·n_train_sources, 1, 32, 32) and int64 class targets.
    """
    pool, _ = _source_digits(seed)
    rng = np.random.default_rng(seed + 7)
    n = len(pool["targets"]) * copies
    images = np.zeros((n, 1, CANVAS, CANVAS), dtype=np.uint8)
    which = np.tile(np.arange(len(pool["targets"])), copies)
    cells = rng.integers(0, 4, size=n)
    jitter = rng.integers(0, MAX_JITTER + 1, size=(n, 2))
    for i, (j, cell) in enumerate(zip(which, cells)):
        y0 = (cell // 2) * CELL + jitter[i, 0]
        x0 = (cell % 2) * CELL + jitter[i, 1]
        images[i, 0, y0 : y0 + DIGIT, x0 : x0 + DIGIT] = pool["images"][j]
    return images, pool["targets"][which].astype(np.int64)


def generate(
    *, seed: int = 0, n_train: int = 8000, n_test: int = 3000
) -> dict[str, np.ndarray]:
    """Build both splits (deterministic for ``seed``); see the module docstring."""
    train_pool, test_pool = _source_digits(seed)
    rng = np.random.default_rng(seed)
    out = {}
    for split, pool, n, decay in (
        ("train", train_pool, n_train, TRAIN_PRIOR_DECAY),
        ("test", test_pool, n_test, TEST_PRIOR_DECAY),
    ):
        images, labels, sources = _compose(pool, n, class_prior(decay, seed=seed), rng)
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
        out[f"{split}_sources"] = sources
    return out


class DigitsLT(GeneratedDataset):
    """The embedded long-tailed multi-label digits dataset (docs/method.md §5).

    Parameters
    ----------
    split : {"train", "test"}
    seed : int
        Generation seed (same seed → identical canvases and labels).
    n_train, n_test : int
        Split sizes (defaults 8,000 / 3,000; at least 10).
    transform : callable, optional
        Applied to each uint8 image tensor (1, 32, 32).
    """

    name = "digits-lt"
    class_names = CLASS_NAMES
    default_n_train = 8000
    default_n_test = 3000
    min_canvases = 10
    # the uint8 image (32·32), its labels (10) and source ids (4 int64), twice (the arrays
    # and the .npz buffer)
    bytes_per_canvas = 2 * (CANVAS * CANVAS + 10 + 4 * 8)
    # many-shot > 18.75% of n_train positives, few-shot < 3.75% (1,500 and 300 at the
    # default 8,000 canvases)
    shot_many_fraction = 0.1875
    shot_few_fraction = 0.0375
    default_image_size = CANVAS
    generate = staticmethod(generate)

    @classmethod
    def cache_key(cls, seed: int, n_train: int, n_test: int) -> str:
        return f"v{GENERATOR_VERSION}-s{seed}-{n_train}-{n_test}"
