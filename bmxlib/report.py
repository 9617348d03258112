"""``bmx report``: execute the notebooks of ``notebooks/`` on a run or sweep directory.

``build_report(dir, out=...)`` runs the applicable notebooks with papermill (a cell
tagged ``parameters`` receives ``run_dir`` / ``sweep_dir`` and ``out_dir``), exports
each executed notebook to HTML with nbconvert and writes ``index.html`` linking the
notebooks, their HTML and PNG figures, and the results table. A failing notebook is
recorded (notebook, cell, error) while the others are still produced.

Layout of ``reports/<name>/``::

    index.html
    <notebook>.ipynb, <notebook>.html     executed notebooks and their HTML
    figures/<notebook>/<figure>.png       what each notebook published
    logs/<notebook>.log                   the kernel process's own stderr
    results.csv, results.md               copied from a sweep directory

The helpers ``comparison_data``, ``results_table_html`` and ``ablation_table_html``
feed the method_comparison notebook; ``explorer_runs`` the explorer.

``python -m bmxlib.report --readme-figures reports/demo docs/img`` copies the README's
figures out of a report.
"""

from __future__ import annotations

import argparse
import html
import math
import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
RUN_NOTEBOOKS = ("gmm_fits", "confidence_vs_ap", "sampling_over_epochs", "explorer")
NOTEBOOKS = ("gmm_fits", "confidence_vs_ap", "sampling_over_epochs", "method_comparison",
             "explorer")
KERNEL = "python3"
CELL_TIMEOUT_S = 900
# (stable name under docs/img, figure inside a report): the README's figures
README_FIGURES = (
    ("gmm_fits.png", "figures/gmm_fits/loss_histograms.png"),
    ("confidence_vs_ap.png", "figures/confidence_vs_ap/confidence_ap_groups.png"),
    ("method_comparison.png", "figures/method_comparison/map_bars.png"),
)
MEASURES = (("mAP", "mAP all"), ("mAP_many", "many"), ("mAP_medium", "medium"),
            ("mAP_few", "few"))
COMPONENTS = (("minority_sampler", "minority sampler"), ("clean_labels", "clean labels"),
              ("relabel", "re-labeling"), ("ambiguous_weighting", "ambiguous weighting"))


class Failure(NamedTuple):
    """A notebook that did not run through: its name, the failing cell and the error.

    ``cell`` is the 0-based index of the failing cell in ``notebooks/<notebook>.ipynb``
    (None when no cell ran, e.g. the kernel did not start); ``error`` holds the exception,
    the cell's execution count ``In [N]`` and the line that raised.
    """

    notebook: str
    cell: int | None
    error: str

    def __str__(self) -> str:
        where = f"cell {self.cell}" if self.cell is not None else "start-up"
        return f"notebook {self.notebook} failed at {where}: {self.error}"


@dataclass
class Job:
    """One notebook of a report: its parameters, or why it does not apply."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    skip_reason: str | None = None


@dataclass
class Outcome:
    job: Job
    notebook: Path | None = None
    html: Path | None = None
    figures: list[Path] = field(default_factory=list)
    failure: Failure | None = None
    seconds: float = 0.0

    @property
    def status(self) -> str:
        if self.job.skip_reason is not None:
            return "skipped"
        return "failed" if self.failure else "ok"


# ======================================================================================
# what a directory holds
# ======================================================================================
def _config(run_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((run_dir / "config.yaml").read_text()) or {}


def _kind(directory: Path) -> str:
    if (directory / "sweep.json").is_file():
        return "sweep"
    if (directory / "config.yaml").is_file():
        return "run"
    raise FileNotFoundError(
        f"{directory} is neither a run directory (config.yaml) nor a sweep directory (sweep.json)"
    )


def _sweep_runs(sweep_dir: Path) -> list[Path]:
    import json

    points = json.loads((sweep_dir / "sweep.json").read_text()).get("points", [])
    runs = [sweep_dir / point["name"] for point in points]
    return [run for run in runs if (run / "config.yaml").is_file()]


def balancemix_runs(directory: str | Path) -> list[Path]:
    """BalanceMix run directories of a sweep in grid order (a run directory: itself, if any)."""
    directory = Path(directory)
    runs = _sweep_runs(directory) if _kind(directory) == "sweep" else [directory]
    return [r for r in runs if _config(r).get("method") == "balancemix"]


def explorer_runs(run_dir: str | Path) -> list[Path]:
    """The runs the explorer offers: the BalanceMix runs of ``run_dir``'s sweep, else itself."""
    run_dir = Path(run_dir)
    siblings = balancemix_runs(run_dir.parent) if (run_dir.parent / "sweep.json").is_file() else []
    siblings = [r for r in siblings if (r / "diagnostics").is_dir() or r == run_dir]
    return siblings if any(r.resolve() == run_dir.resolve() for r in siblings) else [run_dir]


def _run_notebook_reason(name: str, config: dict[str, Any]) -> str | None:
    """Why a BalanceMix notebook does not apply to a run with ``config`` (None: it does)."""
    method = config.get("method")
    if method != "balancemix":
        return f"not a BalanceMix run (method: {method})"
    if name in ("gmm_fits", "explorer") and not config.get("clean_labels", True):
        return "label-wise management is off (clean_labels: false): no mixtures to show"
    if name == "sampling_over_epochs" and not config.get("minority_sampler", True):
        return "the minority sampler is off (minority_sampler: false)"
    return None


def plan_jobs(directory: str | Path, *, notebooks=None) -> tuple[str, Path | None, list[Job]]:
    """(kind "run" or "sweep", the run the per-run notebooks use, the jobs in order)."""
    directory = Path(directory).resolve()
    kind = _kind(directory)
    wanted = list(NOTEBOOKS if notebooks is None else notebooks)
    unknown = [n for n in wanted if n not in NOTEBOOKS]
    if unknown:
        raise ValueError(f"unknown notebook {unknown[0]!r}; choose from {', '.join(NOTEBOOKS)}")
    if kind == "sweep":
        candidates = balancemix_runs(directory)
        run_dir = candidates[0] if candidates else None
    else:
        run_dir = directory
    jobs = []
    for name in wanted:
        if name == "method_comparison":
            jobs.append(Job(name, {"sweep_dir": str(directory)}))
        elif run_dir is None:
            jobs.append(Job(name, skip_reason="the sweep has no BalanceMix run"))
        else:
            reason = _run_notebook_reason(name, _config(run_dir))
            parameters = {"run_dir": str(run_dir)}
            if name == "explorer":
                parameters["interactive"] = False  # papermill: the static default view
            jobs.append(Job(name, parameters, reason))
    return kind, run_dir, jobs


# ======================================================================================
# executing one notebook
# ======================================================================================
def _kernel_manager(cwd: Path, log: Path):
    """A kernel manager starting the kernel in ``cwd`` with its stderr going to ``log``.

    papermill's own ``cwd`` option changes the working directory of this whole process,
    which notebooks executed side by side in threads must not do.
    """
    from jupyter_client import AsyncKernelManager

    class KernelInFolder(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            kw["cwd"] = str(cwd)
            with open(log, "ab") as stream:  # the child keeps its own copy of the handle
                kw["stderr"] = stream
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return KernelInFolder


def _failure_from_error(name: str, err: Exception, executed: Path) -> Failure:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        where = f"In [{err.exec_count}]" + _failing_line(err.traceback)
        cell = _source_cell_index(err.cell_index, executed)
        return Failure(name, cell, f"{err.ename}: {err.evalue} ({where})")
    return Failure(name, None, f"{type(err).__name__}: {' '.join(str(err).split())}")


def _source_cell_index(executed_index: int, executed: Path) -> int:
    """papermill counts its injected-parameters cell; the committed notebook has none."""
    import nbformat

    try:
        cells = nbformat.read(executed, as_version=4).cells
    except (OSError, ValueError):
        return executed_index
    cells = [c for c in cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
    injected = next((i for i, c in enumerate(cells)
                     if "injected-parameters" in c.metadata.get("tags", [])), None)
    return executed_index - 1 if injected is not None and executed_index > injected else \
        executed_index


def _failing_line(traceback: list[str]) -> str:
    """", line N: <code>" of the cell line that raised, from an IPython traceback."""
    for entry in traceback or []:
        text = re.sub(r"\x1b\[[0-9;]*m", "", entry)  # drop ANSI colours
        if text.startswith("Cell In["):
            marked = re.search(r"^-+> *(\d+) (.*)$", text, flags=re.MULTILINE)
            if marked:
                return f", line {marked.group(1)}: {marked.group(2).strip()}"
    return ""


def export_html(notebook: Path) -> Path:
    """Write ``notebook``'s HTML next to it (nbconvert, lab template); returns its path."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(notebook))
    target = notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def execute_job(job: Job, out: Path, *, progress: bool = False) -> Outcome:
    """Execute one notebook into ``out`` (executed notebook, HTML, figures)."""
    import papermill

    outcome = Outcome(job)
    if job.skip_reason is not None:
        return outcome
    start = time.perf_counter()
    notebook = out / f"{job.name}.ipynb"
    figures = out / "figures" / job.name
    log = out / "logs" / f"{job.name}.log"
    for stale in (notebook, notebook.with_suffix(".html"), log):
        stale.unlink(missing_ok=True)
    shutil.rmtree(figures, ignore_errors=True)  # old PNGs must not hide a failure
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(NOTEBOOK_DIR / f"{job.name}.ipynb"), str(notebook),
            parameters={**job.parameters, "out_dir": str(figures)},
            kernel_name=KERNEL, progress_bar=progress, log_output=False,
            execution_timeout=CELL_TIMEOUT_S,
            kernel_manager_class=_kernel_manager(out, log),
        )
    except Exception as err:  # noqa: BLE001 (any failure is reported, the others go on)
        outcome.failure = _failure_from_error(job.name, err, notebook)
    if notebook.is_file():
        outcome.notebook = notebook
        try:
            outcome.html = export_html(notebook)
        except Exception as err:  # noqa: BLE001
            outcome.failure = outcome.failure or Failure(job.name, None, f"HTML export: {err}")
    outcome.figures = sorted(figures.glob("*.png"))
    outcome.seconds = time.perf_counter() - start
    return outcome


# ======================================================================================
# build_report
# ======================================================================================
def build_report(directory: str | Path, *, out: str | Path | None = None, notebooks=None,
                 workers: int = 2, progress: bool = True) -> tuple[Path, list[Failure]]:
    """Execute the applicable notebooks on a run or sweep directory into a report folder.

    Parameters
    ----------
    directory : path
        A run directory (config.yaml) or a sweep directory (sweep.json).
    out : path, optional
        The report folder (default ``reports/<directory name>``).
    notebooks : sequence of str, optional
        A subset of ``NOTEBOOKS`` (default: all that apply).
    workers : int
        Notebooks executed side by side (each in its own kernel).
    progress : bool
        Show a progress bar over the notebooks.

    Returns
    -------
    (index, failures) : (Path of index.html, list of :class:`Failure`)
    """
    from tqdm.auto import tqdm

    directory = Path(directory)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    kind, run_dir, jobs = plan_jobs(directory, notebooks=notebooks)
    out = Path(out) if out is not None else Path("reports") / directory.resolve().name
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    outcomes: dict[str, Outcome] = {}
    runnable = [job for job in jobs if job.skip_reason is None]
    bar = tqdm(total=len(runnable), desc=f"report {out.name}", unit="notebook",
               disable=not progress)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(execute_job, job, out): job for job in runnable}
        for future in as_completed(futures):
            outcome = future.result()
            outcomes[outcome.job.name] = outcome
            bar.set_postfix_str(f"{outcome.job.name} {outcome.status}")
            bar.update()
    bar.close()
    ordered = [outcomes.get(job.name, Outcome(job)) for job in jobs]
    failures = [o.failure for o in ordered if o.failure is not None]
    for failure in failures:
        print(f"report: {failure}", file=sys.stderr)
    index = write_index(out, directory.resolve(), kind, run_dir, ordered)
    return index, failures


# ======================================================================================
# tables (method_comparison and index.html)
# ======================================================================================
def comparison_data(directory: str | Path) -> dict[str, Any]:
    """Results of a sweep (or of one run) for the method_comparison notebook.

    Returns
    -------
    dict with ``axes`` (list of str), ``rows`` (``bmxlib.sweep.results_rows``: mean / std
    of mAP, mAP_many, mAP_medium, mAP_few in [0, 1] per setting), ``curves`` {run label:
    (epochs, test mAP)}, ``memorization`` {run label: (epochs, memorized_noisy, fit_clean)}
    for runs with synthetic noise, ``ablation`` (rows of the BalanceMix-component table) and
    ``summaries`` {run label: summary.json}.
    """
    from .runs import load_run
    from .sweep import collect, results_rows

    directory = Path(directory)
    if _kind(directory) == "sweep":
        axes, records = collect(directory)
        labels = {r["run"]: " / ".join(str(r[a]) for a in axes) for r in records}
    else:
        run = load_run(directory)
        if run.summary is None:
            raise ValueError(f"run {directory} is not finished (no summary.json)")
        axes = ["method"]
        records = [{"method": str(run.config.get("method")), "run": run.name, **run.summary}]
        labels = {run.name: str(run.config.get("method"))}
    if not records:
        raise ValueError(f"{directory} has no finished run (summary.json)")
    root = directory if _kind(directory) == "sweep" else directory.parent
    runs = {r["run"]: load_run(root / r["run"]) for r in records}
    rows = results_rows(axes, records)
    return {
        "axes": axes,
        "rows": rows,
        "curves": {labels[name]: (run.metric("epoch"), run.metric("mAP"))
                   for name, run in runs.items()},
        "memorization": {labels[name]: curve for name, run in runs.items()
                         if (curve := _memorization_curve(run)) is not None},
        "ablation": _ablation_rows(axes, records, rows, runs),
        "summaries": {labels[name]: run.summary for name, run in runs.items()},
    }


def _memorization_curve(run) -> tuple[list[int], list[float], list[float]] | None:
    records = [r for r in run.metrics if r.get("memorized_noisy") is not None]
    if not records:
        return None
    return ([r["epoch"] for r in records], [r["memorized_noisy"] for r in records],
            [r["fit_clean"] for r in records])


def _ablation_rows(axes, records, rows, runs) -> list[dict[str, Any]]:
    """Rows of mixup / BalanceMix runs with the paper's component switches (SPEC §1.6)."""
    keys = [a for a in axes if a != "seed"]
    table = []
    for row in rows:
        member = next(r for r in records if all(str(r[k]) == str(row[k]) for k in keys))
        config = runs[member["run"]].config
        if config.get("method") not in ("mixup", "balancemix"):
            continue
        mixup = config.get("method") == "mixup"
        switches = {label: not mixup and bool(config.get(key, False)) for key, label in COMPONENTS}
        scores = {f"{m}_{s}": row[f"{m}_{s}"] for m, _ in MEASURES for s in ("mean", "std")}
        table.append({**{k: row[k] for k in keys}, "random sampler": True, **switches, **scores,
                      "seeds": row["seeds"]})
    return table


def _percent(mean: float, std: float | None = None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if std is None or math.isnan(std):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def _html_table(header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in body)
    return f'<table class="results"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def results_table_html(rows: list[dict[str, Any]], axes: list[str]) -> str:
    """The paper-style table: mAP all / many / medium / few (%, mean ± std) per setting, then
    the label-management and memorization measures (shares in [0, 1]) where runs have them."""
    keys = [a for a in axes if a != "seed"]
    extras = [(k, label) for k, label in (("selection_precision_mean", "selection precision"),
                                          ("selection_recall_mean", "selection recall"),
                                          ("relabel_accuracy_mean", "re-labeling accuracy"),
                                          ("memorized_noisy_mean", "memorized noisy"),
                                          ("fit_clean_mean", "fit clean"))
              if any(k in r for r in rows)]
    header = keys + [label for _, label in MEASURES] + ["seeds"] + [lab for _, lab in extras]
    body = [[str(r[k]) for k in keys]
            + [_percent(r[f"{m}_mean"], r[f"{m}_std"]) for m, _ in MEASURES] + [str(r["seeds"])]
            + [f"{r[k]:.3f}" if k in r else "–" for k, _ in extras] for r in rows]
    return _html_table(header, body)


def paper_table_html(rows: list[dict[str, Any]], axes: list[str]) -> str:
    """The paper's layout: one row per method, per noise setting the mAP all / many / medium /
    few (%, mean over seeds) side by side. With fewer than two axes: ``results_table_html``."""
    keys = [a for a in axes if a != "seed"]
    if len(keys) < 2:
        return results_table_html(rows, axes)
    row_keys, column_key = [keys[0], *keys[2:]], keys[1]
    columns = list(dict.fromkeys(str(r[column_key]) for r in rows))
    measures = [(m, label) for m, label in MEASURES
                if any(not math.isnan(float(r[f"{m}_mean"])) for r in rows)]
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault(" / ".join(str(r[k]) for k in row_keys), {})[str(r[column_key])] = r
    top = "".join(f'<th colspan="{len(measures)}">{html.escape(c)}</th>' for c in columns)
    sub = "".join(f"<th>{label}</th>" for _ in columns for _, label in measures)
    body = "".join(
        f"<tr><td>{html.escape(name)}</td>" + "".join(
            f"<td>{_percent(by[c][f'{m}_mean']) if c in by else '–'}</td>"
            for c in columns for m, _ in measures) + "</tr>"
        for name, by in cells.items())
    return (f'<table class="results"><thead><tr><th rowspan="2">'
            f"{html.escape(' / '.join(row_keys))}</th>{top}</tr><tr>{sub}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def ablation_table_html(rows: list[dict[str, Any]]) -> str:
    """The component table (✓ / –) of mixup and BalanceMix runs with their mAP."""
    if not rows:
        return "<p>No Mixup or BalanceMix run: no component table.</p>"
    switches = ["random sampler"] + [label for _, label in COMPONENTS]
    keys = [k for k in rows[0] if k not in switches and not k.startswith("mAP") and k != "seeds"]
    header = keys + switches + [label for _, label in MEASURES]
    body = [[str(r[k]) for k in keys] + ["✓" if r[s] else "–" for s in switches]
            + [_percent(r[f"{m}_mean"], r[f"{m}_std"]) for m, _ in MEASURES] for r in rows]
    return _html_table(header, body)


# ======================================================================================
# index.html
# ======================================================================================
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 4px 10px; text-align: left; }
th { background: #eee; }
.ok { color: #007a4d; } .failed { color: #c03b00; font-weight: bold; } .skipped { color: #777; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 560px; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
"""


def _link(path: Path | None, out: Path, text: str) -> str:
    if path is None:
        return "–"
    return f'<a href="{html.escape(path.relative_to(out).as_posix())}">{html.escape(text)}</a>'


def _results_section(directory: Path, kind: str, out: Path) -> str:
    try:
        data = comparison_data(directory)
    except (ValueError, FileNotFoundError, KeyError) as err:
        return f"<p>No results table: {html.escape(str(err))}</p>"
    parts = ["<p>Last-epoch test mAP (%), mean over seeds.</p>",
             paper_table_html(data["rows"], data["axes"]),
             "<p>Per setting, mean ± std over seeds:</p>",
             results_table_html(data["rows"], data["axes"])]
    if kind == "sweep":
        links = []
        for name in ("results.csv", "results.md"):
            if (directory / name).is_file():
                shutil.copyfile(directory / name, out / name)
                links.append(_link(out / name, out, name))
        if links:
            parts.append("<p>Also as " + " and ".join(links) + ".</p>")
    return "".join(parts)


def _notebook_section(outcome: Outcome, out: Path) -> str:
    name, status = outcome.job.name, outcome.status
    parts = [f'<h3 id="{name}">{name} <span class="{status}">[{status}]</span></h3>']
    if status == "skipped":
        parts.append(f"<p>Not applicable: {html.escape(outcome.job.skip_reason or '')}.</p>")
        return "".join(parts)
    if outcome.failure is not None:
        where = f"cell {outcome.failure.cell}" if outcome.failure.cell is not None else "start-up"
        parts.append(f'<p class="failed">Failed at {where}: {html.escape(outcome.failure.error)}'
                     f" (kernel log: {_link(out / 'logs' / f'{name}.log', out, 'log')})</p>")
    parts.append(f"<p>{_link(outcome.html, out, 'HTML')} · "
                 f"{_link(outcome.notebook, out, 'executed notebook')} · "
                 f"{outcome.seconds:.0f} s</p>")
    for figure in outcome.figures:
        ref = html.escape(figure.relative_to(out).as_posix())
        parts.append(f'<figure><a href="{ref}"><img src="{ref}" alt="{figure.stem}"></a>'
                     f"<figcaption>{html.escape(figure.stem)}</figcaption></figure>")
    return "".join(parts)


def write_index(out: Path, directory: Path, kind: str, run_dir: Path | None,
                outcomes: list[Outcome]) -> Path:
    """Write ``out/index.html``: status table, results table and every figure."""
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "failed", "skipped")}
    rows = "".join(
        f'<tr><td><a href="#{o.job.name}">{o.job.name}</a></td>'
        f'<td class="{o.status}">{o.status}</td>'
        f"<td>{_link(o.html, out, 'HTML')}</td><td>{_link(o.notebook, out, 'ipynb')}</td>"
        f"<td>{len(o.figures)}</td></tr>" for o in outcomes)
    run_note = (f"<p>The per-run notebooks show <code>{html.escape(str(run_dir))}</code>.</p>"
                if run_dir is not None else "")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>bmxlib report: "
        f"{html.escape(out.name)}</title><style>{STYLE}</style></head><body>"
        f"<h1>bmxlib report: {html.escape(out.name)}</h1>"
        f"<p>Source {kind}: <code>{html.escape(str(directory))}</code> · generated "
        f"{time.strftime('%Y-%m-%d %H:%M')} · {counts['ok']} ok, {counts['failed']} failed, "
        f"{counts['skipped']} skipped</p>{run_note}"
        f"<h2>Results</h2>{_results_section(directory, kind, out)}"
        f"<h2>Notebooks</h2><table><thead><tr><th>notebook</th><th>status</th><th>HTML</th>"
        f"<th>notebook</th><th>figures</th></tr></thead><tbody>{rows}</tbody></table>"
        + "".join(_notebook_section(o, out) for o in outcomes)
        + "</body></html>\n"
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


# ======================================================================================
# README figures
# ======================================================================================
def copy_readme_figures(report_dir: str | Path, dest: str | Path) -> list[Path]:
    """Copy the README's key figures out of a report under stable names; returns them."""
    report_dir, dest = Path(report_dir), Path(dest)
    sources = [(report_dir / source, dest / name) for name, source in README_FIGURES]
    missing = [str(s) for s, _ in sources if not s.is_file()]
    if missing:
        raise FileNotFoundError(f"figure {missing[0]} is missing (run `make demo` first)")
    dest.mkdir(parents=True, exist_ok=True)
    for source, target in sources:
        shutil.copyfile(source, target)
    return [target for _, target in sources]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bmxlib.report",
                                     description="notebook reports and README figures")
    parser.add_argument("dir", nargs="?", help="run or sweep directory to report on")
    parser.add_argument("--out", help="report folder (default reports/<name>)")
    parser.add_argument("--readme-figures", nargs=2, metavar=("REPORT", "DEST"),
                        help="copy the README figures from REPORT into DEST")
    args = parser.parse_args(argv)
    try:
        if args.readme_figures:
            for path in copy_readme_figures(*args.readme_figures):
                print(path)
            return 0
        if not args.dir:
            parser.error("give a run or sweep directory, or --readme-figures REPORT DEST")
        index, failures = build_report(args.dir, out=args.out)
    except (FileNotFoundError, ValueError) as err:
        print(f"bmxlib.report: error: {err}", file=sys.stderr)
        return 2
    print(f"report written to {index}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
