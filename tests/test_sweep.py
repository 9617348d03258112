"""Sweeps: grid expansion, skip-finished restart, results tables, bad grid values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bmxlib.cli import main
from bmxlib.sweep import plan_sweep, run_sweep
from tests.conftest import TINY


def _write_sweep(tmp_path, grid: str) -> str:
    fixed = "\n".join(f"  {item.split('=')[0]}: {item.split('=')[1]}" for item in TINY
                      if not item.startswith("epochs="))  # set below: no key twice
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: s\nout_dir: {tmp_path / 'out'}\nfixed:\n{fixed}\n  epochs: 1\n"
                    f"grid:\n{grid}")
    return str(path)


GRID = """  method: [bce, mixup]
  noise:
    - {label: clean, noise: none}
    - {label: mislabel-40, noise: mislabel, noise_rate: 0.4}
  seed: [0, 1]
"""


def test_plan_expands_the_product_with_readable_names(tmp_path):
    sweep_dir, points = plan_sweep(_write_sweep(tmp_path, GRID))
    assert len(points) == 8
    assert points[0].name == "method=bce__noise=clean__seed=0"
    assert points[-1].config.noise_rate == 0.4 and points[-1].config.method == "mixup"


def test_sweep_runs_skips_finished_points_and_tabulates(tmp_path, monkeypatch):
    grid = "  method: [bce]\n  seed: [0, 1]\n"
    path = _write_sweep(tmp_path, grid)
    sweep_dir = run_sweep(path)
    assert (sweep_dir / "results.md").is_file() and (sweep_dir / "results.csv").is_file()
    table = (sweep_dir / "results.md").read_text()
    assert "| bce |" in table and "± " in table
    first = json.loads((sweep_dir / "method=bce__seed=0" / "summary.json").read_text())

    import bmxlib.engine as engine

    calls = []
    monkeypatch.setattr(engine, "fit", lambda *a, **k: calls.append(a))
    run_sweep(path)  # everything finished: nothing re-runs
    assert calls == []
    again = json.loads((sweep_dir / "method=bce__seed=0" / "summary.json").read_text())
    assert again == first


def test_memorization_table_when_the_noise_is_known(tmp_path):
    grid = "  method: [bce]\n  seed: [0]\n"
    path = Path(_write_sweep(tmp_path, grid))
    path.write_text(path.read_text().replace(
        "  epochs: 1\n", "  epochs: 1\n  noise: mislabel\n  noise_rate: 0.4\n"))
    sweep_dir = run_sweep(path)
    table = (sweep_dir / "results.md").read_text()
    assert "## Memorization of the label noise at the last epoch" in table
    summary = json.loads((sweep_dir / "method=bce__seed=0" / "summary.json").read_text())
    assert f"| bce | {summary['memorized_noisy']:.3f} | {summary['fit_clean']:.3f} |" in table


@pytest.mark.parametrize(
    "grid, needle",
    [("  method: [bce, nonsense]\n", "nonsense"), ("  epochz: [1]\n", "epochz"),
     ("  lr: []\n", "non-empty")],
    ids=["bad-method", "unknown-key", "empty-axis"],
)
def test_bad_grid_value_exits_2_before_anything_runs(tmp_path, capsys, grid, needle):
    code = main(["sweep", "--config", _write_sweep(tmp_path, grid)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not (tmp_path / "out").exists()


def test_parallel_jobs_match_a_sequential_sweep(tmp_path):
    grid = ("  method: [bce, balancemix]\n"
            "  noise: [{label: m40, noise: mislabel, noise_rate: 0.4}]\n")
    sequential = run_sweep(_write_sweep(tmp_path, grid))
    parallel = run_sweep(_write_sweep(tmp_path, grid), name="s2", jobs=2)
    for point in ("method=bce__noise=m40", "method=balancemix__noise=m40"):
        a = json.loads((sequential / point / "summary.json").read_text())
        b = json.loads((parallel / point / "summary.json").read_text())
        assert a["mAP"] == b["mAP"]
    # rows with and without label-management columns share one CSV
    header = (parallel / "results.csv").read_text().splitlines()[0]
    assert "selection_precision_mean" in header


def test_changed_settings_are_refused_instead_of_skipped(tmp_path, capsys):
    path = _write_sweep(tmp_path, "  method: [bce]\n  seed: [0]\n")
    sweep_dir = run_sweep(path)
    summary = (sweep_dir / "method=bce__seed=0" / "summary.json").read_text()
    # same grid, another schedule: the finished point must not be reported as this one
    capsys.readouterr()
    assert main(["sweep", "--config", path, "epochs=2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "epochs=1" in err[0] and "epochs=2" in err[0]
    assert (sweep_dir / "method=bce__seed=0" / "summary.json").read_text() == summary
    # bookkeeping keys may differ; another name gives another sweep directory
    assert main(["sweep", "--config", path, "progress=false", "threads=1"]) == 0
    assert main(["sweep", "--config", path, "--name", "longer", "epochs=2"]) == 0
    longer = json.loads((sweep_dir.parent / "longer" / "method=bce__seed=0" /
                         "summary.json").read_text())
    assert longer["epochs"] == 2


def test_submitit_local_launcher_runs_the_points_with_the_restart_rules(tmp_path, capsys):
    pytest.importorskip("submitit", reason="the submitit extra is not installed")
    path = _write_sweep(tmp_path, "  method: [bce, mixup]\n")
    assert main(["sweep", "--config", path, "--launcher", "submitit-local"]) == 0
    sweep_dir = tmp_path / "out" / "s"
    summaries = {p: (sweep_dir / p / "summary.json").read_text()
                 for p in ("method=bce", "method=mixup")}
    assert "submitted method=bce as job" in capsys.readouterr().err
    assert (sweep_dir / "results.md").is_file() and (sweep_dir / ".submitit").is_dir()
    # restart rules hold for this launcher too: finished points are skipped ...
    assert main(["sweep", "--config", path, "--launcher", "submitit-local"]) == 0
    assert all((sweep_dir / p / "summary.json").read_text() == text
               for p, text in summaries.items())
    assert "submitted" not in capsys.readouterr().err
    # ... and a point with other settings is refused before anything is submitted
    assert main(["sweep", "--config", path, "--launcher", "submitit-local", "lr=0.1"]) == 2
    # the numbers equal a local sweep's
    assert main(["sweep", "--config", path, "--name", "plain"]) == 0
    for point in summaries:
        a = json.loads(summaries[point])
        b = json.loads((tmp_path / "out" / "plain" / point / "summary.json").read_text())
        assert a["mAP"] == b["mAP"]


def test_a_point_run_after_another_in_one_process_equals_its_own_bmx_train(tmp_path):
    """Sweep workers import once and run point after point: nothing of one point (RNG,
    caches, the folded-model cache, threads) may leak into the next."""
    import subprocess
    import sys

    grid = "  method: [balancemix, coteaching]\n"
    sweep_dir = run_sweep(_write_sweep(tmp_path, grid))  # jobs=1: both in this process
    second = sweep_dir / "method=coteaching"
    alone = tmp_path / "alone"
    subprocess.run([sys.executable, "-m", "bmxlib.cli", "train", "--config",
                    str(second / "config.yaml"), f"out_dir={alone}", "name=coteaching"],
                   check=True, capture_output=True)
    timing = {"seconds", "train_seconds", "images_per_s", "run_dir_bytes"}

    def rows(run_dir):
        return [{k: v for k, v in json.loads(line).items() if k not in timing}
                for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    assert rows(second) == rows(alone / "coteaching")


def test_parallel_workers_read_the_backbone_the_sweep_built_once(tmp_path, monkeypatch, capfd):
    """With an empty cache, --jobs 2 pretrains the digits backbone once (in the sweep
    process), not once per worker at the same time."""
    monkeypatch.setenv("BMXLIB_CACHE", str(tmp_path / "cache"))
    run_sweep(_write_sweep(tmp_path, "  method: [bce, mixup]\n"), jobs=2)
    err = capfd.readouterr().err
    assert err.count("pretraining the digits backbone") == 1


def test_reuse_copies_identical_finished_points_and_runs_the_rest(tmp_path, monkeypatch):
    """An ablation-like sweep reuses the paper-like sweep's identical run (bookkeeping keys
    aside) and trains only what differs; the copy carries its own name and its source."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first_dir = run_sweep(_write_sweep(tmp_path / "a", "  method: [bce]\n  seed: [0]\n"))
    source = first_dir / "method=bce__seed=0"
    grid = ("  variant:\n    - {label: 0-bce, method: bce}\n"
            "    - {label: 0-bce-lr, method: bce, lr: 0.02}\n  seed: [0]\n")
    path = _write_sweep(tmp_path / "b", grid)

    import bmxlib.engine as engine

    trained = []
    real_fit = engine.fit
    monkeypatch.setattr(engine, "fit", lambda config, *a, **k: (
        trained.append(config.name), real_fit(config, *a, **k))[1])
    second_dir = run_sweep(path, reuse=[first_dir])
    assert trained == ["variant=0-bce-lr__seed=0"]  # the identical point was not trained
    copy = second_dir / "variant=0-bce__seed=0"
    assert (copy / "metrics.jsonl").read_text() == (source / "metrics.jsonl").read_text()
    assert json.loads((copy / "provenance.json").read_text())["copied_from"] == \
        str(source.resolve())
    from bmxlib.runs import read_config
    assert read_config(copy)["name"] == "variant=0-bce__seed=0"
    assert read_config(copy)["out_dir"] == str(second_dir)
    assert "0-bce" in (second_dir / "results.md").read_text()
    assert not list(second_dir.glob(".*copying"))


def _record_an_older_backbone(run_dir: Path) -> None:
    """Rewrite a finished run's provenance as if pretraining recipe 2 had built its backbone."""
    path = run_dir / "provenance.json"
    provenance = json.loads(path.read_text())
    provenance["cached_inputs"]["digits_backbone"]["file"] = "digits-backbone-recipe2.pt"
    path.write_text(json.dumps(provenance))


def test_a_run_from_another_pretrained_backbone_is_neither_skipped_nor_reused(
        tmp_path, capsys, monkeypatch):
    """Same config, other backbone (the pretraining recipe changed): another experiment."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    path = _write_sweep(tmp_path / "a", "  method: [bce]\n  seed: [0]\n")
    first_dir = run_sweep(path)
    _record_an_older_backbone(first_dir / "method=bce__seed=0")
    capsys.readouterr()
    assert main(["sweep", "--config", path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "digits-backbone-recipe2.pt" in err[0], err

    import bmxlib.engine as engine

    trained = []
    monkeypatch.setattr(engine, "fit", lambda config, *a, **k: trained.append(config.name))
    run_sweep(_write_sweep(tmp_path / "b", "  method: [bce]\n  seed: [0]\n"),
              reuse=[first_dir])
    assert trained == ["method=bce__seed=0"]  # trained anew, not copied


def test_only_runs_the_matching_points_and_the_same_command_runs_the_rest(tmp_path,
                                                                         monkeypatch, capsys):
    """``--only seed=0`` trains seed 0 of every cell; the manifest lists every point; the
    same sweep without it trains just the rest; several labels of one axis mean any."""
    import bmxlib.engine as engine

    path = _write_sweep(tmp_path, "  method: [bce, mixup]\n  seed: [0, 1]\n")
    trained = []
    real_fit = engine.fit
    monkeypatch.setattr(engine, "fit", lambda config, *a, **k: (
        trained.append(config.name), real_fit(config, *a, **k))[1])
    sweep_dir = run_sweep(path, only=["seed=0"])
    assert sorted(trained) == ["method=bce__seed=0", "method=mixup__seed=0"]
    progress = [line for line in capsys.readouterr().err.splitlines() if " done: " in line]
    assert [line.split()[2] for line in progress] == ["1/4", "2/4"]  # not 3/4, 4/4
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    assert len(manifest["points"]) == 4
    run_sweep(path, only=["seed=1", "method=bce", "method=mixup"])
    assert sorted(trained[2:]) == ["method=bce__seed=1", "method=mixup__seed=1"]
    run_sweep(path)
    assert len(trained) == 4  # everything finished: nothing trained again


@pytest.mark.parametrize(("entry", "named"), [
    ("seed", "expected AXIS=LABEL"),
    ("lr=0.1", "no axis 'lr' (method, seed)"),
    ("seed=7", "axis 'seed' has no label '7' (0, 1)"),
], ids=["no-label", "unknown-axis", "unknown-label"])
def test_only_with_a_bad_entry_exits_2_before_writing(tmp_path, capsys, entry, named):
    path = _write_sweep(tmp_path, "  method: [bce]\n  seed: [0, 1]\n")
    assert main(["sweep", "--config", path, "--only", entry]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "s").exists()


def test_reuse_of_a_directory_that_is_no_sweep_exits_2(tmp_path, capsys):
    path = _write_sweep(tmp_path, "  method: [bce]\n  seed: [0]\n")
    code = main(["sweep", "--config", path, "--reuse", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code == 2 and "--reuse" in err and "nowhere" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "s").exists()  # refused before the sweep was written


@pytest.mark.parametrize("launcher", ["local", "submitit-local"])
def test_a_missing_data_root_is_refused_before_anything_is_written(tmp_path, capsys, launcher):
    path = _write_sweep(tmp_path, "  method: [bce]\n  seed: [0]\n")
    missing = tmp_path / "no-voc-here"
    code = main(["sweep", "--config", path, "--launcher", launcher, "dataset=voc",
                 f"data_root={missing}", "pretrained=none"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "data_root" in err and str(missing) in err and "method=bce__seed=0" in err
    assert not (tmp_path / "out").exists()  # no sweep.json, no point folder with a lock


def test_reuse_leaves_a_point_begun_here_to_the_sweep(tmp_path):
    """A point whose directory exists (here only a killed writer's lock file) is not
    replaced by a copy: the sweep runs it in place."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first_dir = run_sweep(_write_sweep(tmp_path / "a", "  method: [bce]\n  seed: [0]\n"))
    path = _write_sweep(tmp_path / "b", "  method: [bce]\n  seed: [0]\n")
    begun = tmp_path / "b" / "out" / "s" / "method=bce__seed=0"
    begun.mkdir(parents=True)
    from bmxlib.runs import LOCK_FILE, SWEEP_FILE
    (begun / LOCK_FILE).write_text("12345\n")
    (begun.parent / SWEEP_FILE).write_text('{"source": "sweep.yaml", "points": []}')
    run_sweep(path, reuse=[first_dir])
    assert "copied_from" not in json.loads((begun / "provenance.json").read_text())
    assert (begun / "summary.json").is_file()


def test_archive_keeps_results_without_checkpoints_and_reuse_restores_them(tmp_path,
                                                                         monkeypatch):
    """A sweep archived on one machine (no checkpoints, no TensorBoard logs) stands for its
    finished points on another: the same sweep file in a fresh out_dir trains nothing and
    tabulates the same numbers; archiving again adds nothing."""
    from bmxlib import runs
    from bmxlib.archive import archive_sweep

    path = _write_sweep(tmp_path, "  method: [bce]\n  seed: [0, 1]\n")
    sweep_dir = run_sweep(path)
    run_dir = sweep_dir / "method=bce__seed=0"
    assert runs.checkpoint_path(run_dir).is_file()
    archive = tmp_path / "archive" / "s"
    assert archive_sweep(sweep_dir, archive) == (2, 2)
    archived = archive / run_dir.name
    assert not runs.checkpoint_path(archived).exists()
    assert not runs.tensorboard_dir(archived).exists()
    assert (archived / "metrics.jsonl").read_text() == (run_dir / "metrics.jsonl").read_text()
    assert runs.is_sweep_dir(archive) and (archive / "results.md").is_file()
    assert runs.read_config(archived)["out_dir"] == str(archive)  # no path of the machine
    assert not list(archive.glob(".*copying"))
    assert archive_sweep(sweep_dir, archive) == (0, 2)

    import bmxlib.engine as engine

    trained = []
    monkeypatch.setattr(engine, "fit", lambda config, *a, **k: trained.append(config.name))
    elsewhere = run_sweep(path, overrides=[f"out_dir={tmp_path / 'other-machine'}"],
                          reuse=[archive])
    assert trained == []
    assert (elsewhere / "results.md").read_text() == (sweep_dir / "results.md").read_text()
    # archived again from there: the copy names its source by sweep and run only
    assert archive_sweep(elsewhere, tmp_path / "archive2" / "s") == (2, 2)
    provenance = json.loads((tmp_path / "archive2" / "s" / run_dir.name /
                             "provenance.json").read_text())
    assert provenance["copied_from"] == f"s/{run_dir.name}"


def test_archive_refuses_a_directory_of_another_sweep_with_one_line(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = run_sweep(_write_sweep(tmp_path / "a", "  method: [bce]\n  seed: [0]\n"))
    other = tmp_path / "b" / "other.yaml"
    other.write_text(Path(_write_sweep(tmp_path / "b", "  seed: [0]\n")).read_text())
    second = run_sweep(str(other), overrides=["epochs=1"])
    assert main(["archive", str(first), str(tmp_path / "arch")]) == 0
    capsys.readouterr()
    code = main(["archive", str(second), str(tmp_path / "arch")])
    err = capsys.readouterr().err
    assert code == 2 and "arch" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "notes.txt").write_text("mine")  # a file where the archive should go
    code = main(["archive", str(first), str(tmp_path / "notes.txt")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "notes.txt: is a file, not a directory" in err  # was "[Errno 17] File exists"
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_archive_never_deletes_a_live_run_nor_mixes_results(tmp_path, capsys):
    """`bmx archive A B` where B is no archive but a sweep itself (interrupted, or A) or an
    archive of other settings / another backbone: one line, exit 2, B untouched."""
    import shutil

    from bmxlib import runs

    path = _write_sweep(tmp_path, "  method: [bce]\n  seed: [0, 1]\n")
    sweep_dir = run_sweep(path)
    interrupted = tmp_path / "copy" / "s"  # the same sweep elsewhere, one point cut short
    shutil.copytree(sweep_dir, interrupted)
    (interrupted / "method=bce__seed=1" / "summary.json").unlink()
    checkpoint = runs.checkpoint_path(interrupted / "method=bce__seed=1")
    before = checkpoint.read_bytes()

    def refused(*args: str) -> str:
        capsys.readouterr()
        assert main(["archive", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        return err[0]

    assert "checkpoint" in refused(str(sweep_dir), str(interrupted))
    assert checkpoint.read_bytes() == before  # was deleted, the finished copy put instead
    assert "the sweep itself" in refused(str(sweep_dir), str(sweep_dir))

    archive = tmp_path / "arch"
    assert main(["archive", str(sweep_dir), str(archive)]) == 0
    longer = run_sweep(path, overrides=["epochs=2"], name="longer")  # same file, epochs 2
    assert "epochs" in refused(str(longer), str(archive))
    # as if seed 0 had been archived under pretraining recipe 2, seed 1 not yet
    _record_an_older_backbone(archive / "method=bce__seed=0")
    shutil.rmtree(archive / "method=bce__seed=1")
    assert "digits-backbone-recipe2.pt" in refused(str(sweep_dir), str(archive))
    assert not (archive / "method=bce__seed=1").exists()


def test_archive_thins_diagnostics_to_the_full_epochs_keeping_last_epoch_readings(tmp_path):
    """BalanceMix writes small arrays every epoch and per-label arrays every
    diagnostics_every: the archive keeps epochs 2, 4 (full) and 5 (last), the per-label
    arrays at the last only, and what the results read at the last epoch is unchanged."""
    import numpy as np

    from bmxlib import management, runs
    from bmxlib.archive import archive_sweep
    from bmxlib.methods.balancemix import CONFIDENCES, DRAW_SHARE, STATE

    grid = "  method: [balancemix]\n  seed: [0]\n"
    path = _write_sweep(tmp_path, grid)
    sweep_dir = run_sweep(path, overrides=["epochs=5", "diagnostics_every=2", "noise=mislabel",
                                           "noise_rate=0.4"])
    archive_sweep(sweep_dir, tmp_path / "archive")
    original = runs.load_run(sweep_dir / "method=balancemix__seed=0")
    archived = runs.load_run(tmp_path / "archive" / "method=balancemix__seed=0")
    assert original.diagnostic_epochs == [1, 2, 3, 4, 5]  # (no initial pass: no epoch 0)
    assert archived.diagnostic_epochs == [2, 4, 5]
    assert STATE in original.diagnostics_keys(4) and STATE not in archived.diagnostics_keys(4)
    assert DRAW_SHARE in archived.diagnostics_keys(4)
    for key in (STATE, CONFIDENCES, DRAW_SHARE):
        np.testing.assert_array_equal(archived.diagnostics(5)[key], original.diagnostics(5)[key])
    assert management.minority_oversampling(archived) == management.minority_oversampling(original)
    assert archived.metrics == original.metrics


def test_archive_keeps_one_off_diagnostics_of_other_epochs(tmp_path):
    """The T-estimator records its transition estimate once, at the end of its warm-up; an
    epoch outside diagnostics_every must not lose it in the archive (the digits-lt regime's
    warm-up of 25 epochs with diagnostics every 10 did, until 2026-12-04)."""
    import numpy as np

    from bmxlib import runs
    from bmxlib.archive import archive_sweep

    path = _write_sweep(tmp_path, "  method: [t_estimator]\n  seed: [0]\n")
    sweep_dir = run_sweep(path, overrides=["epochs=4", "warmup_epochs=1", "diagnostics_every=2",
                                           "noise=mislabel", "noise_rate=0.4"])
    archive_sweep(sweep_dir, tmp_path / "archive")
    original = runs.load_run(sweep_dir / "method=t_estimator__seed=0")
    archived = runs.load_run(tmp_path / "archive" / "method=t_estimator__seed=0")
    # the method's only record, at an epoch that is neither full (2, 4) nor the last
    assert original.diagnostic_epochs == archived.diagnostic_epochs == [1]
    assert set(archived.diagnostics_keys(1)) == set(original.diagnostics_keys(1)) \
        >= {"transition", "transition_partner", "transition_solved_by"}
    np.testing.assert_array_equal(archived.diagnostics(1)["transition"],
                                  original.diagnostics(1)["transition"])


def test_runs_from_two_builds_of_one_backbone_file_are_named_by_sweep_and_archive(
        tmp_path, capsys):
    """The sweep and the archive compare a backbone by file name (the recipe); two builds
    of that file (another kind of CPU: other weights) pass, and both commands say so."""
    from bmxlib import runs
    from bmxlib.archive import backbone_builds, mixed_builds_note

    path = _write_sweep(tmp_path, "  seed: [0, 1]\n")
    sweep_dir = run_sweep(path)
    assert mixed_builds_note(sweep_dir) is None  # one machine, one build
    recorded, files = {}, set()
    for run_dir, (digest, cpu) in zip(runs.run_dirs(sweep_dir),
                                      [("aaaa1111", "AVX2"), ("bbbb2222", "AVX512")]):
        provenance = runs.read_provenance(run_dir)
        provenance["cpu_capability"] = cpu
        provenance["cached_inputs"]["digits_backbone"]["sha256"] = digest  # the same file
        files.add(provenance["cached_inputs"]["digits_backbone"]["file"])
        (run_dir / "provenance.json").write_text(json.dumps(provenance))
        recorded[digest] = [cpu]
    [file] = files
    assert backbone_builds(sweep_dir) == {file: recorded}
    note = mixed_builds_note(sweep_dir)
    assert f"2 builds of {file}" in note
    assert "aaaa1111 on AVX2: 1 run;" in note and "bbbb2222 on AVX512: 1 run)" in note

    capsys.readouterr()
    assert main(["archive", str(sweep_dir), str(tmp_path / "archive")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"2 builds of {file}" in err
    run_sweep(path)  # nothing left to run; the note comes at the end all the same
    assert f"2 builds of {file}" in capsys.readouterr().err
