"""Sweeps: a grid of ordinary runs in one directory.

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
        - {label: clean, noise: none, noise_rate: 0}
        - {label: mislabel-40, noise: mislabel, noise_rate: 0.4}
      seed: [0, 1, 2]           # an axis of scalars: the axis name is a config key

Every point is validated before anything runs (a bad value exits 2, writing nothing);
finished points (summary.json) are skipped and interrupted ones resumed, so a sweep
restarts where it stopped; the results tables (``bmxlib.results.write_tables``: last-epoch
mAP all / many / medium / few, mean ± std over seeds) follow every finished point.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from . import runs
from .archive import backbone_change, mixed_builds_note
from .config import (
    Config,
    ConfigError,
    check_data_root,
    from_dict,
    is_valid_name,
    read_yaml,
    result_differences,
)
from .io import make_folder
from .launchers import (
    LAUNCHERS,
    ClusterOptions,
    PointsFailed,
    check_launcher,
    run_point,
    run_pool,
    submit_all,
)
from .results import write_tables


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


#: Grids larger than this are refused unless ``--max-points`` raises the bound (a typo
#: such as ``lr: range(...)`` pasted as a million values must not start training).
MAX_POINTS = 10_000

#: the keys of a sweep file (docs/method.md §9); a training config's keys are Config's
SWEEP_KEYS = frozenset({"name", "out_dir", "base", "fixed", "grid"})


def is_sweep_file(path: str | Path) -> bool:
    """Whether ``path`` reads as a sweep file (a mapping with a ``grid``), for the message
    of a training command given one; False for anything unreadable."""
    try:
        spec = read_yaml(Path(path))
    except ConfigError:
        return False
    return isinstance(spec, dict) and "grid" in spec


def plan_sweep(
    path: str | Path, overrides: list[str] | tuple = (), *, name: str | None = None,
    max_points: int = MAX_POINTS,
) -> tuple[Path, list[Point]]:
    """Read a sweep file and resolve (and validate) every point's config.

    ``overrides`` (``key=value``) apply to every point; ``out_dir=...`` among them moves
    the sweep directory and ``name`` renames it. More than ``max_points`` points are
    refused before any is built.
    """
    from .config import parse_override

    path = Path(path)
    spec = read_yaml(path)
    unknown = [k for k in spec if k not in SWEEP_KEYS]
    config_keys = {field.name for field in dataclasses.fields(Config)}
    if unknown and "grid" not in spec and all(k in config_keys for k in unknown):
        raise ConfigError(f"{path} is a training config, not a sweep file (it has no "
                          f"'grid'); train it with: bmx train --config {path}")
    if unknown:
        raise ConfigError(f"unknown sweep key {unknown[0]!r} in {path}")
    base = spec.get("base", {})
    if isinstance(base, str):
        base = read_yaml(path.parent / base)
    if not isinstance(base, dict):
        raise ConfigError(f"{path}: 'base' must be a config file name or a mapping")
    fixed = {} if spec.get("fixed") is None else spec["fixed"]  # `fixed: []` is no mapping
    if not isinstance(fixed, dict):
        raise ConfigError(f"{path}: 'fixed' must map config keys to values, not {fixed!r}")
    sweep_out = spec.get("out_dir", "runs")
    for item in overrides:
        key, value = parse_override(item)
        if key == "out_dir":
            sweep_out = value
        else:
            fixed[key] = value
    grid = {} if spec.get("grid") is None else spec["grid"]
    if not isinstance(grid, dict):
        raise ConfigError(f"{path}: 'grid' must map axis names to lists")
    name, sweep_out = (str(v) if isinstance(v, (int, float)) and not isinstance(v, bool)
                       else v for v in (name or spec.get("name", path.stem), sweep_out))
    if not is_valid_name(name):  # a NUL inside is refused with each point's out_dir
        raise ConfigError(f"{path}: sweep name {name!r} is not one folder name")
    if not isinstance(sweep_out, str) or not sweep_out:
        raise ConfigError(f"{path}: 'out_dir' must be a folder path, not {sweep_out!r}")
    sweep_dir = Path(sweep_out).expanduser() / name
    axes = [(axis, _axis_entries(axis, values, str(path))) for axis, values in grid.items()]
    size = math.prod(len(entries) for _, entries in axes)
    if size > max_points:
        raise ConfigError(f"{path}: the grid has {size:,} points, more than {max_points:,}; "
                          "shrink it or raise the bound with --max-points")
    for key in ("name", "out_dir"):  # the sweep's place: the top level, never per point
        if key in fixed or any(key in settings for _, entries in axes for _, settings in entries):
            raise ConfigError(f"{path}: {key!r} is where the sweep writes: give it at the top "
                              "level of the sweep file, not in 'fixed' or the grid")
    points, label_of = [], {}
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
        _refuse_collision(label_of, run_name, labels, path)
        where = f"{path} point {run_name}"
        points.append(Point(run_name, labels, from_dict(values, source=where)))
    return sweep_dir, points


def _refuse_collision(label_of: dict[str, dict[str, str]], run_name: str,
                      labels: dict[str, str], path: Path) -> None:
    """Point directory names must be injective: two label sets that map to one name (case
    aside, for case-insensitive disks) would write one run over the other."""
    key = run_name.casefold()
    if key in label_of:
        raise ConfigError(
            f"{path}: grid points {label_of[key]} and {labels} both get the directory name "
            f"{run_name!r}; give them labels that differ in letters, digits or '-_.=+'")
    label_of[key] = labels


def check_existing_points(sweep_dir: Path, points: list[Point]) -> None:
    """Refuse to mix results: a point already in ``sweep_dir`` must have been run with the
    config planned now (bookkeeping keys aside), or skipping / resuming it would report
    another experiment under this one's name. Raises ConfigError naming the key.
    """
    for point in points:
        run_dir = sweep_dir / point.name
        if not runs.is_run_dir(run_dir):
            continue
        saved = runs.config_path(run_dir)
        previous = from_dict(runs.read_config(run_dir), source=str(saved))
        for key, old, new in result_differences(previous, point.config)[:1]:
            raise ConfigError(
                f"{saved} was run with {key}={old!r} but the sweep now asks for "
                f"{key}={new!r}; use another sweep name (--name) or remove {saved.parent}"
            )
        change = backbone_change(run_dir, point.config)
        if change:
            raise ConfigError(f"{run_dir} {change}; use another sweep name (--name) or "
                              f"remove {run_dir}")
        # summary.json alone is not proof: two writers once interleaved their epochs
        problem = runs.is_finished(run_dir) and runs.epochs_recorded_once(
            run_dir, point.config.epochs)
        if problem:
            raise ConfigError(f"{run_dir / runs.METRICS_FILE} of a finished point holds "
                              f"{problem}; remove {run_dir} and re-run the sweep to redo it")


def reusable_runs(sources: list[str | Path] | tuple = ()) -> list[tuple[Path, Config]]:
    """The finished runs of the sweep directories ``sources``, each with its config (for
    ``reuse_finished_points``). Raises ConfigError naming a source that is not a sweep."""
    found = []
    for source in sources:
        source = Path(source)
        if not runs.is_sweep_dir(source):
            raise ConfigError(f"--reuse {source}: not a sweep directory (no {runs.SWEEP_FILE})")
        for run_dir in runs.run_dirs(source):
            if runs.is_finished(run_dir):
                saved = runs.config_path(run_dir)
                found.append((run_dir, from_dict(runs.read_config(run_dir), source=str(saved))))
    return found


def reuse_finished_points(sweep_dir: Path, points: list[Point],
                          candidates: list[tuple[Path, Config]]) -> list[tuple[str, Path]]:
    """Copy into ``sweep_dir`` each finished run of ``candidates`` (``reusable_runs``) that
    computed exactly what a missing point would (no difference outside the bookkeeping
    keys, as ``check_existing_points`` reads it), e.g. the ablation's BCE, Mixup and
    BalanceMix rows from the paper grid. A point whose directory exists is left to the
    sweep (even one holding only a killed writer's lock), and a candidate whose metrics
    do not hold each epoch once is not used.

    Returns (point name, source run directory) per copy.
    """
    copies = []
    for point in points:
        target = sweep_dir / point.name
        if target.exists():
            continue
        for run_dir, config in candidates:
            if not result_differences(config, point.config) and not \
                    runs.epochs_recorded_once(run_dir, config.epochs) and not \
                    backbone_change(run_dir, point.config):
                runs.copy_finished_run(run_dir, target, config_text=point.config.to_yaml())
                copies.append((point.name, run_dir))
                break
    return copies


def select_points(points: list[Point], only: list[str] | tuple = ()) -> list[Point]:
    """The points whose labels match every ``AXIS=LABEL`` of ``only`` (several labels of one
    axis: any of them); all points without ``only``. Raises ConfigError naming an entry
    that is not ``AXIS=LABEL``, an axis the grid lacks or a label it does not have."""
    wanted: dict[str, set[str]] = {}
    for entry in only:
        axis, sep, label = str(entry).partition("=")
        if not sep or not axis or not label:
            raise ConfigError(f"--only {entry!r}: expected AXIS=LABEL, e.g. seed=0")
        labels = {p.labels[axis] for p in points if axis in p.labels}
        if not labels:
            axes = ", ".join(dict.fromkeys(a for p in points for a in p.labels))
            raise ConfigError(f"--only {entry!r}: the grid has no axis {axis!r} ({axes})")
        if label not in labels:
            raise ConfigError(f"--only {entry!r}: axis {axis!r} has no label {label!r} "
                              f"({', '.join(sorted(labels))})")
        wanted.setdefault(axis, set()).add(label)
    return [p for p in points if all(p.labels.get(a) in ls for a, ls in wanted.items())]


def run_sweep(
    path: str | Path,
    *,
    overrides: list[str] | tuple = (),
    name: str | None = None,
    jobs: int = 1,
    launcher: str = "local",
    cluster: ClusterOptions | None = None,
    max_points: int = MAX_POINTS,
    reuse: list[str | Path] | tuple = (),
    only: list[str] | tuple = (),
) -> Path:
    """Run every unfinished point of a sweep, then write the results tables.

    ``jobs > 1`` runs that many points at once in worker processes. Every point runs on
    ``threads`` CPU threads, 1 when the config leaves it at 0, whatever ``jobs`` is: CPU
    kernels may round differently with another thread count, and a point's numbers must
    not depend on how many ran beside it. ``launcher="slurm"`` submits every point as a
    SLURM job through submitit instead (resources from ``cluster``) and waits for them;
    ``"submitit-local"`` takes the same path with submitit's local executor. The restart
    rules — skip finished points, resume interrupted ones, refuse changed settings — are
    applied before anything is submitted, whatever the launcher. ``reuse`` names other
    sweep directories whose finished runs stand for identical points of this one
    (``reuse_finished_points``): copied, not re-run. ``only`` (``AXIS=LABEL`` entries,
    ``select_points``) runs just the matching points now, e.g. ``seed=0`` of a study that
    spans sessions; the sweep directory still lists every point, and the same command
    without ``only`` runs the rest.
    """
    if not isinstance(max_points, int) or max_points < 1:
        raise ConfigError(f"--max-points must be an integer >= 1, got {max_points!r}")
    # all validated before any run
    sweep_dir, points = plan_sweep(path, overrides, name=name, max_points=max_points)
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be an integer >= 1, got {jobs!r}")
    if launcher not in LAUNCHERS:
        raise ConfigError(f"--launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    check_launcher(launcher)
    check_existing_points(sweep_dir, points)
    selected = select_points(points, only)
    for point in selected if launcher != "slurm" else ():  # a cluster's data may be on
        check_data_root(point.config, point=point.name)  # its nodes alone
    reusable = reusable_runs(reuse)
    if runs.is_run_dir(sweep_dir) or sweep_dir.exists() and not sweep_dir.is_dir():
        raise ConfigError(f"{sweep_dir} exists and is no sweep directory (a run or a file); "
                          "choose another sweep name (--name) or out_dir")
    make_folder(sweep_dir, "sweep directory")
    runs.write_sweep_manifest(sweep_dir, source=str(path),
                              points=[(p.name, p.labels) for p in points])
    for point_name, source in reuse_finished_points(sweep_dir, selected, reusable):
        print(f"[sweep {sweep_dir.name}] {point_name}: copied from {source} (same config)",
              file=sys.stderr, flush=True)
    # finished points of the whole sweep (``only`` leaves others unfinished, not done)
    finished_names = {p.name for p in points if runs.is_finished(sweep_dir / p.name)}
    todo = [p for p in selected if p.name not in finished_names]
    bar = tqdm(total=len(todo), desc=f"sweep {sweep_dir.name}", unit="run",
               disable=not sys.stderr.isatty())
    done, busy = len(finished_names), []

    def finished(name: str) -> None:
        nonlocal done
        done += 1
        write_tables(sweep_dir)
        bar.set_postfix_str(name)
        bar.update()
        if bar.disable:  # a log file gets one line per point instead of the bar
            print(f"[sweep {sweep_dir.name}] {done}/{len(points)} done: {name}",
                  file=sys.stderr, flush=True)

    def skipped(name: str, error: runs.RunDirBusy) -> None:
        busy.append(name)
        print(f"[sweep {sweep_dir.name}] skipped {name}: {error}", file=sys.stderr, flush=True)

    configs = [p.config for p in todo]
    if launcher != "local":
        submit_all(configs, sweep_dir, launcher, cluster or ClusterOptions(), finished)
    elif jobs == 1:
        for config in configs:
            bar.set_postfix_str(config.name)
            try:
                finished(run_point(config))
            except runs.RunDirBusy as error:
                skipped(config.name, error)
    else:
        from .engine import warm_caches

        warm_caches(configs)  # once here, not in every worker at once
        run_pool(configs, jobs, finished, skipped)
    bar.close()
    write_tables(sweep_dir)
    if note := mixed_builds_note(sweep_dir):  # finished points copied or left by another machine
        print(note, file=sys.stderr)
    if busy:
        raise PointsFailed(f"{len(busy)} of {len(points)} points were being written by "
                           f"another process and were skipped ({busy[0]}, ...); re-run the "
                           "same bmx sweep command when it is done")
    return sweep_dir
