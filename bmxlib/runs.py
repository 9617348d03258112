"""Run and sweep directories (docs/method.md §7): the one module that knows their file names.

Layout of ``runs/<name>/``::

    config.yaml          the full resolved config
    provenance.json      versions, threads, machine, digests of cached inputs
    labels.npz           clean / noisy training labels, the corrupted mask, test labels
    dataset.json         class names, sizes, positives, imbalance ratios, shot groups
    metrics.jsonl        one JSON object per epoch
    diagnostics/         epoch_XXX.npz per epoch (method internals)
    checkpoints/last.pt  model, optimiser, scheduler, sampler, method and RNG state
    tb/                  TensorBoard event files (when the tensorboard package is installed)
    summary.json         written last: the run is complete when it exists

A sweep directory holds one run directory per grid point, ``sweep.json`` (the source
file and every point's name and axis labels) and the results tables ``results.csv`` /
``results.md``. Writers here are atomic (``bmxlib.io``); readers return plain Python and
NumPy objects. ``load_run`` and ``load_sweep`` give notebooks everything.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from . import measures
from .io import (
    append_jsonl,
    atomic_savez,
    atomic_write_json,
    atomic_write_text,
    check_folder_writable,
    make_folder,
    read_json,
    read_jsonl,
    read_npz,
    remove_temporaries,
    write_jsonl,
)

CONFIG_FILE = "config.yaml"
PROVENANCE_FILE = "provenance.json"
LABELS_FILE = "labels.npz"
DATASET_FILE = "dataset.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
DIAGNOSTICS_DIR = "diagnostics"
CHECKPOINT_FILE = "checkpoints/last.pt"
TENSORBOARD_DIR = "tb"
SWEEP_FILE = "sweep.json"
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
#: the writer's advisory lock (``writer_lock``); not part of a run's results
LOCK_FILE = ".bmx-writer.lock"

#: Last-epoch values copied from metrics.jsonl into summary.json (when the run has them).
SUMMARY_KEYS = measures.summary_names()


# ======================================================================================
# one run directory
# ======================================================================================
def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def is_sweep_dir(path: str | Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def directory_kind(path: str | Path) -> str:
    """"sweep" or "run"; FileNotFoundError (naming the path) for anything else."""
    if is_sweep_dir(path):
        return "sweep"
    if is_run_dir(path):
        return "run"
    raise FileNotFoundError(f"{path} is neither a run directory ({CONFIG_FILE}) nor a sweep "
                            f"directory ({SWEEP_FILE})")


def is_bmxlib_dir(path: str | Path) -> bool:
    """Whether ``path`` is recognisably a run or sweep directory that bmxlib wrote: a
    sweep.json, or a config.yaml holding a mapping with bmxlib's ``method`` and
    ``dataset`` keys (what ``--overwrite`` may replace; a user's own folder is not)."""
    if is_sweep_dir(path):
        return True
    if not is_run_dir(path):
        return False
    try:
        saved = yaml.safe_load(config_path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(saved, dict) and {"method", "dataset"} <= set(saved)


def has_content(path: str | Path) -> bool:
    """Whether ``path`` exists and holds anything besides the writer's lock file."""
    path = Path(path)
    return path.is_dir() and any(p.name != LOCK_FILE for p in path.iterdir())


def clear_dir(path: str | Path) -> None:
    """Remove everything in ``path`` but the lock file (held by the caller, who replaces
    the run: deleting the locked file would let a second writer lock a new one)."""
    for child in Path(path).iterdir():
        if child.name == LOCK_FILE:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


class RunExistsError(FileExistsError):
    """The run directory already exists and neither resume nor overwrite was asked."""


def check_writable(run_dir: str | Path, *, resume: bool, overwrite: bool) -> None:
    """Check that ``run_dir`` may be resumed, created or, with ``overwrite``, replaced —
    only a recognisable bmxlib run or sweep directory is; writes nothing. ``engine.fit``
    checks before validating the inputs and again under the writer lock."""
    run_dir = Path(run_dir)
    if resume:
        if is_sweep_dir(run_dir):
            raise FileNotFoundError(f"{run_dir} is a sweep directory: resume it by running "
                                    "the same bmx sweep command again")
        if not is_run_dir(run_dir):
            raise FileNotFoundError(f"{run_dir} is not a run directory: nothing to resume")
        if checkpoint_path(run_dir).is_file() and not read_npz(run_dir / LABELS_FILE):
            raise FileNotFoundError(f"{run_dir / LABELS_FILE} is missing: the run's header is "
                                    "incomplete; train it again")  # a corrupt one: ValueError
        return
    # before any work: a file in the way, a read-only or special file system (/sys, /proc)
    check_folder_writable(run_dir, "run directory (out_dir/name)")
    if not has_content(run_dir):
        return
    if not overwrite:
        raise RunExistsError(
            f"run directory {run_dir} already exists (use --resume, --overwrite or name=...)")
    if not is_bmxlib_dir(run_dir):
        raise RunExistsError(
            f"--overwrite refused: {run_dir} is not a bmxlib run or sweep directory (no "
            "bmxlib config.yaml or sweep.json); move it away or use another name=...")


class RunDirBusy(FileExistsError):
    """Another process holds the run directory's writer lock."""


_HELD_LOCKS: dict[str, int] = {}  # resolved run dir -> open lock file descriptor


@contextlib.contextmanager
def writer_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold the exclusive writer lock of ``run_dir`` (created if missing) while inside.

    An advisory ``fcntl.flock`` on ``LOCK_FILE`` inside the directory: the OS releases it
    when the holder exits or dies (kill -9 leaves no stale lock). Re-entrant within one
    process (a sweep locks a point, then ``fit`` locks it again). Raises RunDirBusy, one
    line naming the directory and the holder's pid, when another process holds it."""
    run_dir = Path(run_dir)
    key = str(run_dir.resolve())
    if key in _HELD_LOCKS:
        yield run_dir
        return
    make_folder(run_dir, "run directory")
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise RunDirBusy(f"{run_dir} is being written by another process (pid {holder}); "
                         "wait for it to finish, or use another name=...") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD_LOCKS[key] = fd
    try:
        yield run_dir
    finally:
        del _HELD_LOCKS[key]
        os.close(fd)  # releases the flock


def epochs_recorded_once(run_dir: str | Path, epochs: int) -> str | None:
    """None when metrics.jsonl holds epochs 1..``epochs`` exactly once each, in order;
    else a short description of what it holds (a finished point that two writers
    interleaved, or a truncated file, is not a result)."""
    try:
        seen = [r.get("epoch") for r in read_metrics(run_dir)]
    except (OSError, ValueError) as error:
        return f"unreadable ({' '.join(str(error).split())[:120]})"
    if seen == list(range(1, epochs + 1)):
        return None
    shown = seen if len(seen) <= 12 else [*seen[:12], "..."]
    return f"epochs {shown}, expected 1..{epochs} once each"


def config_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CONFIG_FILE


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_FILE


def diagnostics_path(run_dir: str | Path, epoch: int) -> Path:
    return Path(run_dir) / DIAGNOSTICS_DIR / f"epoch_{epoch:03d}.npz"


def tensorboard_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / TENSORBOARD_DIR


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's saved config as a mapping (one-line ConfigError when unreadable)."""
    from .config import read_yaml

    return read_yaml(config_path(run_dir))


def write_header(run_dir: str | Path, *, config_text: str, provenance: dict[str, Any],
                 labels: dict[str, np.ndarray], dataset: dict[str, Any]) -> None:
    """Write what is known before the first epoch: config, provenance, labels, dataset,
    and no epochs (a run restarted before its first checkpoint keeps none of its records)."""
    run_dir = Path(run_dir)
    write_jsonl(run_dir / METRICS_FILE, [])
    atomic_write_text(config_path(run_dir), config_text)
    atomic_write_json(run_dir / PROVENANCE_FILE, provenance)
    atomic_savez(run_dir / LABELS_FILE, **labels)
    atomic_write_json(run_dir / DATASET_FILE, dataset)


def append_metrics(run_dir: str | Path, record: dict[str, Any]) -> None:
    append_jsonl(Path(run_dir) / METRICS_FILE, record)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    return read_jsonl(Path(run_dir) / METRICS_FILE)


def truncate_metrics(run_dir: str | Path, *, max_epoch: int) -> None:
    """Keep only the records of epochs ``<= max_epoch`` (used when resuming)."""
    records = [r for r in read_metrics(run_dir) if r.get("epoch", 0) <= max_epoch]
    write_jsonl(Path(run_dir) / METRICS_FILE, records)


def write_diagnostics(run_dir: str | Path, epoch: int, arrays: dict[str, np.ndarray]) -> None:
    path = diagnostics_path(run_dir, epoch)
    atomic_savez(path, **arrays)


def write_summary(run_dir: str | Path) -> dict[str, Any]:
    """Write ``summary.json`` from metrics.jsonl (the last epoch's measures, total time);
    the run is complete from then on. Returns the summary."""
    records = read_metrics(run_dir)
    last = records[-1]
    summary = {"epochs": last["epoch"], **{k: last[k] for k in SUMMARY_KEYS if k in last}}
    summary["total_seconds"] = sum(r.get("seconds", 0.0) for r in records)
    summary["mean_epoch_train_seconds"] = float(np.mean([r["train_seconds"] for r in records]))
    atomic_write_json(Path(run_dir) / SUMMARY_FILE, summary)
    return summary


def read_provenance(run_dir: str | Path) -> dict[str, Any]:
    """provenance.json ({} when the run has not written it yet)."""
    return read_json(Path(run_dir) / PROVENANCE_FILE)


def read_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """summary.json as a mapping, or None while the run is not finished."""
    return read_json(Path(run_dir) / SUMMARY_FILE) or None


def is_finished(run_dir: str | Path) -> bool:
    return (Path(run_dir) / SUMMARY_FILE).is_file()


def copy_finished_run(source: str | Path, target: str | Path, *, config_text: str) -> None:
    """Copy the finished run ``source`` to the new directory ``target`` under its own config
    (the same experiment, named and placed anew), noting ``copied_from`` in its provenance.
    Atomic: ``target`` appears whole or not at all."""
    source, target = Path(source), Path(target)
    temporary = target.with_name(f".{target.name}.copying")
    shutil.rmtree(temporary, ignore_errors=True)  # a copy killed half-way
    shutil.copytree(source, temporary, ignore=shutil.ignore_patterns(LOCK_FILE))
    atomic_write_text(config_path(temporary), config_text)
    atomic_write_json(temporary / PROVENANCE_FILE,
                      {**read_provenance(temporary), "copied_from": str(source.resolve())})
    os.replace(temporary, target)


def directory_bytes(run_dir: str | Path) -> int:
    """Total size of the files under ``run_dir`` (logged every epoch: diagnostics must never
    fill a disk silently)."""
    return sum(p.stat().st_size for p in Path(run_dir).rglob("*") if p.is_file())


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Delete half-written files a killed run left behind (``bmxlib.io`` temporaries)."""
    return remove_temporaries(run_dir)


@dataclass
class Run:
    """Everything a notebook needs from a run directory (see ``load_run``)."""

    path: Path
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    summary: dict[str, Any] | None
    class_names: list[str]
    clean_labels: np.ndarray | None
    noisy_labels: np.ndarray | None
    corrupted: np.ndarray | None
    shot_groups: np.ndarray | None
    diagnostic_epochs: list[int] = field(default_factory=list)
    #: instance noise: the reference model's confidences (N, K) the noise was drawn from
    reference_confidence: np.ndarray | None = None
    #: dataset.json: class names, sizes, positives, ratios, shot groups and thresholds
    dataset: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def complete(self) -> bool:
        return self.summary is not None

    def diagnostics(self, epoch: int) -> dict[str, np.ndarray]:
        """Arrays recorded at the end of ``epoch`` (1-based)."""
        path = diagnostics_path(self.path, epoch)
        if not path.exists():
            raise FileNotFoundError(f"no diagnostics for epoch {epoch} in {self.path}")
        return read_npz(path)

    def diagnostics_keys(self, epoch: int) -> list[str]:
        """Names of the arrays recorded at the end of ``epoch`` ([] when none were)."""
        path = diagnostics_path(self.path, epoch)
        if not path.exists():
            return []
        with np.load(path, allow_pickle=False) as data:
            return list(data.files)

    def metric(self, key: str) -> np.ndarray:
        """One metric over epochs as a float array (NaN where missing)."""
        return np.array(
            [np.nan if r.get(key) is None else r[key] for r in self.metrics], dtype=float
        )


def load_run(path: str | Path) -> Run:
    """Load a run directory written by ``bmxlib.engine.fit``.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a run directory (no config.yaml).
    ValueError
        One line naming a run file that cannot be read (corrupt, truncated, not UTF-8).
    """
    path = Path(path)
    if not is_run_dir(path):
        raise FileNotFoundError(f"{path} is not a run directory (no {CONFIG_FILE})")
    config = read_config(path)
    arrays = read_npz(path / LABELS_FILE)
    folder = path / DIAGNOSTICS_DIR
    epochs = sorted(int(p.stem.split("_")[1]) for p in folder.glob("epoch_*.npz")) \
        if folder.is_dir() else []
    return Run(
        path=path,
        config=config,
        metrics=read_metrics(path),
        summary=read_summary(path),
        class_names=[str(c) for c in arrays.get("class_names", [])],
        clean_labels=arrays.get("clean"),
        noisy_labels=arrays.get("noisy"),
        corrupted=arrays.get("corrupted"),
        shot_groups=arrays.get("shot_groups"),
        diagnostic_epochs=epochs,
        reference_confidence=arrays.get("reference_confidence"),
        dataset=read_json(path / DATASET_FILE),
    )


# ======================================================================================
# sweep directories
# ======================================================================================
@dataclass
class SweepPoint:
    """One grid point of a sweep: its run name, axis labels and run directory."""

    name: str
    labels: dict[str, str]
    path: Path

    @property
    def finished(self) -> bool:
        return is_finished(self.path)


@dataclass
class Sweep:
    """A sweep directory: its source file, axes (in grid order) and points."""

    path: Path
    source: str
    axes: list[str]
    points: list[SweepPoint]

    def finished_points(self) -> list[SweepPoint]:
        return [p for p in self.points if p.finished]


def write_sweep_manifest(sweep_dir: str | Path, *, source: str,
                         points: list[tuple[str, dict[str, str]]]) -> None:
    """Write ``sweep.json``: the source file and each point's (name, axis labels)."""
    atomic_write_json(Path(sweep_dir) / SWEEP_FILE, {
        "source": source,
        "points": [{"name": name, "labels": labels} for name, labels in points],
    })


def load_sweep(sweep_dir: str | Path) -> Sweep:
    """Read ``sweep.json`` of ``sweep_dir`` (FileNotFoundError when there is none)."""
    sweep_dir = Path(sweep_dir)
    if not is_sweep_dir(sweep_dir):
        raise FileNotFoundError(f"{sweep_dir} is not a sweep directory (no {SWEEP_FILE})")
    meta = read_json(sweep_dir / SWEEP_FILE)
    points = [SweepPoint(p["name"], dict(p["labels"]), sweep_dir / p["name"])
              for p in meta.get("points", [])]
    axes = list(points[0].labels) if points else []
    return Sweep(sweep_dir, str(meta.get("source", "")), axes, points)


def results_paths(sweep_dir: str | Path) -> tuple[Path, Path]:
    """(results.csv, results.md) of a sweep directory."""
    return Path(sweep_dir) / RESULTS_CSV, Path(sweep_dir) / RESULTS_MD


def run_dirs(directory: str | Path, *, method: str | None = None) -> list[Path]:
    """The run directories of a sweep in grid order (of a run directory: itself), keeping
    those whose config has ``method`` when given."""
    directory = Path(directory)
    if directory_kind(directory) == "sweep":
        runs = [p.path for p in load_sweep(directory).points if is_run_dir(p.path)]
    else:
        runs = [directory]
    if method is not None:
        runs = [r for r in runs if read_config(r).get("method") == method]
    return runs


#: the method whose run stands for a sweep (the per-run notebooks, ``resolve_path``)
REPRESENTATIVE_METHOD = "balancemix"


def representative_run(directory: str | Path, *,
                       method: str = REPRESENTATIVE_METHOD) -> Path | None:
    """The run that stands for a sweep: its first finished run of ``method`` in grid
    order, else its first (unfinished) one, else None; of a run directory, itself when
    it is of ``method``."""
    candidates = run_dirs(directory, method=method)
    return ([r for r in candidates if is_finished(r)] or candidates or [None])[0]


def explorer_runs(run_dir: str | Path) -> list[Path]:
    """The runs the explorer offers: the BalanceMix runs with diagnostics of ``run_dir``'s
    sweep (``run_dir`` among them), else ``run_dir`` alone."""
    run_dir = Path(run_dir)
    siblings = (run_dirs(run_dir.parent, method=REPRESENTATIVE_METHOD)
                if is_sweep_dir(run_dir.parent) else [])
    siblings = [r for r in siblings if (r / DIAGNOSTICS_DIR).is_dir() or r == run_dir]
    return siblings if any(r.resolve() == run_dir.resolve() for r in siblings) else [run_dir]


def resolve_path(path: str | Path, *, run: bool = False) -> Path:
    """``path`` if absolute, else under the repository root: the nearest folder holding
    pyproject.toml and notebooks/ from the current directory (a kernel in notebooks/) upwards,
    then from this package's location; failing both, the current directory. With ``run``, a
    sweep directory stands for its first (finished) BalanceMix run, the one ``bmx report``
    shows: "runs/demo" opens the demo's BalanceMix run."""
    path, here = Path(path).expanduser(), Path.cwd().resolve()
    roots = [d for d in (here, *here.parents, *Path(__file__).resolve().parents)
             if (d / "pyproject.toml").is_file() and (d / "notebooks").is_dir()]
    path = path if path.is_absolute() else (roots[0] if roots else here) / path
    if run and is_sweep_dir(path):
        path = representative_run(path) or path
    return path
