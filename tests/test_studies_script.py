"""scripts/studies.sh: the order of the studies, --reuse of the committed archive and of the
sweeps before, and the archive after each sweep (run with a stand-in for bmx that only
records its arguments)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_glyphs_studies_reuse_the_archive_and_archive_each_sweep(tmp_path):
    log = tmp_path / "calls"
    fake = tmp_path / "bmx"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    archive = tmp_path / "studies"
    (archive / "glyphs_coco_paper").mkdir(parents=True)  # finished runs of an earlier machine
    env = {**os.environ, "BMX": str(fake), "STUDIES": "glyphs-coco", "ARCHIVE": str(archive)}
    runs = tmp_path / "runs"
    subprocess.run(["bash", str(ROOT / "scripts" / "studies.sh"), str(runs), "2"], env=env,
                   check=True, capture_output=True, timeout=60)
    calls = log.read_text().splitlines()
    sweeps = [c for c in calls if c.startswith("sweep")]
    order = ["configs/glyphs_coco_regime_check.yaml", "configs/glyphs_coco_paper.yaml",
             "configs/glyphs_coco_missing_readings.yaml", "configs/glyphs_coco_ll_candidates.yaml",
             "configs/glyphs_coco_ablation.yaml", "configs/glyphs_coco_paper_extras.yaml"]
    # seed 0 of every study first, then every study whole
    assert [c.split()[2] for c in sweeps] == order + order
    assert all("--only seed=0" in c for c in sweeps[:6])
    assert not any("--only" in c for c in sweeps[6:])
    for sweeps_of_a_pass in (sweeps[:6], sweeps[6:]):
        assert f"--reuse {archive}/glyphs_coco_paper" in sweeps_of_a_pass[1]
        assert f"--reuse {archive}" not in sweeps_of_a_pass[0]  # no archive of the check here
        assert f"--reuse {runs}/glyphs_coco_regime_check" in sweeps_of_a_pass[1]  # an earlier sweep
    archives = [c for c in calls if c.startswith("archive")]
    assert len(archives) == 12
    assert archives[:2] == [f"archive {runs}/glyphs_coco_regime_check "
                            f"{archive}/glyphs_coco_regime_check",
                            f"archive {runs}/glyphs_coco_paper {archive}/glyphs_coco_paper"]
    assert calls.index(archives[0]) == calls.index(sweeps[0]) + 1  # right after its sweep


def test_first_pass_is_glyphs_only_and_can_be_switched_off(tmp_path):
    log = tmp_path / "calls"
    fake = tmp_path / "bmx"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    for studies, first, passes in (("digits-lt", None, 1), ("glyphs-coco", "", 1)):
        log.write_text("")
        env = {**os.environ, "BMX": str(fake), "STUDIES": studies,
               "ARCHIVE": str(tmp_path / "studies")}
        env.pop("FIRST", None)
        if first is not None:
            env["FIRST"] = first
        subprocess.run(["bash", str(ROOT / "scripts" / "studies.sh"), str(tmp_path / "runs")],
                       env=env, check=True, capture_output=True, timeout=60)
        sweeps = [c for c in log.read_text().splitlines() if c.startswith("sweep")]
        assert len(sweeps) == passes * 6
        assert not any("--only" in c for c in sweeps)
