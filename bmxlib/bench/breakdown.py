"""Where a whole training run's time goes: ``bmx bench --only breakdown``.

Each method trains one complete run of the digits-lt paper regime
(configs/regime/base.yaml: 1,000 canvases, 100 epochs, one torch thread; ``--quick``: a
tiny run) through ``engine.fit``, with wall-clock timers wrapped around the engine's verbs
(no profiler, so the wall time is the run's own). The run's wall time splits into

- ``step``: ``steps.train_step`` (forward, loss, backward, SGD, schedule);
- ``augmentation``: the per-batch transform of the training batches (``to_device``:
  RandAugment, float, normalise);
- ``loader``: the rest of ``train_one_epoch`` (drawing batches, mixing bookkeeping);
- ``end_of_epoch``: the method's end-of-epoch work, with its ``full_data_pass`` and
  ``relabel_views`` (re-label views, including their augmentation) also given apart;
- ``evaluation``: ``evaluate`` on the test split, with the memorization diagnostics;
- ``writes``: ``Recorder.write_epoch`` (diagnostics, metrics line, checkpoint, TensorBoard);
- ``setup``: everything else of ``fit`` (building data, model and method, the run header).

``import_s`` is the import of the engine in a fresh interpreter (paid once per sweep
worker, not per run). Each figure is a sum over the run; ``share`` is of the run's wall.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..compute import cpu_bf16_flags
from .inputs import Sizes

REGIME = Path(__file__).resolve().parents[2] / "configs" / "regime" / "base.yaml"
#: the functions timed, as (module, attribute path, bucket): the attribute is looked up
#: where its caller finds it (``steps.train_one_epoch`` calls ``steps.train_step``)
TIMED = (("steps", "train_step", "step"), ("steps", "to_device", "augmentation"),
         ("steps", "train_one_epoch", "train_one_epoch"), ("engine", "run_epoch", "run_epoch"),
         ("steps", "evaluate", "evaluation"), ("steps", "full_data_pass", "full_data_pass"),
         ("steps", "relabel_views", "relabel_views"),
         ("recorder", "Recorder.write_epoch", "writes"))


@contextmanager
def _timers(seconds: dict[str, float]):
    """Wrap the timed functions so that each call adds its wall time to ``seconds``."""
    import importlib

    def wrap(function, bucket):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[bucket] = seconds.get(bucket, 0.0) + time.perf_counter() - start
        return timed

    patched = []
    try:
        for module, path, bucket in TIMED:
            owner = importlib.import_module(f"bmxlib.{module}")
            *parents, name = path.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            original = getattr(owner, name)
            setattr(owner, name, wrap(original, bucket))
            patched.append((owner, name, original))
        yield
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


def split(wall: float, seconds: dict[str, float]) -> dict[str, float]:
    """The run's buckets from the timers' sums (see the module docstring)."""
    get = lambda key: seconds.get(key, 0.0)  # noqa: E731
    train = get("train_one_epoch")
    return {
        "wall": wall,
        "step": get("step"),
        "augmentation": get("augmentation"),
        "loader": train - get("step") - get("augmentation"),
        "end_of_epoch": get("run_epoch") - train - get("evaluation"),
        "full_data_pass": get("full_data_pass"),
        "relabel_views": get("relabel_views"),
        "evaluation": get("evaluation"),
        "writes": get("writes"),
        "setup": wall - get("run_epoch") - get("writes"),
    }


def time_run(method: str, overrides: list[str], out_dir: str) -> dict[str, float]:
    """One run of ``method`` under ``overrides``: its wall time and buckets (seconds)."""
    from .. import engine
    from ..config import load_config

    config = load_config(str(REGIME), [f"method={method}", f"name={method}", "threads=1",
                                       "progress=false", "tensorboard=true",
                                       f"out_dir={out_dir}", *overrides])
    seconds: dict[str, float] = {}
    with _timers(seconds):
        start = time.perf_counter()
        engine.fit(config, overwrite=True)
        wall = time.perf_counter() - start
    return split(wall, seconds)


def import_seconds() -> float:
    """Wall time of ``import bmxlib.engine`` in a fresh interpreter (best of 2)."""
    code = "import time; s = time.perf_counter(); import bmxlib.engine; " \
           "print(time.perf_counter() - s)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout) for _ in range(2)]
    return min(runs)


def bench_amp_cpu(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """Float32 against bf16 autocast on the CPU (config ``amp_cpu``): the breakdown's whole
    runs, float32 and bf16 alternating in one process (``sizes.amp_repeats`` pairs, so a
    change of load hits both), for bce and balancemix; the ratio of the median walls and of
    the median training steps (float32 / bf16: above 1 is faster)."""
    if device.type != "cpu":
        return {"skipped": "amp_cpu concerns the CPU only"}
    overrides = list(sizes.breakdown)
    threads = torch.get_num_threads()
    result: dict[str, Any] = {"config": "configs/regime/base.yaml", "overrides": overrides,
                              "cpu_bf16_flags": cpu_bf16_flags() or [], "runs": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="bmx-amp-cpu-") as out_dir:
            for method in ("bce", "balancemix"):
                timed = {"float32": [], "bf16": []}
                for _ in range(sizes.amp_repeats):
                    for mode, flag in (("float32", "false"), ("bf16", "true")):
                        timed[mode].append(time_run(
                            method, [*overrides, "device=cpu", f"amp_cpu={flag}"], out_dir))
                median = {mode: {part: float(np.median([r[part] for r in runs]))
                                 for part in ("wall", "step")} for mode, runs in timed.items()}
                result["runs"][method] = {
                    **{f"{mode}_{part}": value for mode, parts in median.items()
                       for part, value in parts.items()},
                    "wall_ratio": median["float32"]["wall"] / median["bf16"]["wall"],
                    "step_ratio": median["float32"]["step"] / median["bf16"]["step"]}
    finally:
        torch.set_num_threads(threads)
    return result


def bench_breakdown(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """A run per method, split into the buckets above, and the engine's import time."""
    overrides = list(sizes.breakdown)
    threads = torch.get_num_threads()
    try:
        with tempfile.TemporaryDirectory(prefix="bmx-breakdown-") as out_dir:
            runs = {m: time_run(m, [*overrides, f"device={device.type}"], out_dir)
                    for m in sizes.breakdown_methods}
    finally:
        torch.set_num_threads(threads)
    return {"config": "configs/regime/base.yaml", "overrides": overrides,
            "import_s": import_seconds(), "runs": runs}
