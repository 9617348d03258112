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

This module also holds the small helpers shared by the real-data loaders (COCO, VOC,
manifest): split and option validation, file checks and RGB image decoding.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from bmxlib.data.base import MultiLabelDataset

# --------------------------------------------------------------------------- helpers


def resolve_split(dataset: str, split: str, aliases: Mapping[str, str]) -> str:
    """Map a user split name to the dataset's own name, or raise a clear ValueError."""
    if not isinstance(split, str) or split not in aliases:
        valid = ", ".join(repr(name) for name in aliases)
        raise ValueError(f"{dataset}: unknown split {split!r}; valid splits are {valid}")
    return aliases[split]


def check_max_images(max_images: int | None) -> int | None:
    """Validate the ``max_images`` option (None or a positive int)."""
    if max_images is None:
        return None
    if isinstance(max_images, bool) or not isinstance(max_images, (int, np.integer)):
        raise TypeError(f"max_images must be an int or None, got {type(max_images).__name__}")
    if max_images < 1:
        raise ValueError(f"max_images must be >= 1, got {max_images}")
    return int(max_images)


def require_path(path: Path, what: str, *, directory: bool = False) -> Path:
    """Raise FileNotFoundError naming ``path`` unless it exists (as a directory if asked)."""
    exists = path.is_dir() if directory else path.is_file()
    if not exists:
        kind = "folder" if directory else "file"
        raise FileNotFoundError(f"{what}: {kind} not found: {path}")
    return path


def require_images(paths: Iterable[str], what: str) -> None:
    """Raise FileNotFoundError naming the first image file that does not exist."""
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{what}: image file not found: {path}")


def read_rgb_image(path: str | Path) -> torch.Tensor:
    """Decode an image file into RGB with PIL.

    Grayscale, palette, CMYK and RGBA files are converted (alpha dropped); EXIF
    orientation is not applied, as in torchvision's standard image-folder loader.
    (PIL rather than torchvision.io: the latter's decoders are deprecated since 0.29.)

    Returns
    -------
    torch.Tensor
        uint8, shape (3, H, W), values in [0, 255].
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            array = np.array(image.convert("RGB"), dtype=np.uint8)  # writable copy
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError(f"cannot decode image {path}: {error}") from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def labels_from_pairs(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Binary (N, K) uint8 matrix with ones at the given (row, col) pairs."""
    labels = np.zeros(shape, dtype=np.uint8)
    labels[rows, cols] = 1
    return labels


# --------------------------------------------------------------------------- manifest

MANIFEST_SPLITS = {"train": "train", "val": "val", "test": "test"}
REQUIRED_COLUMNS = ("path", "labels")


def read_class_file(path: Path) -> list[str]:
    """Class names from ``classes.txt``, one per line; blank lines ignored."""
    require_path(path, "manifest")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [name for name in names if name]
    if not names:
        raise ValueError(f"manifest {path}: no class names")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"manifest {path}: duplicate class name {name!r}")
        seen.add(name)
    return names


def read_manifest_rows(
    csv_path: Path, class_index: Mapping[str, int]
) -> tuple[list[str], list[int], list[int]]:
    """Parse a manifest CSV.

    Returns the image paths and the (row, class) index pairs of the positive labels.
    Rows are numbered as in a spreadsheet: the header is row 1.
    """
    paths: list[str] = []
    pos_rows: list[int] = []
    pos_cols: list[int] = []
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for column in REQUIRED_COLUMNS:
            if column not in header:
                raise ValueError(f"manifest {csv_path}: missing column {column!r}")
        for row_number, row in enumerate(reader, start=2):
            image = (row["path"] or "").strip()
            if not image:
                raise ValueError(f"manifest {csv_path} row {row_number}: empty path")
            image_path = Path(image)
            if not image_path.is_absolute():
                image_path = csv_path.parent / image_path
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


class ManifestDataset(MultiLabelDataset):
    """A multi-label dataset given by ``classes.txt`` and ``<split>.csv`` manifests.

    Parameters
    ----------
    root : str or Path
        The manifest directory, or one CSV file (its directory holds ``classes.txt``).
    split : {"train", "val", "test"}
        Which CSV to read when ``root`` is a directory.
    transform : callable, optional
        Applied to the uint8 image tensor (3, H, W).
    max_images : int, optional
        Keep only the first ``max_images`` rows (CSV order).
    shot_many, shot_few : int
        Shot thresholds on the number of positive training labels per class
        (many if > shot_many, few if < shot_few); defaults 1000 and 100.
    check_files : bool
        Check at construction that every image file exists (default True), so a
        missing file is reported before training starts.

    Attributes
    ----------
    labels : np.ndarray, uint8 (N, K)
    class_names : list of str, in ``classes.txt`` order
    image_paths : list of str
    """

    shot_many = 1000
    shot_few = 100

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        max_images: int | None = None,
        shot_many: int = 1000,
        shot_few: int = 100,
        check_files: bool = True,
    ) -> None:
        split_name = resolve_split("manifest", split, MANIFEST_SPLITS)
        max_images = check_max_images(max_images)
        self.shot_many, self.shot_few = _check_shots(shot_many, shot_few)
        root = Path(root)
        if root.is_file():
            csv_path, directory = root, root.parent
        else:
            directory = require_path(root, "manifest", directory=True)
            csv_path = require_path(directory / f"{split_name}.csv", "manifest")
        class_names = read_class_file(directory / "classes.txt")
        class_index = {name: k for k, name in enumerate(class_names)}
        paths, pos_rows, pos_cols = read_manifest_rows(csv_path, class_index)
        labels = labels_from_pairs(
            np.asarray(pos_rows, dtype=np.int64),
            np.asarray(pos_cols, dtype=np.int64),
            (len(paths), len(class_names)),
        )
        if max_images is not None:
            paths, labels = paths[:max_images], labels[:max_images]
        if check_files:
            require_images(paths, f"manifest {csv_path}")
        super().__init__(labels, class_names, transform=transform)
        self.split = split
        self.image_paths = paths

    def load_image(self, index: int) -> torch.Tensor:
        """Image ``index`` as uint8 (3, H, W), values in [0, 255]."""
        return read_rgb_image(self.image_paths[index])


def _check_shots(shot_many: int, shot_few: int) -> tuple[int, int]:
    for name, value in (("shot_many", shot_many), ("shot_few", shot_few)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if shot_few > shot_many:
        raise ValueError(f"shot_few ({shot_few}) must not exceed shot_many ({shot_many})")
    return int(shot_many), int(shot_few)


__all__ = [
    "ManifestDataset",
    "read_rgb_image",
    "resolve_split",
    "check_max_images",
    "require_path",
    "require_images",
]
