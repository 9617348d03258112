"""The run directory (SPEC §7): small, dull, atomic artifact helpers and ``load_run``.

Layout of ``runs/<name>/``::

    config.yaml          full resolved config
    labels.npz           clean / noisy training labels and the corrupted mask
    metrics.jsonl        one JSON object per epoch
    diagnostics/         epoch_XXX.npz per epoch (BalanceMix internals)
    checkpoints/last.pt  model, optimiser, scheduler, sampler, method and RNG state
    summary.json         written last: the run is complete when it exists
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _atomic_replace(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old or the new file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    _atomic_replace(Path(path), lambda h: h.write(text.encode()))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    _atomic_replace(Path(path), lambda h: h.write(buffer.getvalue()))


def atomic_savez(path: str | Path, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    _atomic_replace(Path(path), lambda h: h.write(buffer.getvalue()))


def to_jsonable(obj: Any) -> Any:
    """Numpy / torch scalars and arrays to plain JSON; NaN and inf become null."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line; the whole file is rewritten atomically (it stays small)."""
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    atomic_write_text(path, old + json.dumps(to_jsonable(record)) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{path} line {number} is not valid JSON") from None
    return records


def truncate_jsonl(path: str | Path, *, max_epoch: int) -> None:
    """Keep only records with ``epoch <= max_epoch`` (used when resuming)."""
    records = [r for r in read_jsonl(path) if r.get("epoch", 0) <= max_epoch]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


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
