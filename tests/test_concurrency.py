"""Nothing lost under concurrency: one writer per run directory (an fcntl lock the OS
releases when its holder dies), `--overwrite` that replaces only bmxlib runs and only after
the new inputs validated, injective sweep point names, and sweeps that check the epochs of
their finished points instead of trusting summary.json."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bmxlib import cli, runs
from bmxlib.sweep import plan_sweep
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["train", "--config", str(ROOT / "configs/digits_bce.yaml"), *TINY, "epochs=1"]
HOLD = ("import sys, time; from bmxlib import runs\n"
        "with runs.writer_lock(sys.argv[1]):\n"
        "    print('locked', flush=True); time.sleep(120)\n")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture
def holder():
    """Start a second process holding the writer lock of a directory (until killed)."""
    started: list[subprocess.Popen] = []

    def hold(run_dir: Path) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], env=_env(),
                                   stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout.readline().strip() == "locked"
        return process

    yield hold
    for process in started:
        process.kill()
        process.wait()


def _one_error(capsys) -> str:
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith("bmx: error:")]
    assert len(errors) == 1, errors
    return errors[0]


# --- --overwrite ---------------------------------------------------------------------
def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    mine = tmp_path / "runs" / "X"
    mine.mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work")
    code = cli.main([*TRAIN, f"out_dir={tmp_path / 'runs'}", "name=X", "--overwrite"])
    assert code == 2
    assert "is not a bmxlib run" in _one_error(capsys)
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_overwrite_with_bad_inputs_keeps_the_old_run(tmp_path, capsys):
    out = tmp_path / "runs"
    assert cli.main([*TRAIN, f"out_dir={out}", "name=r"]) == 0
    before = (out / "r" / "summary.json").read_text()
    code = cli.main([*TRAIN, f"out_dir={out}", "name=r", "--overwrite", "dataset=coco",
                     f"data_root={tmp_path / 'no-coco-here'}", "pretrained=none"])
    assert code == 2
    assert "no-coco-here" in _one_error(capsys)
    assert (out / "r" / "summary.json").read_text() == before  # deleted only after validation
    # a valid --overwrite replaces the run (keeping nothing of the old one)
    (out / "r" / "stale.txt").write_text("from the old run")
    assert cli.main([*TRAIN, f"out_dir={out}", "name=r", "--overwrite", "seed=3"]) == 0
    assert not (out / "r" / "stale.txt").exists()
    assert runs.read_config(out / "r")["seed"] == 3


# --- sweep point names ---------------------------------------------------------------
def test_sweep_labels_that_map_to_one_directory_are_refused(tmp_path, capsys):
    fixed = "".join(f"  {item.replace('=', ': ')}\n" for item in TINY
                    if not item.startswith("epochs="))
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: s\nout_dir: {tmp_path / 'out'}\nfixed:\n{fixed}  epochs: 1\n"
                    "grid:\n  variant:\n    - {label: 'lr 0.01', method: bce}\n"
                    "    - {label: 'lr/0.01', method: balancemix}\n")
    with pytest.raises(Exception, match="lr 0.01.*lr/0.01.*variant=lr-0.01"):
        plan_sweep(path)
    assert cli.main(["sweep", "--config", str(path)]) == 2
    assert "both get the directory name" in _one_error(capsys)
    assert not (tmp_path / "out").exists()


# --- one writer per run directory ----------------------------------------------------
def test_a_second_writer_gets_one_line_and_exit_2(tmp_path, holder, capsys):
    run_dir = tmp_path / "runs" / "r"
    process = holder(run_dir)
    code = cli.main([*TRAIN, f"out_dir={tmp_path / 'runs'}", "name=r"])
    assert code == 2
    error = _one_error(capsys)
    assert "being written by another process" in error and f"pid {process.pid}" in error
    assert not runs.has_content(run_dir)  # nothing written beside the holder


def test_the_lock_dies_with_its_holder(tmp_path, holder):
    run_dir = tmp_path / "r"
    process = holder(run_dir)
    with pytest.raises(runs.RunDirBusy), runs.writer_lock(run_dir):
        pass
    process.send_signal(signal.SIGKILL)
    process.wait()
    with runs.writer_lock(run_dir):  # no stale lock after kill -9
        with runs.writer_lock(run_dir):  # re-entrant in one process
            pass


def test_a_run_directory_that_cannot_be_created_is_named_with_the_reason(tmp_path):
    """out_dir=/sys/x once said only "[Errno 1] Operation not permitted: '/sys/x'"."""
    (tmp_path / "file").write_text("not a folder")
    run_dir = tmp_path / "file" / "run"
    pattern = rf"^cannot create the run directory {re.escape(str(run_dir))}: \w"
    with pytest.raises(OSError, match=pattern):
        with runs.writer_lock(run_dir):
            pass


def test_two_trains_started_together_leave_one_consistent_run(tmp_path):
    """The real race: two processes, same run directory, started at once."""
    argv = [sys.executable, "-m", "bmxlib.cli", *TRAIN, "epochs=2",
            f"out_dir={tmp_path / 'runs'}", "name=r"]
    processes = [subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
    for process in processes:
        process.stdout.close()
        process.stderr.close()
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    errors = [line for line in loser.splitlines() if line.startswith("bmx: error:")]
    assert len(errors) == 1 and ("being written by another process" in errors[0]
                                 or "already exists" in errors[0]), loser
    epochs = [r["epoch"] for r in runs.read_metrics(tmp_path / "runs" / "r")]
    assert epochs == [1, 2]


def _sweep_file(tmp_path: Path) -> Path:
    fixed = "".join(f"  {item.replace('=', ': ')}\n" for item in TINY
                    if not item.startswith("epochs="))
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: s\nout_dir: {tmp_path / 'out'}\nfixed:\n{fixed}  epochs: 1\n"
                    "grid:\n  seed: [0, 1]\n")
    return path


def test_a_sweep_skips_a_point_another_process_holds(tmp_path, holder, capsys):
    path = _sweep_file(tmp_path)
    holder(tmp_path / "out" / "s" / "seed=0")
    assert cli.main(["sweep", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "skipped seed=0" in err and "being written by another process" in err
    assert "re-run the same bmx sweep command" in err
    assert runs.is_finished(tmp_path / "out" / "s" / "seed=1")
    assert not runs.has_content(tmp_path / "out" / "s" / "seed=0")


def test_a_sweep_rerun_checks_the_epochs_of_finished_points(tmp_path, capsys):
    path = _sweep_file(tmp_path)
    assert cli.main(["sweep", "--config", str(path)]) == 0
    metrics = tmp_path / "out" / "s" / "seed=1" / runs.METRICS_FILE
    record = json.loads(metrics.read_text().splitlines()[0])
    with metrics.open("a") as handle:  # what two interleaved writers used to leave
        handle.write(json.dumps(record) + "\n")
    capsys.readouterr()
    started = time.time()
    assert cli.main(["sweep", "--config", str(path)]) == 2
    error = _one_error(capsys)
    assert "seed=1" in error and "metrics.jsonl" in error and "[1, 1]" in error
    assert time.time() - started < 30
