"""Pascal VOC 2007 as a multi-label dataset (the paper's VOC: trainval 5,011 / test 4,952).

Expected layout (``root`` is the ``VOCdevkit`` folder; pointing at ``VOC2007`` itself
also works)::

    root/VOC2007/JPEGImages/<id>.jpg
    root/VOC2007/Annotations/<id>.xml
    root/VOC2007/ImageSets/Main/trainval.txt
    root/VOC2007/ImageSets/Main/test.txt

Label rules
-----------
- Image i is positive for class c if any ``<object>`` in its XML has name c.
- ``difficult`` objects: with ``difficult_as_positive=True`` (default) they count as
  positive, since the object is in the image. With False, a class whose objects in
  the image are all difficult is labeled negative. (Some works, e.g. ML-GCN, give
  such labels a third "ignore" value; bmxlib labels are binary, so we pick one side.)
- The 20 classes are in the standard VOC order; images are in ImageSets file order.
- Every kept image file is checked at construction (existence and the decode check of
  :mod:`bmxlib.data.files`); ``skip_bad_images=True`` drops failing files instead.

Shot thresholds: VOC 2007 trainval has roughly 100-2,000 positive images per class
(sheep fewest, person most). The paper's COCO thresholds would put every class in
"few", so we use many > 400 and few < 200, which leaves about four classes in each
outer group (many: person, car, chair, dog; few: sheep, cow, boat, bus).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from bmxlib.data.files import (
    FileList,
    FileListDataset,
    labels_from_pairs,
    require_path,
)

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
VOC_SPLITS = {"train": "trainval", "trainval": "trainval", "test": "test"}


def read_image_ids(path: Path) -> list[str]:
    """Image ids from an ImageSets/Main list, one per line, in file order."""
    require_path(path, "voc")
    lines = path.read_text(encoding="utf-8").splitlines()
    ids = [line.split()[0] for line in lines if line.strip()]
    if not ids:
        raise ValueError(f"voc {path}: no image ids")
    return ids


def read_voc_objects(path: Path) -> list[tuple[str, bool]]:
    """(class name, difficult) for each object of one annotation XML file."""
    require_path(path, "voc")
    try:
        tree = ElementTree.parse(path)
    except ElementTree.ParseError as error:
        raise ValueError(f"voc {path}: not valid XML ({error})") from None
    objects = []
    for node in tree.getroot().iter("object"):
        name = (node.findtext("name") or "").strip()
        difficult = (node.findtext("difficult") or "0").strip() == "1"
        objects.append((name, difficult))
    return objects


def voc_labels(
    annotation_dir: Path, image_ids: list[str], *, difficult_as_positive: bool
) -> np.ndarray:
    """(N, 20) uint8 labels from the annotation XML files of ``image_ids``."""
    class_index = {name: k for k, name in enumerate(VOC_CLASSES)}
    rows, cols = [], []
    for row, image_id in enumerate(image_ids):
        xml_path = annotation_dir / f"{image_id}.xml"
        for name, difficult in read_voc_objects(xml_path):
            if name not in class_index:
                raise ValueError(f"voc {xml_path}: unknown class {name!r}")
            if difficult and not difficult_as_positive:
                continue
            rows.append(row)
            cols.append(class_index[name])
    return labels_from_pairs(
        np.asarray(rows, dtype=np.int64),
        np.asarray(cols, dtype=np.int64),
        (len(image_ids), len(VOC_CLASSES)),
    )


class VocDataset(FileListDataset):
    """Pascal VOC 2007 image-level labels.

    Parameters
    ----------
    root : str or Path
        The ``VOCdevkit`` folder (holding ``VOC2007/``) or the ``VOC2007`` folder.
    split : {"train", "trainval", "test"}
        "train" and "trainval" read trainval (5,011 images); "test" reads test (4,952).
    difficult_as_positive : bool
        Whether objects marked difficult make their class positive (default True).
    **options
        ``transform``, ``max_images``, ``check_files`` (default True: every kept image
        exists and passes the decode check) and ``skip_bad_images`` (default False:
        a failing file is an error), as in :class:`~bmxlib.data.files.FileListDataset`.
        ``max_images`` keeps the first ids of the ImageSets list.

    Attributes
    ----------
    labels : np.ndarray, uint8 (N, 20)
    class_names : list of str, standard VOC order
    image_paths : list of str
    image_ids : list of str
    skipped_images : list of str
    """

    dataset_name = "voc"
    splits = VOC_SPLITS
    shot_many = 400
    shot_few = 200
    default_image_size = 448

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        difficult_as_positive: bool = True,
        **options,
    ) -> None:
        self.difficult_as_positive = difficult_as_positive
        super().__init__(root, split, **options)

    def read_file_list(self, root: Path, split_name: str, max_images: int | None) -> FileList:
        root = require_path(root, "voc", directory=True)
        # accept both VOCdevkit/ and VOCdevkit/VOC2007/ as root
        base = root if (root / "Annotations").is_dir() else root / "VOC2007"
        require_path(base, "voc", directory=True)
        image_ids = read_image_ids(base / "ImageSets" / "Main" / f"{split_name}.txt")
        if max_images is not None:
            image_ids = image_ids[:max_images]
        annotation_dir = require_path(base / "Annotations", "voc", directory=True)
        labels = voc_labels(
            annotation_dir, image_ids, difficult_as_positive=self.difficult_as_positive
        )
        image_dir = require_path(base / "JPEGImages", "voc", directory=True)
        return FileList(
            paths=[str(image_dir / f"{image_id}.jpg") for image_id in image_ids],
            labels=labels,
            class_names=list(VOC_CLASSES),
            what=f"voc {split_name}",
            ids=image_ids,
        )
