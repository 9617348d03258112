"""Checkpoints: everything needed to resume a run exactly (docs/method.md §7).

``checkpoints/last.pt`` holds the finished epoch, the config it ran with, the model,
the method's extra modules (co-teaching's peer), optimiser, scheduler, the method's state
(samplers, managed labels) and every random generator. It is written atomically after
each epoch's metrics, so a kill at any moment leaves the last complete epoch.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import distributed as dist
from . import runs
from .config import Config, ConfigError, from_dict, result_differences
from .experiment import Setup
from .io import atomic_torch_save


def rng_state() -> dict[str, Any]:
    """The state of torch's, NumPy's and Python's global generators (and CUDA's)."""
    np_state = np.random.get_state()  # noqa: NPY002
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))  # noqa: NPY002
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(s: Setup, run_dir: Path, epoch: int) -> None:
    state = {
        "epoch": epoch,
        "config": s.config.to_dict(),
        "model": dist.unwrap(s.model).state_dict(),
        "extra_modules": {k: dist.unwrap(m).state_dict()
                          for k, m in s.method.extra_modules().items()},
        "optimizer": s.optimizer.state_dict(),
        "scheduler": s.scheduler.state_dict(),
        "method": s.method.state_dict(),
        "rng": rng_state(),
    }
    atomic_torch_save(runs.checkpoint_path(run_dir), state)


def read_checkpoint(run_dir: Path, *, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The checkpoint of ``run_dir`` as a mapping (one-line errors when missing or corrupt)."""
    path = runs.checkpoint_path(run_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: nothing to resume")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint {path} is corrupt ({err.__class__.__name__})") from None


def check_finished(run_dir: Path) -> None:
    """A finished run (summary.json) has nothing to resume: check only that its
    metrics.jsonl holds epochs 1..E once each, E the epochs of its own config.yaml
    (ValueError, one line, when not)."""
    epochs = runs.read_config(run_dir).get("epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool):
        raise ValueError(f"{runs.config_path(run_dir)} of the finished run has no integer "
                         f"'epochs' (got {epochs!r}); remove {run_dir} and train it again")
    problem = runs.epochs_recorded_once(run_dir, epochs)
    if problem:
        raise ValueError(f"{run_dir / runs.METRICS_FILE} of the finished run holds {problem}; "
                         f"remove {run_dir} and train it again")


def check_resumable(state: dict[str, Any], config: Config, run_dir: Path) -> int:
    """The checkpoint's finished epoch, after checking that it belongs to ``config``.

    Raises ConfigError (one line, naming the key) when the config the checkpoint was
    trained with differs from ``config`` in anything that changes results, and ValueError
    when metrics.jsonl does not hold exactly the epochs 1..E the checkpoint has finished.
    """
    path = runs.checkpoint_path(run_dir)
    if not isinstance(state, dict) or "config" not in state or "epoch" not in state:
        raise ValueError(f"checkpoint {path} is not a bmxlib checkpoint (no config / epoch)")
    trained = from_dict(state["config"], source=str(path))
    for key, old, new in result_differences(trained, config)[:1]:
        raise ConfigError(
            f"checkpoint {path} was trained with {key}={old!r} but "
            f"{runs.config_path(run_dir)} says {key}={new!r}: it cannot be resumed"
        )
    epoch = int(state["epoch"])
    seen = [r.get("epoch") for r in runs.read_metrics(run_dir)]
    finished = [e for e in seen if isinstance(e, int) and e <= epoch]
    if finished != list(range(1, epoch + 1)):
        missing = sorted(set(range(1, epoch + 1)) - set(finished))
        what = f"lacks epoch {missing[0]}" if missing else f"holds epochs {finished}"
        raise ValueError(f"{run_dir}: metrics.jsonl {what} but the checkpoint has finished "
                         f"epochs 1-{epoch}; the run directory is inconsistent")
    return epoch


def restore_checkpoint(s: Setup, state: dict[str, Any], run_dir: Path) -> int:
    """Load a checked checkpoint ``state`` into ``s``; returns the finished epoch."""
    try:
        dist.unwrap(s.model).load_state_dict(state["model"])
        for key, module in s.method.extra_modules().items():
            dist.unwrap(module).load_state_dict(state["extra_modules"][key])
        s.optimizer.load_state_dict(state["optimizer"])
        s.scheduler.load_state_dict(state["scheduler"])
        s.method.load_state_dict(state["method"])
        set_rng_state(state["rng"])
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        first = (str(err).strip().splitlines() or [err.__class__.__name__])[0]
        raise ValueError(f"checkpoint {runs.checkpoint_path(run_dir)} does not fit this run's "
                         f"model or method ({first[:160]})") from None
    return int(state["epoch"])


def load_checkpoint(s: Setup, run_dir: Path) -> int:
    """Check and restore ``run_dir``'s checkpoint into ``s``, and drop the metrics records
    of the epochs after it (by rank 0); returns the finished epoch."""
    state = read_checkpoint(run_dir, device=s.device)
    check_resumable(state, s.config, run_dir)
    epoch = restore_checkpoint(s, state, run_dir)
    if dist.is_main():
        runs.truncate_metrics(run_dir, max_epoch=epoch)
    return epoch
