"""Augmentation presets (torchvision ``transforms.v2``), keyword-only like torchvision's
``references/classification/presets.py``.

Images enter as uint8 tensors (C, H, W) and leave as normalised float32 tensors.
RandAugment is used for every method (docs/method.md §1, "RandAugment for all methods") and also
produces the two views used for re-labeling (docs/method.md §1.4).

Each preset has two parts: ``per_image`` (the resize, which must run before images of
different sizes can be stacked; it runs in the data loader) and ``per_batch`` (everything
after it, applied by the engine to a stacked uint8 batch (B, C, H, W) on the training
device). ``preset(image)`` runs both on one image. :class:`BatchAugment` is the random
part of the batch step, in one of two implementations:

* ``"batched"`` (the default, :class:`bmxlib.data.augment.BatchedRandAugment`): the
  batch's random draws are made at once and each kind of op runs once per op slot (all
  geometric ops as one ``grid_sample``); every op equals torchvision's, but the random
  stream differs from torchvision's per-image loop (deterministic for a seed).
* ``"grouped"`` (before issue 19): each image's flip and ops are drawn from the global
  torch RNG in exactly the order torchvision's per-image transforms draw them, so a batch
  comes out bit-identical to applying ``v2.Compose([v2.RandomHorizontalFlip(),
  v2.RandAugment(...)])`` image by image under the same seed; use it to reproduce runs
  made before the batched implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from .augment import BatchedRandAugment

IMPLEMENTATIONS = ("batched", "grouped")


class BatchAugment:
    """Per-image random horizontal flip and RandAugment for a uint8 batch (B, C, H, W).

    ``implementation="batched"`` (default) hands the batch to
    :class:`~bmxlib.data.augment.BatchedRandAugment`. ``implementation="grouped"``: the
    ops of every image are drawn first (as torchvision draws them for one image:
    ``torch.rand(1)`` for the flip, then per op ``torch.randint(14, ())`` and, for signed
    ops, ``torch.rand(())`` for the sign); then, op slot by op slot, the images that drew
    the same (op, magnitude) are transformed together by torchvision's own RandAugment op
    implementation. On 32×32 digits this is ~7× faster than the per-image loop on the CPU
    (``bmx bench --only randaugment``), and it runs on the GPU when the batch is there.
    Photo-sized images on the CPU (fewer than ``MIN_GROUP_CALL`` per op call) are
    transformed one by one, as fast as torchvision's loop.

    Parameters
    ----------
    hflip : bool
        Flip each image horizontally with probability 0.5 (before RandAugment).
    randaugment : bool
        Apply RandAugment.
    num_ops, magnitude, num_magnitude_bins :
        As ``torchvision.transforms.v2.RandAugment`` (defaults 2, 9, 31).
    implementation : {"batched", "grouped"}
        See the module docstring: batched tensor ops (default), or torchvision's ops per
        group of images, bit-identical to torchvision's per-image loop under a seed.
    """

    def __init__(
        self,
        *,
        hflip: bool = False,
        randaugment: bool = True,
        num_ops: int = 2,
        magnitude: int = 9,
        num_magnitude_bins: int = 31,
        implementation: str = "batched",
    ) -> None:
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"augmentation implementation {implementation!r} is not one of "
                             f"{', '.join(IMPLEMENTATIONS)}")
        self.implementation = implementation
        self.batched = (
            BatchedRandAugment(hflip=hflip, randaugment=randaugment, num_ops=num_ops,
                               magnitude=magnitude, num_magnitude_bins=num_magnitude_bins)
            if implementation == "batched" else None
        )
        self.hflip = hflip
        self.randaugment = (
            v2.RandAugment(num_ops=num_ops, magnitude=magnitude,
                           num_magnitude_bins=num_magnitude_bins)
            if randaugment else None
        )

    def _magnitudes(self, height: int, width: int) -> dict[str, tuple[float | None, bool]]:
        """(magnitude at the configured bin or None, signed) for each op of the space."""
        ra = self.randaugment
        table = {}
        for name, (magnitudes_fn, signed) in ra._AUGMENTATION_SPACE.items():
            values = magnitudes_fn(ra.num_magnitude_bins, height, width)
            table[name] = (None if values is None else float(values[ra.magnitude]), signed)
        return table

    def plan(self, batch_size: int, height: int, width: int) -> tuple[list[bool], list[list]]:
        """Draw each image's flip and ops: (flips, per image a list of (op, magnitude))."""
        flips: list[bool] = []
        ops: list[list[tuple[str, float]]] = []
        names = tuple(self.randaugment._AUGMENTATION_SPACE) if self.randaugment else ()
        table = self._magnitudes(height, width) if self.randaugment else {}
        for _ in range(batch_size):
            if self.hflip:
                flips.append(bool(torch.rand(1) < 0.5))  # RandomHorizontalFlip(p=0.5)
            image_ops = []
            for _ in range(self.randaugment.num_ops if self.randaugment else 0):
                name = names[int(torch.randint(len(names), ()))]
                magnitude, signed = table[name]
                if magnitude is None:
                    magnitude = 0.0
                elif signed and torch.rand(()) <= 0.5:
                    magnitude = -magnitude
                image_ops.append((name, magnitude))
            ops.append(image_ops)
        return flips, ops

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"expected a uint8 batch (B, C, H, W), got {images.dtype} "
                             f"{tuple(images.shape)}")
        if images.shape[0] == 0:
            return images.clone()
        if self.batched is not None:
            return self.batched(images)
        flips, ops = self.plan(images.shape[0], images.shape[-2], images.shape[-1])
        per_call = _images_per_call(images)
        if per_call < MIN_GROUP_CALL:  # large images on the CPU: copies would cost more
            return torch.stack([self._one(image, bool(flips and flips[i]), ops[i])
                                for i, image in enumerate(images)])
        out = images.clone()
        if any(flips):
            rows = torch.tensor([i for i, f in enumerate(flips) if f], device=images.device)
            out[rows] = F.horizontal_flip(out[rows])
        ra = self.randaugment
        for slot in range(ra.num_ops if ra else 0):
            # gather the batch in group order once, so every group is a contiguous slice
            groups: dict[tuple[str, float], list[int]] = {}
            for i, image_ops in enumerate(ops):
                groups.setdefault(image_ops[slot], []).append(i)
            order = torch.tensor([i for members in groups.values() for i in members],
                                 device=images.device)
            work = out.index_select(0, order)
            start = 0
            for (name, magnitude), members in groups.items():
                stop = start + len(members)
                for first in range(start, stop, per_call) if name != "Identity" else ():
                    last = min(first + per_call, stop)
                    work[first:last] = ra._apply_image_or_video_transform(
                        work[first:last], name, magnitude, interpolation=ra.interpolation,
                        fill=ra._fill,
                    )
                start = stop
            out.index_copy_(0, order, work)
        return out

    def _one(self, image: torch.Tensor, flip: bool, image_ops: list) -> torch.Tensor:
        """One image's planned flip and ops, in order (what torchvision does per image)."""
        ra = self.randaugment
        if flip:
            image = F.horizontal_flip(image)
        for name, magnitude in image_ops:
            if name != "Identity":
                image = ra._apply_image_or_video_transform(
                    image, name, magnitude, interpolation=ra.interpolation, fill=ra._fill)
        return image

    def __repr__(self) -> str:
        return (f"BatchAugment(hflip={self.hflip}, randaugment={self.randaugment!r}, "
                f"implementation={self.implementation!r})")


# uint8 bytes per op call on the CPU: the ops' float temporaries then stay in the caches
# (measured: 224×224 RGB is fastest at 4 images per call, 2× faster than 64; 32×32 digits
# gain up to ~256 per call). On accelerators one call per group is fastest.
CPU_BYTES_PER_CALL = 1 << 20
# Below this many images per call, grouping saves too few calls to pay for gathering the
# batch into group order (224×224 RGB: per-image is ~20 % faster), so images go one by one.
MIN_GROUP_CALL = 16


# Normalisation of datasets that name none of their own (torchvision's ImageNet statistics)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _images_per_call(images: torch.Tensor) -> int:
    if images.device.type != "cpu":
        return max(images.shape[0], 1)
    return max(CPU_BYTES_PER_CALL // max(images[0].numel(), 1), 1)


class _Preset:
    """``per_image`` then ``per_batch``; calling it transforms one (C, H, W) image."""

    per_image: v2.Compose
    per_batch: v2.Compose

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.per_batch(self.per_image(image)[None])[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(per_image={self.per_image}, per_batch={self.per_batch})"


class TrainPreset(_Preset):
    """Training transform: [resize] → [h-flip] → [RandAugment] → float → normalise.

    Parameters
    ----------
    image_size : int
        Square output side; images of another size are resized.
    mean, std : sequence of float
        Per-channel normalisation statistics.
    randaugment : bool
        Apply ``v2.RandAugment(num_ops, magnitude)``.
    num_ops, magnitude : int
        RandAugment settings (torchvision defaults 2 and 9).
    hflip : bool
        Random horizontal flip (natural images only; digits must not be mirrored).
    augmentation : {"batched", "grouped"}
        :class:`BatchAugment`'s implementation ("grouped" reproduces runs made before
        issue 19 bit for bit).
    """

    def __init__(
        self,
        *,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        randaugment: bool = True,
        num_ops: int = 2,
        magnitude: int = 9,
        hflip: bool = False,
        augmentation: str = "batched",
    ) -> None:
        self.per_image = v2.Compose([v2.Resize((image_size, image_size), antialias=True)])
        self.per_batch = v2.Compose([
            BatchAugment(hflip=hflip, randaugment=randaugment, num_ops=num_ops,
                         magnitude=magnitude, implementation=augmentation),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ])


class EvalPreset(_Preset):
    """Evaluation / full-data-pass transform: resize → float → normalise."""

    def __init__(self, *, image_size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        self.per_image = v2.Compose([v2.Resize((image_size, image_size), antialias=True)])
        self.per_batch = v2.Compose([
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ])


def transform_parts(transform) -> tuple[Any, Any]:
    """(per-image part, per-batch part) of a dataset transform.

    The presets of this module split into the resize (run per image in the
    data loader, so images can be stacked) and the rest (run by the engine on the stacked
    uint8 batch, on the device, with per-image random ops). Any other callable runs per
    image in the loader.
    """
    if hasattr(transform, "per_image") and hasattr(transform, "per_batch"):
        return transform.per_image, transform.per_batch
    return transform, None


def dataset_presets(dataset, *, image_size: int | None = None, randaugment: bool = True,
                    num_ops: int = 2, magnitude: int = 9, hflip: bool = False,
                    augmentation: str = "batched") -> tuple[TrainPreset, EvalPreset]:
    """(training preset, evaluation preset) of ``dataset``: its ``default_image_size``
    unless ``image_size`` is given, its own ``mean`` / ``std`` (ImageNet's when it has
    none); the other options are :class:`TrainPreset`'s."""
    size = image_size or dataset.default_image_size
    mean = getattr(dataset, "mean", IMAGENET_MEAN)
    std = getattr(dataset, "std", IMAGENET_STD)
    train = TrainPreset(image_size=size, mean=mean, std=std, randaugment=randaugment,
                        num_ops=num_ops, magnitude=magnitude, hflip=hflip,
                        augmentation=augmentation)
    return train, EvalPreset(image_size=size, mean=mean, std=std)
