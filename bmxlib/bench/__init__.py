"""``bmx bench``: bmxlib against the peers it replaces, in one process, on the same inputs.

Benchmarks (``python -m bmxlib.bench --only NAME[,NAME]`` runs a subset):

* ``gmm``: the 2K clean-label mixtures of docs/method.md §1.4 at COCO scale (N = 82,783,
  K = 80, bimodal BCE losses) vs a loop of scikit-learn ``GaussianMixture`` with the
  settings of docs/method.md §1.4; plus the share of labels on which the two agree about p_G > 0.5.
* ``ap``: per-class AP at N = 40,137, K = 80 (scores with ties) vs a loop of
  ``sklearn.metrics.average_precision_score`` (and torchmetrics if installed); plus the
  largest absolute difference.
* ``label_management``: the minority-sampler probabilities and the full per-epoch label
  management (BCE losses, sampler, 2K GMMs, re-labeling candidates, ``manage_labels``) at
  N = 10^6, K = 10^3, in a fresh subprocess so that its peak memory (``ru_maxrss``) is its
  own.
* ``randaugment``: ``data.presets.BatchAugment`` — batched (the default: each op kind once
  per op slot as a tensor op) and grouped (before issue 19) — vs torchvision's
  ``v2.RandAugment`` called image by image, on batches of 64 and 1,000 32×32 digits and
  256 224×224 RGB images; plus whether the ops are bit-identical to torchvision's.
* ``scaling``: the label management of ``label_management`` over a grid of N ∈ {10^4,
  10^5, 10^6} and K ∈ {10, 10^2, 10^3} (a process each), the growth exponents of its time
  and the bytes per label, hence the largest N × K in 16 GB of host / 80 GB of GPU memory.
* ``loader``: one data-loader worker's decode + resize to 448 + RandAugment images/s on
  JPEG files the bench writes, with PIL, PIL draft mode and torchvision.io decoding.
* ``epoch``: digits-lt training epochs of bce, mixup and balancemix (the
  configs/digits_balancemix.yaml settings, warm-up 1 epoch so label management runs), the
  balancemix epoch including its end-of-epoch work, and where balancemix's time goes.
* ``gpu`` (``--device cuda`` only): the GMM and AP on the GPU, and ResNet-50 448×448 bf16
  channels_last training images/s of bce, mixup and balancemix on in-memory synthetic uint8
  images, RandAugment-ed on the device as in training (no data loader in the timing).

Times are wall-clock seconds (``time.perf_counter``; CUDA work is synchronised); a peer
runs right after bmxlib on the very same arrays.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from .registry import BENCHMARKS, NAMES, Benchmark
from .table import format_table, table_rows

__all__ = ["BENCHMARKS", "FULL", "NAMES", "QUICK", "Benchmark", "Sizes", "format_table",
           "main", "run_bench", "runner", "table_rows"]


def __getattr__(name: str):
    """The sizes load with torch on first use: ``bmx --help`` lists the benchmarks (from
    the registry) without importing torch."""
    if name in ("FULL", "QUICK", "Sizes"):
        from . import inputs

        return getattr(inputs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def runner(name: str):
    """The measuring function of benchmark ``name``: ``(sizes, device) -> dict``."""
    spec = BENCHMARKS[name]
    return getattr(importlib.import_module(f"{__name__}.{spec.module}"), spec.function)


def _selected(only, device) -> list[str]:
    if only is None:
        names = [n for n, b in BENCHMARKS.items() if not b.cuda_only or device.type == "cuda"]
    else:
        names = [only] if isinstance(only, str) else list(only)
        names = [n.strip() for name in names for n in name.split(",") if n.strip()]
        if not names:  # `--only ""` ran nothing and said nothing
            raise ValueError(f"--only names no benchmark; choose from {', '.join(NAMES)}")
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(NAMES)}")
    cuda_only = [n for n in names if BENCHMARKS[n].cuda_only]
    if cuda_only and device.type != "cuda":
        raise ValueError(f"benchmark {cuda_only[0]!r} needs --device cuda")
    return names


def run_bench(*, device: str = "cpu", out: str | None = None, quick: bool = False,
              only=None) -> dict[str, Any]:
    """Run the benchmarks, print the table, optionally write JSON; returns the results.

    Parameters
    ----------
    device : {"cpu", "cuda"}
        "cuda" adds the GPU benchmarks; it is refused (ValueError) without CUDA.
    out : str, optional
        Path of a JSON file with the machine, the sizes and every measurement.
    quick : bool
        Tiny sizes (seconds; for tests), not figures to quote.
    only : str or list of str, optional
        Names from :data:`BENCHMARKS` (comma-separated allowed) to run instead of all.
    """
    import torch

    from ..provenance import machine_info
    from .inputs import FULL, QUICK

    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("bench: --device cuda requested but CUDA is not available")
    if out:  # before minutes of benchmarking, not after
        from pathlib import Path

        from ..io import check_can_write

        check_can_write(Path(out), "bench output (--out)")
    torch_device = torch.device(device)
    sizes = QUICK if quick else FULL
    names = _selected(only, torch_device)
    threads = torch.get_num_threads()
    if sizes.threads:
        torch.set_num_threads(sizes.threads)
    try:
        info = machine_info()
        results = {}
        for name in names:
            results[name] = runner(name)(sizes, torch_device)
            print(f"[bench] {name} done", file=sys.stderr, flush=True)
    finally:
        torch.set_num_threads(threads)
    report = {"machine": info, "device": device, "quick": quick, "sizes": sizes.__dict__,
              "results": results}
    print(format_table(results, info), flush=True)
    if out:
        from ..io import atomic_write_json

        atomic_write_json(out, report)
        if "scaling" in results:  # the growth figure beside the JSON
            from pathlib import Path

            from ..plots import save, scaling_curves

            scaling = results["scaling"]
            figure = scaling_curves(scaling["points"], exponents=scaling,
                                    title=f"label management cost ({info['cpu']})")
            save(figure, Path(out).parent, f"{Path(out).stem}-scaling")
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m bmxlib.bench [--device D] [--out F] [--quick] [--only NAMES]``."""
    parser = argparse.ArgumentParser(prog="python -m bmxlib.bench", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", help="write the results as JSON")
    parser.add_argument("--quick", action="store_true", help="small sizes (for tests)")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(NAMES)}")
    parser.add_argument("--worker", choices=("label_management",), help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--classes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        from .kernels import label_management_worker

        print(json.dumps(label_management_worker(args.items, args.classes)), flush=True)
        return 0
    try:
        run_bench(device=args.device, out=args.out, quick=args.quick, only=args.only)
    except ValueError as err:
        print(f"bmx: error: {err}", file=sys.stderr)
        return 2
    return 0

