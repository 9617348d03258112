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

The tables come from ``bmxlib.results``, the directory layouts from ``bmxlib.runs``.

``python -m bmxlib.report --readme-figures reports/demo docs/img`` copies the README's
figures out of a report.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from . import results, runs
from .io import make_folder
from .notebook_specs import NotebookSpec, notebook_specs

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
#: the notebooks of notebooks/ in report order; each declares what it needs in its own
#: metadata (``bmxlib.notebook_specs``)
NOTEBOOKS = tuple(notebook_specs(NOTEBOOK_DIR))
#: how skip reasons name a method
METHOD_LABELS = {"balancemix": "BalanceMix"}
KERNEL = "python3"
CELL_TIMEOUT_S = 900
# (stable name under docs/img, figure inside a report): the README's figures
README_FIGURES = (
    ("gmm_fits.png", "figures/gmm_fits/loss_histograms.png"),
    ("confidence_vs_ap.png", "figures/confidence_vs_ap/confidence_ap_groups.png"),
    ("method_comparison.png", "figures/method_comparison/map_bars.png"),
)


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
    unfinished: bool = False  # skipped because its run has not finished (yet)
    source: Path | None = None  # the notebook file (default: NOTEBOOK_DIR/<name>.ipynb)


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
def _run_notebook_reason(spec: NotebookSpec, config: dict[str, Any]) -> str | None:
    """Why a per-run notebook does not apply to a run with ``config`` (None: it does)."""
    method = config.get("method")
    if spec.method is not None and method != spec.method:
        return f"not a {METHOD_LABELS.get(spec.method, spec.method)} run (method: {method})"
    return next((why for key, why in spec.switches.items() if not config.get(key, True)), None)


def plan_jobs(directory: str | Path, *, notebooks=None,
              notebook_dir: str | Path | None = None) -> tuple[str, Path | None, list[Job]]:
    """(kind "run" or "sweep", the run the per-run notebooks use, the jobs in order).

    Each notebook's own metadata says what it needs (``bmxlib.notebook_specs``); a sweep's
    per-run notebooks take its representative run (``runs.representative_run``).
    ``notebook_dir``: another folder of notebooks (default ``NOTEBOOK_DIR``).
    """
    directory = Path(directory).resolve()
    kind = runs.directory_kind(directory)
    specs = notebook_specs(NOTEBOOK_DIR if notebook_dir is None else notebook_dir)
    names = NOTEBOOKS if notebook_dir is None else tuple(specs)
    wanted = list(names if notebooks is None else notebooks)
    unknown = [n for n in wanted if n not in names or n not in specs]
    if unknown:
        raise ValueError(f"unknown notebook {unknown[0]!r}; choose from {', '.join(names)}")
    run_dir = runs.representative_run(directory) if kind == "sweep" else directory
    finished_runs = [r for r in runs.run_dirs(directory) if runs.is_finished(r)]
    sweep_axes = runs.load_sweep(directory).axes if kind == "sweep" else []
    jobs = []
    for name in wanted:
        spec = specs[name]
        job = _sweep_job(spec, directory, sweep_axes, bool(finished_runs)) \
            if spec.needs == "sweep" else _run_job(spec, directory, kind, run_dir, finished_runs)
        job.source = spec.path
        jobs.append(job)
    return kind, run_dir, jobs


def _sweep_job(spec: NotebookSpec, directory: Path, axes: list[str], finished: bool) -> Job:
    missing = [axis for axis in spec.axes if axis not in axes]
    if missing:
        return Job(spec.name, skip_reason=f"not a {spec.name} sweep (no {missing[0]!r} axis)")
    if not finished:
        return Job(spec.name, skip_reason="no run has finished yet (no summary)",
                   unfinished=True)
    return Job(spec.name, {"sweep_dir": str(directory), **spec.parameters})


def _run_job(spec: NotebookSpec, directory: Path, kind: str, run_dir: Path | None,
             finished_runs: list[Path]) -> Job:
    if spec.method is None:  # any finished run: the representative one when finished
        profiled = run_dir if run_dir is not None and runs.is_finished(run_dir) else \
            (finished_runs[0] if finished_runs else None)
        if profiled is None:
            return Job(spec.name, skip_reason="no run has finished yet (no summary)",
                       unfinished=True)
        return Job(spec.name, {"run_dir": str(profiled), **spec.parameters})
    if kind == "sweep" and spec.method != runs.REPRESENTATIVE_METHOD:
        run_dir = runs.representative_run(directory, method=spec.method)
    if run_dir is None:
        label = METHOD_LABELS.get(spec.method, spec.method)
        return Job(spec.name, skip_reason=f"the sweep has no {label} run")
    if not runs.is_finished(run_dir):
        return Job(spec.name, skip_reason=f"run {run_dir.name} has not finished; resume it "
                   f"with: bmx train --resume {run_dir}", unfinished=True)
    reason = _run_notebook_reason(spec, runs.read_config(run_dir))
    return Job(spec.name, {"run_dir": str(run_dir), **spec.parameters}, reason)


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


def export_html(notebook: Path, *, no_code: bool = False) -> Path:
    """Write ``notebook``'s HTML next to it (nbconvert, lab template); returns its path.

    ``no_code``: nbconvert's no-input export — the narration, tables and figures without
    the code cells, for a report to publish.
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=no_code, exclude_input_prompt=no_code,
                            exclude_output_prompt=no_code)
    body, _ = exporter.from_filename(str(notebook))
    target = notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def execute_job(job: Job, out: Path, *, progress: bool = False,
                no_code: bool = False) -> Outcome:
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
            str(job.source or NOTEBOOK_DIR / f"{job.name}.ipynb"), str(notebook),
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
            outcome.html = export_html(notebook, no_code=no_code)
        except Exception as err:  # noqa: BLE001
            outcome.failure = outcome.failure or Failure(job.name, None, f"HTML export: {err}")
    outcome.figures = sorted(figures.glob("*.png"))
    outcome.seconds = time.perf_counter() - start
    return outcome


# ======================================================================================
# build_report
# ======================================================================================
def build_report(directory: str | Path, *, out: str | Path | None = None, notebooks=None,
                 workers: int = 2, progress: bool = True, no_code: bool = False,
                 notebook_dir: str | Path | None = None) -> tuple[Path, list[Failure]]:
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
    no_code : bool
        HTML without the code cells (a figures-and-tables report to publish).
    notebook_dir : path, optional
        Another folder of notebooks (default ``NOTEBOOK_DIR``).

    Returns
    -------
    (index, failures) : (Path of index.html, list of :class:`Failure`); a notebook skipped
    because its run has not finished counts as a failure (cell None), so the report says it
    is incomplete.
    """
    from tqdm.auto import tqdm

    directory = Path(directory)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    kind, run_dir, jobs = plan_jobs(directory, notebooks=notebooks, notebook_dir=notebook_dir)
    out = Path(out) if out is not None else Path("reports") / directory.resolve().name
    for what, inputs in (("the notebooks' folder", notebook_dir or NOTEBOOK_DIR),
                         ("the directory reported on", directory)):
        if Path(inputs).resolve() in (out.resolve(), *out.resolve().parents):
            raise ValueError(f"--out {out}: lies in {what} ({inputs}), whose files the "
                             "report would overwrite; choose a folder outside it")
    make_folder(out, "report folder (--out)")
    out = out.resolve()
    outcomes: dict[str, Outcome] = {}
    runnable = [job for job in jobs if job.skip_reason is None]
    bar = tqdm(total=len(runnable), desc=f"report {out.name}", unit="notebook",
               disable=not progress or not sys.stderr.isatty())
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(execute_job, job, out, no_code=no_code): job
                   for job in runnable}
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
    for job in jobs:
        if job.unfinished:
            print(f"report: notebook {job.name} skipped: {job.skip_reason}", file=sys.stderr)
            failures.append(Failure(job.name, None, f"skipped: {job.skip_reason}"))
    index = write_index(out, directory.resolve(), kind, run_dir, ordered)
    return index, failures


# ======================================================================================
# index.html
# ======================================================================================
#: Width (CSS px) of the page's content column, the width figures are laid out for
#: (``bmxlib.plots.READING_WIDTH_PX``); a figure at least 3/4 as wide has several panels
#: and is shown across the whole column.
PAGE_WIDTH_PX = 1200
STYLE = f"""
body {{ font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1em;
       max-width: {PAGE_WIDTH_PX}px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #bbb; padding: 4px 10px; text-align: left; }}
th {{ background: #eee; }}
.ok {{ color: #007a4d; }} .failed {{ color: #c03b00; font-weight: bold; }}
.skipped {{ color: #777; }}
figure {{ display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top;
         max-width: 100%; }}
figure img {{ display: block; max-width: 100%; height: auto; outline: 1px solid #ddd; }}
figure.wide {{ display: block; margin-right: 0; }}
figure.wide img {{ width: 100%; }}
figcaption {{ font-size: 0.85em; color: #555; }}
"""


def png_width(path: Path) -> int:
    """Width in pixels of a PNG file, from its header (0 when it is not a PNG)."""
    with open(path, "rb") as stream:
        head = stream.read(24)
    return int.from_bytes(head[16:20], "big") if head[:8] == b"\x89PNG\r\n\x1a\n" else 0


def _link(path: Path | None, out: Path, text: str) -> str:
    if path is None:
        return "–"
    return f'<a href="{html.escape(path.relative_to(out).as_posix())}">{html.escape(text)}</a>'


def _results_section(directory: Path, kind: str, out: Path) -> str:
    try:
        data = results.comparison_data(directory)
    except (ValueError, FileNotFoundError, KeyError) as err:
        return f"<p>No results table: {html.escape(str(err))}</p>"
    parts = [results.comparison_tables_html(data["rows"], data["axes"])]
    if kind == "sweep":
        links = []
        for table in runs.results_paths(directory):
            if table.is_file():
                shutil.copyfile(table, out / table.name)
                links.append(_link(out / table.name, out, table.name))
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
        # natural width up to the page; many-panel figures get the whole width; a click
        # opens the full-resolution PNG
        ref = html.escape(figure.relative_to(out).as_posix())
        wide = ' class="wide"' if png_width(figure) >= PAGE_WIDTH_PX * 3 // 4 else ""
        parts.append(f'<figure{wide}><a href="{ref}" title="full resolution">'
                     f'<img src="{ref}" alt="{figure.stem}"></a>'
                     f"<figcaption>{html.escape(figure.stem)} (click for full size)"
                     f"</figcaption></figure>")
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
