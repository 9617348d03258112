"""Batches of (images, indices, ok) for the engine: a ``DataLoader`` or, for datasets that
hold every image in memory at the training size, a gather of whole batches.

digits-lt keeps its canvases as one uint8 tensor (N, C, H, W) and its per-image transform
(the resize) is the identity at its own size, so a batch is ``images[indices]``. Going
through ``DataLoader`` costs ~25 µs per image in Python (``__getitem__``, the identity
resize, the collate), a tenth of a digits-lt run once the step is fast.
:class:`InMemoryBatches` yields exactly what the ``DataLoader`` yields — same tensors,
same batches, same order — and draws the one value from the global torch RNG that a
``DataLoader`` iterator draws when it starts (its worker base seed), so every random
draw after it (the batch augmentation) is the same: a run is bit for bit the run the
``DataLoader`` path gives (tests/test_batches.py checks this).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from .base import IndexedDataset, MultiLabelDataset, load_or_blank


def images_in_memory(dataset: MultiLabelDataset, transform=None) -> torch.Tensor | None:
    """The dataset's images as one uint8 tensor (N, C, H, W) when it holds them in memory
    and ``transform`` (its per-image part) leaves them unchanged; else None.

    ``transform`` is tried on the first image: a transform that returns that very tensor
    (torchvision's resize at the image's own size does) is the identity for every image of
    the same size, which a 4-D tensor guarantees.
    """
    images = getattr(dataset, "images", None)
    if not (isinstance(images, torch.Tensor) and images.dim() == 4
            and images.dtype == torch.uint8 and len(images) == len(dataset)):
        return None
    if transform is not None and len(images):
        probe = images[0]
        if transform(probe) is not probe:
            return None
    return images


def resolve_workers(num_workers: int, device: torch.device, dataset: MultiLabelDataset,
                    per_image=None) -> int:
    """The DataLoader worker count for ``num_workers`` (-1 = auto): 0 on the CPU, where
    workers compete with training for the same cores, and for a dataset that holds its
    images in memory at the size ``per_image`` leaves them (``images_in_memory``: a batch
    is then one ``index_select``, and workers — started anew every epoch for every loader —
    would only copy it between processes); else min(8, CPU count) on CUDA, where decoding
    and resizing photos must keep up with the GPU."""
    if num_workers >= 0:
        return num_workers
    in_memory = images_in_memory(dataset, per_image) is not None
    return min(8, os.cpu_count() or 1) if device.type == "cuda" and not in_memory else 0


class InMemoryBatches:
    """``DataLoader(IndexedDataset(dataset), batch_size, sampler)`` for in-memory images.

    Parameters
    ----------
    images : torch.Tensor
        uint8 (N, C, H, W), every image of the dataset (``images_in_memory``).
    sampler : iterable of int
        Dataset indices in batch order (the engine's samplers).
    batch_size : int
        Images per batch; the last batch may be smaller (``drop_last=False``).
    """

    def __init__(self, images: torch.Tensor, sampler: Iterable[int], *, batch_size: int) -> None:
        self.images, self.sampler, self.batch_size = images, sampler, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        # what a DataLoader iterator draws when it starts, drawn now as it would be
        torch.empty((), dtype=torch.int64).random_()
        return self._batches(iter(self.sampler))

    def _batches(self, order: Iterator[int]):
        while indices := list(itertools.islice(order, self.batch_size)):
            index = torch.tensor(indices, dtype=torch.int64)
            yield (self.images.index_select(0, index), index,
                   torch.ones(len(indices), dtype=torch.bool))


def batch_loader(dataset: MultiLabelDataset, sampler: Iterable[int], *, batch_size: int,
                 per_image=None, num_workers: int = 0,
                 pin_memory: bool = False) -> InMemoryBatches | DataLoader:
    """Batches of (uint8 images, int64 indices, bool ok) of ``dataset`` in ``sampler``'s
    order, each image through ``per_image``: gathered from memory when the dataset holds
    its images and ``per_image`` leaves them unchanged, else through a ``DataLoader``
    (``num_workers`` processes, ``pin_memory`` for CUDA)."""
    images = images_in_memory(dataset, per_image) if num_workers == 0 else None
    if images is not None:
        return InMemoryBatches(images, sampler, batch_size=batch_size)
    return DataLoader(IndexedDataset(dataset.with_transform(per_image)), batch_size=batch_size,
                      sampler=sampler, num_workers=num_workers, pin_memory=pin_memory,
                      persistent_workers=False)


class _Views(Dataset):
    """Item i: ``n_views`` copies of image ``rows[i]`` after the per-image transform."""

    def __init__(self, dataset: MultiLabelDataset, rows: list[int], transform, n_views: int):
        self.dataset, self.rows, self.transform, self.n_views = dataset, rows, transform, n_views

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> torch.Tensor:
        image, _ = load_or_blank(self.dataset, self.rows[i])  # a bad file: black
        if self.transform is not None:
            image = self.transform(image)
        return torch.stack([image] * self.n_views)


class _ViewBatches:
    """``n_views`` copies of every image of in-memory batches, (B, n_views, C, H, W)."""

    def __init__(self, batches: InMemoryBatches, n_views: int) -> None:
        self.batches, self.n_views = batches, n_views

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return (images.unsqueeze(1).expand(-1, self.n_views, -1, -1, -1)
                for images, _, _ in iter(self.batches))


def view_loader(dataset: MultiLabelDataset, rows: list[int], *, n_views: int, batch_size: int,
                per_image=None, num_workers: int = 0,
                pin_memory: bool = False) -> Iterable[torch.Tensor]:
    """Batches of uint8 (B, n_views, C, H, W): ``n_views`` copies of each image of
    ``dataset`` at ``rows``, in that order, each image loaded and put through ``per_image``
    once for all its copies (the no-grad passes augment the copies on the device). From
    memory when :func:`batch_loader` would gather from memory, else a ``DataLoader``
    (an unreadable image comes as a black one)."""
    images = images_in_memory(dataset, per_image) if num_workers == 0 else None
    if images is not None:  # the same batches as the DataLoader below, gathered at once
        return _ViewBatches(InMemoryBatches(images, rows, batch_size=batch_size), n_views)
    return DataLoader(_Views(dataset, rows, per_image, n_views), batch_size=batch_size,
                      shuffle=False, num_workers=num_workers, pin_memory=pin_memory)


__all__ = ["InMemoryBatches", "batch_loader", "images_in_memory", "resolve_workers",
           "view_loader"]
