"""The paper configs (configs/paper/): each one trains one step on a miniature real-format
tree on the CPU, with the paper's recipe (ResNet-50, the decoder head, the protocol)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmxlib.config import load_config
from bmxlib.engine import fit
from bmxlib.runs import load_run
from bmxlib.sweep import plan_sweep
from tests.test_data_real import make_coco, make_voc

ROOT = Path(__file__).resolve().parents[1]
PAPER = sorted(p for p in (ROOT / "configs" / "paper").glob("*.yaml") if "sweep" not in p.name)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper-data")
    return {"coco": make_coco(root / "coco"), "voc": make_voc(root / "VOCdevkit")}


def test_there_is_one_config_per_dataset_and_setting():
    names = {p.stem for p in PAPER}
    settings = ("clean", "mislabel-20", "mislabel-40", "flip-20", "flip-40", "missing")
    assert names == {f"{d}_{s}" for d in ("coco", "voc") for s in settings}


@pytest.mark.parametrize("path", PAPER, ids=[p.stem for p in PAPER])
def test_each_paper_config_trains_past_its_warm_up_on_the_cpu(path, trees, tmp_path):
    config = load_config(path)
    # the recipe the file promises
    assert (config.arch, config.image_size, config.head) == ("resnet50", 448, "decoder")
    assert config.mixup is True and config.protocol == "paper"  # balancemix mixes
    assert (config.shot_many, config.shot_few) == (10_000, 1_000)
    expected = {"coco": (50, 64, 10, 0.04), "voc": (20, 32, 5, 0.1)}[config.dataset]
    assert (config.epochs, config.batch_size, config.warmup_epochs, config.ll_delta_rel) == \
        expected
    assert config.relabel_epsilon == (0.55 if config.noise == "missing" else 0.975)
    # on the miniature tree: no ImageNet download, a small input, one warm-up epoch and one
    # after it (a method's post-warm-up work runs too)
    small = load_config(path, [f"data_root={trees[config.dataset]}", "pretrained=none",
                               "image_size=64", "epochs=2", "warmup_epochs=1",
                               "progress=false", "threads=1",
                               "device=cpu", f"out_dir={tmp_path}", "diagnostics_every=1"])
    run = load_run(fit(small))
    assert run.complete and len(run.metrics) == 2
    assert all(0 <= m["mAP"] <= 1 for m in run.metrics)


@pytest.mark.parametrize("dataset", ["coco", "voc"])
def test_the_sweeps_cover_the_papers_tables(dataset):
    _, points = plan_sweep(ROOT / "configs" / "paper" / f"{dataset}_sweep.yaml")
    methods = {p.config.method for p in points}
    assert methods == {"bce", "coteaching", "asl", "t_estimator", "ll_r", "ll_ct", "mixup",
                       "balancemix"}
    assert {p.labels["noise"] for p in points} == {"clean", "mislabel-20", "mislabel-40",
                                                   "flip-20", "flip-40", "missing"}
    assert all(p.config.mixup == (p.config.method != "bce") for p in points)
