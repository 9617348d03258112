"""The committed notebooks: their structure, and every one executed once by papermill.

Kernel start-up is slow, so a tiny sweep (BalanceMix and BCE, 2 epochs) is trained and
reported on once per session by ``build_tiny_report``; the ``tiny_report`` and ``bm_run``
fixtures in conftest.py serve it to every test file.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml

from bmxlib import report
from bmxlib.notebook_specs import notebook_specs

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
#: each notebook declares what it needs and publishes in its own metadata["bmxlib"]
SPECS = notebook_specs(NOTEBOOK_DIR)
EXPECTED_FIGURES = {name: list(spec.figures) for name, spec in SPECS.items()}
NAMES = list(EXPECTED_FIGURES)
MAX_CELL_LINES = 12

_BUILT: dict = {}


def build_tiny_report(tmp_path_factory) -> dict:
    """Once per session: train a 2-point tiny sweep and run ``bmx report`` on it."""
    if not _BUILT:
        from conftest import TINY

        from bmxlib import cli
        from bmxlib.sweep import run_sweep

        root = tmp_path_factory.mktemp("report")
        sweep_file = root / "tiny.yaml"
        # bce first: the report must pick the sweep's first BalanceMix point
        sweep_file.write_text(yaml.safe_dump({
            "name": "tiny", "out_dir": str(root / "runs"),
            "base": str(CONFIG_DIR / "digits_balancemix.yaml"),
            # a `setting` axis makes it a (one-level) sensitivity sweep too
            "grid": {"method": ["bce", "balancemix"],
                     "noise": [{"label": "mislabel-40", "noise": "mislabel",
                                "noise_rate": 0.4}],
                     "setting": [{"label": "default"}]},
        }))
        sweep_dir = run_sweep(sweep_file, overrides=list(TINY))
        out = root / "reports" / "tiny"
        status = cli.main(["report", str(sweep_dir), "--out", str(out)])
        _BUILT.update(root=root, sweep_dir=sweep_dir, out=out, status=status)
    return dict(_BUILT)


#: the tiny sweep's BalanceMix point (the per-run notebooks' run)
BM_POINT = "method=balancemix__noise=mislabel-40__setting=default"


def _read(name: str):
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


def _code_cells(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


# --- committed notebooks -----------------------------------------------------------------
def test_the_notebook_set_is_the_one_the_report_runs():
    assert {p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")} == set(report.NOTEBOOKS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_declares_what_it_needs_consistently_with_its_parameters(name):
    """metadata["bmxlib"]: figures it publishes, a parameters cell taking what it needs,
    and diagnostics keys that the modules writing them define."""
    import bmxlib.methods.balancemix as balancemix
    import bmxlib.steps as steps

    spec = SPECS[name]
    assert spec.figures, f"{name}: declares no figures"
    first = _code_cells(_read(name))[0].source
    assert ("run_dir =" if spec.needs == "run" else "sweep_dir =") in first
    written = {value for module in (balancemix, steps) for key, value in vars(module).items()
               if key.isupper() and isinstance(value, str)}
    assert set(spec.diagnostics) <= written, set(spec.diagnostics) - written
    for key in spec.switches:  # a switch is a config key
        from bmxlib.config import Config

        assert hasattr(Config(), key), key


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_committed_without_outputs_and_with_the_python3_kernel(name):
    nb = _read(name)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"] == KERNELSPEC
    for cell in _code_cells(nb):
        assert cell.outputs == [], f"{name}: a code cell has committed outputs"
        assert cell.execution_count is None, f"{name}: a code cell has an execution count"


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_first_code_cell_is_the_literal_parameters_cell(name):
    import papermill

    first = _code_cells(_read(name))[0]
    assert "parameters" in first.metadata.get("tags", [])
    names = []
    for statement in ast.parse(first.source).body:
        assert isinstance(statement, ast.Assign), f"{name}: not an assignment: {statement}"
        assert len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name)
        ast.literal_eval(statement.value)  # raises unless a literal
        names.append(statement.targets[0].id)
    assert "out_dir" in names and ("run_dir" in names or "sweep_dir" in names)
    # papermill must understand the cell too (it cannot parse e.g. '=' inside strings)
    inferred = papermill.inspect_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"))
    assert list(inferred) == names


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_reads_as_a_narrative_over_the_library(name):
    nb = _read(name)
    code = _code_cells(nb)
    sources = "\n".join(cell.source for cell in code)
    assert "from bmxlib import plots" in sources
    if name not in ("method_comparison", "sensitivity"):
        assert "load_run(run_dir)" in sources
    assert sum(cell.cell_type == "markdown" for cell in nb.cells) >= 3
    for cell in code:
        tree = ast.parse(cell.source)
        assert not any(isinstance(n, (ast.FunctionDef, ast.Lambda, ast.ClassDef))
                       for n in ast.walk(tree)), f"{name}: define functions in bmxlib"
        assert len(cell.source.splitlines()) <= MAX_CELL_LINES, f"{name}: a long cell"
    last = code[-1]
    assert "check" in last.metadata.get("tags", [])
    assert last.source.rstrip().endswith('print("checks passed")')
    for figure in EXPECTED_FIGURES[name]:
        assert f'"{figure}"' in sources


# --- executed by `bmx report` ---------------------------------------------------------------
def test_report_exit_status_is_zero(tiny_report):
    assert tiny_report["status"] == 0


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_notebook_executed_without_error_and_its_check_cell_passed(name, tiny_report):
    executed = nbformat.read(tiny_report["out"] / f"{name}.ipynb", as_version=4)
    code = _code_cells(executed)
    injected = [c for c in code if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and str(tiny_report["sweep_dir"]) in injected[0].source
    for cell in code:
        assert cell.execution_count is not None, f"{name}: a cell did not run"
        assert not [o for o in cell.outputs if o.output_type == "error"]
    check = code[-1]
    assert "check" in check.metadata.get("tags", [])
    printed = "".join(o.get("text", "") for o in check.outputs if o.output_type == "stream")
    assert "checks passed" in printed


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_figures_are_written_and_are_real_images(name, tiny_report):
    from matplotlib.image import imread

    folder = tiny_report["out"] / "figures" / name
    assert sorted(p.stem for p in folder.glob("*.png")) == sorted(EXPECTED_FIGURES[name])
    for stem in EXPECTED_FIGURES[name]:
        pixels = imread(folder / f"{stem}.png")[..., :3]
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 300, f"{stem}: tiny image"
        inked = (pixels.mean(axis=-1) < 0.9).mean()
        assert 0.02 < inked < 0.9, f"{stem}: {inked:.1%} of the pixels are inked"
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, f"{stem}: too few colours"


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_html_is_exported_with_the_figures_embedded(name, tiny_report):
    page = (tiny_report["out"] / f"{name}.html").read_text(encoding="utf-8")
    assert "checks passed" in page
    assert page.count("data:image/png;base64") >= len(EXPECTED_FIGURES[name])


def test_explorer_rendered_the_static_view_only(tiny_report):
    executed = json.loads((tiny_report["out"] / "explorer.ipynb").read_text())
    kinds = {key for cell in executed["cells"] for out in cell.get("outputs", [])
             for key in out.get("data", {})}
    assert "image/png" in kinds
    assert "application/vnd.jupyter.widget-view+json" not in kinds
