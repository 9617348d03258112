"""Pascal VOC (2007, the paper's, or 2012) and custom VOC-format data, multi-label.

The paper's VOC is VOC 2007: trainval 5,011 images / test 4,952.

Expected layout (``root`` is the ``VOCdevkit`` folder; pointing at the ``VOC<year>``
folder itself, or at any folder laid out like one, also works)::

    root/VOC2007/JPEGImages/<id>.jpg
    root/VOC2007/Annotations/<id>.xml
    root/VOC2007/ImageSets/Main/trainval.txt
    root/VOC2007/ImageSets/Main/test.txt

Years and splits
----------------
- ``year=2007`` (default): "train" and "trainval" read ``trainval.txt``, "test" reads
  ``test.txt``.
- ``year=2012`` reads ``root/VOC2012/``. VOC 2012 has no public test annotations, so
  "test" (and "val") read ``val.txt`` (5,823 images), and "train" reads ``train.txt``
  (5,717 images), not trainval: VOC 2012 trainval contains val, and the test split must
  not overlap the training split. "trainval" (11,540 images) stays available by name.
- A missing ImageSets list is a one-line error naming the file and listing the split
  lists that do exist.

Classes
-------
- Default: the 20 official VOC classes in the standard order.
- Custom VOC-format data (labelImg and most annotation tools write this XML):
  ``classes=[...]`` (an explicit list, in that order), ``classes_file=path`` (one class
  name per line, blank lines ignored) or ``classes="auto"``: the sorted set of object
  names in the annotations of the images being loaded (after ``max_images``). The
  resolved list is ``dataset.class_names``; an ``auto`` list depends on the split, so
  load the training split first and pass its ``class_names`` to the test split
  (``classes=train.class_names``) so that both have the same columns.
- An object whose name is not in the class list is a one-line error naming the XML
  file and the name.

Label rules
-----------
- Image i is positive for class c if any ``<object>`` in its XML has name c.
- ``difficult`` objects: with ``difficult_as_positive=True`` (default) they count as
  positive, since the object is in the image. With False, a class whose objects in
  the image are all difficult is labeled negative. (Some works, e.g. ML-GCN, give
  such labels a third "ignore" value; bmxlib labels are binary, so we pick one side.)
- Images are in ImageSets file order; ``max_images`` keeps the first ones.
- Every kept image file is checked at construction (existence and the decode check of
  :mod:`bmxlib.data.files`); ``skip_bad_images=True`` drops failing files instead.

Shot thresholds: VOC 2007 trainval has roughly 100-2,000 positive images per class
(sheep fewest, person most). The paper's COCO thresholds would put every class in
"few", so we use many > 400 and few < 200, which leaves about four classes in each
outer group (many: person, car, chair, dog; few: sheep, cow, boat, bus).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bmxlib.data.files import (
    FileList,
    FileListDataset,
    check_class_names,
    check_flag,
    labels_from_pairs,
    read_class_names,
    read_user_text,
    require_path,
)

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
VOC_YEARS = ("2007", "2012")
#: user split name -> ImageSets/Main list, per year (2012: no public test labels)
VOC_SPLITS = {
    "2007": {"train": "trainval", "trainval": "trainval", "test": "test"},
    "2012": {"train": "train", "trainval": "trainval", "val": "val", "test": "val"},
}


def check_year(year: str | int) -> str:
    """Validate the ``year`` option; returns it as a string ("2007" or "2012")."""
    text = str(year) if isinstance(year, (str, int)) and not isinstance(year, bool) else ""
    if text not in VOC_YEARS:
        raise ValueError(f"voc: year must be 2007 or 2012, got {year!r}")
    return text


def voc_base(root: Path, year: str) -> Path:
    """The ``VOC<year>`` folder: ``root`` itself if it holds ``Annotations/``, else
    ``root/VOC<year>``. A root named for another year is an error."""
    root = require_path(root, "voc", directory=True)
    if (root / "Annotations").is_dir():
        match = re.fullmatch(r"VOC(\d{4})", root.name)
        if match and match.group(1) != year:
            raise ValueError(f"voc: root {root} is a VOC{match.group(1)} folder but year is {year}")
        return root
    return require_path(root / f"VOC{year}", "voc", directory=True)


def read_image_ids(path: Path, note: str = "") -> list[str]:
    """Image ids from an ImageSets/Main list, one per line, in file order.

    A missing list is a FileNotFoundError naming it and the split lists that exist
    (per-class lists such as ``dog_train.txt`` left out), then ``note`` if given.
    """
    if not path.is_file() and path.parent.is_dir():
        lists = sorted(p.name for p in path.parent.glob("*.txt") if "_" not in p.stem)
        found = ", ".join(lists) if lists else "no split lists"
        raise FileNotFoundError(
            f"voc: file not found: {path} ({path.parent.name}/ has {found}){note}"
        )
    require_path(path, "voc")
    lines = read_user_text(path, "voc").splitlines()  # a byte-order mark would join an id
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
        difficult = (node.findtext("difficult") or "0").strip()
        if difficult not in ("0", "1"):  # read as "not difficult", it would label silently
            raise ValueError(f"voc {path}: object {name!r} has <difficult>{difficult}"
                             "</difficult>; VOC writes 0 or 1")
        objects.append((name, difficult == "1"))
    return objects


#: (annotation file, its objects as read by read_voc_objects), one pair per image
VocAnnotations = Sequence[tuple[Path, list[tuple[str, bool]]]]


def read_voc_annotations(annotation_dir: Path, image_ids: Sequence[str]) -> VocAnnotations:
    """The objects of ``<id>.xml`` for each image id, in order."""
    return [
        (path, read_voc_objects(path))
        for path in (annotation_dir / f"{image_id}.xml" for image_id in image_ids)
    ]


def auto_class_names(annotations: VocAnnotations) -> list[str]:
    """The sorted set of object names over the given annotation files."""
    names = set()
    for xml_path, image_objects in annotations:
        for name, _ in image_objects:
            if not name:
                raise ValueError(f"voc {xml_path}: object without a name")
            names.add(name)
    if not names:
        raise ValueError("voc: classes='auto' found no objects in the annotations")
    return sorted(names)


def voc_labels(
    annotations: VocAnnotations,
    class_names: Sequence[str],
    *,
    difficult_as_positive: bool,
    class_source: str = "the 20 VOC classes",
) -> np.ndarray:
    """(N, K) uint8 labels, one row per annotation file (in order)."""
    class_index = {name: k for k, name in enumerate(class_names)}
    rows, cols = [], []
    for row, (xml_path, image_objects) in enumerate(annotations):
        for name, difficult in image_objects:
            if name not in class_index:
                raise ValueError(f"voc {xml_path}: unknown class {name!r} (not in {class_source})")
            if difficult and not difficult_as_positive:
                continue
            rows.append(row)
            cols.append(class_index[name])
    return labels_from_pairs(
        np.asarray(rows, dtype=np.int64),
        np.asarray(cols, dtype=np.int64),
        (len(annotations), len(class_names)),
    )


class VocDataset(FileListDataset):
    """Pascal VOC 2007 / 2012 or custom VOC-format data, image-level labels.

    Parameters
    ----------
    root : str or Path
        The ``VOCdevkit`` folder (holding ``VOC<year>/``) or the ``VOC<year>`` folder.
    split : {"train", "trainval", "test"}, and "val" for 2012
        2007: "train" and "trainval" read trainval (5,011 images), "test" reads test
        (4,952). 2012: "train" reads train, "test" and "val" read val, "trainval" reads
        trainval (see the module docstring).
    difficult_as_positive : bool
        Whether objects marked difficult make their class positive (default True).
    classes : None, list of str or "auto"
        The class list: None (default) the 20 VOC classes; a list; "auto" the sorted
        object names of the loaded split (pass the train split's ``class_names`` to
        the test split).
    classes_file : str or Path, optional
        A text file with one class name per line (instead of ``classes``).
    year : {2007, 2012}
        Which release (default 2007, the paper's); str or int.
    **options
        ``transform``, ``max_images``, ``check_files`` (default True: every kept image
        exists and passes the decode check) and ``skip_bad_images`` (default False:
        a failing file is an error), as in :class:`~bmxlib.data.files.FileListDataset`.
        ``max_images`` keeps the first ids of the ImageSets list.

    Attributes
    ----------
    labels : np.ndarray, uint8 (N, K)
    class_names : list of str, the resolved class list (standard VOC order by default)
    year : str
    image_paths : list of str
    image_ids : list of str
    skipped_images : list of str
    """

    dataset_name = "voc"
    splits = VOC_SPLITS["2007"]
    shot_many = 400
    shot_few = 200
    default_image_size = 448

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        difficult_as_positive: bool = True,
        classes: Sequence[str] | str | None = None,
        classes_file: str | Path | None = None,
        year: str | int = "2007",
        **options,
    ) -> None:
        self.year = check_year(year)
        self.splits = VOC_SPLITS[self.year]
        self.difficult_as_positive = check_flag("difficult_as_positive", difficult_as_positive)
        self._classes, self._class_source = _resolve_classes(classes, classes_file)
        super().__init__(root, split, **options)

    def read_file_list(self, root: Path, split_name: str, max_images: int | None) -> FileList:
        base = voc_base(root, self.year)
        note = ""
        if self.year != "2007" and self.split in ("test", "val"):
            note = f"; VOC{self.year} {self.split!r} reads val.txt (no public test annotations)"
        image_ids = read_image_ids(base / "ImageSets" / "Main" / f"{split_name}.txt", note)
        if max_images is not None:
            image_ids = image_ids[:max_images]
        annotation_dir = require_path(base / "Annotations", "voc", directory=True)
        annotations = read_voc_annotations(annotation_dir, image_ids)
        class_names = auto_class_names(annotations) if self._classes == "auto" else self._classes
        labels = voc_labels(
            annotations,
            class_names,
            difficult_as_positive=self.difficult_as_positive,
            class_source=self._class_source,
        )
        image_dir = require_path(base / "JPEGImages", "voc", directory=True)
        return FileList(
            paths=[str(image_dir / f"{image_id}.jpg") for image_id in image_ids],
            labels=labels,
            class_names=list(class_names),
            what=f"voc {split_name}",
            ids=image_ids,
        )


def _resolve_classes(
    classes: Sequence[str] | str | None, classes_file: str | Path | None
) -> tuple[list[str] | str, str]:
    """(class list or "auto", how an unknown-class error names the list)."""
    if classes is not None and classes_file is not None:
        raise ValueError("voc: give classes or classes_file, not both")
    if classes_file is not None:
        path = Path(classes_file)
        return read_class_names(path, "voc classes_file"), f"classes_file {path}"
    if classes is None:
        return list(VOC_CLASSES), "the 20 VOC classes; give classes or classes_file for other data"
    if isinstance(classes, str):
        if classes == "auto":
            return "auto", "the auto class list"
        raise ValueError(
            f"voc: classes must be a list of names or 'auto', got {classes!r} "
            "(a file of names goes in classes_file)"
        )
    return check_class_names(classes, "voc classes"), "the given classes"
