"""``bmx --help`` answers at once: the command line imports torch only inside the
subcommands that train, and `bmx config --list` documents every key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest

from bmxlib import cli
from bmxlib.config import Config

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _fastest(code: str, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=ENV, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def test_importing_the_command_line_costs_about_an_empty_interpreter():
    bare = _fastest("pass")
    cli_import = _fastest("import bmxlib.cli")
    # torch alone is 10-50x an empty interpreter; the command line's own modules ~2x
    assert cli_import < 4 * bare, (cli_import, bare)


# (`bmx config --list` reads the method registry, whose classes live in torch-importing
# modules: it may import torch; help and usage errors may not)
@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["sweep", "--help"],
                                  ["trian"], ["train", "--bogus"]])
def test_help_and_usage_errors_do_not_import_torch(argv):
    code = ("import sys, bmxlib.cli as c\ncode = c.main(sys.argv[1:])\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code)")
    out = subprocess.run([sys.executable, "-c", code, *argv], env=ENV, capture_output=True,
                         text=True).stdout.strip().splitlines()[-1]
    assert out.split()[0] == "NO-TORCH"


def test_config_list_prints_every_key_default_and_comment(capsys):
    assert cli.main(["config", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" = ")[0] for line in lines] == [f.name for f in fields(Config)]
    assert "seed = 0  # training seed" in "\n".join(lines)
    assert all("  # " in line for line in lines)  # every key has its comment
    assert "manifest_allow_outside_root = False  # manifest:" in "\n".join(lines)


def test_train_help_points_at_the_key_list(capsys):
    assert cli.main(["train", "--help"]) == 0
    assert "bmx config --list" in capsys.readouterr().out
