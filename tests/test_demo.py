"""``bmx demo``: its points run two at a time with the same numbers, and the results table is
printed before the report is built."""

from __future__ import annotations

import json
from pathlib import Path

from bmxlib import demo, runs

# the demo's grid on a tiny budget: every point trains 2 epochs, BalanceMix manages labels in
# its second one (warm-up 1), so the sampler, the mixtures and re-labeling all run
CHEAP = ["n_train=240", "n_test=120", "width=8", "batch_size=32", "epochs=2", "warmup_epochs=1",
         "progress=false", "diagnostics_every=1", "tensorboard=false"]


#: wall-clock fields differ between any two runs (the run directory's size holds them as text)
CLOCK_KEYS = ("seconds", "train_seconds", "images_per_s", "run_dir_bytes")


def _metrics(point: Path) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in CLOCK_KEYS}
            for record in runs.read_metrics(point)]


def test_demo_points_do_not_depend_on_jobs(tmp_path):
    from bmxlib.sweep import run_sweep

    made = {jobs: run_sweep(demo.DEMO_SWEEP, overrides=[*CHEAP, f"out_dir={tmp_path}"],
                            name=f"jobs{jobs}", jobs=jobs) for jobs in (1, 2)}
    points = sorted(p.name for p in made[1].iterdir() if runs.is_run_dir(p))
    assert len(points) == 4  # bce, mixup, asl, balancemix
    for point in points:
        one, two = _metrics(made[1] / point), _metrics(made[2] / point)
        assert len(one) == 2 and one == two, point
        threads = [json.loads((made[j] / point / "provenance.json").read_text())["torch_threads"]
                   for j in (1, 2)]
        assert threads == [1, 1]


def test_demo_trains_two_points_at_a_time_and_prints_the_table_before_the_report(
        tmp_path, monkeypatch, capsys):
    calls = {}

    def fake_sweep(path, *, overrides, name, jobs):
        calls["jobs"] = jobs
        sweep_dir = tmp_path / name
        sweep_dir.mkdir()
        (sweep_dir / "results.md").write_text("| method | mAP |\n")
        return sweep_dir

    def fake_report(sweep_dir, *, out):
        print("building the report")
        return Path(out) / "index.html", []

    import bmxlib.report

    monkeypatch.setattr(demo, "run_sweep", fake_sweep)
    monkeypatch.setattr(bmxlib.report, "build_report", fake_report)
    assert demo.run_demo(out_dir=str(tmp_path / "demo")) == 0
    printed = capsys.readouterr().out
    assert calls["jobs"] == demo.DEMO_JOBS == 2
    assert printed.index("| method | mAP |") < printed.index("building the report")
