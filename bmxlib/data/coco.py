"""MS-COCO 2014 as a multi-label dataset (the paper's COCO).

Expected layout (the official archives unpacked under ``root``)::

    root/annotations/instances_train2014.json
    root/annotations/instances_val2014.json
    root/train2014/*.jpg
    root/val2014/*.jpg

Image counts
------------
================  ===========  =================================
split             all images   with at least one annotation
================  ===========  =================================
train2014         82,783       82,081
val2014 ("test")  40,504       40,137
================  ===========  =================================

The right-hand column is what ASL-style loaders give (ASL's ``CocoDetection`` keeps
``coco.imgToAnns.keys()``, i.e. only the annotated images) and the split sizes that
multi-label papers quote for COCO 2014 (82,081 / 40,137); the paper follows such
loaders, so it is the default here (``drop_empty=True``). ``drop_empty=False`` keeps
every image, those without any annotation with an all-zero label row (the left-hand
column; about 0.9% of the images).

Label rules
-----------
- Image i is positive for category c if any of its instance annotations has category
  c. Crowd annotations (``iscrowd=1``) count by default, as in common multi-label
  practice: a crowd region still shows objects of that class (``include_crowd=False``
  leaves them out).
- Classes are ordered by category id; ``class_names`` are the categories' names.
- ``drop_empty`` drops the images whose label row is all zero: with the default
  ``include_crowd=True`` exactly the images without any annotation (ASL's rule); with
  ``include_crowd=False`` also those whose only annotations are crowd regions.
- Images are ordered by image id, so ``max_images`` keeps the lowest ids (after
  ``drop_empty``).
- Every kept image file is checked at construction (existence and the decode check of
  :mod:`bmxlib.data.files`); ``skip_bad_images=True`` drops failing files instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bmxlib.data.files import (
    FileList,
    FileListDataset,
    check_flag,
    labels_from_pairs,
    require_path,
)

COCO_SPLITS = {"train": "train", "val": "val", "test": "val"}


def read_coco_json(path: Path) -> dict:
    """Load a COCO instances file; raise ValueError naming it when it is not valid."""
    require_path(path, "coco")
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"coco {path}: not valid JSON ({error})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or key not in data:
            raise ValueError(f"coco {path}: missing key {key!r}")
    validate_coco(data, path)
    return data


def _records(data: dict, key: str, path: Path, fields: dict[str, type]) -> list[dict]:
    """``data[key]`` as a list of mappings whose ``fields`` have the given types."""
    records = data[key]
    if not isinstance(records, list):
        raise ValueError(f"coco {path}: {key!r} must be a list, got {type(records).__name__}")
    for number, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError(f"coco {path}: {key}[{number}] must be a mapping, got {record!r:.60}")
        for field, kind in fields.items():
            value = record.get(field)
            if field not in record or not isinstance(value, kind) or isinstance(value, bool):
                shown = "missing" if field not in record else f"{value!r:.60}"
                raise ValueError(f"coco {path}: {key}[{number}].{field} must be "
                                 f"{'an integer' if kind is int else 'a string'}, got {shown}")
    return records


def _unique(records: list[dict], key: str, field: str, path: Path) -> set:
    seen: set = set()
    for record in records:
        if record[field] in seen:
            raise ValueError(f"coco {path}: {key}.{field} {record[field]!r} appears twice")
        seen.add(record[field])
    return seen


def validate_coco(data: dict, path: Path) -> None:
    """Refuse a COCO instances file that would mislabel silently: ids of the wrong type,
    an image or category id given twice, a category name given twice, an image without
    ``file_name``, an annotation naming an unknown image or category. ValueError names
    the file, the field and the value."""
    images = _records(data, "images", path, {"id": int, "file_name": str})
    categories = _records(data, "categories", path, {"id": int, "name": str})
    annotations = _records(data, "annotations", path, {"image_id": int, "category_id": int})
    image_ids = _unique(images, "images", "id", path)
    category_ids = _unique(categories, "categories", "id", path)
    _unique(categories, "categories", "name", path)
    for number, annotation in enumerate(annotations):
        if annotation["image_id"] not in image_ids:
            raise ValueError(f"coco {path}: annotations[{number}].image_id: unknown image id "
                             f"{annotation['image_id']}")
        if annotation["category_id"] not in category_ids:
            raise ValueError(f"coco {path}: annotations[{number}].category_id: unknown "
                             f"category id {annotation['category_id']}")


def coco_labels(
    data: dict, source: Path, *, include_crowd: bool
) -> tuple[list[dict], list[str], np.ndarray]:
    """Images (sorted by id), class names (sorted by category id) and (N, K) uint8 labels."""
    categories = sorted(data["categories"], key=lambda category: category["id"])
    class_names = [str(category["name"]) for category in categories]
    images = sorted(data["images"], key=lambda image: image["id"])
    class_of = {category["id"]: k for k, category in enumerate(categories)}
    row_of = {image["id"]: i for i, image in enumerate(images)}
    rows, cols = [], []
    for annotation in data["annotations"]:
        if not include_crowd and annotation.get("iscrowd", 0):
            continue
        image_id, category_id = annotation["image_id"], annotation["category_id"]
        if image_id not in row_of:
            raise ValueError(f"coco {source}: annotation for unknown image id {image_id}")
        if category_id not in class_of:
            raise ValueError(f"coco {source}: annotation with unknown category id {category_id}")
        rows.append(row_of[image_id])
        cols.append(class_of[category_id])
    labels = labels_from_pairs(
        np.asarray(rows, dtype=np.int64),
        np.asarray(cols, dtype=np.int64),
        (len(images), len(categories)),
    )
    return images, class_names, labels


class CocoDataset(FileListDataset):
    """MS-COCO (default 2014) instances as multi-label classification.

    Parameters
    ----------
    root : str or Path
        Folder holding ``annotations/`` and the image folders.
    split : {"train", "test", "val"}
        "train" reads train<year>; "test" and "val" both read val<year> (the paper
        evaluates on val2014).
    include_crowd : bool
        Whether crowd annotations make a class positive (default True).
    drop_empty : bool
        Drop the images with an all-zero label row (default True: the ASL-style
        loaders the paper's numbers come from; train2014 82,081 and val2014 40,137
        images instead of 82,783 and 40,504, see the module docstring).
    year : str
        "2014" (the paper's) or another release with the same layout, e.g. "2017".
    **options
        ``transform``, ``max_images``, ``check_files`` (default True: every kept image
        exists and passes the decode check) and ``skip_bad_images`` (default False:
        a failing file is an error), as in :class:`~bmxlib.data.files.FileListDataset`.
        ``max_images`` keeps the lowest image ids (after ``drop_empty``).

    Attributes
    ----------
    labels : np.ndarray, uint8 (N, 80)
    class_names : list of str, ordered by category id
    image_paths : list of str
    image_ids : list of int
    skipped_images : list of str
    """

    dataset_name = "coco"
    splits = COCO_SPLITS
    #: paper thresholds (docs/method.md §3)
    shot_many = 10_000
    shot_few = 1_000
    default_image_size = 448

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        include_crowd: bool = True,
        drop_empty: bool = True,
        year: str = "2014",
        **options,
    ) -> None:
        self.include_crowd = check_flag("include_crowd", include_crowd)
        self.drop_empty = check_flag("drop_empty", drop_empty)
        self.year = str(year)
        super().__init__(root, split, **options)

    def read_file_list(self, root: Path, split_name: str, max_images: int | None) -> FileList:
        folder_name = split_name + self.year
        root = require_path(root, "coco", directory=True)
        annotation_file = root / "annotations" / f"instances_{folder_name}.json"
        data = read_coco_json(annotation_file)
        image_dir = require_path(root / folder_name, "coco", directory=True)
        images, class_names, labels = coco_labels(
            data, annotation_file, include_crowd=self.include_crowd
        )
        listing = FileList(
            paths=[str(image_dir / image["file_name"]) for image in images],
            labels=labels,
            class_names=class_names,
            what=f"coco {folder_name}",
            ids=[int(image["id"]) for image in images],
        )
        if self.drop_empty:
            listing = listing.select(labels.any(axis=1))
        return listing.head(max_images)
