"""docs/extending.md's worked examples work as written, with no edit outside their files.

The method: the doc's module is added to a copy of the package (nothing else changes) and
a fresh interpreter finds it in the registry, the config keys, validation and the loss.
The notebook: a notebook carrying the doc's metadata is planned by ``report.plan_jobs``
from its own metadata alone.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import yaml
from test_architecture import check_architecture

from bmxlib import report, runs

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"


def _block(marker: str) -> str:
    """The fenced code block that follows ``<!-- test_extending: marker -->`` in the doc."""
    match = re.search(rf"<!-- test_extending: {re.escape(marker)} -->\s*```\w*\n(.*?)```",
                      DOC.read_text(), re.S)
    assert match, f"docs/extending.md has no block marked {marker!r}"
    return match.group(1)


def test_the_docs_method_needs_only_its_own_file(tmp_path):
    source = _block("method")
    target = source.splitlines()[0].removeprefix("# ").strip()
    assert target == "bmxlib/methods/scaled_bce.py"
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "bmxlib", copy / "bmxlib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (copy / target).write_text(source)
    assert check_architecture(copy / "bmxlib") == []  # the new room keeps every rule
    script = textwrap.dedent("""
        import numpy as np
        import torch
        import torch.nn.functional as F

        import bmxlib
        from bmxlib.config import METHODS, Config, ConfigError, load_config
        from bmxlib.methods import REGISTRY, TrainingData, build_method

        assert bmxlib.__file__.startswith(%r), bmxlib.__file__
        assert "scaled_bce" in METHODS and "scaled_bce" in REGISTRY
        assert Config().bce_scale == 1.0
        config = load_config(None, ["method=scaled_bce", "bce_scale=0.5", "protocol=custom"])
        labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        data = TrainingData(labels, labels.numpy().astype(np.uint8),
                            np.zeros((2, 2), dtype=bool), noise_known=False)
        method = build_method(config, data, model=torch.nn.Identity())
        logits = torch.tensor([[2.0, -1.0], [0.5, 1.5]])
        expected = F.binary_cross_entropy_with_logits(0.5 * logits, labels, reduction="none")
        assert torch.allclose(method.loss(logits, labels), expected)
        try:
            load_config(None, ["method=scaled_bce", "bce_scale=50"])
        except ConfigError as err:
            assert "bce_scale" in str(err) and "out of range" in str(err), err
        else:
            raise AssertionError("bce_scale=50 was accepted")
        print("ok")
    """) % str(copy)
    done = subprocess.run([sys.executable, "-c", script], cwd=copy, capture_output=True,
                          text=True, env={"PYTHONPATH": str(copy), "OMP_NUM_THREADS": "1",
                                          "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def _notebook(folder: Path, name: str, metadata: dict) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"),
                nbformat.v4.new_code_cell('run_dir = ""\nout_dir = ""',
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('print("checks passed")', metadata={"tags": ["check"]})]
    nb.metadata.update(metadata)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _finished_run(path: Path, **config) -> Path:
    path.mkdir(parents=True)
    (path / runs.CONFIG_FILE).write_text(yaml.safe_dump(config))
    (path / runs.SUMMARY_FILE).write_text(json.dumps({"epochs": 1, "mAP": 0.5}))
    return path


def test_the_docs_notebook_is_planned_from_its_own_metadata(tmp_path):
    metadata = json.loads(_block("notebook metadata"))
    notebooks = tmp_path / "notebooks"
    _notebook(notebooks, "sampler_entropy", metadata)
    sweep = tmp_path / "sweep"
    _finished_run(sweep / "bce", method="bce")
    _finished_run(sweep / "bm", method="balancemix")
    _finished_run(sweep / "bm_off", method="balancemix", minority_sampler=False)
    (sweep / runs.SWEEP_FILE).write_text(json.dumps(
        {"points": [{"name": n, "labels": {"method": n}} for n in ("bce", "bm", "bm_off")]}))

    _, run_dir, jobs = report.plan_jobs(sweep, notebook_dir=notebooks)
    assert [job.name for job in jobs] == ["sampler_entropy"]
    assert jobs[0].skip_reason is None and jobs[0].source == notebooks / "sampler_entropy.ipynb"
    assert jobs[0].parameters == {"run_dir": str((sweep / "bm").resolve())} == \
        {"run_dir": str(run_dir)}
    # its switch and its method, declared in its metadata, decide where it does not apply
    _, _, (off,) = report.plan_jobs(sweep / "bm_off", notebook_dir=notebooks)
    assert off.skip_reason == "the minority sampler is off (minority_sampler: false)"
    _, _, (bce,) = report.plan_jobs(sweep / "bce", notebook_dir=notebooks)
    assert bce.skip_reason == "not a BalanceMix run (method: bce)"
    # the committed notebooks are untouched by it
    assert "sampler_entropy" not in report.NOTEBOOKS
