"""The run directory (SPEC §7): its file names, writing its parts, ``load_run``.

Layout of ``runs/<name>/``::

    config.yaml          full resolved config
    provenance.json      versions, threads, machine, digests of cached inputs
    labels.npz           clean / noisy training labels and the corrupted mask
    metrics.jsonl        one JSON object per epoch
    diagnostics/         epoch_XXX.npz per epoch (BalanceMix internals)
    checkpoints/last.pt  model, optimiser, scheduler, sampler, method and RNG state
    summary.json         written last: the run is complete when it exists
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .io import read_jsonl, write_jsonl


def truncate_jsonl(path: str | Path, *, max_epoch: int) -> None:
    """Keep only records with ``epoch <= max_epoch`` (used when resuming)."""
    write_jsonl(path, [r for r in read_jsonl(path) if r.get("epoch", 0) <= max_epoch])


def write_provenance(run_dir: str | Path, info: dict[str, Any]) -> Path:
    """Write ``provenance.json``: what besides the config determines the run's numbers."""
    from .io import atomic_write_json

    path = Path(run_dir) / "provenance.json"
    atomic_write_json(path, info)
    return path


def diagnostics_path(run_dir: str | Path, epoch: int) -> Path:
    return Path(run_dir) / "diagnostics" / f"epoch_{epoch:03d}.npz"


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
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

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
    """
    import yaml

    path = Path(path)
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(f"{path} is not a run directory (no config.yaml)")
    config = yaml.safe_load((path / "config.yaml").read_text()) or {}
    summary_path = path / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    arrays: dict[str, np.ndarray] = {}
    if (path / "labels.npz").exists():
        with np.load(path / "labels.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    epochs = sorted(
        int(p.stem.split("_")[1]) for p in (path / "diagnostics").glob("epoch_*.npz")
    ) if (path / "diagnostics").is_dir() else []
    return Run(
        path=path,
        config=config,
        metrics=read_jsonl(path / "metrics.jsonl"),
        summary=summary,
        class_names=[str(c) for c in arrays.get("class_names", [])],
        clean_labels=arrays.get("clean"),
        noisy_labels=arrays.get("noisy"),
        corrupted=arrays.get("corrupted"),
        shot_groups=arrays.get("shot_groups"),
        diagnostic_epochs=epochs,
    )
