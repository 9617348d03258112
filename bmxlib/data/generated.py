"""The datasets bmxlib generates itself (digits-lt, glyphs-coco; docs/method.md §5).

A generated dataset is built deterministically from a seed and its two split sizes, both
splits at once, and cached as one ``.npz`` under the bmxlib cache directory (filled
atomically, so concurrent loaders never see half a file). :class:`GeneratedDataset` owns
what the generators share: the options' validation, the memory check before anything is
allocated, the cache, the shot thresholds that follow the training-set size, and the split
it serves. A generator module subclasses it with its names, sizes and recipe.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..cache import cache_path, cached_arrays
from .base import MultiLabelDataset


def check_memory(dataset: str, n_canvases: int, bytes_per_canvas: int) -> None:
    """Refuse, before allocating, a dataset whose generation needs more than half of this
    machine's memory (NumPy would otherwise fail mid-generation, or the kernel kill the
    process)."""
    needed = n_canvases * bytes_per_canvas
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf: nothing to compare with
        return
    if needed > total // 2:
        raise ValueError(f"{dataset} n_train + n_test = {n_canvases:,} canvases need about "
                         f"{needed / 1e9:,.1f} GB to build, more than half of this machine's "
                         f"{total / 1e9:.1f} GB; lower n_train / n_test")


# every seed bmxlib takes (config keys seed / data_seed / noise_seed, a generated dataset's):
# NumPy's legacy seeding and scikit-learn's random_state take 32 bits
MAX_SEED = 2**32 - 1


def check_integer(dataset: str, option: str, value, *, low: int, high: int | None = None) -> int:
    """``value`` as an ``int`` when it is an integer (Python's or NumPy's, not a bool) in
    [low, high]; else a ``ValueError`` naming the dataset, the option and the value."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < low or (high is not None and value > high)):
        bounds = f"≥ {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{dataset} option {option} must be an integer {bounds}, got {value!r}")
    return int(value)


class GeneratedDataset(MultiLabelDataset):
    """One split of a generated dataset (base class; see the module docstring).

    Subclasses set the class attributes below and ``generate`` (a static method
    ``generate(*, seed, n_train, n_test) -> dict`` of ``{split}_images`` uint8
    (n, 1, H, W), ``{split}_labels`` uint8 (n, K) and ``{split}_sources`` int64 arrays for
    split in train / test), and may read further arrays in :meth:`read_extras`.

    Parameters
    ----------
    split : {"train", "test"}
    seed : int
        Generation seed in [0, 2**32 - 1] (same seed → identical canvases and labels).
    n_train, n_test : int, optional
        Split sizes, integers ≥ ``min_canvases`` (default: the dataset's own).
    transform : callable, optional
        Applied to each uint8 image tensor (1, H, W).
    """

    name: ClassVar[str]  # the dataset's name in load_dataset and the cache folder
    class_names: ClassVar[list[str]]
    default_n_train: ClassVar[int]
    default_n_test: ClassVar[int]
    min_canvases: ClassVar[int]  # smallest n_train / n_test the recipe supports
    bytes_per_canvas: ClassVar[int]  # held per canvas while the splits are generated and saved
    # Shot groups by share of the training canvases, so all three stay populated when
    # n_train changes: many-shot > shot_many_fraction · n_train positives, few-shot <
    # shot_few_fraction · n_train
    shot_many_fraction: ClassVar[float]
    shot_few_fraction: ClassVar[float]
    mean = (0.1,)  # per-channel normalisation (canvases are mostly black)
    std = (0.25,)
    generate: ClassVar[Callable[..., dict[str, np.ndarray]]]

    def __init__(self, split: str = "train", *, seed: int = 0, n_train: int | None = None,
                 n_test: int | None = None, transform=None) -> None:
        n_train = self.default_n_train if n_train is None else n_train
        n_test = self.default_n_test if n_test is None else n_test
        if split not in ("train", "test"):
            raise ValueError(f"{self.name} split must be 'train' or 'test', got {split!r}")
        seed = check_integer(self.name, "seed", seed, low=0, high=MAX_SEED)
        n_train, n_test = (check_integer(self.name, option, value, low=self.min_canvases)
                           for option, value in (("n_train", n_train), ("n_test", n_test)))
        check_memory(self.name, n_train + n_test, self.bytes_per_canvas)
        self.cache_file = self.splits_cache_path(seed, n_train, n_test)  # provenance: its digest
        arrays = cached_arrays(self.cache_file, lambda: type(self).generate(
            seed=seed, n_train=n_train, n_test=n_test))
        self.shot_many = round(self.shot_many_fraction * n_train)
        self.shot_few = round(self.shot_few_fraction * n_train)
        super().__init__(arrays[f"{split}_labels"], type(self).class_names, transform=transform)
        self.images = torch.from_numpy(arrays[f"{split}_images"])
        self.sources = arrays[f"{split}_sources"]
        self.split = split
        self.read_extras(arrays)

    @classmethod
    def cache_key(cls, seed: int, n_train: int, n_test: int) -> str:
        """Everything that determines the generated arrays, as one string."""
        raise NotImplementedError

    @classmethod
    def splits_cache_path(cls, seed: int, n_train: int, n_test: int) -> Path:
        """The cached ``.npz`` of both splits for (seed, n_train, n_test)."""
        return cache_path(cls.name, cls.cache_key(seed, n_train, n_test), suffix=".npz",
                          digits=12)

    def read_extras(self, arrays: dict[str, np.ndarray]) -> None:
        """Keep arrays of the generated dict beyond the split's images, labels and sources."""

    def load_image(self, index: int) -> torch.Tensor:
        return self.images[index]
