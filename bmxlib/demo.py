"""``bmx demo``: the quick start. Trains the demo sweep (configs/demo.yaml) on digits-lt,
prints its results table and where the runs are, then builds the notebook report."""

from __future__ import annotations

import time
from pathlib import Path

from .runs import RESULTS_MD
from .sweep import run_sweep

DEMO_SWEEP = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def run_demo(*, out_dir: str = "runs/demo", report: bool = True) -> int:
    if not DEMO_SWEEP.is_file():
        raise FileNotFoundError(f"demo sweep {DEMO_SWEEP} is missing (run from a source checkout)")
    start = time.perf_counter()
    out = Path(out_dir)
    sweep_dir = run_sweep(DEMO_SWEEP, overrides=[f"out_dir={out.parent}"], name=out.name)
    print()
    print((sweep_dir / RESULTS_MD).read_text())
    print(f"runs: {sweep_dir}/<point>/ (metrics.jsonl, diagnostics/, checkpoints/)")
    status = 0
    if report and any((DEMO_SWEEP.parents[1] / "notebooks").glob("*.ipynb")):
        from .report import build_report

        index, failures = build_report(sweep_dir, out=Path("reports") / "demo")
        print(f"report: {index.resolve()}")
        status = 1 if failures else 0
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return status
