"""Datasets (docs/method.md §5, §6): ``load_dataset(name, split, **options)``."""

from __future__ import annotations

import inspect

from .base import IndexedDataset, MultiLabelDataset
from .presets import EvalPreset, TrainPreset, dataset_presets

DATASETS = ("digits-lt", "glyphs-coco", "coco", "voc", "manifest")
GENERATED_DATASETS = ("digits-lt", "glyphs-coco")  # built by the project; the others read data_root


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
        - manifest: ``shot_many`` [1000], ``shot_few`` [100], ``allow_outside_root``
          [False].

        With ``classes="auto"`` the test split must be given the train split's
        ``class_names`` (``classes=train.class_names``) to get the same columns.

    Returns
    -------
    MultiLabelDataset
        With ``.labels`` (N, K) uint8 clean labels and ``.class_names``; the real
        datasets are :class:`~.files.FileListDataset` (also ``.image_paths``,
        ``.image_ids``, ``.skipped_images``).

    Raises
    ------
    ValueError
        One line naming the dataset and the offending option or value: an unknown
        dataset or option (the message lists the dataset's options), a seed outside
        [0, 2**32 - 1], a size that is not an integer ≥ the dataset's minimum or that
        would not fit in half of this machine's memory, a missing ``root``.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "digits-lt":
        from .digits_lt import DigitsLT as cls
    elif name == "glyphs-coco":
        from .glyphs_coco import GlyphsCOCO as cls
    elif name == "coco":
        from .coco import CocoDataset as cls
    elif name == "voc":
        from .voc import VocDataset as cls
    else:
        from .manifest import ManifestDataset as cls
    accepted = accepted_options(cls)
    for option in options:
        if option not in accepted:
            raise ValueError(f"dataset {name!r} has no option {option!r}; its options: "
                             f"{', '.join(sorted(accepted))}")
    if name in ("coco", "voc", "manifest"):
        root = options.pop("root", None)
        if not root:
            raise ValueError(f"dataset {name!r} needs a root folder (config key data_root; "
                             "bmx data stats --root; load_dataset(..., root=...))")
        return cls(root, split, **options)
    return cls(split, **options)


def accepted_options(cls: type) -> set[str]:
    """The keyword options a dataset class accepts: those of its ``__init__`` and, where
    that passes ``**options`` on, of its bases' (``split`` itself is not an option)."""
    accepted: set[str] = set()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = list(inspect.signature(init).parameters.values())[1:]  # not self
        accepted |= {p.name for p in parameters if p.kind in kinds} - {"split"}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            break
    return accepted


__all__ = ["DATASETS", "GENERATED_DATASETS", "EvalPreset", "IndexedDataset",
           "MultiLabelDataset", "TrainPreset", "accepted_options", "dataset_presets",
           "load_dataset"]
