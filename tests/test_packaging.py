"""Packaging: environment.yml and pyproject.toml list the same dependencies."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda package name -> PyPI name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!;\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        pip_names |= {_name(r) for r in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    conda = {CONDA_NAMES.get(n, n) for n in conda}
    assert conda == pip_names


def test_torch_is_pinned_for_linux_x86_64():
    text = (ROOT / "pyproject.toml").read_text()
    assert "torch==2.14.1; platform_system == 'Linux' and platform_machine == 'x86_64'" in text
    assert "torchvision==0.29.1; platform_system == 'Linux'" in text


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_conda_environment_uses_conda_forge_only():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]  # PyTorch's own channel is no longer published
    names = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    assert {"pytorch", "torchvision"} <= names  # conda-forge's names


def test_jupyterlab_is_in_the_notebooks_extra_and_environment_yml():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "jupyterlab" in {_name(r) for r in project["optional-dependencies"]["notebooks"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "jupyterlab" in {_name(d) for d in env["dependencies"] if isinstance(d, str)}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_roots_jupyterlab_at_the_repository():
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), "lab"], capture_output=True, text=True,
                         check=True).stdout
    lab = " ".join(dry.split("\\\n")).splitlines()
    (command,) = [line for line in lab if "jupyter lab" in line]
    assert command.split()[0].endswith(".venv/bin/jupyter")  # the project's environment
    assert f'--ServerApp.root_dir="{ROOT}"' in command
    assert ("--allow-root" in command) == (os.getuid() == 0)
    assert "install" not in " ".join(line for line in lab if "jupyterlab" in line)
