"""Augmentation presets (torchvision ``transforms.v2``), keyword-only like torchvision's
``references/classification/presets.py``.

Images enter as uint8 tensors (C, H, W) and leave as normalised float32 tensors.
RandAugment is used for every method (SPEC §1, "RandAugment for all methods") and also
produces the two views used for re-labeling (SPEC §1.4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms import v2


class TrainPreset:
    """Training transform: [resize] → [RandAugment] → [h-flip] → float → normalise.

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
    ) -> None:
        steps: list = [v2.Resize((image_size, image_size), antialias=True)]
        if hflip:
            steps.append(v2.RandomHorizontalFlip())
        if randaugment:
            steps.append(v2.RandAugment(num_ops=num_ops, magnitude=magnitude))
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
        self.transforms = v2.Compose(steps)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.transforms(image)


class EvalPreset:
    """Evaluation / full-data-pass transform: resize → float → normalise."""

    def __init__(self, *, image_size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        self.transforms = v2.Compose(
            [
                v2.Resize((image_size, image_size), antialias=True),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(list(mean), list(std)),
            ]
        )

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.transforms(image)
