"""The run directory: truncating metrics on resume, load_run."""

from __future__ import annotations

import pytest

from bmxlib.runs import append_metrics, load_run, read_metrics, truncate_metrics


def test_load_run_rejects_a_non_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load_run(tmp_path)


def test_load_run_gives_everything(balancemix_run):
    run = load_run(balancemix_run)
    assert run.complete and run.name == "bm"
    assert run.config["method"] == "balancemix"
    assert run.class_names == [str(d) for d in range(10)]
    assert run.noisy_labels.shape == run.clean_labels.shape == (240, 10)
    assert set(run.shot_groups) <= {"many", "medium", "few"}
    assert run.metric("mAP").shape == (2,)


def test_truncate_keeps_epochs_up_to_the_checkpoint(tmp_path):
    for epoch in (1, 2, 3):
        append_metrics(tmp_path, {"epoch": epoch})
    truncate_metrics(tmp_path, max_epoch=2)
    assert [r["epoch"] for r in read_metrics(tmp_path)] == [1, 2]


def _point(root, name, method, *, diagnostics=False):
    import yaml

    (root / name).mkdir(parents=True)
    (root / name / "config.yaml").write_text(yaml.safe_dump({"method": method}))
    if diagnostics:
        (root / name / "diagnostics").mkdir()


def test_sweep_directories_are_read_in_grid_order(tmp_path):
    from bmxlib import runs

    root = tmp_path / "s"
    for name, method in (("b", "bce"), ("m1", "balancemix"), ("m2", "balancemix")):
        _point(root, name, method, diagnostics=name != "m2")
    runs.write_sweep_manifest(root, source="s.yaml",
                              points=[(n, {"method": n}) for n in ("b", "m1", "m2")])
    sweep = runs.load_sweep(root)
    assert sweep.axes == ["method"] and [p.name for p in sweep.points] == ["b", "m1", "m2"]
    assert sweep.finished_points() == []
    assert runs.directory_kind(root) == "sweep" and runs.directory_kind(root / "b") == "run"
    assert runs.run_dirs(root, method="balancemix") == [root / "m1", root / "m2"]
    # the explorer offers the BalanceMix siblings with diagnostics, and the run itself
    assert runs.explorer_runs(root / "m2") == [root / "m1", root / "m2"]
    assert runs.explorer_runs(root / "b") == [root / "b"]
    with pytest.raises(FileNotFoundError, match="neither a run directory"):
        runs.directory_kind(tmp_path)
