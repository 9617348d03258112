"""Real-data loaders (COCO, VOC, manifest) on tiny trees written in the real formats."""

from __future__ import annotations

import io
import json
import logging
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bmxlib.data import load_dataset
from bmxlib.data.coco import CocoDataset
from bmxlib.data.files import image_problem, read_rgb_image
from bmxlib.data.manifest import ManifestDataset
from bmxlib.data.voc import VOC_CLASSES, VocDataset

RED = (200, 10, 30)


def write_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (6, 4)) -> None:
    """A tiny solid image; size is (W, H)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    color = {"RGB": RED, "L": 90, "RGBA": (*RED, 128), "P": 3}[mode]
    Image.new(mode, size, color).save(path)


# --------------------------------------------------------------------------- COCO tree


def make_coco(root: Path) -> Path:
    """2 categories (ids 18 'dog', 1 'person'), 3 images (ids 30, 10, 20), out of order.

    Expected, rows by image id [10, 20, 30], columns by category id [person, dog]:
    10: person -> [1, 0]; 20: no annotation -> [0, 0]; 30: crowd dog + person -> [1, 1].
    """
    categories = [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}]
    images = [
        {"id": 30, "file_name": "c.png"},
        {"id": 10, "file_name": "a.jpg"},
        {"id": 20, "file_name": "b.jpg"},
    ]
    annotations = [
        {"id": 1, "image_id": 10, "category_id": 1, "iscrowd": 0},
        {"id": 2, "image_id": 30, "category_id": 18, "iscrowd": 1},
        {"id": 3, "image_id": 30, "category_id": 1, "iscrowd": 0},
        {"id": 4, "image_id": 10, "category_id": 1, "iscrowd": 0},  # duplicate class
    ]
    (root / "annotations").mkdir(parents=True)
    for folder in ("train2014", "val2014"):
        data = {"images": images, "annotations": annotations, "categories": categories}
        (root / "annotations" / f"instances_{folder}.json").write_text(json.dumps(data))
        write_image(root / folder / "a.jpg", "RGB")
        write_image(root / folder / "b.jpg", "L")
        write_image(root / folder / "c.png", "RGBA", size=(5, 7))
    return root


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    return make_coco(tmp_path / "coco")


@pytest.mark.parametrize("split", ["train", "test", "val"], ids=["train", "test", "val"])
def test_coco_labels_and_names(coco_root: Path, split: str) -> None:
    dataset = CocoDataset(coco_root, split, drop_empty=False)
    assert dataset.class_names == ["person", "dog"]
    assert dataset.image_ids == [10, 20, 30]
    np.testing.assert_array_equal(dataset.labels, [[1, 0], [0, 0], [1, 1]])
    assert dataset.labels.dtype == np.uint8
    folder = "train2014" if split == "train" else "val2014"
    assert dataset.image_paths[0] == str(coco_root / folder / "a.jpg")
    assert (dataset.shot_many, dataset.shot_few) == (10_000, 1_000)


def test_coco_year_from_the_config_reads_2017_files(coco_root: Path) -> None:
    # COCO 2017 was reachable only through load_dataset(..., year="2017"), not a config
    from bmxlib.config import ConfigError, load_config
    from bmxlib.experiment import load_splits

    for split in ("train", "val"):
        (coco_root / f"{split}2014").rename(coco_root / f"{split}2017")
        (coco_root / "annotations" / f"instances_{split}2014.json").rename(
            coco_root / "annotations" / f"instances_{split}2017.json")
    config = load_config(None, ["dataset=coco", f"data_root={coco_root}", "coco_year=2017",
                                "coco_drop_empty=false", "arch=resnet18", "pretrained=none"])
    train, test = load_splits(config)
    assert train.image_paths[0].endswith("train2017/a.jpg") and len(test) == 3
    with pytest.raises(ConfigError, match="'coco_year'"):
        load_config(None, ["dataset=coco", "coco_year=2015"])


def test_coco_crowd_excluded(coco_root: Path) -> None:
    dataset = CocoDataset(coco_root, "train", include_crowd=False, drop_empty=False)
    np.testing.assert_array_equal(dataset.labels, [[1, 0], [0, 0], [1, 0]])


def test_coco_images_decode_rgb(coco_root: Path) -> None:
    dataset = CocoDataset(coco_root, "train", drop_empty=False)
    shapes = [tuple(dataset.load_image(i).shape) for i in range(3)]
    assert shapes == [(3, 4, 6), (3, 4, 6), (3, 7, 5)]
    for i in range(3):
        assert dataset.load_image(i).dtype == torch.uint8
    gray = dataset.load_image(1)  # grayscale JPEG -> three equal channels
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    rgba = dataset.load_image(2)  # lossless PNG: alpha dropped, colour exact
    assert rgba[:, 0, 0].tolist() == list(RED)
    image, target = dataset[2]
    assert target.dtype == torch.float32 and target.tolist() == [1.0, 1.0]


def test_coco_max_images_takes_lowest_ids(coco_root: Path) -> None:
    dataset = CocoDataset(coco_root, "train", max_images=2, drop_empty=False)
    assert len(dataset) == 2 and dataset.image_ids == [10, 20]
    assert len(dataset.image_paths) == 2


def test_coco_missing_image_file(coco_root: Path) -> None:
    (coco_root / "train2014" / "b.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="b.jpg"):
        CocoDataset(coco_root, "train", drop_empty=False)
    assert len(CocoDataset(coco_root, "train", max_images=1)) == 1  # b.jpg not kept


def test_coco_bad_json(coco_root: Path) -> None:
    (coco_root / "annotations" / "instances_train2014.json").write_text("{not json")
    with pytest.raises(ValueError, match="instances_train2014.json"):
        CocoDataset(coco_root, "train")


def test_coco_unknown_category(coco_root: Path) -> None:
    path = coco_root / "annotations" / "instances_train2014.json"
    data = json.loads(path.read_text())
    data["annotations"].append({"id": 9, "image_id": 10, "category_id": 77})
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="category id 77"):
        CocoDataset(coco_root, "train")


# --------------------------------------------------------------------------- VOC tree

VOC_XML = """<annotation><filename>{id}.jpg</filename>{objects}</annotation>"""
VOC_OBJECT = "<object><name>{name}</name><difficult>{difficult}</difficult></object>"


def write_voc_tree(
    folder: Path, objects: dict[str, list[tuple[str, int]]], lists: dict[str, list[str]]
) -> Path:
    """A VOC<year>-like folder: <id>.xml with (name, difficult) objects, <id>.jpg, and
    ImageSets/Main/<list>.txt files."""
    (folder / "Annotations").mkdir(parents=True)
    for image_id, objs in objects.items():
        body = "".join(VOC_OBJECT.format(name=n, difficult=d) for n, d in objs)
        (folder / "Annotations" / f"{image_id}.xml").write_text(
            VOC_XML.format(id=image_id, objects=body)
        )
        write_image(folder / "JPEGImages" / f"{image_id}.jpg")
    (folder / "ImageSets" / "Main").mkdir(parents=True)
    for name, ids in lists.items():
        (folder / "ImageSets" / "Main" / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
    return folder


def make_voc(devkit: Path) -> Path:
    """000001: dog, person; 000002: cat (difficult only), person; 000003: car (test)."""
    objects = {
        "000001": [("dog", 0), ("person", 0), ("dog", 1)],
        "000002": [("cat", 1), ("person", 0)],
        "000003": [("car", 0)],
    }
    write_voc_tree(devkit / "VOC2007", objects,
                   {"trainval": ["000001", "000002"], "test": ["000003"]})
    return devkit


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    return make_voc(tmp_path / "VOCdevkit")


def voc_row(*names: str) -> list[int]:
    return [int(name in names) for name in VOC_CLASSES]


@pytest.mark.parametrize(
    ("difficult_as_positive", "second_row"),
    [(True, ("cat", "person")), (False, ("person",))],
    ids=["difficult-positive", "difficult-negative"],
)
def test_voc_trainval_labels(voc_root: Path, difficult_as_positive: bool, second_row) -> None:
    dataset = VocDataset(voc_root, "train", difficult_as_positive=difficult_as_positive)
    assert dataset.class_names == list(VOC_CLASSES) and len(VOC_CLASSES) == 20
    assert dataset.class_names[:3] == ["aeroplane", "bicycle", "bird"]
    assert dataset.image_ids == ["000001", "000002"]
    np.testing.assert_array_equal(dataset.labels, [voc_row("dog", "person"), voc_row(*second_row)])


@pytest.mark.parametrize("use_voc2007_folder", [False, True], ids=["devkit-root", "voc2007-root"])
def test_voc_test_split_and_image(voc_root: Path, use_voc2007_folder: bool) -> None:
    root = voc_root / "VOC2007" if use_voc2007_folder else voc_root
    dataset = VocDataset(root, "test")
    np.testing.assert_array_equal(dataset.labels, [voc_row("car")])
    image = dataset.load_image(0)
    assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 4, 6)
    assert dataset.image_paths == [str(voc_root / "VOC2007" / "JPEGImages" / "000003.jpg")]
    assert dataset.shot_many > dataset.shot_few


def test_voc_max_images(voc_root: Path) -> None:
    dataset = VocDataset(voc_root, "train", max_images=1)
    assert dataset.image_ids == ["000001"] and dataset.labels.shape == (1, 20)


def test_voc_missing_xml(voc_root: Path) -> None:
    (voc_root / "VOC2007" / "Annotations" / "000002.xml").unlink()
    with pytest.raises(FileNotFoundError, match="000002.xml"):
        VocDataset(voc_root, "train")


def test_voc_unknown_class(voc_root: Path) -> None:
    path = voc_root / "VOC2007" / "Annotations" / "000003.xml"
    path.write_text(
        VOC_XML.format(id="000003", objects=VOC_OBJECT.format(name="zebra", difficult=0))
    )
    with pytest.raises(ValueError, match="'zebra'"):
        VocDataset(voc_root, "test")


@pytest.mark.parametrize("value", ["maybe", "2", "yes"])
def test_voc_difficult_other_than_0_or_1_is_refused(voc_root: Path, value: str) -> None:
    # it was read as "not difficult", which labels the class whatever was meant
    path = voc_root / "VOC2007" / "Annotations" / "000003.xml"
    path.write_text(
        VOC_XML.format(id="000003", objects=VOC_OBJECT.format(name="car", difficult=value))
    )
    with pytest.raises(ValueError, match=rf"000003\.xml: object 'car' has <difficult>{value}<"):
        VocDataset(voc_root, "test")


def test_voc_missing_imageset(voc_root: Path) -> None:
    (voc_root / "VOC2007" / "ImageSets" / "Main" / "test.txt").unlink()
    with pytest.raises(FileNotFoundError, match="test.txt"):
        VocDataset(voc_root, "test")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"], ids=["bom", "utf16"])
def test_voc_imageset_with_a_bom_or_not_utf8(voc_root: Path, encoding: str) -> None:
    # a byte-order mark (Windows editors) joined the first id ("\ufeff000003.xml not found");
    # UTF-16 (PowerShell's default) raised a bare UnicodeDecodeError
    path = voc_root / "VOC2007" / "ImageSets" / "Main" / "test.txt"
    path.write_text("000003\n", encoding=encoding)
    if encoding == "utf-8-sig":
        assert VocDataset(voc_root, "test").image_ids == ["000003"]
    else:
        with pytest.raises(ValueError, match=r"test\.txt: not UTF-8 text \(byte 0"):
            VocDataset(voc_root, "test")


@pytest.mark.parametrize(
    ("loader", "option"),
    [("voc", "difficult_as_positive"), ("coco", "include_crowd"),
     ("manifest", "allow_outside_root")],
    ids=["voc", "coco", "manifest"],
)
def test_boolean_options_refuse_strings(voc_root: Path, coco_root: Path, tmp_path: Path,
                                        loader: str, option: str) -> None:
    # bool("False") is True: the string silently meant the opposite (for the manifest, it
    # let paths outside the root through)
    root = {"voc": voc_root, "coco": coco_root,
            "manifest": make_manifest(tmp_path / "m", tmp_path / "abs.png")}[loader]
    with pytest.raises(TypeError, match=rf"{option} must be True or False, got 'False'"):
        load_dataset(loader, "train", root=root, **{option: "False"})


# --------------------------------------------------------------------------- manifest


def make_manifest(root: Path, absolute_image: Path) -> Path:
    """classes: cat, dog, bird. train rows: cat;dog / (none) / bird (absolute path)."""
    root.mkdir(parents=True)
    (root / "classes.txt").write_text("cat\ndog\n\nbird\n")
    write_image(root / "img" / "a.png")
    write_image(root / "img" / "sub" / "b.jpg", "L")
    write_image(absolute_image, "P")
    (root / "train.csv").write_text(
        f"path,labels,note\nimg/a.png,cat;dog,x\nimg/sub/b.jpg,,y\n{absolute_image}, bird ,z\n"
    )
    (root / "test.csv").write_text("path,labels\nimg/a.png,dog\n")
    return root


@pytest.fixture
def manifest_root(tmp_path: Path) -> Path:
    return make_manifest(tmp_path / "mine", tmp_path / "elsewhere" / "c.png")


def test_manifest_labels_paths_images(manifest_root: Path, tmp_path: Path) -> None:
    dataset = ManifestDataset(manifest_root, "train")
    assert dataset.class_names == ["cat", "dog", "bird"]
    np.testing.assert_array_equal(dataset.labels, [[1, 1, 0], [0, 0, 0], [0, 0, 1]])
    assert dataset.image_paths == [
        str(manifest_root / "img" / "a.png"),
        str(manifest_root / "img" / "sub" / "b.jpg"),
        str(tmp_path / "elsewhere" / "c.png"),
    ]
    for i in range(3):
        image = dataset.load_image(i)
        assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 4, 6)
    assert dataset.load_image(0)[:, 1, 2].tolist() == list(RED)
    assert (dataset.shot_many, dataset.shot_few) == (1000, 100)


def test_manifest_test_split_csv_file_and_options(manifest_root: Path) -> None:
    dataset = ManifestDataset(manifest_root, "test", shot_many=5, shot_few=2)
    np.testing.assert_array_equal(dataset.labels, [[0, 1, 0]])
    assert (dataset.shot_many, dataset.shot_few) == (5, 2)
    assert ManifestDataset.shot_many == 1000  # instance option, class default untouched
    from_file = ManifestDataset(manifest_root / "train.csv", "train", max_images=2)
    np.testing.assert_array_equal(from_file.labels, [[1, 1, 0], [0, 0, 0]])


def test_transform_and_with_transform(manifest_root: Path) -> None:
    def to_unit(image: torch.Tensor) -> torch.Tensor:
        return image.float() / 255.0

    dataset = ManifestDataset(manifest_root, "train", transform=to_unit)
    image, target = dataset[0]
    assert image.dtype == torch.float32 and float(image.max()) <= 1.0
    assert torch.allclose(image[:, 0, 0], torch.tensor(RED) / 255.0)
    assert target.tolist() == [1.0, 1.0, 0.0]
    raw = dataset.with_transform(None)
    assert raw[0][0].dtype == torch.uint8 and dataset[0][0].dtype == torch.float32
    assert raw.image_paths is dataset.image_paths and raw.labels is dataset.labels


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=4, max_size=4), min_size=1, max_size=6))
def test_manifest_roundtrip(rows: list[list[bool]]) -> None:
    names = ["a", "b c", "d-e", "f"]
    labels = np.asarray(rows, dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "classes.txt").write_text("\n".join(names) + "\n")
        lines = [
            f"x{i}.png," + ";".join(n for n, on in zip(names, row) if on)
            for i, row in enumerate(rows)
        ]
        (root / "train.csv").write_text("path,labels\n" + "\n".join(lines) + "\n")
        dataset = ManifestDataset(root, "train", check_files=False)
    np.testing.assert_array_equal(dataset.labels, labels)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("name", "loader"),
    [("coco", CocoDataset), ("voc", VocDataset), ("manifest", ManifestDataset)],
    ids=["coco", "voc", "manifest"],
)
def test_bad_split_and_missing_root(tmp_path: Path, name: str, loader) -> None:
    root = {
        "coco": lambda: make_coco(tmp_path / "c"),
        "voc": lambda: make_voc(tmp_path / "v"),
        "manifest": lambda: make_manifest(tmp_path / "m", tmp_path / "abs.png"),
    }[name]()
    with pytest.raises(ValueError, match=r"'bogus'.*'train'.*'test'"):
        loader(root, "bogus")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        loader(tmp_path / "nowhere", "train")
    with pytest.raises(ValueError, match="max_images"):
        loader(root, "train", max_images=0)
    with pytest.raises(TypeError, match="max_images"):
        loader(root, "train", max_images=1.5)


def _unknown_label(root: Path) -> None:
    (root / "train.csv").write_text("path,labels\nimg/a.png,cat\nimg/a.png,dog;xyz\n")


def _missing_column(root: Path) -> None:
    (root / "train.csv").write_text("path,tags\nimg/a.png,cat\n")


def _missing_classes(root: Path) -> None:
    (root / "classes.txt").unlink()


def _missing_csv(root: Path) -> None:
    (root / "train.csv").unlink()


def _missing_image(root: Path) -> None:
    (root / "train.csv").write_text("path,labels\nimg/gone.png,cat\n")


def _duplicate_class(root: Path) -> None:
    (root / "classes.txt").write_text("cat\ndog\ncat\n")


def _no_rows(root: Path) -> None:
    (root / "train.csv").write_text("path,labels\n")


def _latin1_csv(root: Path) -> None:
    (root / "train.csv").write_bytes("path,labels\nimg/caf\u00e9.png,cat\n".encode("latin-1"))


def _comma_separated_labels(root: Path) -> None:
    # the "dog" would be dropped without a word if the extra value were ignored
    (root / "train.csv").write_text("path,labels\nimg/a.png,cat,dog\n")


def _separator_in_class_name(root: Path) -> None:
    (root / "classes.txt").write_text("cat\ndog;wolf\n")


@pytest.mark.parametrize(
    ("breaker", "error", "pattern"),
    [
        (_unknown_label, ValueError, r"train\.csv row 3: label 'xyz' not in classes\.txt"),
        (_missing_column, ValueError, r"train\.csv: missing column 'labels'"),
        (_missing_classes, FileNotFoundError, r"classes\.txt"),
        (_missing_csv, FileNotFoundError, r"train\.csv"),
        (_missing_image, FileNotFoundError, r"gone\.png"),
        (_duplicate_class, ValueError, r"duplicate class name 'cat'"),
        (_no_rows, ValueError, r"train\.csv: no rows"),
        (_latin1_csv, ValueError, r"train\.csv: not UTF-8 text \(byte 19"),
        (_comma_separated_labels, ValueError,
         r"train\.csv row 2: 1 more value\(s\) than the header has columns"),
        (_separator_in_class_name, ValueError, r"classes\.txt: class name 'dog;wolf' holds ';'"),
    ],
    ids=[
        "unknown-label",
        "missing-column",
        "missing-classes",
        "missing-csv",
        "missing-image",
        "duplicate-class",
        "no-rows",
        "latin-1-csv",
        "comma-separated-labels",
        "separator-in-class-name",
    ],
)
def test_manifest_errors(manifest_root: Path, breaker, error, pattern) -> None:
    breaker(manifest_root)
    with pytest.raises(error, match=pattern):
        ManifestDataset(manifest_root, "train")


def test_manifest_root_file_that_is_no_csv_is_named(manifest_root: Path) -> None:
    # it used to report a missing classes.txt beside the file
    with pytest.raises(ValueError, match=r"classes\.txt is a file but not a \.csv manifest"):
        ManifestDataset(manifest_root / "classes.txt", "train")


def test_manifest_bad_shot_thresholds(manifest_root: Path) -> None:
    with pytest.raises(ValueError, match="shot_few"):
        ManifestDataset(manifest_root, "train", shot_many=10, shot_few=20)


@pytest.mark.parametrize("suffix", [".jpg", ".png"], ids=["jpeg", "png"])
def test_corrupt_image_names_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"\x00\x01 definitely not an image")
    with pytest.raises(ValueError, match=f"broken\\{suffix}"):
        read_rgb_image(path)
    with pytest.raises(FileNotFoundError, match="absent.png"):
        read_rgb_image(tmp_path / "absent.png")


def test_other_format_bmp(tmp_path: Path) -> None:
    path = tmp_path / "picture.bmp"
    write_image(path, "RGB", size=(3, 2))
    image = read_rgb_image(path)
    assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 2, 3)
    assert image[:, 1, 2].tolist() == list(RED)


# --------------------------------------------------------------------------- COCO drop_empty


@pytest.mark.parametrize(
    ("drop_empty", "ids", "rows"),
    [(True, [10, 30], [[1, 0], [1, 1]]), (False, [10, 20, 30], [[1, 0], [0, 0], [1, 1]])],
    ids=["drop-empty", "keep-empty"],
)
def test_coco_drop_empty_counts(coco_root: Path, drop_empty: bool, ids, rows) -> None:
    dataset = CocoDataset(coco_root, "test", drop_empty=drop_empty)
    assert len(dataset) == len(ids) and dataset.image_ids == ids
    np.testing.assert_array_equal(dataset.labels, rows)
    assert [Path(p).name for p in dataset.image_paths] == [
        {10: "a.jpg", 20: "b.jpg", 30: "c.png"}[i] for i in ids
    ]


def test_coco_drop_empty_default_and_options(coco_root: Path) -> None:
    assert CocoDataset(coco_root, "train").image_ids == [10, 30]  # ASL-style default
    assert CocoDataset(coco_root, "train", max_images=2).image_ids == [10, 30]  # after drop
    path = coco_root / "annotations" / "instances_train2014.json"
    data = json.loads(path.read_text())
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != 10]
    data["annotations"].append({"id": 8, "image_id": 10, "category_id": 18, "iscrowd": 1})
    path.write_text(json.dumps(data))  # image 10: a crowd region only
    assert CocoDataset(coco_root, "train", include_crowd=False).image_ids == [30]
    with pytest.raises(TypeError, match="drop_empty"):
        CocoDataset(coco_root, "train", drop_empty="no")


# --------------------------------------------------------------------------- custom VOC data

FRUIT = ["apple", "banana", "cherry"]


def make_custom_voc(folder: Path) -> Path:
    """A labelImg-style tree (the VOC<year>-like folder itself, own class names).

    trainval: f1 apple, banana; f2 cherry, banana (difficult); test: f3 banana.
    """
    objects = {"f1": [("apple", 0), ("banana", 0)], "f2": [("cherry", 0), ("banana", 1)],
               "f3": [("banana", 0)]}
    write_voc_tree(folder, objects, {"trainval": ["f1", "f2"], "test": ["f3"]})
    (folder / "fruit.txt").write_text("cherry\n\napple\nbanana\n")
    return folder


@pytest.fixture
def custom_voc_root(tmp_path: Path) -> Path:
    return make_custom_voc(tmp_path / "fruit")


@pytest.mark.parametrize(
    ("option", "names"),
    [
        ({"classes": ["banana", "apple", "cherry"]}, ["banana", "apple", "cherry"]),
        ({"classes_file": "fruit.txt"}, ["cherry", "apple", "banana"]),
        ({"classes": "auto"}, FRUIT),
    ],
    ids=["explicit-list", "classes-file", "auto"],
)
def test_voc_custom_classes(custom_voc_root: Path, option: dict, names: list[str]) -> None:
    if "classes_file" in option:
        option = {"classes_file": custom_voc_root / option["classes_file"]}
    train = VocDataset(custom_voc_root, "train", **option)
    assert train.class_names == names

    def row(*present: str) -> list[int]:
        return [int(name in present) for name in names]

    np.testing.assert_array_equal(train.labels, [row("apple", "banana"), row("cherry", "banana")])
    # the test split, given the train split's resolved list, has the same columns
    test = VocDataset(custom_voc_root, "test", classes=train.class_names)
    assert test.class_names == train.class_names
    np.testing.assert_array_equal(test.labels, [row("banana")])


def test_voc_auto_classes_follow_the_split(custom_voc_root: Path) -> None:
    assert VocDataset(custom_voc_root, "test", classes="auto").class_names == ["banana"]
    assert VocDataset(custom_voc_root, "train", classes="auto", max_images=1).class_names == [
        "apple", "banana"
    ]  # over the images loaded
    dataset = load_dataset("voc", "train", root=str(custom_voc_root), classes="auto")
    assert dataset.class_names == FRUIT


def test_voc_name_outside_the_class_list(custom_voc_root: Path) -> None:
    train = VocDataset(custom_voc_root, "train", classes="auto")
    path = custom_voc_root / "Annotations" / "f3.xml"
    path.write_text(VOC_XML.format(id="f3", objects=VOC_OBJECT.format(name="durian", difficult=0)))
    with pytest.raises(ValueError, match=r"f3\.xml: unknown class 'durian'") as caught:
        VocDataset(custom_voc_root, "test", classes=train.class_names)
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match=r"f1\.xml: unknown class 'apple'.*20 VOC classes"):
        VocDataset(custom_voc_root, "train")  # default: the official classes


@pytest.mark.parametrize(
    ("options", "error", "pattern"),
    [
        ({"classes": ["a"], "classes_file": "x.txt"}, ValueError, "not both"),
        ({"classes": "apple"}, ValueError, "'auto'"),
        ({"classes": ["apple", "apple"]}, ValueError, "duplicate class name 'apple'"),
        ({"classes": []}, ValueError, "no class names"),
        ({"classes": {"apple"}}, TypeError, "list of strings"),
        ({"classes_file": "nowhere.txt"}, FileNotFoundError, "nowhere.txt"),
        ({"year": 2010}, ValueError, "2007 or 2012"),
    ],
    ids=["both", "plain-string", "duplicate", "empty", "set", "missing-file", "bad-year"],
)
def test_voc_bad_class_and_year_options(custom_voc_root: Path, options, error, pattern) -> None:
    with pytest.raises(error, match=pattern):
        VocDataset(custom_voc_root, "train", **options)


# --------------------------------------------------------------------------- VOC 2012


def make_voc2012(devkit: Path) -> Path:
    """train: 2012_a (dog); val: 2012_b (cat), 2012_c (person, car); no test list."""
    objects = {"2012_a": [("dog", 0)], "2012_b": [("cat", 0)],
               "2012_c": [("person", 0), ("car", 0)]}
    lists = {"train": ["2012_a"], "val": ["2012_b", "2012_c"],
             "trainval": ["2012_a", "2012_b", "2012_c"],
             "dog_train": ["2012_a  1"]}  # per-class lists are not splits
    write_voc_tree(devkit / "VOC2012", objects, lists)
    return devkit


@pytest.fixture
def voc2012_root(tmp_path: Path) -> Path:
    return make_voc2012(tmp_path / "VOCdevkit")


@pytest.mark.parametrize(
    ("split", "ids"),
    [("train", ["2012_a"]), ("test", ["2012_b", "2012_c"]), ("val", ["2012_b", "2012_c"]),
     ("trainval", ["2012_a", "2012_b", "2012_c"])],
    ids=["train", "test-is-val", "val", "trainval"],
)
@pytest.mark.parametrize("year", ["2012", 2012], ids=["str", "int"])
def test_voc2012_splits(voc2012_root: Path, split: str, ids, year) -> None:
    dataset = VocDataset(voc2012_root, split, year=year)
    assert dataset.image_ids == ids and dataset.year == "2012"
    assert dataset.image_paths[0] == str(voc2012_root / "VOC2012" / "JPEGImages" / f"{ids[0]}.jpg")
    assert dataset.class_names == list(VOC_CLASSES)


def test_voc2012_layout_roots_and_errors(voc2012_root: Path) -> None:
    folder = voc2012_root / "VOC2012"
    dataset = VocDataset(folder, "test", year=2012)  # the VOC2012 folder itself
    np.testing.assert_array_equal(dataset.labels, [voc_row("cat"), voc_row("person", "car")])
    with pytest.raises(ValueError, match="VOC2012 folder but year is 2007"):
        VocDataset(folder, "test")
    with pytest.raises(FileNotFoundError, match="VOC2007"):
        VocDataset(voc2012_root, "train")  # default year 2007, no VOC2007/ folder
    (folder / "ImageSets" / "Main" / "val.txt").unlink()
    listed = r"val\.txt \(Main/ has train\.txt, trainval\.txt\); VOC2012 'test' reads val"
    with pytest.raises(FileNotFoundError, match=listed):
        VocDataset(voc2012_root, "test", year="2012")
    with pytest.raises(ValueError, match=r"'bogus'.*'train'.*'val'.*'test'"):
        VocDataset(voc2012_root, "bogus", year="2012")


# --------------------------------------------------------------------------- decode check


def noisy_jpeg_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG whose entropy-coded data is long enough to truncate inside it."""
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


CORRUPTIONS = {
    "not-an-image": lambda: b"<html>404 not found</html>",
    "empty": lambda: b"",
    "truncated": lambda: noisy_jpeg_bytes()[: len(noisy_jpeg_bytes()) * 2 // 3],
    "truncated-header": lambda: noisy_jpeg_bytes()[:200],
}


def test_image_problem_cases(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    data = noisy_jpeg_bytes()
    for name, content, bad in [
        ("whole", data, False),
        ("padded", data + b"\x00" * 16, False),
        ("appended", data + b"trailer" * 100, False),  # decoded in full, decodes fine
        *[(name, make(), True) for name, make in CORRUPTIONS.items()],
    ]:
        path.write_bytes(content)
        assert (image_problem(path) is not None) == bad, name
    path.write_bytes(CORRUPTIONS["truncated"]())
    with Image.open(path) as image:
        image.verify()  # why the end-of-image check exists: verify() passes it
    png = tmp_path / "x.png"
    write_image(png)
    png.write_bytes(png.read_bytes()[:-20])  # truncated PNG: verify() checks the chunks
    assert image_problem(png) is not None


@pytest.fixture(params=["coco", "voc", "manifest"])
def real_dataset(request, tmp_path: Path):
    """(loader, root) for each real-data loader on its miniature tree."""
    if request.param == "coco":
        return CocoDataset, make_coco(tmp_path / "coco")
    if request.param == "voc":
        return VocDataset, make_voc(tmp_path / "VOCdevkit")
    return ManifestDataset, make_manifest(tmp_path / "mine", tmp_path / "elsewhere" / "c.png")


def first_jpeg(paths: list[str]) -> tuple[int, str]:
    return next((i, path) for i, path in enumerate(paths) if path.endswith(".jpg"))


@pytest.mark.parametrize("corruption", list(CORRUPTIONS), ids=list(CORRUPTIONS))
def test_corrupt_jpeg_fails_at_load_naming_it(real_dataset, corruption: str) -> None:
    loader, root = real_dataset
    victim = Path(first_jpeg(loader(root, "train").image_paths)[1])
    victim.write_bytes(CORRUPTIONS[corruption]())
    with pytest.raises(ValueError, match=re.escape(str(victim))) as caught:
        loader(root, "train")
    assert "\n" not in str(caught.value) and "skip_bad_images" in str(caught.value)
    assert len(loader(root, "train", check_files=False)) >= 1  # check_files=False: no check


def test_skip_bad_images_drops_and_counts(real_dataset, caplog) -> None:
    loader, root = real_dataset
    clean = loader(root, "train")
    assert clean.skipped_images == []
    index, victim = first_jpeg(clean.image_paths)
    Path(victim).write_bytes(CORRUPTIONS["truncated"]())
    kept = [i for i in range(len(clean)) if i != index]
    with caplog.at_level(logging.WARNING, logger="bmxlib.data.files"):
        dataset = loader(root, "train", skip_bad_images=True)
    assert dataset.skipped_images == [victim]
    assert dataset.image_paths == [clean.image_paths[i] for i in kept]
    np.testing.assert_array_equal(dataset.labels, clean.labels[kept])
    if clean.image_ids is not None:
        assert dataset.image_ids == [clean.image_ids[i] for i in kept]
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1 and victim in messages[0] and "\n" not in messages[0]
    dataset[0]  # the kept images still load


def test_skip_bad_images_limits(manifest_root: Path) -> None:
    dataset = ManifestDataset(manifest_root, "train")
    for path in dataset.image_paths:
        Path(path).write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"cannot decode image .*a\.png.*\(and 2 more\)"):
        ManifestDataset(manifest_root, "train")
    with pytest.raises(ValueError, match="no image passed the decode check"):
        ManifestDataset(manifest_root, "train", skip_bad_images=True)
    with pytest.raises(ValueError, match="needs check_files=True"):
        ManifestDataset(manifest_root, "train", skip_bad_images=True, check_files=False)
    Path(dataset.image_paths[0]).unlink()  # a missing file stays an error
    with pytest.raises(FileNotFoundError, match=r"a\.png"):
        ManifestDataset(manifest_root, "train", skip_bad_images=True)
