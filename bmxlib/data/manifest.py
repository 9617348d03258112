"""A user's own multi-label dataset described by a class list and CSV manifests.

Layout (``root`` is a directory)::

    root/classes.txt     one class name per line (blank lines ignored)
    root/train.csv       columns ``path,labels`` (other columns are ignored)
    root/val.csv         optional
    root/test.csv

``path`` is relative to the CSV's directory (absolute paths are kept as they are);
``labels`` is a ``;``-separated list of class names, possibly empty (an image with no
positive class). ``root`` may also be one CSV file; ``classes.txt`` is then read from
the CSV's directory.

Every kept image file is checked at construction (existence and the decode check of
:mod:`bmxlib.data.files`, which also holds the helpers shared with COCO and VOC);
``skip_bad_images=True`` drops failing files instead.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bmxlib.data.files import (
    FileList,
    FileListDataset,
    check_flag,
    labels_from_pairs,
    read_class_names,
    read_user_text,
    require_path,
)

MANIFEST_SPLITS = {"train": "train", "val": "val", "test": "test"}
REQUIRED_COLUMNS = ("path", "labels")


def read_manifest_rows(
    csv_path: Path, class_index: Mapping[str, int], *, allow_outside_root: bool = False
) -> tuple[list[str], list[int], list[int]]:
    """Parse a manifest CSV.

    Returns the image paths and the (row, class) index pairs of the positive labels.
    Rows are numbered as in a spreadsheet: the header is row 1.
    """
    paths: list[str] = []
    pos_rows: list[int] = []
    pos_cols: list[int] = []
    root = csv_path.parent.resolve()
    text = read_user_text(csv_path, "manifest")  # a byte-order mark would prefix 'path'
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    rows = list(reader)
    for column in REQUIRED_COLUMNS:
        if column not in header:
            raise ValueError(f"manifest {csv_path}: missing column {column!r}")
    for row_number, row in enumerate(rows, start=2):
        if None in row:  # DictReader's key for the values beyond the header's columns
            raise ValueError(
                f"manifest {csv_path} row {row_number}: {len(row[None])} more value(s) than "
                f"the header has columns ({','.join(header)}); separate labels with ';'")
        image = (row["path"] or "").strip()
        if not image:
            raise ValueError(f"manifest {csv_path} row {row_number}: empty path")
        image_path = Path(image)
        if not image_path.is_absolute():
            image_path = csv_path.parent / image_path
            if not allow_outside_root and not image_path.resolve().is_relative_to(root):
                raise ValueError(
                    f"manifest {csv_path} row {row_number}: path {image!r} leads outside "
                    f"{root}; set manifest_allow_outside_root=true if that is intended")
        for name in (row["labels"] or "").split(";"):
            name = name.strip()
            if not name:
                continue
            if name not in class_index:
                raise ValueError(
                    f"manifest {csv_path} row {row_number}: label {name!r} not in classes.txt"
                )
            pos_rows.append(len(paths))
            pos_cols.append(class_index[name])
        paths.append(str(image_path))
    if not paths:
        raise ValueError(f"manifest {csv_path}: no rows")
    return paths, pos_rows, pos_cols


class ManifestDataset(FileListDataset):
    """A multi-label dataset given by ``classes.txt`` and ``<split>.csv`` manifests.

    Parameters
    ----------
    root : str or Path
        The manifest directory, or one CSV file (its directory holds ``classes.txt``).
    split : {"train", "val", "test"}
        Which CSV to read when ``root`` is a directory.
    shot_many, shot_few : int
        Shot thresholds on the number of positive training labels per class
        (many if > shot_many, few if < shot_few); defaults 1000 and 100.
    allow_outside_root : bool
        Accept relative image paths that lead outside the CSV's folder through ".."
        (default False: refused, naming the row). Absolute paths are kept as given.
    **options
        ``transform``, ``max_images``, ``check_files`` (default True: every kept image
        exists and passes the decode check) and ``skip_bad_images`` (default False:
        a failing file is an error), as in :class:`~bmxlib.data.files.FileListDataset`.
        ``max_images`` keeps the first rows (CSV order).

    Attributes
    ----------
    labels : np.ndarray, uint8 (N, K)
    class_names : list of str, in ``classes.txt`` order
    image_paths : list of str
    image_ids : None (manifests have no image ids)
    skipped_images : list of str
    """

    dataset_name = "manifest"
    splits = MANIFEST_SPLITS
    shot_many = 1000
    shot_few = 100

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        shot_many: int = 1000,
        shot_few: int = 100,
        allow_outside_root: bool = False,
        **options,
    ) -> None:
        self.shot_many, self.shot_few = _check_shots(shot_many, shot_few)
        self.allow_outside_root = check_flag("allow_outside_root", allow_outside_root)
        super().__init__(root, split, **options)

    def read_file_list(self, root: Path, split_name: str, max_images: int | None) -> FileList:
        if root.is_file():
            if root.suffix.lower() != ".csv":
                raise ValueError(f"manifest root {root} is a file but not a .csv manifest; "
                                 "give the manifest folder or one of its CSV files")
            csv_path, directory = root, root.parent
        else:
            directory = require_path(root, "manifest", directory=True)
            csv_path = require_path(directory / f"{split_name}.csv", "manifest")
        class_names = read_class_names(directory / "classes.txt", "manifest")
        for name in class_names:
            if ";" in name:  # no manifest row could name this class
                raise ValueError(f"manifest {directory / 'classes.txt'}: class name {name!r} "
                                 "holds ';', the separator of the labels column")
        class_index = {name: k for k, name in enumerate(class_names)}
        paths, pos_rows, pos_cols = read_manifest_rows(
            csv_path, class_index, allow_outside_root=self.allow_outside_root)
        labels = labels_from_pairs(
            np.asarray(pos_rows, dtype=np.int64),
            np.asarray(pos_cols, dtype=np.int64),
            (len(paths), len(class_names)),
        )
        listing = FileList(paths, labels, class_names, what=f"manifest {csv_path}")
        return listing.head(max_images)


def _check_shots(shot_many: int, shot_few: int) -> tuple[int, int]:
    for name, value in (("shot_many", shot_many), ("shot_few", shot_few)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if shot_few > shot_many:
        raise ValueError(f"shot_few ({shot_few}) must not exceed shot_many ({shot_many})")
    return int(shot_many), int(shot_few)


__all__ = ["MANIFEST_SPLITS", "ManifestDataset", "read_manifest_rows"]
