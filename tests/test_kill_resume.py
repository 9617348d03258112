"""Nothing lost: `bmx train` and `bmx sweep` killed with SIGKILL at awkward moments resume
to exactly the numbers of an uninterrupted run (docs/reliability.md).

Kills come from a real subprocess: at a random moment (seeded), during the first epoch,
and — through ``bmxlib.io``'s fault injection — between writing a temporary file and
renaming it over ``checkpoints/last.pt`` or ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bmxlib import runs
from bmxlib.io import FAULT_ENV
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["--config", str(ROOT / "configs" / "digits_balancemix.yaml"), *TINY,
          "method=balancemix", "noise=mislabel", "noise_rate=0.4", "epochs=4", "warmup_epochs=1"]
WALL_CLOCK = ("seconds", "train_seconds", "images_per_s", "run_dir_bytes")


def _env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    env.pop(FAULT_ENV, None)
    env.update(extra)
    return env


def _bmx(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bmxlib.cli", *args], capture_output=True,
                          text=True, env=env or _env(), timeout=timeout)


def _outcome(run_dir: Path):
    metrics = runs.read_metrics(run_dir)
    for record in metrics:
        for key in WALL_CLOCK:
            record.pop(key, None)
    state = torch.load(runs.checkpoint_path(run_dir), weights_only=True)
    return metrics, state["model"], state["method"]


def _same(a, b) -> None:
    metrics_a, model_a, method_a = a
    metrics_b, model_b, method_b = b
    assert metrics_a == metrics_b
    assert all(torch.equal(model_a[k], model_b[k]) for k in model_a)
    for key in ("targets", "weight", "probabilities"):
        assert torch.equal(method_a[key], method_b[key]), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    done = _bmx("train", *COMMON, f"out_dir={out}", "name=straight")
    assert done.returncode == 0, done.stderr
    return _outcome(out / "straight")


def _resume_until_done(run_dir: Path) -> None:
    done = _bmx("train", "--resume", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert runs.is_finished(run_dir)
    assert not [p for p in run_dir.rglob(".*")  # no stray temporaries (the lock stays)
                if p.is_file() and p.name != runs.LOCK_FILE]


@pytest.mark.parametrize(
    "fault",
    ["kill-before-rename:last.pt:2", "kill-before-rename:metrics.jsonl:3",
     "kill-before-rename:last.pt:1"],
    ids=["checkpoint-of-epoch-2", "metrics-of-epoch-3", "first-checkpoint"],
)
def test_a_kill_while_writing_resumes_exactly(tmp_path, reference, fault):
    killed = _bmx("train", *COMMON, f"out_dir={tmp_path}", "name=r", env=_env(BMXLIB_FAULT=fault))
    assert killed.returncode == -signal.SIGKILL
    assert not runs.is_finished(tmp_path / "r")
    _resume_until_done(tmp_path / "r")
    _same(_outcome(tmp_path / "r"), reference)


@pytest.mark.parametrize("seed", [0, 1], ids=["seed0", "seed1"])
def test_a_kill_at_a_random_moment_resumes_exactly(tmp_path, reference, seed):
    run_dir = tmp_path / "r"
    process = subprocess.Popen([sys.executable, "-m", "bmxlib.cli", "train", *COMMON,
                                f"out_dir={tmp_path}", "name=r"], env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not runs.is_run_dir(run_dir) and time.monotonic() < deadline:
        time.sleep(0.05)  # training has started once the header is written
    time.sleep(random.Random(seed).uniform(0.0, 2.5))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    _resume_until_done(run_dir)
    _same(_outcome(run_dir), reference)


def test_a_kill_in_the_first_epoch_restarts_in_place(tmp_path, reference):
    run_dir = tmp_path / "r"
    process = subprocess.Popen([sys.executable, "-m", "bmxlib.cli", "train", *COMMON,
                                f"out_dir={tmp_path}", "name=r"], env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not runs.is_run_dir(run_dir) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert not runs.checkpoint_path(run_dir).exists()  # nothing trained yet
    _resume_until_done(run_dir)
    _same(_outcome(run_dir), reference)


def _sweep_file(tmp_path) -> Path:
    fixed = "\n".join(f"  {item.split('=')[0]}: {item.split('=')[1]}" for item in TINY
                      if not item.startswith("epochs="))  # set below: no key twice
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: s\nout_dir: {tmp_path / 'out'}\nfixed:\n{fixed}\n  epochs: 2\n"
                    "  noise: mislabel\n  noise_rate: 0.4\ngrid:\n  method: [bce, balancemix]\n")
    return path


def test_a_killed_sweep_keeps_finished_points_and_redoes_the_interrupted_one(tmp_path):
    path = _sweep_file(tmp_path)
    # kill while the second point writes its first checkpoint (the first point wrote 2)
    killed = _bmx("sweep", "--config", str(path), env=_env(BMXLIB_FAULT="kill-before-rename:"
                                                         "last.pt:3"))
    assert killed.returncode == -signal.SIGKILL
    sweep = tmp_path / "out" / "s"
    first = (sweep / "method=bce" / "summary.json").read_text()
    assert not runs.is_finished(sweep / "method=balancemix")
    again = _bmx("sweep", "--config", str(path))
    assert again.returncode == 0, again.stderr
    assert (sweep / "method=bce" / "summary.json").read_text() == first  # not re-run
    straight = _bmx("sweep", "--config", str(path), "--name", "straight")
    assert straight.returncode == 0, straight.stderr
    for point in ("method=bce", "method=balancemix"):
        a = json.loads((sweep / point / "summary.json").read_text())
        b = json.loads((sweep.parent / "straight" / point / "summary.json").read_text())
        assert {k: v for k, v in a.items() if "seconds" not in k} == \
            {k: v for k, v in b.items() if "seconds" not in k}


def test_report_on_an_unfinished_run_says_so_per_notebook(tmp_path):
    killed = _bmx("train", *COMMON, f"out_dir={tmp_path}", "name=r",
                  env=_env(BMXLIB_FAULT="kill-before-rename:last.pt:2"))
    assert killed.returncode == -signal.SIGKILL
    started = time.monotonic()
    report = _bmx("report", str(tmp_path / "r"), "--out", str(tmp_path / "report"))
    assert report.returncode == 1
    lines = report.stderr.strip().splitlines()
    skipped = [line for line in lines if line.startswith("report: notebook")]
    # every notebook but sensitivity (not a sweep: not applicable, so not reported as unfinished)
    named = {line.split()[2] for line in skipped}
    assert named == {"dataset_profile", "gmm_fits", "confidence_vs_ap", "sampling_over_epochs",
                     "method_comparison", "explorer"}
    assert all("has not finished" in line or "no run has finished" in line for line in skipped)
    assert "Traceback" not in report.stderr
    assert time.monotonic() - started < 30  # no kernel was started for a doomed notebook


def test_killing_a_parallel_sweep_stops_its_workers(tmp_path):
    import psutil

    path = _sweep_file(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "bmxlib.cli", "sweep", "--config",
                                str(path), "--jobs", "2"], env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sweep = tmp_path / "out" / "s"
    deadline = time.monotonic() + 120
    while not any(runs.is_run_dir(p) for p in sweep.glob("method=*")) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    workers = psutil.Process(process.pid).children(recursive=True)
    assert workers  # the pool's processes
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    gone, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive, [p.pid for p in alive]


@pytest.mark.parametrize("keep_checkpoint", [True, False],
                         ids=["with-its-checkpoint", "archived-without-checkpoint"])
def test_resuming_a_finished_run_leaves_it_untouched(tmp_path, balancemix_run, keep_checkpoint,
                                                     capsys):
    # An archived run has no checkpoint; --resume used to take it for a run killed before
    # its first checkpoint, start it again at epoch 1 and overwrite its metrics.
    from bmxlib.cli import main
    from bmxlib.config import from_dict
    from bmxlib.engine import fit

    run_dir = tmp_path / "bm"
    shutil.copytree(balancemix_run, run_dir, ignore=shutil.ignore_patterns(runs.LOCK_FILE))
    if not keep_checkpoint:
        shutil.rmtree(runs.checkpoint_path(run_dir).parent)
    before = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert "is finished (summary.json): nothing to resume" in capsys.readouterr().out
    config = from_dict({**runs.read_config(run_dir), "out_dir": str(tmp_path), "name": "bm"})
    assert fit(config, resume=True) == run_dir  # the API: the same
    after = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before
