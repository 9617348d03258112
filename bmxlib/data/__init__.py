"""Datasets (docs/method.md §5, §6): ``load_dataset(name, split, **options)``."""

from __future__ import annotations

from .base import IndexedDataset, MultiLabelDataset
from .presets import EvalPreset, TrainPreset, dataset_presets

DATASETS = ("digits-lt", "glyphs-coco", "coco", "voc", "manifest")


def load_dataset(name: str, split: str = "train", **options) -> MultiLabelDataset:
    """Load a registered dataset.

    Parameters
    ----------
    name : {"digits-lt", "glyphs-coco", "coco", "voc", "manifest"}
    split : str
        "train" or "test" (real datasets also accept their own aliases).
    **options
        Passed to the loader (keyword arguments, defaults in brackets):

        - digits-lt: ``seed``, ``n_train``, ``n_test`` (see :class:`~.digits_lt.DigitsLT`).
        - glyphs-coco: ``seed``, ``n_train``, ``n_test`` (see
          :class:`~.glyphs_coco.GlyphsCOCO`; defaults 2,000 / 2,000).
        - coco, voc, manifest: ``root`` (required), ``max_images`` [None],
          ``check_files`` [True], ``skip_bad_images`` [False], ``transform`` [None];
          and per dataset:
        - coco: ``include_crowd`` [True], ``drop_empty`` [True], ``year`` ["2014"].
        - voc: ``difficult_as_positive`` [True], ``classes`` [None: the 20 VOC classes;
          a list of names, or "auto"], ``classes_file`` [None], ``year`` [2007; or 2012].
        - manifest: ``shot_many`` [1000], ``shot_few`` [100].

        With ``classes="auto"`` the test split must be given the train split's
        ``class_names`` (``classes=train.class_names``) to get the same columns.

    Returns
    -------
    MultiLabelDataset
        With ``.labels`` (N, K) uint8 clean labels and ``.class_names``; the real
        datasets are :class:`~.files.FileListDataset` (also ``.image_paths``,
        ``.image_ids``, ``.skipped_images``).
    """
    if name == "digits-lt":
        from .digits_lt import DigitsLT

        return DigitsLT(split, **options)
    if name == "glyphs-coco":
        from .glyphs_coco import GlyphsCOCO

        return GlyphsCOCO(split, **options)
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
           "dataset_presets", "load_dataset"]
