"""Whole runs on a researcher's own real-format data: a VOC-format tree with its own class
names (``voc_classes: auto``), and an image that stops decoding in the middle of training
(``skip_bad_images``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bmxlib.config import load_config
from bmxlib.data.manifest import ManifestDataset
from bmxlib.engine import fit
from bmxlib.runs import DATASET_FILE, load_run
from tests.test_data_real import make_manifest, write_voc_tree

SMALL = ["pretrained=none", "image_size=32", "width=8", "batch_size=2", "epochs=2",
         "warmup_epochs=1", "progress=false", "threads=1", "device=cpu",
         "diagnostics_every=1", "num_workers=0"]


def test_a_voc_tree_with_its_own_classes_trains_with_voc_classes_auto(tmp_path: Path) -> None:
    objects = {"a1": [("widget", 0), ("gadget", 0)], "a2": [("gadget", 0)],
               "a3": [("sprocket", 0)], "a4": [("widget", 0), ("sprocket", 1)],
               "b1": [("widget", 0)], "b2": [("sprocket", 0), ("gadget", 0)]}
    write_voc_tree(tmp_path / "devkit" / "VOC2007", objects,
                   {"trainval": ["a1", "a2", "a3", "a4"], "test": ["b1", "b2"]})
    config = load_config(None, [*SMALL, "dataset=voc", f"data_root={tmp_path / 'devkit'}",
                                "voc_classes=auto", "method=balancemix",
                                f"out_dir={tmp_path / 'runs'}"])
    run = load_run(fit(config))
    assert run.complete and [m["epoch"] for m in run.metrics] == [1, 2]
    # the classes are the tree's own, sorted, not the 20 VOC names
    described = json.loads((run.path / DATASET_FILE).read_text())
    assert described["class_names"] == ["gadget", "sprocket", "widget"]
    assert len(run.metrics[-1]["ap"]) == 3


def test_an_image_failing_mid_training_is_skipped_and_counted(tmp_path: Path,
                                                               monkeypatch) -> None:
    root = make_manifest(tmp_path / "mine", tmp_path / "elsewhere" / "c.png")
    overrides = [*SMALL, "dataset=manifest", f"data_root={root}", "method=bce",
                 f"out_dir={tmp_path / 'runs'}"]
    victim = str(root / "img" / "sub" / "b.jpg")
    original = ManifestDataset.load_image

    def fail_for_the_victim(self, index):  # passes the load-time check, fails afterwards
        if self.image_paths[index] == victim:
            raise OSError("image file is truncated")
        return original(self, index)

    monkeypatch.setattr(ManifestDataset, "load_image", fail_for_the_victim)
    with pytest.raises(OSError, match="truncated"):  # without the flag: an error
        fit(load_config(None, [*overrides, "name=strict"]))
    run = load_run(fit(load_config(None, [*overrides, "name=lenient", "skip_bad_images=true"])))
    assert run.complete
    skipped = [m.get("skipped_images", 0) for m in run.metrics]
    assert skipped == [1, 1]  # once per epoch: the one bad file among three
