"""The benchmarks ``bmx bench`` knows, by name. Light on purpose (no torch import), so the
command line lists them without loading the measuring code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: ``bmxlib.bench.<module>.<function>(sizes, device) -> dict``."""

    name: str
    module: str
    function: str
    measures: str  # one line: what is timed against what
    cuda_only: bool = False


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("gmm", "kernels", "bench_gmm",
              "the 2K clean-label GMMs at COCO scale vs a scikit-learn GaussianMixture loop"),
    Benchmark("ap", "kernels", "bench_ap",
              "per-class AP at COCO-val scale with ties vs scikit-learn (and torchmetrics)"),
    Benchmark("label_management", "kernels", "bench_label_management",
              "the per-epoch label management at N = 10^6, K = 10^3: time and peak memory"),
    Benchmark("randaugment", "kernels", "bench_randaugment",
              "batched per-image RandAugment vs torchvision image by image (bit-identical)"),
    Benchmark("scaling", "scaling", "bench_scaling",
              "label management's time and peak memory over N in 10^4..10^6, K in 10..10^3, "
              "and the growth exponents"),
    Benchmark("loader", "pipeline", "bench_loader",
              "one loader worker's decode + resize to 448 + RandAugment on JPEGs (PIL, PIL "
              "draft, torchvision.io)"),
    Benchmark("epoch", "training", "bench_epochs",
              "digits-lt epochs of bce, mixup and balancemix, and where balancemix's time goes"),
    Benchmark("breakdown", "breakdown", "bench_breakdown",
              "whole paper-regime runs of the eight methods, split into step, augmentation, "
              "loader, end-of-epoch passes, evaluation, writes and setup"),
    Benchmark("amp_cpu", "breakdown", "bench_amp_cpu",
              "whole paper-regime runs of bce and balancemix in float32 vs bf16 autocast on "
              "the CPU (config amp_cpu), alternating in one process"),
    Benchmark("gpu", "training", "bench_gpu",
              "GMM and AP on the GPU, ResNet-50 448 bf16 training images/s", cuda_only=True),
)}
NAMES = tuple(BENCHMARKS)
