"""The dataset contract shared by every loader (docs/method.md §6).

A bmxlib dataset is a ``torch.utils.data.Dataset`` with

- ``labels``: ``np.ndarray`` of shape (N, K), dtype uint8, the clean (given) labels;
- ``class_names``: list of K strings;
- ``transform``: a callable applied to the uint8 image tensor (C, H, W), or None;
- ``__getitem__(i) -> (image, target)`` with ``target`` a float32 tensor (K,).

Subclasses implement ``load_image(i)`` returning a uint8 tensor (C, H, W).
``with_transform`` returns a shallow copy with another transform, so the engine can
read the same images with the training, evaluation and re-labeling transforms.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


class MultiLabelDataset(Dataset):
    """Base class: images and a binary (N, K) label matrix."""

    #: dataset-defined shot thresholds (docs/method.md §3): many if > shot_many, few if < shot_few
    shot_many: int = 10_000
    shot_few: int = 1_000
    #: default square image side for the training presets
    default_image_size: int = 448

    def __init__(
        self,
        labels: np.ndarray,
        class_names: Sequence[str],
        *,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise ValueError(f"labels must be 2-D (N, K), got shape {labels.shape}")
        if len(class_names) != labels.shape[1]:
            raise ValueError(
                f"{len(class_names)} class names for {labels.shape[1]} label columns"
            )
        self.labels = labels.astype(np.uint8, copy=False)
        self.class_names = list(class_names)
        self.transform = transform

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.labels.shape[1])

    def load_image(self, index: int) -> torch.Tensor:
        """Return image ``index`` as a uint8 tensor (C, H, W)."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.load_image(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, torch.from_numpy(self.labels[index].astype(np.float32))

    def with_transform(self, transform: Callable | None) -> MultiLabelDataset:
        """Shallow copy sharing images and labels, with another transform."""
        view = copy.copy(self)
        view.transform = transform
        return view


_WARNED: set[str] = set()  # files already reported by this process


def load_or_blank(dataset: MultiLabelDataset, index: int) -> tuple[torch.Tensor, bool]:
    """(image, ok): the image, or — when the dataset has ``skip_bad_images`` and the file
    fails to decode mid-run — a black 3-channel pixel (resized by the transform) and False,
    with one warning line per file."""
    try:
        return dataset.load_image(index), True
    except Exception as err:  # noqa: BLE001 (any decode failure of one file)
        if not getattr(dataset, "skip_bad_images", False):
            raise
        paths = getattr(dataset, "image_paths", None)
        name = paths[index] if paths is not None else f"#{index}"
        if name not in _WARNED:
            _WARNED.add(name)
            print(f"bmxlib: skipping image {name}: {err.__class__.__name__}: {err}",
                  file=sys.stderr, flush=True)
        return torch.zeros(3, 1, 1, dtype=torch.uint8), False


class IndexedDataset(Dataset):
    """Wrap a dataset so that items are ``(image, index, ok)``; the engine looks up labels
    by index and drops the items whose image could not be read (``ok`` False, only with
    ``skip_bad_images``)."""

    def __init__(self, dataset: MultiLabelDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, bool]:
        image, ok = load_or_blank(self.dataset, index)
        if self.dataset.transform is not None:
            image = self.dataset.transform(image)
        return image, index, ok
