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


# --- the repository stands alone ---------------------------------------------------------
OUTSIDE = "../" + "shared"  # spelled in two parts so this file does not match itself
METHOD_REFERENCE = re.compile(r"docs/method\.md §(\d+(?:\.\d+)*)")
METHOD_HEADING = re.compile(r"^#+ §(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)


def _tracked_text_files() -> list[Path]:
    """The files git tracks (the files a clone has), text only."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    names = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True,
                           check=True).stdout.decode().split("\0")
    files = []
    for name in filter(None, names):
        path = ROOT / name
        if path.is_file() and b"\0" not in path.read_bytes()[:4096]:
            files.append(path)
    return files


def test_no_tracked_file_refers_to_a_path_outside_the_repository():
    offenders = [str(p.relative_to(ROOT)) for p in _tracked_text_files()
                 if OUTSIDE in p.read_text(errors="replace")]
    assert not offenders, f"{OUTSIDE} is not in a clone; cite docs/method.md instead: {offenders}"


def test_every_cited_method_section_exists():
    sections = set(METHOD_HEADING.findall((ROOT / "docs" / "method.md").read_text()))
    assert {"1", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "2", "3", "4", "5", "11"} <= sections
    cited = {}
    for path in _tracked_text_files():
        for number in METHOD_REFERENCE.findall(path.read_text(errors="replace")):
            cited.setdefault(number, str(path.relative_to(ROOT)))
    missing = {n: where for n, where in cited.items() if n not in sections}
    assert not missing, f"docs/method.md has no section for these citations: {missing}"
