"""Sweeps: a grid of ordinary runs in one directory, and paper-style results tables.

A sweep file is YAML::

    name: digits_paper          # sweep directory: <out_dir>/<name>
    out_dir: runs
    base: digits_bce.yaml       # a config file (relative to this file) or a mapping
    fixed: {epochs: 12}         # overrides applied to every point
    grid:                       # the cartesian product of the axes
      variant:                  # an axis of mappings: its entries set several keys
        - {label: bce, method: bce}
        - {label: balancemix, method: balancemix}
      noise:
        - {label: clean, noise: none}
        - {label: mislabel-40, noise: mislabel, noise_rate: 0.4}
      seed: [0, 1, 2]           # an axis of scalars: the axis name is a config key

Every point is validated before anything runs (a bad value exits 2 and writes nothing).
Finished points (summary.json present) are skipped, interrupted ones resumed, so an
interrupted sweep restarts where it stopped. ``results.csv`` / ``results.md`` hold the
last-epoch mAP all / many / medium / few, mean ± std over seeds.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .config import Config, ConfigError, from_dict, read_yaml
from .io import atomic_write_json, atomic_write_text

MEASURES = ("mAP", "mAP_many", "mAP_medium", "mAP_few")
SEED_AXES = ("seed",)


@dataclass
class Point:
    """One grid point: its run name, axis labels and resolved config."""

    name: str
    labels: dict[str, str]
    config: Config


def _axis_entries(axis: str, values: Any, source: str) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{source}: grid axis {axis!r} must be a non-empty list")
    entries = []
    for value in values:
        if isinstance(value, dict):
            value = dict(value)
            label = str(value.pop("label", "-".join(f"{k}={v}" for k, v in value.items())))
            entries.append((label, value))
        else:
            entries.append((str(value), {axis: value}))
    labels = [label for label, _ in entries]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{source}: grid axis {axis!r} has repeated labels")
    return entries


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.=+" else "-" for ch in text)


def plan_sweep(
    path: str | Path, overrides: list[str] | tuple = (), *, name: str | None = None
) -> tuple[Path, list[Point]]:
    """Read a sweep file and resolve (and validate) every point's config.

    ``overrides`` (``key=value``) apply to every point; ``out_dir=...`` among them moves
    the sweep directory and ``name`` renames it.
    """
    from .config import parse_override

    path = Path(path)
    spec = read_yaml(path)
    allowed = {"name", "out_dir", "base", "fixed", "grid"}
    unknown = [k for k in spec if k not in allowed]
    if unknown:
        raise ConfigError(f"unknown sweep key {unknown[0]!r} in {path}")
    base = spec.get("base", {})
    if isinstance(base, str):
        base = read_yaml(path.parent / base)
    if not isinstance(base, dict):
        raise ConfigError(f"{path}: 'base' must be a config file name or a mapping")
    fixed = dict(spec.get("fixed") or {})
    sweep_out = spec.get("out_dir", "runs")
    for item in overrides:
        key, value = parse_override(item)
        if key == "out_dir":
            sweep_out = value
        else:
            fixed[key] = value
    grid = spec.get("grid") or {}
    if not isinstance(grid, dict):
        raise ConfigError(f"{path}: 'grid' must map axis names to lists")
    name = name or str(spec.get("name", path.stem))
    sweep_dir = Path(str(sweep_out)) / name
    axes = [(axis, _axis_entries(axis, values, str(path))) for axis, values in grid.items()]
    points = []
    for combo in itertools.product(*[entries for _, entries in axes]) if axes else [()]:
        values = {**base, **fixed}
        labels = {}
        for (axis, _), (label, settings) in zip(axes, combo):
            values.update(settings)
            labels[axis] = label
        run_name = "__".join(_safe(f"{a}={lab}") for a, lab in labels.items()) or "run"
        values.update(name=run_name, out_dir=str(sweep_dir))
        # one thread count whatever --jobs: see run_sweep
        values["threads"] = values.get("threads") or 1
        where = f"{path} point {run_name}"
        points.append(Point(run_name, labels, from_dict(values, source=where)))
    return sweep_dir, points


#: Config keys that do not change what a run computes; they may differ between sessions.
BOOKKEEPING_KEYS = ("name", "out_dir", "progress", "num_workers")


def check_existing_points(sweep_dir: Path, points: list[Point]) -> None:
    """Refuse to mix results: a point already in ``sweep_dir`` must have been run with the
    config planned now (bookkeeping keys aside), or skipping / resuming it would report
    another experiment under this one's name. Raises ConfigError naming the key.
    """
    for point in points:
        saved = sweep_dir / point.name / "config.yaml"
        if not saved.exists():
            continue
        previous = from_dict(read_yaml(saved), source=str(saved))
        for field in dataclasses.fields(Config):
            if field.name in BOOKKEEPING_KEYS:
                continue
            old, new = getattr(previous, field.name), getattr(point.config, field.name)
            if old != new:
                raise ConfigError(
                    f"{saved} was run with {field.name}={old!r} but the sweep now asks for "
                    f"{field.name}={new!r}; use another sweep name (--name) or remove "
                    f"{saved.parent}"
                )


def _run_point(config: Config, resumable: bool) -> str:
    from .engine import fit

    fit(config, resume=resumable, overwrite=not resumable)
    return config.name


def run_sweep(
    path: str | Path,
    *,
    overrides: list[str] | tuple = (),
    name: str | None = None,
    jobs: int = 1,
) -> Path:
    """Run every unfinished point of a sweep, then write the results tables.

    ``jobs > 1`` runs that many points at once in worker processes. Every point runs on
    ``threads`` CPU threads, 1 when the config leaves it at 0, whatever ``jobs`` is: CPU
    kernels may round differently with another thread count, and a point's numbers must
    not depend on how many ran beside it.
    """
    from . import engine

    sweep_dir, points = plan_sweep(path, overrides, name=name)  # all validated before any run
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be an integer >= 1, got {jobs!r}")
    check_existing_points(sweep_dir, points)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(sweep_dir / "sweep.json", {
        "source": str(path),
        "points": [{"name": p.name, "labels": p.labels} for p in points],
    })
    todo = [p for p in points if not (sweep_dir / p.name / "summary.json").exists()]
    resumable = {p.name: (sweep_dir / p.name / "checkpoints" / "last.pt").exists() for p in todo}
    bar = tqdm(total=len(todo), desc=f"sweep {sweep_dir.name}", unit="run")
    if jobs == 1:
        for point in todo:
            bar.set_postfix_str(point.name)
            engine.fit(point.config, resume=resumable[point.name],
                       overwrite=not resumable[point.name])
            write_results(sweep_dir)
            bar.update()
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = []
            for point in todo:
                config = dataclasses.replace(point.config, progress=False)
                futures.append(pool.submit(_run_point, config, resumable[point.name]))
            for future in as_completed(futures):
                bar.set_postfix_str(future.result())
                write_results(sweep_dir)
                bar.update()
    bar.close()
    write_results(sweep_dir)
    return sweep_dir


def collect(sweep_dir: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """(axis names, one record per finished point: labels + last-epoch summary)."""
    sweep_dir = Path(sweep_dir)
    meta = json.loads((sweep_dir / "sweep.json").read_text())
    axes = list(meta["points"][0]["labels"]) if meta["points"] else []
    records = []
    for point in meta["points"]:
        summary_path = sweep_dir / point["name"] / "summary.json"
        if summary_path.exists():
            summary = json.loads(summary_path.read_text())
            records.append({**point["labels"], "run": point["name"], **summary})
    return axes, records


def _mean_std(values: list[float]) -> tuple[float, float, int]:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    if not clean:
        return math.nan, math.nan, 0
    std = float(np.std(clean, ddof=1)) if len(clean) > 1 else 0.0
    return float(np.mean(clean)), std, len(clean)


def results_rows(axes: list[str], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate over seeds: one row per setting of the other axes, in grid order."""
    keys = [a for a in axes if a not in SEED_AXES]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(tuple(record[a] for a in keys), []).append(record)
    rows = []
    for group_key, members in groups.items():
        row: dict[str, Any] = dict(zip(keys, group_key))
        for measure in MEASURES:
            mean, std, count = _mean_std([m.get(measure) for m in members])
            row[f"{measure}_mean"], row[f"{measure}_std"] = mean, std
        row["seeds"] = count
        for extra in ("selection_precision", "selection_recall", "relabel_accuracy",
                      "memorized_noisy", "fit_clean"):
            mean, _, n = _mean_std([m.get(extra) for m in members])
            if n:
                row[f"{extra}_mean"] = mean
        rows.append(row)
    return rows


def _pm(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def _markdown(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def write_results(sweep_dir: str | Path) -> tuple[Path, Path]:
    """Write results.csv and results.md (long table, plus a pivot when there are 2 axes)."""
    sweep_dir = Path(sweep_dir)
    axes, records = collect(sweep_dir)
    rows = results_rows(axes, records)
    keys = [a for a in axes if a not in SEED_AXES]
    buffer = io.StringIO()
    if rows:
        fields = list(dict.fromkeys(key for row in rows for key in row))  # union, in order
        writer = csv.DictWriter(buffer, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(sweep_dir / "results.csv", buffer.getvalue())

    parts = [f"# Results: {sweep_dir.name}\n",
             "Last-epoch test mAP (%), mean ± std over seeds.\n"]
    header = keys + ["mAP all", "many", "medium", "few", "seeds"]
    body = [[str(r[k]) for k in keys] + [_pm(r[f"{m}_mean"], r[f"{m}_std"]) for m in MEASURES]
            + [str(r["seeds"])] for r in rows]
    parts.append(_markdown(header, body))
    if len(keys) == 2:
        parts.append(f"\n## mAP all by {keys[0]} × {keys[1]}\n")
        columns = list(dict.fromkeys(r[keys[1]] for r in rows))
        table: dict[str, dict[str, str]] = {}
        for r in rows:
            table.setdefault(r[keys[0]], {})[r[keys[1]]] = _pm(r["mAP_mean"], r["mAP_std"])
        parts.append(_markdown([keys[0]] + columns,
                               [[row] + [cells.get(c, "–") for c in columns]
                                for row, cells in table.items()]))
    quality = [r for r in rows if "selection_precision_mean" in r]
    if quality:
        parts.append("\n## Label management at the last epoch\n")
        parts.append(_markdown(
            keys + ["selection precision", "selection recall", "re-labeling accuracy"],
            [[str(r[k]) for k in keys]
             + [f"{r.get(f'{m}_mean', math.nan):.3f}" for m in
                ("selection_precision", "selection_recall", "relabel_accuracy")]
             for r in quality]))
    memorization = [r for r in rows if "memorized_noisy_mean" in r]
    if memorization:
        parts.append("\n## Memorization of the label noise at the last epoch\n")
        parts.append("\nShare of the corrupted (memorized) and of the correct (fit) training "
                     "labels that the model's decision (confidence > 0.5) agrees with.\n\n")
        parts.append(_markdown(
            keys + ["memorized noisy", "fit clean"],
            [[str(r[k]) for k in keys]
             + [f"{r.get(f'{m}_mean', math.nan):.3f}" for m in ("memorized_noisy", "fit_clean")]
             for r in memorization]))
    markdown = "".join(parts)
    atomic_write_text(sweep_dir / "results.md", markdown)
    return sweep_dir / "results.csv", sweep_dir / "results.md"
