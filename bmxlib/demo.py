"""``bmx demo``: the quick start. Trains the demo sweep (configs/demo.yaml) on digits-lt,
two points at a time, prints its results table and where the runs are as soon as training
ends, then builds the notebook report."""

from __future__ import annotations

import time
from pathlib import Path

from .runs import RESULTS_MD
from .sweep import run_sweep

DEMO_SWEEP = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


#: Points trained at once. Each runs on one torch thread (the sweep pins it), so two fill a
#: 2-core machine, and the numbers do not depend on this value
#: (tests/test_demo.py::test_demo_points_do_not_depend_on_jobs).
DEMO_JOBS = 2


def run_demo(*, out_dir: str = "runs/demo", report: bool = True, jobs: int = DEMO_JOBS) -> int:
    if not DEMO_SWEEP.is_file():
        raise FileNotFoundError(f"demo sweep {DEMO_SWEEP} is missing (run from a source checkout)")
    start = time.perf_counter()
    out = Path(out_dir)
    sweep_dir = run_sweep(DEMO_SWEEP, overrides=[f"out_dir={out.parent}"], name=out.name,
                          jobs=jobs)
    print()
    print((sweep_dir / RESULTS_MD).read_text())
    print(f"runs: {sweep_dir}/<point>/ (metrics.jsonl, diagnostics/, checkpoints/)")
    print(f"training finished in {time.perf_counter() - start:.0f} s", flush=True)
    status = 0
    if report and any((DEMO_SWEEP.parents[1] / "notebooks").glob("*.ipynb")):
        from .report import build_report

        index, failures = build_report(sweep_dir, out=Path("reports") / "demo")
        print(f"report: {index.resolve()}")
        status = 1 if failures else 0
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return status
