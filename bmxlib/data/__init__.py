"""Datasets (SPEC §5, §6): ``load_dataset(name, split, **options)``."""

from __future__ import annotations

from .base import IndexedDataset, MultiLabelDataset
from .presets import EvalPreset, TrainPreset

DATASETS = ("digits-lt", "coco", "voc", "manifest")


def load_dataset(name: str, split: str = "train", **options) -> MultiLabelDataset:
    """Load a registered dataset.

    Parameters
    ----------
    name : {"digits-lt", "coco", "voc", "manifest"}
    split : str
        "train" or "test" (real datasets also accept their own aliases).
    **options
        Passed to the loader: ``seed``, ``n_train``, ``n_test`` for digits-lt; ``root``
        (required) and ``max_images`` etc. for coco / voc / manifest.

    Returns
    -------
    MultiLabelDataset
        With ``.labels`` (N, K) uint8 clean labels and ``.class_names``.
    """
    if name == "digits-lt":
        from .digits_lt import DigitsLT

        return DigitsLT(split, **options)
    if name in ("coco", "voc", "manifest"):
        root = options.pop("root", None)
        if not root:
            raise ValueError(f"dataset {name!r} needs a root folder (config key data_root)")
        if name == "coco":
            from .coco import CocoDataset as cls
        elif name == "voc":
            from .voc import VocDataset as cls
        else:
            from .manifest import ManifestDataset as cls
        return cls(root, split, **options)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


__all__ = ["DATASETS", "EvalPreset", "IndexedDataset", "MultiLabelDataset", "TrainPreset",
           "load_dataset"]
