"""The results model: which measures a comparison shows, how runs become tidy rows, and
their renderings (Markdown, CSV, HTML) for sweeps, reports and notebooks.

- ``collect(directory)``: one record per finished run of a sweep (or the run itself):
  its axis labels plus its ``summary.json`` (docs/method.md §7).
- ``setting_groups(axes, records)``: the records grouped by setting (every axis but the
  seed), in grid order.
- ``results_rows(axes, records)``: mean ± std over the seed axis, one row per setting of
  the other axes, in grid order.
- ``long_table(directory)``: the tidy table (``measure_table``), one row per (run,
  measure), that seaborn aggregates over seeds itself (``bmxlib.plots.map_by_setting``).
- ``write_tables(sweep_dir)``: the sweep's ``results.csv`` and ``results.md``.
- ``compare_sweeps(reference, candidate)``: two sweeps of one grid side by side, setting
  by setting (mean ± std over seeds, difference, within the reference's seed std).
- ``comparison_data(directory)``: everything the method_comparison notebook draws.
- ``results_table_html`` / ``paper_table_html`` / ``ablation_table_html``: the tables of
  the notebook and the report's index.

Measures are shares in [0, 1] everywhere in the data; tables print mAP as percent.
"""

from __future__ import annotations

import csv
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from . import measures, runs
from .io import atomic_write_text

#: The paper's measures (docs/method.md §3): last-epoch mAP over all classes and per shot group;
#: (name, label) pairs, as the tables below, from ``bmxlib.measures``.
MEASURES = measures.table_measures("map")
#: Label-management quality against the truth (synthetic noise only).
QUALITY_MEASURES = measures.table_measures("quality")
#: How much of the noise the model fits (``metrics.noisy_label_fit``).
MEMORIZATION_MEASURES = measures.table_measures("memorization")
EXTRA_MEASURES = QUALITY_MEASURES + MEMORIZATION_MEASURES
SEED_AXES = ("seed",)
#: BalanceMix's components (docs/method.md §1.6) in the order of the paper's Table 5.
COMPONENTS = (("minority_sampler", "minority sampler"), ("clean_labels", "clean labels"),
              ("relabel", "re-labeling"), ("ambiguous_weighting", "ambiguous weighting"))


# ======================================================================================
# runs → records → rows
# ======================================================================================
def collect(directory: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """(axis names, one record per finished run: axis labels + ``run`` + its summary).

    A run directory counts as a one-point sweep whose only axis is ``method``."""
    directory = Path(directory)
    if runs.directory_kind(directory) == "run":
        summary = runs.read_summary(directory)
        if summary is None:
            raise ValueError(f"run {directory} is not finished (no {runs.SUMMARY_FILE})")
        method = str(runs.read_config(directory).get("method"))
        return ["method"], [{**summary, "method": method, "run": directory.name}]
    sweep = runs.load_sweep(directory)
    # axis labels win over summary keys of the same name (an `epochs` axis, say)
    records = [{**runs.read_summary(point.path), **point.labels, "run": point.name}
               for point in sweep.finished_points()]
    return sweep.axes, records


def mean_std(values) -> tuple[float, float, int]:
    """(mean, sample std, count) of the finite values; (nan, nan, 0) when there are none."""
    finite = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not finite:
        return math.nan, math.nan, 0
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    return float(np.mean(finite)), std, len(finite)


def setting_axes(axes: list[str]) -> list[str]:
    """The axes that name a setting (every axis but the seed)."""
    return [a for a in axes if a not in SEED_AXES]


def setting_groups(axes: list[str],
                   records: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """The records grouped by setting — their labels on every axis but the seed, in the
    order ``setting_axes`` gives — in grid order."""
    keys = setting_axes(axes)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(tuple(record[a] for a in keys), []).append(record)
    return groups


def results_rows(axes: list[str], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate over seeds: one row per setting of the other axes, in grid order.

    Each row holds the setting's labels, ``<measure>_mean`` / ``<measure>_std`` for the
    four MEASURES, ``seeds`` (how many runs) and ``<extra>_mean`` for the EXTRA_MEASURES
    the runs recorded.
    """
    keys = setting_axes(axes)
    rows = []
    for group_key, members in setting_groups(axes, records).items():
        row: dict[str, Any] = dict(zip(keys, group_key))
        for measure, _ in MEASURES:
            mean, std, _ = mean_std([m.get(measure) for m in members])
            row[f"{measure}_mean"], row[f"{measure}_std"] = mean, std
        row["seeds"] = mean_std([m.get("mAP") for m in members])[2]  # runs with an mAP
        for extra, _ in EXTRA_MEASURES:
            mean, _, n = mean_std([m.get(extra) for m in members])
            if n:
                row[f"{extra}_mean"] = mean
        rows.append(row)
    return rows


def long_table(directory: str | Path):
    """The tidy results (:func:`measure_table`) of a sweep's finished runs, or of one run."""
    directory = Path(directory)
    axes, records = collect(directory)
    root = directory if runs.directory_kind(directory) == "sweep" else directory.parent
    seeds = run_seeds(axes, records, lambda run: runs.read_config(root / run))
    return measure_table(axes, records, seeds)


def run_seeds(axes: list[str], records: list[dict[str, Any]], config_of) -> dict[str, Any]:
    """{run: its seed}: the seed axis's label, else that of ``config_of(run)`` (config.yaml)."""
    if "seed" in axes:
        return {r["run"]: r["seed"] for r in records}
    return {r["run"]: config_of(r["run"]).get("seed") for r in records}


def measure_table(axes: list[str], records: list[dict[str, Any]], seeds: dict[str, Any]):
    """One row per (run, measure of MEASURES), what seaborn aggregates over seeds itself
    (``bmxlib.plots.map_by_setting``): a pandas DataFrame with the setting axes, ``seed``
    (``seeds[run]``), ``run``, ``measure`` ("all", "many", "medium", "few") and ``value``,
    the last-epoch mAP in [0, 1] (NaN where the run has no class in the group); no record,
    no row (the columns stay)."""
    import pandas as pd

    keys = setting_axes(axes)
    rows = [{**{k: record[k] for k in keys}, "seed": seeds[record["run"]],
             "run": record["run"], "measure": label.removeprefix("mAP "),
             "value": math.nan if record.get(measure) is None else float(record[measure])}
            for record in records for measure, label in MEASURES]
    return pd.DataFrame(rows, columns=[*keys, "seed", "run", "measure", "value"])


#: sensitivity factors: (setting-label prefix, config key, axis label)
SENSITIVITY_FACTORS = (("alpha", "mix_alpha", "mixing α"),
                       ("epsilon", "relabel_epsilon", "re-labeling ε"),
                       ("warmup", "warmup_epochs", "warm-up epochs"))


def sensitivity_table(directory: str | Path):
    """One row per (finished run, factor) of a sensitivity sweep — a sweep with a
    ``setting`` axis whose labels are ``default`` or ``<factor>-<level>`` (configs/regime/
    sensitivity.yaml): columns ``noise``, ``factor``, ``level`` (the run's value of the
    factor's config key), ``seed``, ``value`` (last-epoch mAP in [0, 1]). The default run
    counts at its level in every factor."""
    import pandas as pd

    directory = Path(directory)
    axes, records = collect(directory)
    if "setting" not in axes:
        raise ValueError(f"{directory} is not a sensitivity sweep (no 'setting' axis)")
    rows = []
    for record in records:
        config = runs.read_config(directory / record["run"])
        setting = str(record["setting"])
        for factor, key, _ in SENSITIVITY_FACTORS:
            if setting == "default" or setting.startswith(f"{factor}-"):
                rows.append({"noise": record.get("noise", ""), "factor": factor,
                             "level": float(config[key]), "seed": record.get("seed"),
                             "value": record.get("mAP")})
    return pd.DataFrame(rows, columns=["noise", "factor", "level", "seed", "value"])


def sensitivity_factors(table) -> list[tuple[str, str, list[float]]]:
    """(factor, axis label, its levels in increasing order) of each factor with rows in a
    :func:`sensitivity_table`, in ``SENSITIVITY_FACTORS`` order: the ``factors`` of
    ``plots.sensitivity_curves``."""
    return [(factor, label, sorted(float(v) for v in table.loc[table["factor"] == factor,
                                                                "level"].unique()))
            for factor, _key, label in SENSITIVITY_FACTORS if (table["factor"] == factor).any()]


def stable_region(table, *, tolerance: float = 0.01) -> dict[tuple[str, str], list[float]]:
    """{(factor, noise): levels whose mean mAP is within ``tolerance`` of the best level's}."""
    region = {}
    for (factor, noise), group in table.groupby(["factor", "noise"]):
        means = group.groupby("level")["value"].mean()
        region[(factor, noise)] = sorted(float(v) for v in means.index
                                         if means[v] >= means.max() - tolerance)
    return region


# ======================================================================================
# formatting
# ======================================================================================
def format_percent(mean: float | None, std: float | None = None) -> str:
    """``"83.4 ± 1.2"`` from shares in [0, 1]; the mean alone without a std; "–" for NaN."""
    if mean is None or math.isnan(float(mean)):
        return "–"
    if std is None or math.isnan(float(std)):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def row_percent(row: dict[str, Any], measure: str) -> str:
    """A results row's measure as percent: "mean ± std" over seeds, the value alone for a
    single seed (a std of 0.0 from one run would claim a precision nobody measured)."""
    std = row.get(f"{measure}_std") if row.get("seeds", 0) > 1 else None
    return format_percent(row.get(f"{measure}_mean"), std)


def format_share(value: float | None) -> str:
    return "–" if value is None or math.isnan(float(value)) else f"{value:.3f}"


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def html_table(header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in body)
    return f'<table class="results"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


# ======================================================================================
# the sweep's results.csv / results.md
# ======================================================================================
def results_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV (the union of their columns, in order of appearance)."""
    buffer = io.StringIO()
    if rows:
        fields = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.DictWriter(buffer, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def results_markdown(title: str, axes: list[str], rows: list[dict[str, Any]]) -> str:
    """The long table, a pivot of mAP all when there are two setting axes, and the
    label-management and memorization tables where runs recorded them."""
    keys = setting_axes(axes)
    parts = [f"# Results: {title}\n",
             "Last-epoch test mAP (%), mean ± std over seeds (the value alone for one seed).\n"]
    header = keys + [label for _, label in MEASURES] + ["seeds"]
    body = [[str(r[k]) for k in keys]
            + [row_percent(r, m) for m, _ in MEASURES]
            + [str(r["seeds"])] for r in rows]
    parts.append(markdown_table(header, body))
    if len(keys) == 2:
        parts.append(f"\n## mAP all by {keys[0]} × {keys[1]}\n")
        columns = list(dict.fromkeys(r[keys[1]] for r in rows))
        table: dict[str, dict[str, str]] = {}
        for r in rows:
            table.setdefault(r[keys[0]], {})[r[keys[1]]] = row_percent(r, "mAP")
        parts.append(markdown_table([keys[0]] + [str(c) for c in columns],
                                    [[str(row)] + [cells.get(c, "–") for c in columns]
                                     for row, cells in table.items()]))
    for title_text, note, shown in (
        ("Label management at the last epoch", "", QUALITY_MEASURES),
        ("Memorization of the label noise at the last epoch",
         "\nShare of the corrupted (memorized) and of the correct (fit) training labels that "
         "the model's decision (confidence > 0.5) agrees with.\n\n", MEMORIZATION_MEASURES),
    ):
        members = [r for r in rows if f"{shown[0][0]}_mean" in r]
        if members:
            parts.append(f"\n## {title_text}\n{note}")
            parts.append(markdown_table(
                keys + [label for _, label in shown],
                [[str(r[k]) for k in keys]
                 + [format_share(r.get(f"{m}_mean", math.nan)) for m, _ in shown]
                 for r in members]))
    return "".join(parts)


def write_tables(sweep_dir: str | Path) -> tuple[Path, Path]:
    """Write the sweep's results.csv and results.md; returns their paths."""
    sweep_dir = Path(sweep_dir)
    axes, records = collect(sweep_dir)
    rows = results_rows(axes, records)
    csv_path, md_path = runs.results_paths(sweep_dir)
    atomic_write_text(csv_path, results_csv(rows))
    atomic_write_text(md_path, results_markdown(sweep_dir.name, axes, rows))
    return csv_path, md_path


def compare_sweeps(reference: str | Path, candidate: str | Path, *,
                   measure: str = "mAP") -> list[dict[str, Any]]:
    """Two sweeps of the same grid side by side, setting by setting (e.g. float32 against
    bf16 autocast, or two implementations): one row per setting that finished in both.

    Each row holds the setting's labels and, for ``measure``, ``reference`` /
    ``reference_std`` / ``reference_seeds``, the same for ``candidate``, ``difference``
    (candidate - reference) and ``within_std``: |difference| <= the reference's seed std
    (the yardstick of a change that should only move the random stream or the rounding).
    """
    (axes, old), (other_axes, new) = collect(reference), collect(candidate)
    keys = setting_axes(axes)
    if set(setting_axes(other_axes)) != set(keys):
        raise ValueError(f"{candidate} is not a sweep of {reference}'s grid: its axes "
                         f"{', '.join(other_axes)} against {', '.join(axes)}")
    found = {tuple(r[k] for k in keys): r for r in results_rows(axes, new)}
    rows = []
    for row in results_rows(axes, old):
        other = found.get(tuple(row[k] for k in keys))
        if other is None:
            continue
        difference = other[f"{measure}_mean"] - row[f"{measure}_mean"]
        rows.append({**{k: row[k] for k in keys},
                     "reference": row[f"{measure}_mean"], "reference_std": row[f"{measure}_std"],
                     "reference_seeds": row["seeds"], "candidate": other[f"{measure}_mean"],
                     "candidate_std": other[f"{measure}_std"], "candidate_seeds": other["seeds"],
                     "difference": difference,
                     "within_std": bool(abs(difference) <= row[f"{measure}_std"] + 1e-12)})
    return rows


def compare_markdown(rows: list[dict[str, Any]], *, reference: str = "reference",
                     candidate: str = "candidate") -> str:
    """The side-by-side table of :func:`compare_sweeps` (percent points)."""
    if not rows:
        return "(no setting finished in both sweeps)"
    keys = [k for k in rows[0] if not k.startswith(("reference", "candidate", "difference",
                                                    "within"))]
    def cell(row: dict[str, Any], side: str) -> str:  # no std of one seed
        seeds = row[f"{side}_seeds"]
        std = row[f"{side}_std"] if seeds > 1 else None
        return f"{format_percent(row[side], std)} ({seeds})"

    body = [[*(str(r[k]) for k in keys), cell(r, "reference"), cell(r, "candidate"),
             f"{100 * r['difference']:+.1f}", "yes" if r["within_std"] else "no"]
            for r in rows]
    return markdown_table([*keys, f"{reference} (seeds)", f"{candidate} (seeds)",
                           "difference", "within the reference's seed std"], body)


# ======================================================================================
# the method_comparison notebook and the report's index
# ======================================================================================
def comparison_data(directory: str | Path) -> dict[str, Any]:
    """Results of a sweep (or of one run) for the method_comparison notebook.

    Returns
    -------
    dict with ``axes`` (list of str), ``rows`` (:func:`results_rows`: mean / std of mAP,
    mAP_many, mAP_medium, mAP_few in [0, 1] per setting), ``table`` (:func:`measure_table`),
    ``curves`` (:func:`curve_table`), ``ablation`` (rows of the BalanceMix-component table)
    and ``summaries`` {run directory name: summary.json}."""
    directory = Path(directory)
    axes, records = collect(directory)
    if not records:
        raise ValueError(f"{directory} has no finished run ({runs.SUMMARY_FILE})")
    root = directory if runs.directory_kind(directory) == "sweep" else directory.parent
    loaded = {r["run"]: runs.load_run(root / r["run"]) for r in records}
    rows, seeds = results_rows(axes, records), run_seeds(axes, records, lambda r: loaded[r].config)
    return {
        "axes": axes,
        "rows": rows,
        "table": measure_table(axes, records, seeds),
        "curves": curve_table(axes, records, loaded, seeds),
        "ablation": ablation_rows(axes, records, rows, loaded),
        "summaries": {name: run.summary for name, run in loaded.items()},
    }


#: the per-epoch records drawn as curves: test mAP, and the memorization of the noise
CURVE_MEASURES = ("mAP", *(name for name, _ in MEMORIZATION_MEASURES))


def curve_table(axes: list[str], records: list[dict[str, Any]], loaded: dict[str, runs.Run],
                seeds: dict[str, Any]):
    """The runs' curves as a tidy DataFrame, one row per (run, epoch, measure recorded then).

    Columns: the setting axes, ``seed`` (``seeds[run]``, :func:`run_seeds`), ``run``, ``epoch``,
    ``measure`` (a name of ``CURVE_MEASURES``) and ``value`` in [0, 1]; memorization only
    at the epochs that measured it (synthetic noise), mAP at the evaluated epochs."""
    import pandas as pd

    keys = setting_axes(axes)
    rows = []
    for record in records:
        run = record["run"]
        base = {**{k: record[k] for k in keys}, "seed": seeds[run], "run": run}
        rows += [{**base, "epoch": int(m["epoch"]), "measure": name, "value": float(m[name])}
                 for m in loaded[run].metrics for name in CURVE_MEASURES if m.get(name) is not None]
    return pd.DataFrame(rows, columns=[*keys, "seed", "run", "epoch", "measure", "value"])


TAKE_OFF_MAP = 0.15  # "has started to learn": 4x a random ranking's mAP on glyphs-coco (3.6%)


def take_off_epoch(metrics: list[dict[str, Any]], *, threshold: float = TAKE_OFF_MAP) -> int | None:
    """The first evaluated epoch whose test mAP exceeds ``threshold``, or None.

    Under heavy label noise a run can sit near a random ranking's mAP for many epochs
    before it starts to learn; on glyphs-coco under mislabel-40 the epoch it starts
    decides most of its final mAP (docs/results.md, "the take-off epoch").

    Parameters
    ----------
    metrics : list of dict
        A run's metrics.jsonl records (``runs.read_metrics``); those without "mAP" (epochs
        not evaluated) are passed over.
    threshold : float in (0, 1)
        mAP, as a fraction.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}")
    return next((r["epoch"] for r in metrics
                 if r.get("mAP") is not None and r["mAP"] > threshold), None)


def ablation_rows(axes, records, rows, loaded) -> list[dict[str, Any]]:
    """Rows of mixup / BalanceMix runs with the paper's component switches (docs/method.md §1.6)."""
    keys = setting_axes(axes)
    table = []
    for row in rows:
        member = next(r for r in records if all(str(r[k]) == str(row[k]) for k in keys))
        config = loaded[member["run"]].config
        if config.get("method") not in ("mixup", "balancemix"):
            continue
        mixup = config.get("method") == "mixup"
        switches = {label: not mixup and bool(config.get(key, False)) for key, label in COMPONENTS}
        scores = {f"{m}_{s}": row[f"{m}_{s}"] for m, _ in MEASURES for s in ("mean", "std")}
        table.append({**{k: row[k] for k in keys}, "random sampler": True, **switches, **scores,
                      "seeds": row["seeds"]})
    return table


def results_table_html(rows: list[dict[str, Any]], axes: list[str]) -> str:
    """The paper-style table: mAP all / many / medium / few (%, mean ± std) per setting, then
    the label-management and memorization measures (shares in [0, 1]) where runs have them."""
    keys = setting_axes(axes)
    extras = [(f"{k}_mean", label) for k, label in EXTRA_MEASURES
              if any(f"{k}_mean" in r for r in rows)]
    header = keys + [label for _, label in MEASURES] + ["seeds"] + [lab for _, lab in extras]
    body = [[str(r[k]) for k in keys]
            + [row_percent(r, m) for m, _ in MEASURES]
            + [str(r["seeds"])]
            + [format_share(r[k]) if k in r else "–" for k, _ in extras] for r in rows]
    return html_table(header, body)


def paper_table_html(rows: list[dict[str, Any]], axes: list[str]) -> str:
    """The paper's layout: one row per method, per noise setting the mAP all / many / medium /
    few (%, mean over seeds) side by side. With fewer than two axes: ``results_table_html``."""
    keys = setting_axes(axes)
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
            f"<td>{format_percent(by[c][f'{m}_mean']) if c in by else '–'}</td>"
            for c in columns for m, _ in measures) + "</tr>"
        for name, by in cells.items())
    return (f'<table class="results"><thead><tr><th rowspan="2">'
            f"{html.escape(' / '.join(row_keys))}</th>{top}</tr><tr>{sub}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def comparison_tables_html(rows: list[dict[str, Any]], axes: list[str]) -> str:
    """The results as a report shows them: the paper's layout (means over seeds) and the
    per-setting table (mean ± std, seeds, extra measures) — or only the latter when the two
    would repeat the same numbers (every setting one seed, or fewer than two axes)."""
    per_setting = results_table_html(rows, axes)
    if len(setting_axes(axes)) < 2 or all(r.get("seeds", 0) <= 1 for r in rows):
        return "<p>Last-epoch test mAP (%) per setting:</p>" + per_setting
    return ("<p>Last-epoch test mAP (%), mean over seeds:</p>" + paper_table_html(rows, axes)
            + "<p>Per setting, mean ± std over seeds:</p>" + per_setting)


def ablation_table_html(rows: list[dict[str, Any]]) -> str:
    """The component table (✓ / –) of mixup and BalanceMix runs with their mAP."""
    if not rows:
        return "<p>No Mixup or BalanceMix run: no component table.</p>"
    switches = ["random sampler"] + [label for _, label in COMPONENTS]
    keys = [k for k in rows[0] if k not in switches and not k.startswith("mAP") and k != "seeds"]
    header = keys + switches + [label for _, label in MEASURES]
    body = [[str(r[k]) for k in keys] + ["✓" if r[s] else "–" for s in switches]
            + [row_percent(r, m) for m, _ in MEASURES] for r in rows]
    return html_table(header, body)
