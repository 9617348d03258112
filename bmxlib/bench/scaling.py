"""How label management's cost grows with N and K (the paper's claim: "O(N), small").

For every (N, K) of the grid, the per-epoch label management — BCE losses, the minority
sampler's probabilities, the 2K GMMs, the re-labeling candidates and ``manage_labels`` on a
synthetic full-data pass (``kernels.label_management_worker``) — runs in a fresh process,
so its peak memory (``ru_maxrss``) is its own; on CUDA it runs on the device and the peak
is ``torch.cuda.max_memory_allocated``. The growth exponents come from least squares on
log(seconds) = a + b·log N + c·log K; the bytes per label from the largest grid point give
the largest N × K that fits a memory budget (16 GB of host memory, 80 GB of GPU memory).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import torch

from .inputs import Sizes

HOST_BUDGET = 16e9  # bytes: a common workstation
GPU_BUDGET = 80e9  # bytes: an 80 GB accelerator


def _on_cpu(items: int, classes: int, threads: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "bmxlib.bench", "--worker", "label_management",
               "--items", str(items), "--classes", str(classes), "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"scaling worker N={items} K={classes} failed: {tail}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["peak_bytes"] = result["peak_rss_bytes"] - result["baseline_rss_bytes"]
    return result


def _on_gpu(items: int, classes: int, device: torch.device) -> dict[str, Any]:
    import time

    from ..gmm import clean_probability
    from ..labels import label_losses, manage_labels
    from ..sampling import minority_probabilities
    from .inputs import synthetic_epoch_outputs

    logits, labels = synthetic_epoch_outputs(items, classes)
    logits, labels = logits.to(device), labels.to(device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    start = time.perf_counter()
    losses = label_losses(logits, labels)
    minority_probabilities(logits.sigmoid_(), labels)
    p_clean = clean_probability(losses, labels)
    views = torch.rand(labels.shape, device=device)
    manage_labels(labels, p_clean, views)
    torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) - baseline
    return {"items": items, "classes": classes, "label_management_s": seconds,
            "peak_bytes": int(peak + logits.numel() * 5)}  # the inputs themselves included


def growth_exponents(points: list[dict[str, Any]]) -> dict[str, float]:
    """Least-squares b, c of log t = a + b·log N + c·log K over the grid points."""
    n = np.log([p["items"] for p in points])
    k = np.log([p["classes"] for p in points])
    t = np.log([max(p["label_management_s"], 1e-9) for p in points])
    design = np.column_stack([np.ones_like(n), n, k])
    (a, b, c), *_ = np.linalg.lstsq(design, t, rcond=None)
    return {"intercept": float(a), "exponent_n": float(b), "exponent_k": float(c)}


def bench_scaling(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """Label-management seconds and peak memory over the (N, K) grid of ``sizes``."""
    points = []
    for items, classes in sizes.scaling:
        if device.type == "cuda":
            point = _on_gpu(items, classes, device)
        else:
            point = _on_cpu(items, classes, torch.get_num_threads())
        point["labels"] = items * classes
        point["bytes_per_label"] = point["peak_bytes"] / point["labels"]
        points.append(point)
    largest = max(points, key=lambda p: p["labels"])
    per_label = largest["bytes_per_label"]  # the largest point: fixed costs amortised
    # a grid too small to lift the peak above the RSS page resolution gives no capacity
    capacity = per_label > 0
    return {"name": "scaling", "device": device.type, "points": points,
            **growth_exponents(points), "bytes_per_label": per_label,
            "max_labels_16gb_host": HOST_BUDGET / per_label if capacity else None,
            "max_labels_80gb_gpu": GPU_BUDGET / per_label if capacity else None}
