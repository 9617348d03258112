"""`bmx`: bad input is one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bmxlib.cli import main
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


def bmx(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bmxlib.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "--config", "configs/digits_bce.yaml", "epochz=1"], "epochz"),
        (["train", "--config", "configs/digits_bce.yaml", "epochs=-1"], "epochs"),
        (["train", "--config", "configs/digits_bce.yaml", "lr=fast"], "lr"),
        (["train", "--config", "missing.yaml"], "missing.yaml"),
        (["train", "--resume", "runs/never"], "never"),
        (["data", "stats", "imagenet"], "imagenet"),
    ],
    ids=["unknown-key", "out-of-range", "wrong-type", "missing-file", "resume-missing",
         "unknown-dataset"],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, needle):
    result = bmx(*args, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bmx: error:") and needle in lines[0]
    assert "Traceback" not in result.stderr
    assert not (ROOT / "runs" / "never").exists()


def test_corrupt_checkpoint_is_one_line(tmp_path, capsys):
    run = tmp_path / "r"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("epochs: 2\n")
    (run / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    assert main(["train", "--resume", str(run)]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_train_writes_a_complete_run(tmp_path, capsys):
    code = main(["train", "--config", str(ROOT / "configs/digits_bce.yaml"), *TINY,
                 "epochs=1", f"out_dir={tmp_path}"])
    assert code == 0
    run = tmp_path / "digits_bce"
    assert (run / "summary.json").is_file() and (run / "checkpoints" / "last.pt").is_file()
    assert str(run) in capsys.readouterr().out
    # a second run with the same name is refused, leaving the first intact
    assert main(["train", "--config", str(ROOT / "configs/digits_bce.yaml"), *TINY,
                 "epochs=1", f"out_dir={tmp_path}"]) == 2
    assert (run / "summary.json").is_file()


def test_data_stats_prints_counts_ratios_and_groups(capsys):
    assert main(["data", "stats", "digits-lt"]) == 0
    out = capsys.readouterr().out
    assert "8000 instances" in out and "many" in out and "few" in out
