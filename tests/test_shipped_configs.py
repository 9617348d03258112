"""Every config the project ships under configs/ resolves and validates: a run config
through ``load_config``, a sweep (a file with a ``grid``) through ``plan_sweep``, every
point of it. A typo in a study's sweep file must fail here, not hours into a study.
The paper configs (configs/paper/) also train a step: tests/test_paper_configs.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmxlib.config import load_config, read_yaml
from bmxlib.sweep import plan_sweep

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "configs").rglob("*.yaml"))
NAMES = [str(p.relative_to(ROOT / "configs")) for p in SHIPPED]


def is_sweep(path: Path) -> bool:
    return "grid" in read_yaml(path)


@pytest.mark.parametrize("path", SHIPPED, ids=NAMES)
def test_each_shipped_config_validates(path, tmp_path):
    if is_sweep(path):
        sweep_dir, points = plan_sweep(path, [f"out_dir={tmp_path}"])
        assert points, path
        assert len({p.name for p in points}) == len(points)  # one run directory per point
        assert sweep_dir.parent == tmp_path
    else:
        config = load_config(path)
        assert config.name


GLYPHS_STUDIES = ["glyphs_coco_regime_check.yaml", "glyphs_coco_paper.yaml",
                  "glyphs_coco_paper_extras.yaml", "glyphs_coco_ablation.yaml",
                  "glyphs_coco_missing_readings.yaml", "glyphs_coco_ll_candidates.yaml",
                  "glyphs_coco_sampler_control.yaml"]


@pytest.mark.parametrize("name", GLYPHS_STUDIES)
def test_glyphs_coco_studies_run_in_its_calibrated_regime(name):
    """The glyphs-coco studies inherit the regime the BCE calibration chose
    (configs/regime/glyphs_coco.yaml) and run at 3 seeds."""
    _, points = plan_sweep(ROOT / "configs" / name)
    regime = load_config(ROOT / "configs" / "regime" / "glyphs_coco.yaml")
    keys = ("dataset", "n_train", "width", "lr", "epochs", "warmup_epochs", "amp_cpu",
            "pretrained")
    for point in points:
        assert {k: getattr(point.config, k) for k in keys} == \
            {k: getattr(regime, k) for k in keys}, point.name
    assert {p.config.seed for p in points} == {0, 1, 2}


def test_glyphs_coco_paper_grid_is_the_paper_structure_seed_major_after_bce_check():
    """Eight methods x six settings x 3 seeds, seed 0 of every cell first (a one-seed
    table early in a study that spans sessions); BCE's 18 points are the regime check's
    (run first), identical but for bookkeeping, so `bmx sweep --reuse` copies them."""
    from bmxlib.config import result_differences

    _, points = plan_sweep(ROOT / "configs" / "glyphs_coco_paper.yaml")
    assert len(points) == 8 * 6 * 3
    assert {p.config.seed for p in points[:48]} == {0}
    assert {p.config.method for p in points[:48]} == {"bce", "mixup", "balancemix", "coteaching",
                                                      "asl", "t_estimator", "ll_r", "ll_ct"}
    settings = {(p.config.noise, p.config.noise_rate) for p in points}
    assert settings == {("none", 0), ("mislabel", 0.2), ("mislabel", 0.4), ("flip", 0.2),
                        ("flip", 0.4), ("missing", 0)}
    _, check = plan_sweep(ROOT / "configs" / "glyphs_coco_regime_check.yaml")
    assert len(check) == 18 and {p.config.method for p in check} == {"bce"}
    bce = [p for p in points if p.config.method == "bce"]
    for point in bce:
        assert any(not result_differences(c.config, point.config) for c in check), point.name


def test_glyphs_coco_long_schedule_ablation_is_the_ablation_at_400_epochs_reusing_its_sweep():
    """The 400-epoch ablation has the 200-epoch ablation's rows under mislabel-40, with
    only the schedule changed, and its rows 0, 1 and 5 are exactly the long-schedule
    sweep's bce / mixup / balancemix points (so `bmx sweep --reuse` copies them)."""
    from bmxlib.config import result_differences

    _, long_ablation = plan_sweep(ROOT / "configs" / "glyphs_coco_long_schedule_ablation.yaml")
    _, ablation = plan_sweep(ROOT / "configs" / "glyphs_coco_ablation.yaml")
    _, long_sweep = plan_sweep(ROOT / "configs" / "glyphs_coco_long_schedule.yaml")
    assert len(long_ablation) == 6 * 3
    short = [p for p in ablation if p.config.noise == "mislabel" and p.config.noise_rate == 0.4]
    assert len(short) == len(long_ablation)
    for point, twin in zip(long_ablation, short, strict=True):
        assert point.config.epochs == 400 and twin.config.epochs == 200
        assert result_differences(twin.config, point.config) == [("epochs", 200, 400)], point.name
    reused_rows = {"0-bce", "1-random-sampler", "5+ambiguous-weighting"}
    reused = [p for p in long_ablation if p.labels["variant"] in reused_rows]
    assert len(reused) == 3 * 3
    for point in reused:
        assert any(not result_differences(c.config, point.config) for c in long_sweep), point.name
