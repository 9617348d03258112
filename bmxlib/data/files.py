"""The shared base of the real-data loaders: a list of image files + a binary label matrix.

:class:`FileListDataset` is what COCO, VOC and the manifest loader have in common: the
constructor checks (split name, ``max_images``), the file check run before training
starts (every kept image exists), the RGB image loader, and the attributes ``split``,
``image_paths`` and ``image_ids``. A subclass only parses its own format, in
:meth:`FileListDataset.read_file_list`, which returns a :class:`FileList`.

This module also holds the small helpers the loaders share: split and option
validation, path checks, class-name lists and the label matrix from index pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
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


def check_class_names(names: Sequence[str], what: str) -> list[str]:
    """Validate a class list: a non-empty sequence of distinct, non-blank strings."""
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"{what}: class names must be a list of strings, got {names!r}")
    if not names:
        raise ValueError(f"{what}: no class names")
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{what}: class name {name!r} is not a non-blank string")
        if name in seen:
            raise ValueError(f"{what}: duplicate class name {name!r}")
        seen.add(name)
    return list(names)


def read_class_names(path: Path, what: str) -> list[str]:
    """Class names from a text file, one per line (stripped); blank lines ignored."""
    require_path(path, what)
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return check_class_names([name for name in names if name], f"{what} {path}")


def labels_from_pairs(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Binary (N, K) uint8 matrix with ones at the given (row, col) pairs."""
    labels = np.zeros(shape, dtype=np.uint8)
    labels[rows, cols] = 1
    return labels


# --------------------------------------------------------------------------- images


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


# --------------------------------------------------------------------------- base class


@dataclass
class FileList:
    """What a loader's parser returns: one image file and one label row per image.

    ``ids`` are the format's own image ids (COCO ints, VOC file stems) or None;
    ``what`` prefixes the file-check messages (e.g. ``"voc trainval"``).
    """

    paths: list[str]
    labels: np.ndarray
    class_names: list[str]
    what: str
    ids: list | None = None

    def __post_init__(self) -> None:
        if len(self.paths) != len(self.labels):
            raise ValueError(f"{self.what}: {len(self.paths)} paths for {len(self.labels)} rows")
        if self.ids is not None and len(self.ids) != len(self.paths):
            raise ValueError(f"{self.what}: {len(self.ids)} ids for {len(self.paths)} paths")

    def select(self, keep: Sequence[int] | np.ndarray) -> FileList:
        """The entries at ``keep`` (indices or a boolean mask), in order."""
        keep = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep)
        keep = keep.astype(np.int64, copy=False)
        return FileList(
            paths=[self.paths[i] for i in keep],
            labels=self.labels[keep],
            class_names=self.class_names,
            what=self.what,
            ids=None if self.ids is None else [self.ids[i] for i in keep],
        )

    def head(self, max_images: int | None) -> FileList:
        """The first ``max_images`` entries (all when None)."""
        return self if max_images is None else self.select(np.arange(min(max_images, len(self))))

    def __len__(self) -> int:
        return len(self.paths)


class FileListDataset(MultiLabelDataset):
    """A list of image files and a binary (N, K) label matrix (COCO, VOC, manifest).

    Subclasses set :attr:`dataset_name` and :attr:`splits`, store their format options
    on ``self`` and then call ``super().__init__``, which validates the common options,
    calls :meth:`read_file_list` and checks the files.

    Parameters
    ----------
    root : str or Path
        Passed to :meth:`read_file_list` as a Path.
    split : str
        A key of :attr:`splits` (ValueError listing the valid ones otherwise).
    transform : callable, optional
        Applied to the uint8 image tensor (3, H, W).
    max_images : int, optional
        Passed to :meth:`read_file_list`, which keeps at most that many images (each
        loader says which: lowest ids, list order, CSV order).
    check_files : bool
        Check at construction that every kept image file exists (default True).

    Attributes
    ----------
    labels : np.ndarray, uint8 (N, K)
    class_names : list of str
    split : str, the split as given
    image_paths : list of str
    image_ids : list, or None where the format has no ids
    """

    #: prefix of error messages ("coco", "voc", "manifest")
    dataset_name: str = "files"
    #: user split name -> the dataset's own split name (an instance may override it)
    splits: Mapping[str, str] = {}

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        max_images: int | None = None,
        check_files: bool = True,
    ) -> None:
        split_name = resolve_split(self.dataset_name, split, self.splits)
        self.split = split  # before read_file_list, which may use it in messages
        max_images = check_max_images(max_images)
        listing = self.read_file_list(Path(root), split_name, max_images)
        if check_files:
            require_images(listing.paths, listing.what)
        super().__init__(listing.labels, listing.class_names, transform=transform)
        self.image_paths = listing.paths
        self.image_ids = listing.ids

    def read_file_list(self, root: Path, split_name: str, max_images: int | None) -> FileList:
        """Parse the format: at most ``max_images`` images of split ``split_name``."""
        raise NotImplementedError

    def load_image(self, index: int) -> torch.Tensor:
        """Image ``index`` as uint8 (3, H, W), values in [0, 255] (grayscale converted)."""
        return read_rgb_image(self.image_paths[index])


__all__ = [
    "FileList",
    "FileListDataset",
    "check_class_names",
    "check_max_images",
    "labels_from_pairs",
    "read_class_names",
    "read_rgb_image",
    "require_images",
    "require_path",
    "resolve_split",
]
