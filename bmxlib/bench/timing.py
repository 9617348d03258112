"""Timing helpers of the benchmarks: wall-clock seconds, CUDA work synchronised."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], Any], *, repeats: int, device: torch.device) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls (after one untimed warm-up) and the last result."""
    result = fn()
    best = math.inf
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        result = fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best, result


@contextmanager
def timed(into: dict[str, float], key: str, device: torch.device | None = None):
    device = device or torch.device("cpu")
    sync(device)
    start = time.perf_counter()
    yield
    sync(device)
    into[key] = into.get(key, 0.0) + time.perf_counter() - start
