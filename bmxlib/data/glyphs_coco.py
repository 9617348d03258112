"""glyphs-coco: an embedded multi-label dataset shaped like COCO 2014's labels.

Each instance is a 48×48 one-channel canvas holding 1–6 glyphs of 80 visually distinct
classes (:mod:`bmxlib.data.glyph_sources`: scikit-learn's handwritten digits, letters and
symbols rendered with Pillow's bundled TrueType font, shapes drawn with
``PIL.ImageDraw``) in the cells of a 3×3 grid, at jittered positions and sizes (12–18
pixels in 16-pixel cells, so neighbours may overlap and occlude each other). Its labels
are the classes present.

Label statistics (defaults: 2,000 training and 2,000 test canvases):

- **Training split**: the class-frequency profile is COCO 2014 train's images per class
  (:mod:`bmxlib.data.coco_stats`, from ML-GCN's ``coco_adj.pkl``), sorted, mapped onto
  the 80 glyph classes in a seeded random order and scaled linearly, except for its tail:
  classes that linear scaling would give fewer than ``2 · MIN_TRAIN_POSITIVES`` (40)
  positives are compressed in log–log space onto [20, 40], keeping their order. At 2,000
  canvases and 2.9 labels per canvas this compresses the 29 rarest COCO classes, leaves
  the head linear (1,041 positives, 52% of the canvases; COCO: 55%) and gives a
  head-to-rarest ratio of 52 (COCO: 353). 2,000 is the smallest round training-set size
  that keeps both every class ≥ 20 positives and the head ≥ 50× the rarest.
- **Test split**: a flatter profile, a floor of 50 positives plus COCO's counts to the
  power ``TEST_PROFILE_POWER`` (0.5), scaled to 2.9 labels per canvas (at 2,000 canvases:
  50 to 169 positives per class, rank order kept). A class's AP grows with its share of
  positives in the test set, so the tail classes' AP is read at a higher prevalence (and
  lower variance) than the training profile would give them, the head's at a lower one;
  mAP weighs every class equally either way.
- Per canvas the label counts are drawn from 1–6 (mean 2.9, COCO 2.94), then each class
  gets exactly its profile's number of canvases, filled by descending class size with
  canvases drawn in proportion to their free label slots. Negatives per positive are
  (80 − 2.9) / 2.9 ≈ 26.6 (COCO 26.2).

Train and test canvases use disjoint source glyphs (other renderings of each font glyph
and shape, other scikit-learn digit writers). Generation is deterministic for a seed
(and a Pillow / FreeType version: font rendering may change between releases, so the
Pillow version is part of the cache key), takes about a second for the default splits
and is cached as an ``.npz`` under the bmxlib cache directory.
"""

from __future__ import annotations

import numpy as np
import PIL

from .coco_stats import coco_profile
from .generated import GeneratedDataset
from .glyph_sources import CLASS_NAMES, GLYPH_SIZES, SOURCES_VERSION, source_pools

CANVAS = 48  # canvas side in pixels
GRID = 3  # 3×3 grid of cells
CELL = CANVAS // GRID  # 16-pixel cells
MAX_JITTER = 3  # glyph centre offset from its cell's centre, in pixels
MAX_LABELS = 6  # glyphs per canvas: 1..6
# glyphs per canvas before matching the profile's total: mean 2.77, adjusted to 2.9
LABELS_PER_CANVAS_PROBS = np.array([0.25, 0.25, 0.20, 0.14, 0.10, 0.06])
LABELS_PER_IMAGE = 2.9  # COCO 2014 train: 2.94
MIN_TRAIN_POSITIVES = 20  # every class's training positives
KNEE_FACTOR = 2.0  # classes below KNEE_FACTOR · MIN_TRAIN_POSITIVES are compressed
MIN_TEST_POSITIVES = 50
TEST_PROFILE_POWER = 0.5  # the test split's flatter profile: 50 + a·√(COCO count)
DEFAULT_N_TRAIN = 2000
DEFAULT_N_TEST = 2000
MIN_CANVASES = 1400  # smallest n_train / n_test: 80 classes × 50 test positives / 2.9
GENERATOR_VERSION = 1  # bump when the generation recipe changes (invalidates the cache)


def train_profile(n_train: int = DEFAULT_N_TRAIN) -> np.ndarray:
    """Training positives per class, most frequent first: int64 (80,).

    COCO's counts n_k scaled linearly (c_k = s·n_k) where s·n_k ≥ knee = 40; below, a
    log–log line from (min n, 20) to (knee / s, 40), so the rarest class gets exactly 20
    and the order is kept. The scale s is solved so that Σ c_k = 2.9 · n_train.
    """
    counts = coco_profile().astype(np.float64)
    knee = KNEE_FACTOR * MIN_TRAIN_POSITIVES

    def profile(scale: float) -> np.ndarray:
        cut = knee / scale  # the COCO count that linear scaling maps to the knee
        if cut <= counts.min():
            return scale * counts
        power = np.log(knee / MIN_TRAIN_POSITIVES) / np.log(cut / counts.min())
        return np.where(counts >= cut, scale * counts, knee * (counts / cut) ** power)

    target = LABELS_PER_IMAGE * n_train
    low, high = 1e-9, float(n_train) / counts.min()
    for _ in range(200):  # the total grows monotonically with the scale
        mid = (low + high) / 2
        low, high = (mid, high) if profile(mid).sum() < target else (low, mid)
    return _round_keeping_total(profile(low), int(round(target)))


def test_profile(n_test: int = DEFAULT_N_TEST) -> np.ndarray:
    """Test positives per class, most frequent first: int64 (80,).

    A floor of 50 plus COCO's square-root profile: c_k = 50 + a·(√n_k − √min n), with a
    solved so that Σ c_k = 2.9 · n_test (so n_test ≥ 80·50/2.9 ≈ 1,380).
    """
    target = int(round(LABELS_PER_IMAGE * n_test))
    spare = target - MIN_TEST_POSITIVES * 80
    if spare < 0:
        raise ValueError(f"glyphs-coco option n_test must be ≥ {MIN_CANVASES}, got {n_test}")
    rise = coco_profile().astype(np.float64) ** TEST_PROFILE_POWER
    rise -= rise.min()
    return _round_keeping_total(MIN_TEST_POSITIVES + rise / rise.sum() * spare, target)


def _round_keeping_total(values: np.ndarray, total: int) -> np.ndarray:
    """Round down, then give the remaining units to the largest remainders (stable)."""
    out = np.floor(values).astype(np.int64)
    order = np.argsort(-(values - out), kind="stable")
    out[order[: total - int(out.sum())]] += 1
    return out


def class_order(seed: int) -> np.ndarray:
    """Which glyph class takes each COCO rank: int64 (80,), a seeded permutation."""
    return np.random.default_rng([seed, 20]).permutation(len(CLASS_NAMES))


def assign_labels(counts: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A label matrix uint8 (n, K) whose column k holds exactly ``counts[k]`` ones.

    Labels per row are drawn from 1–6 and adjusted to the total; classes are placed by
    descending count, each in rows drawn without replacement in proportion to their free
    label slots (so no row gets a class twice).
    """
    k_classes = counts.size
    if counts.max() > n:
        raise ValueError(f"a class has {counts.max()} positives but there are {n} canvases")
    slots = rng.choice(np.arange(1, MAX_LABELS + 1), size=n, p=LABELS_PER_CANVAS_PROBS)
    total = int(counts.sum())
    while slots.sum() != total:  # move the row total to the profile's total
        if slots.sum() < total:
            free = np.flatnonzero(slots < MAX_LABELS)
            slots[rng.choice(free, size=min(total - slots.sum(), free.size), replace=False)] += 1
        else:
            full = np.flatnonzero(slots > 1)
            slots[rng.choice(full, size=min(slots.sum() - total, full.size), replace=False)] -= 1
    labels = np.zeros((n, k_classes), dtype=np.uint8)
    for k in np.argsort(-counts, kind="stable"):
        need = int(counts[k])
        weight = slots.astype(np.float64)
        open_rows = np.flatnonzero(weight > 0)
        if open_rows.size >= need:
            rows = rng.choice(n, size=need, replace=False, p=weight / weight.sum())
        else:  # too few free slots left: add the class to the emptiest rows as well
            rest = np.setdiff1d(np.arange(n), open_rows)
            extra = rest[np.argsort(labels[rest].sum(axis=1), kind="stable")]
            rows = np.concatenate([open_rows, extra[: need - open_rows.size]])
        labels[rows, k] = 1
        slots[rows] = np.maximum(slots[rows] - 1, 0)
    return labels


def _compose(pool: dict, labels: np.ndarray, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """Draw the canvases of a label matrix: images uint8 (n, 1, 48, 48) and the source
    id of each glyph placed, int64 (n, MAX_LABELS + extra), -1 where none."""
    n = labels.shape[0]
    width = max(MAX_LABELS, int(labels.sum(axis=1).max()))
    images = np.zeros((n, 1, CANVAS, CANVAS), dtype=np.uint8)
    sources = np.full((n, width), -1, dtype=np.int64)
    by_class = [np.flatnonzero(pool["targets"] == k) for k in range(labels.shape[1])]
    for i in range(n):
        classes = rng.permutation(np.flatnonzero(labels[i]))
        cells = rng.permutation(GRID * GRID)
        canvas = images[i, 0]
        for slot, k in enumerate(classes):
            j = by_class[k][rng.integers(by_class[k].size)]
            size_index = rng.integers(len(GLYPH_SIZES))
            size = GLYPH_SIZES[size_index]
            tile = pool["tiles"][size_index][j]
            cell = cells[slot % cells.size]
            centre = np.array([cell // GRID, cell % GRID]) * CELL + CELL // 2
            y0, x0 = np.clip(centre - size // 2 + rng.integers(-MAX_JITTER, MAX_JITTER + 1, 2),
                             0, CANVAS - size)
            region = canvas[y0 : y0 + size, x0 : x0 + size]
            # strokes of the later glyph cover the earlier one (occlusion); its faint
            # anti-aliased edge is blended by the maximum
            region[...] = np.where(tile >= 96, tile, np.maximum(region, tile))
            sources[i, slot] = pool["source"][j]
    return images, sources


def generate(*, seed: int = 0, n_train: int = DEFAULT_N_TRAIN,
             n_test: int = DEFAULT_N_TEST) -> dict[str, np.ndarray]:
    """Build both splits (deterministic for ``seed``); see the module docstring.

    Returns
    -------
    dict of np.ndarray
        ``{split}_images`` uint8 (n, 1, 48, 48), ``{split}_labels`` uint8 (n, 80),
        ``{split}_sources`` int64 (n, ≥ 6) source-glyph ids (-1: none), for split in
        train / test; ``class_order`` int64 (80,), the class holding each COCO rank.
    """
    pools = source_pools(seed)
    order = class_order(seed)
    rng = np.random.default_rng([seed, 48])
    out: dict[str, np.ndarray] = {"class_order": order}
    for split, n, profile in (("train", n_train, train_profile(n_train)),
                              ("test", n_test, test_profile(n_test))):
        counts = np.zeros(len(CLASS_NAMES), dtype=np.int64)
        counts[order] = profile  # the glyph class order[r] takes COCO rank r
        labels = assign_labels(counts, n, rng)
        images, sources = _compose(pools[split], labels, rng)
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
        out[f"{split}_sources"] = sources
    return out


def single_glyph_canvases(*, seed: int = 0, copies: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Canvases holding one clean source glyph of the *train* pool, for pretraining.

    Returns images uint8 (copies · n_train_sources, 1, 48, 48) and int64 class targets;
    each source appears ``copies`` times at a random cell, size and jitter.
    """
    pool = source_pools(seed)["train"]
    rng = np.random.default_rng([seed, 7])
    which = np.tile(np.arange(pool["targets"].size), copies)
    images = np.zeros((which.size, 1, CANVAS, CANVAS), dtype=np.uint8)
    for i, j in enumerate(which):
        size_index = rng.integers(len(GLYPH_SIZES))
        size = GLYPH_SIZES[size_index]
        cell = rng.integers(GRID * GRID)
        centre = np.array([cell // GRID, cell % GRID]) * CELL + CELL // 2
        y0, x0 = np.clip(centre - size // 2 + rng.integers(-MAX_JITTER, MAX_JITTER + 1, 2),
                         0, CANVAS - size)
        images[i, 0, y0 : y0 + size, x0 : x0 + size] = pool["tiles"][size_index][j]
    return images, pool["targets"][which].astype(np.int64)


class GlyphsCOCO(GeneratedDataset):
    """The embedded COCO-shaped multi-label glyph dataset (module docstring).

    Parameters
    ----------
    split : {"train", "test"}
    seed : int
        Generation seed (same seed → identical canvases and labels).
    n_train, n_test : int
        Split sizes (defaults 2,000 / 2,000; at least ``MIN_CANVASES`` = 1,400, so
        every test class keeps ≥ 50 positives at 2.9 labels per canvas).
    transform : callable, optional
        Applied to each uint8 image tensor (1, 48, 48).
    """

    name = "glyphs-coco"
    class_names = CLASS_NAMES
    default_n_train = DEFAULT_N_TRAIN
    default_n_test = DEFAULT_N_TEST
    min_canvases = MIN_CANVASES
    # the uint8 image (48·48), its labels (80) and source ids (≥ 6 int64), twice (the
    # arrays and the .npz buffer), and the label assignment's int64 work arrays
    bytes_per_canvas = 2 * (CANVAS * CANVAS + 80 + MAX_LABELS * 8) + 3 * 8
    # The paper's COCO thresholds, 10,000 and 1,000 of 82,081 images, would put one class
    # in the many-shot group here: many-shot > 5% of n_train positives, few-shot < 1.75%
    # (100 and 35 at the default 2,000 canvases)
    shot_many_fraction = 0.05
    shot_few_fraction = 0.0175
    default_image_size = CANVAS
    generate = staticmethod(generate)

    @classmethod
    def cache_key(cls, seed: int, n_train: int, n_test: int) -> str:
        return (f"v{GENERATOR_VERSION}-src{SOURCES_VERSION}-s{seed}-{n_train}-{n_test}"
                f"-pillow{PIL.__version__}")

    def read_extras(self, arrays: dict[str, np.ndarray]) -> None:
        self.class_order = arrays["class_order"]  # the glyph class holding each COCO rank
