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
    assert [c.split()[2] for c in sweeps] == [
        "configs/glyphs_coco_regime_check.yaml", "configs/glyphs_coco_paper.yaml",
        "configs/glyphs_coco_missing_readings.yaml", "configs/glyphs_coco_ablation.yaml",
        "configs/glyphs_coco_paper_extras.yaml"]
    assert f"--reuse {archive}/glyphs_coco_paper" in sweeps[1]
    assert f"--reuse {archive}" not in sweeps[0]  # no archive of the regime check here
    assert f"--reuse {runs}/glyphs_coco_regime_check" in sweeps[1]  # an earlier sweep
    archives = [c for c in calls if c.startswith("archive")]
    assert archives[:2] == [f"archive {runs}/glyphs_coco_regime_check "
                            f"{archive}/glyphs_coco_regime_check",
                            f"archive {runs}/glyphs_coco_paper {archive}/glyphs_coco_paper"]
    assert calls.index(archives[0]) == calls.index(sweeps[0]) + 1  # right after its sweep
