"""bmxlib.report: `bmx report` on a tiny sweep, failures, skipping, README figures."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml
from test_notebooks import EXPECTED_FIGURES, NOTEBOOK_DIR

from bmxlib import cli, plots, report, results, runs
from bmxlib.steps import GROUP_AP, GROUP_CONFIDENCE


@pytest.fixture(scope="session")
def bce_run(tiny_report) -> Path:
    return tiny_report["sweep_dir"] / "method=bce__noise=mislabel-40__setting=default"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href") and not attrs["href"].startswith("#"):
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs["src"])


def _links(index: Path) -> _Links:
    parser = _Links()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser


# --- the report of the tiny sweep -------------------------------------------------------
def test_index_links_resolve_to_existing_files(tiny_report):
    out = tiny_report["out"]
    found = _links(out / "index.html")
    assert found.links and found.images
    for target in found.links + found.images:
        assert "://" not in target and not target.startswith("/"), f"absolute link {target}"
        assert (out / target).is_file(), f"index.html links to missing {target}"
    for name, figures in EXPECTED_FIGURES.items():
        assert f"{name}.html" in found.links and f"{name}.ipynb" in found.links
        for figure in figures:
            assert f"figures/{name}/{figure}.png" in found.images


def test_index_shows_the_results_table_and_every_notebook_ok(tiny_report, bm_run):
    page = (tiny_report["out"] / "index.html").read_text(encoding="utf-8")
    assert f"The per-run notebooks show <code>{bm_run.resolve()}</code>" in page
    assert "<h2>Results</h2>" in page and "mAP all" in page
    assert "<td>bce</td>" in page and "<td>balancemix</td>" in page
    assert page.count('class="ok"') >= 2 * len(EXPECTED_FIGURES)
    assert "failed</td>" not in page
    assert (tiny_report["out"] / "results.csv").is_file()
    # one seed per setting: the paper layout would repeat the same numbers, so one table
    results_part = page[page.index("<h2>Results</h2>"):page.index("<h2>Notebooks</h2>")]
    assert results_part.count('<table class="results">') == 1


def test_results_tables_show_the_paper_layout_only_when_it_adds_something():
    def row(method, noise, seeds):
        scores = {f"{m}_{s}": 0.5 for m, _ in results.MEASURES for s in ("mean", "std")}
        return {"method": method, "noise": noise, "seeds": seeds, **scores}

    axes = ["method", "noise"]
    for seeds, tables in ((1, 1), (3, 2)):
        rows = [row(m, n, seeds) for m in ("bce", "balancemix") for n in ("clean", "flip-40")]
        html = results.comparison_tables_html(rows, axes)
        assert html.count('<table class="results">') == tables, seeds
    # one axis: the paper layout is the per-setting table itself
    one_axis = results.comparison_tables_html([row("bce", "clean", 3)], ["method"])
    assert one_axis.count('<table class="results">') == 1


def test_failing_notebook_is_named_with_its_cell_and_the_others_are_produced(
        tiny_report, bm_run, tmp_path, monkeypatch, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(bm_run, broken, ignore=shutil.ignore_patterns("checkpoints"))
    shutil.rmtree(broken / "diagnostics")
    monkeypatch.setattr(report, "NOTEBOOKS", ("gmm_fits", "method_comparison"))
    returned = {}
    real_build = report.build_report

    def recording_build(*args, **kwargs):
        returned["value"] = real_build(*args, **kwargs)
        return returned["value"]

    monkeypatch.setattr(report, "build_report", recording_build)
    out = tmp_path / "reports" / "broken"
    assert cli.main(["report", str(broken), "--out", str(out)]) == 1
    _, failures = returned["value"]
    assert len(failures) == 1
    notebook, cell, error = failures[0]
    assert notebook == "gmm_fits"
    committed = nbformat.read(NOTEBOOK_DIR / "gmm_fits.ipynb", as_version=4).cells
    assert "plots.default_epochs(" in committed[cell].source  # the cell that raised
    assert error.startswith("ValueError") and "no diagnostics" in error and "line" in error
    assert "notebook gmm_fits failed at cell" in capsys.readouterr().err
    # the failing notebook is still written (with its error), the other one completely
    assert (out / "gmm_fits.ipynb").is_file() and (out / "gmm_fits.html").is_file()
    plots.check_figures(out / "figures" / "method_comparison",
                        ["map_bars", "map_curves", "memorization_curves"])
    page = (out / "index.html").read_text(encoding="utf-8")
    assert f"Failed at cell {cell}" in page and "no diagnostics" in page
    for target in _links(out / "index.html").links:
        assert (out / target).is_file()


def test_confidence_notebook_defaults_to_evaluated_epochs(bm_run, tmp_path, monkeypatch):
    """Under eval_every > 1 only the evaluated epochs have group AP; the notebook picked its
    default epochs among all epochs with diagnostics and failed on a 400-epoch run. Here the
    last epoch loses its evaluation, so the default (the last epoch) has no group AP."""
    run_dir = tmp_path / "run"
    shutil.copytree(bm_run, run_dir, ignore=shutil.ignore_patterns("checkpoints"))
    last = max(runs.load_run(run_dir).diagnostic_epochs)
    path = runs.diagnostics_path(run_dir, last)
    arrays = {k: v for k, v in np.load(path).items() if k not in (GROUP_AP, GROUP_CONFIDENCE)}
    np.savez(path, **arrays)
    monkeypatch.setattr(report, "NOTEBOOKS", ("confidence_vs_ap",))
    out = tmp_path / "report"
    assert cli.main(["report", str(run_dir), "--out", str(out)]) == 0
    executed = nbformat.read(out / "confidence_vs_ap.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code"
                      for o in c.outputs if o.output_type == "stream")
    assert f"epochs [{last - 1}]" in printed and "checks passed" in printed


def test_non_balancemix_run_gets_the_profile_and_method_comparison_only(bce_run, tmp_path):
    out = tmp_path / "bce-report"
    index, failures = report.build_report(bce_run, out=out, progress=False)
    assert failures == []
    assert sorted(p.stem for p in out.glob("*.ipynb")) == ["dataset_profile", "method_comparison"]
    page = index.read_text(encoding="utf-8")
    assert page.count("Not applicable: not a BalanceMix run (method: bce)") == 4
    assert page.count("Not applicable: not a sensitivity sweep") == 1


# --- planning (no kernel) ----------------------------------------------------------------
def _fake_run(path: Path, **config) -> Path:
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "summary.json").write_text(json.dumps({"epochs": 1, "mAP": 0.5}))  # finished
    return path


def _fake_sweep(root: Path, points: dict[str, dict]) -> Path:
    for name, config in points.items():
        _fake_run(root / name, **config)
    (root / "sweep.json").write_text(json.dumps(
        {"points": [{"name": n, "labels": {"method": n}} for n in points]}))
    return root


@pytest.mark.parametrize("inside", ["notebooks", "run"])
def test_a_report_folder_never_lies_over_its_inputs(bce_run, tmp_path, inside):
    """`--out notebooks` once replaced the source notebooks by their executed copies;
    `--out RUN/x` wrote the report into the run it reads."""
    notebooks = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, notebooks)
    before = {p.name: p.read_bytes() for p in notebooks.glob("*.ipynb")}
    out = notebooks if inside == "notebooks" else bce_run / "report"
    with pytest.raises(ValueError, match="lies in the"):
        report.build_report(bce_run, out=out, notebook_dir=notebooks, progress=False)
    assert {p.name: p.read_bytes() for p in notebooks.glob("*.ipynb")} == before
    assert not (bce_run / "report").exists()


def test_a_report_folder_that_is_a_file_is_one_line(bce_run, tmp_path):
    (tmp_path / "file").write_text("kept")
    with pytest.raises(NotADirectoryError, match=r"^the report folder \(--out\) .*file is a file"):
        report.build_report(bce_run, out=tmp_path / "file", progress=False)
    assert (tmp_path / "file").read_text() == "kept"


def test_plan_picks_the_first_balancemix_point_of_a_sweep(tmp_path):
    sweep = _fake_sweep(tmp_path / "s", {"bce": {"method": "bce"},
                                         "bm1": {"method": "balancemix"},
                                         "bm2": {"method": "balancemix"}})
    (sweep / "bm1" / "diagnostics").mkdir()  # the explorer offers runs with diagnostics
    kind, run_dir, jobs = report.plan_jobs(sweep)
    assert kind == "sweep" and run_dir == (sweep / "bm1").resolve()
    params = {job.name: job.parameters for job in jobs}
    assert params["method_comparison"] == {"sweep_dir": str(sweep.resolve())}
    assert params["gmm_fits"] == {"run_dir": str(run_dir)}
    assert params["explorer"]["interactive"] is False
    assert params["dataset_profile"] == {"run_dir": str(run_dir)}
    reasons = {job.name: job.skip_reason for job in jobs}
    assert reasons.pop("sensitivity") == "not a sensitivity sweep (no 'setting' axis)"
    assert all(reason is None for reason in reasons.values())
    assert runs.explorer_runs(sweep / "bm2") == [sweep / "bm1", sweep / "bm2"]


def test_plan_skips_run_notebooks_without_a_balancemix_run(tmp_path):
    sweep = _fake_sweep(tmp_path / "s", {"bce": {"method": "bce"}, "asl": {"method": "asl"}})
    _, run_dir, jobs = report.plan_jobs(sweep)
    assert run_dir is None
    reasons = {job.name: job.skip_reason for job in jobs}
    assert reasons.pop("method_comparison") is None
    assert reasons.pop("dataset_profile") is None  # any finished run has a profile
    assert reasons.pop("sensitivity") == "not a sensitivity sweep (no 'setting' axis)"
    assert set(reasons.values()) == {"the sweep has no BalanceMix run"}


@pytest.mark.parametrize(
    ("config", "skipped"),
    [({"clean_labels": False}, {"gmm_fits", "explorer", "sensitivity"}),
     ({"minority_sampler": False}, {"sampling_over_epochs", "sensitivity"}),
     ({}, {"sensitivity"})],  # sensitivity needs a sweep with a 'setting' axis
    ids=["no-clean-labels", "no-minority-sampler", "full"],
)
def test_plan_skips_notebooks_of_switched_off_components(tmp_path, config, skipped):
    run = _fake_run(tmp_path / "run", method="balancemix", **config)
    _, _, jobs = report.plan_jobs(run)
    assert {job.name for job in jobs if job.skip_reason} == skipped


def test_plan_rejects_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a run directory"):
        report.plan_jobs(tmp_path)
    run = _fake_run(tmp_path / "run", method="bce")
    with pytest.raises(ValueError, match="unknown notebook 'nope'"):
        report.plan_jobs(run, notebooks=["nope"])
    with pytest.raises(ValueError, match="workers"):
        report.build_report(run, out=tmp_path / "r", workers=0)
    assert cli.main(["report", str(tmp_path / "missing")]) == 2


# --- the explorer widget (no kernel) ------------------------------------------------------
def test_explorer_widget_redraws_on_every_control(bm_run, capsys):
    box = plots.explorer_widget([bm_run], run_dir=f"{bm_run}/", class_index=0, label_value=1)
    (run_box, class_box), (epoch_box, value_box) = (c.children for c in box.children[:2])
    first = box.last_figure
    # four panels, the last with the oversampling on a right axis of its own
    assert len(first.axes) == 5 and "class 0 · positive" in first.axes[0].get_title()
    class_box.value = 3
    assert "class 3 · positive" in box.last_figure.axes[0].get_title()
    value_box.value = 0
    assert "class 3 · negative" in box.last_figure.axes[0].get_title()
    epoch_box.value = 1
    assert "epoch 1" in box.last_figure.axes[0].get_title()
    assert run_box.value == str(bm_run)
    assert runs.explorer_runs(bm_run) == [bm_run]


# --- README figures ----------------------------------------------------------------------
def test_readme_figures_are_copied_under_stable_names(tiny_report, tmp_path, capsys):
    dest = tmp_path / "docs" / "img"
    assert report.main(["--readme-figures", str(tiny_report["out"]), str(dest)]) == 0
    names = sorted(p.name for p in dest.iterdir())
    assert names == ["confidence_vs_ap.png", "gmm_fits.png", "method_comparison.png"]
    assert str(dest / "gmm_fits.png") in capsys.readouterr().out
    assert report.main(["--readme-figures", str(tmp_path / "nothing"), str(dest)]) == 2


def test_no_code_html_keeps_figures_and_drops_the_code(tiny_report, tmp_path):
    executed = tmp_path / "gmm_fits.ipynb"
    shutil.copyfile(tiny_report["out"] / "gmm_fits.ipynb", executed)
    with_code = report.export_html(executed).read_text(encoding="utf-8")
    without = report.export_html(executed, no_code=True).read_text(encoding="utf-8")
    # the code is syntax-highlighted: look for the identifier, not the call's text
    assert ">load_run<" in with_code and ">load_run<" not in without
    assert without.count("<img") == with_code.count("<img") > 0
    assert "--no-code" in cli.build_parser().format_help() or cli.main(
        ["report", "--help"]) == 0
