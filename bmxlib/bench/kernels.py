"""Kernel benchmarks: the 2K GMMs, AP, label management at scale, batched RandAugment."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np
import torch

from .inputs import Sizes, bimodal_losses, synthetic_epoch_outputs, tied_scores
from .peers import (
    sklearn_average_precision,
    sklearn_clean_probability,
    torchmetrics_average_precision,
)
from .timing import best_time, sync, timed


def bench_gmm(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """2K GMM fits: bmxlib (best of ``repeats``) vs the sklearn loop (once), same losses."""
    from ..gmm import clean_probability

    num_items, num_classes = sizes.gmm
    losses, labels = bimodal_losses(num_items, num_classes)
    losses_t = torch.from_numpy(losses).to(device)
    labels_t = torch.from_numpy(labels).to(device)
    seconds, p_ours = best_time(lambda: clean_probability(losses_t, labels_t),
                                 repeats=sizes.repeats, device=device)
    start = time.perf_counter()
    p_peer = sklearn_clean_probability(losses, labels)
    peer_seconds = time.perf_counter() - start
    p_ours = p_ours.double().cpu().numpy()
    return {
        "name": "gmm", "items": num_items, "classes": num_classes, "groups": 2 * num_classes,
        "device": device.type, "bmxlib_s": seconds, "peer": "sklearn GaussianMixture loop",
        "peer_s": peer_seconds, "speedup": peer_seconds / seconds,
        "agreement": float(np.mean((p_ours > 0.5) == (p_peer > 0.5))),
        "mean_abs_diff": float(np.mean(np.abs(p_ours - p_peer))),
    }



def bench_ap(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """Per-class AP: bmxlib (best of ``repeats``) vs the sklearn loop (best of 2)."""
    from ..metrics import average_precision

    num_items, num_classes = sizes.ap
    scores, targets = tied_scores(num_items, num_classes)
    scores_t, targets_t = torch.from_numpy(scores).to(device), torch.from_numpy(targets)
    targets_t = targets_t.to(device)
    seconds, ours = best_time(lambda: average_precision(scores_t, targets_t),
                               repeats=sizes.repeats, device=device)
    peer_seconds, oracle = best_time(lambda: sklearn_average_precision(scores, targets), repeats=1,
                                      device=device)
    result = {
        "name": "ap", "items": num_items, "classes": num_classes, "device": device.type,
        "bmxlib_s": seconds, "peer": "sklearn average_precision_score loop",
        "peer_s": peer_seconds, "speedup": peer_seconds / seconds,
        "max_abs_diff": float(np.nanmax(np.abs(ours - oracle))),
        "ties": int(num_items * num_classes - sum(np.unique(c).size for c in scores.T)),
    }
    torchmetrics_fn = torchmetrics_average_precision(scores_t, targets_t)
    if torchmetrics_fn is None:
        result["torchmetrics_s"] = None  # not installed
    else:
        tm_seconds, tm = best_time(torchmetrics_fn, repeats=1, device=device)
        result["torchmetrics_s"] = tm_seconds
        result["torchmetrics_max_abs_diff"] = float(np.nanmax(np.abs(tm.cpu().numpy() - ours)))
    return result



def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> int:
    """Reset the process's peak-RSS mark where Linux allows it; return the RSS now.

    Without the reset the peak is the import of torch's, which hides a small workload."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pass
    current = _status_kib("VmRSS")
    return current * 1024 if current is not None else peak_rss_bytes()


def peak_rss_bytes() -> int:
    """The peak RSS since the last :func:`reset_peak_rss` (VmHWM), else since start."""
    peak = _status_kib("VmHWM")
    if peak is not None:
        return peak * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux



def label_management_worker(num_items: int, num_classes: int) -> dict[str, Any]:
    """The per-epoch label management on synthetic outputs; times and peak memory.

    The lean order a trainer can use at this scale: F is only needed by the sampler (the
    re-labeling views are a new forward pass), so it is dropped before the GMMs; the views
    buffer and p_G become the targets and weights (``manage_labels(out=...)``).
    """
    from ..gmm import clean_probability
    from ..labels import ManagedLabels, label_losses, manage_labels
    from ..sampling import minority_probabilities

    baseline = reset_peak_rss()
    logits, labels = synthetic_epoch_outputs(num_items, num_classes)
    seconds: dict[str, float] = {}
    with timed(seconds, "bce_losses"):
        losses = label_losses(logits, labels)
    with timed(seconds, "sampling_probabilities"):
        probabilities = minority_probabilities(logits.sigmoid_(), labels)
    del logits
    with timed(seconds, "gmm_clean_probability"):
        p_clean = clean_probability(losses, labels)
    del losses
    with timed(seconds, "relabel_candidates"):
        candidates = p_clean.amin(dim=1) <= 0.5  # rows holding a non-clean label
    views = torch.rand(labels.shape, generator=torch.Generator().manual_seed(1))
    views[~candidates] = torch.nan  # stand-in for the two-view confidences: not timed
    with timed(seconds, "manage_labels"):
        state = torch.empty(labels.shape, dtype=torch.uint8)
        managed = manage_labels(labels, p_clean, views,
                                out=ManagedLabels(targets=views, state=state, weight=p_clean))
    return {
        "items": num_items, "classes": num_classes, "seconds": seconds,
        "sampling_s": seconds["sampling_probabilities"],
        "label_management_s": sum(seconds.values()),
        "peak_rss_bytes": peak_rss_bytes(), "baseline_rss_bytes": baseline,
        "probabilities_sum": float(probabilities.sum()),
        "relabel_rows": int(candidates.sum()),
        "clean_share": float(managed.counts()["clean"]) / labels.numel(),
    }


def bench_label_management(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """Run :func:`label_management_worker` in a fresh Python process (CPU)."""
    num_items, num_classes = sizes.label_management
    command = [sys.executable, "-m", "bmxlib.bench", "--worker", "label_management",
               "--items", str(num_items), "--classes", str(num_classes),
               "--threads", str(torch.get_num_threads())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"label_management worker failed ({done.returncode}): {tail}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(name="label_management", device="cpu", limit_bytes=16 * 10**9)
    return result



def bench_randaugment(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """RandAugment (num_ops 2, magnitude 9) of a uint8 batch, three ways, same images:

    ``bmxlib_s``: ``BatchAugment`` (the batched tensor ops, the default); ``grouped_s``: the
    grouped implementation of before issue 19; ``peer_s``: torchvision's ``v2.RandAugment``
    image by image. ``identical``: the grouped output equals torchvision's loop under the
    same seed, and the batched output equals torchvision's ops applied to the batched
    draws (its random stream differs from torchvision's, its ops do not).
    """
    from torchvision.transforms import v2

    from ..data.presets import BatchAugment

    batched = BatchAugment(num_ops=2, magnitude=9, implementation="batched")
    grouped = BatchAugment(num_ops=2, magnitude=9, implementation="grouped")
    reference = v2.RandAugment(num_ops=2, magnitude=9)
    cases = []
    for count, channels, side in sizes.randaugment:
        generator = torch.Generator().manual_seed(count)
        coarse = torch.randint(0, 256, (count, channels, side // 8, side // 8),
                               generator=generator).float()
        images = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear")
        images = images.round().clamp(0, 255).to(torch.uint8).to(device)

        def seeded(augment, images=images):
            torch.manual_seed(0)
            return augment(images)

        seconds, result = best_time(lambda: seeded(batched), repeats=sizes.repeats,
                                    device=device)
        grouped_seconds, grouped_result = best_time(lambda: seeded(grouped),
                                                    repeats=sizes.repeats, device=device)
        sync(device)
        start = time.perf_counter()
        torch.manual_seed(0)
        expected = torch.stack([reference(image) for image in images])
        sync(device)
        peer_seconds = time.perf_counter() - start
        torch.manual_seed(0)  # the batched draws, replayed through torchvision's ops
        replay = batched.batched.apply(images, batched.batched.plan(count), one_by_one=True)
        cases.append({"images": count, "channels": channels, "side": side,
                      "bmxlib_s": seconds, "grouped_s": grouped_seconds,
                      "peer_s": peer_seconds, "speedup": peer_seconds / seconds,
                      "speedup_vs_grouped": grouped_seconds / seconds,
                      "us_per_image": {"batched": 1e6 * seconds / count,
                                       "grouped": 1e6 * grouped_seconds / count,
                                       "torchvision": 1e6 * peer_seconds / count},
                      "identical": bool(torch.equal(grouped_result, expected)
                                        and torch.equal(result, replay))})
    return {"name": "randaugment", "device": device.type, "cases": cases}
