"""Problem sizes and seeded synthetic inputs shared by the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one bench run (full or ``--quick``)."""

    gmm: tuple[int, int] = (82_783, 80)  # COCO train2014 images × classes
    ap: tuple[int, int] = (40_137, 80)  # COCO val2014 (minival-free) images × classes
    label_management: tuple[int, int] = (1_000_000, 1_000)
    digits: tuple[str, ...] = ()  # extra config overrides of the epoch benchmark
    epochs: int = 2  # epoch 1 warms up (and runs the first label management); epoch 2 timed
    repeats: int = 3  # bmxlib timings: best of this many
    randaugment: tuple[tuple[int, int, int], ...] = ((64, 1, 32), (1000, 1, 32), (256, 3, 224))
    gpu_images: int = 512  # in-memory synthetic images of the GPU throughput benchmark
    gpu_batch: int = 32
    gpu_image_size: int = 448
    gpu_arch: str = "resnet50"
    gpu_head: str = "decoder"  # the paper's head for every method
    threads: int = 0  # torch CPU threads during the run (0 = leave torch's default)
    loader_images: int = 200  # JPEG files of the input-pipeline benchmark
    # (N, K) grid of the scaling benchmark: N in 10^4..10^6, K in 10..10^3
    scaling: tuple[tuple[int, int], ...] = tuple(
        (n, k) for n in (10_000, 100_000, 1_000_000) for k in (10, 100, 1_000))
    # whole runs of the breakdown benchmark: methods, and overrides of the regime config
    breakdown_methods: tuple[str, ...] = (
        "bce", "mixup", "balancemix", "coteaching", "asl", "t_estimator", "ll_r", "ll_ct")
    breakdown: tuple[str, ...] = ()
    amp_repeats: int = 2  # (float32, bf16) pairs of whole runs per method, amp_cpu benchmark


FULL = Sizes()
QUICK = Sizes(
    gmm=(2_000, 6), ap=(3_000, 8), label_management=(5_000, 20),
    randaugment=((64, 1, 32), (8, 3, 64)),
    digits=("n_train=200", "n_test=100", "width=8", "batch_size=32", "pretrained=none",
            "threads=1"),
    epochs=2, repeats=1, gpu_images=16, gpu_batch=8, gpu_image_size=64, threads=1,
    loader_images=6, scaling=((20_000, 8), (80_000, 8), (20_000, 32), (80_000, 32)),
    breakdown_methods=("bce", "balancemix"),
    breakdown=("n_train=200", "n_test=100", "width=8", "batch_size=32", "pretrained=none",
               "epochs=2", "warmup_epochs=1"),
    amp_repeats=1,
)



def long_tailed_prevalence(num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Per-class positive rate, COCO-like: a few classes in ~half the images, a long tail."""
    rank = rng.permutation(num_classes) + 1.0
    return np.clip(0.45 * rank ** -0.9, 2e-4, 0.45)


def bimodal_losses(num_items: int, num_classes: int, *, seed: int = 0, noise: float = 0.3):
    """(losses float32 (N, K), labels uint8 (N, K)) shaped like the BCE of a trained model.

    A correct label gets a confident prediction (confidence in its value ~ Beta(8, 1)), a
    corrupted one (``noise`` of the labels) an unconfident one (~ Beta(1, 3)); the loss is
    -log of that confidence, so the clean losses pile up near 0 and the noisy ones spread
    out to the right, as in the paper's loss histograms.
    """
    rng = np.random.default_rng(seed)
    prevalence = long_tailed_prevalence(num_classes, rng)
    labels = (rng.random((num_items, num_classes)) < prevalence).astype(np.uint8)
    corrupted = rng.random((num_items, num_classes)) < noise
    confidence = np.where(corrupted, rng.beta(1.0, 3.0, labels.shape),
                          rng.beta(8.0, 1.0, labels.shape))
    losses = -np.log(np.clip(confidence, 1e-7, 1.0))
    return losses.astype(np.float32), labels


def tied_scores(num_items: int, num_classes: int, *, seed: int = 0):
    """(scores float32 (N, K) rounded to 3 decimals, so with many ties; targets uint8)."""
    rng = np.random.default_rng(seed)
    prevalence = long_tailed_prevalence(num_classes, rng)
    targets = (rng.random((num_items, num_classes)) < prevalence).astype(np.uint8)
    logits = rng.normal(np.where(targets == 1, 1.0, -2.0), 1.5)
    scores = np.round(1.0 / (1.0 + np.exp(-logits)), 3)
    return scores.astype(np.float32), targets



def synthetic_epoch_outputs(num_items: int, num_classes: int, *, seed: int = 0):
    """(logits float32 (N, K), labels bool (N, K)) of a full-data pass, built in row chunks.

    Long-tailed labels; logits confident on the given value, with 20% of them on the wrong
    side (noise). Chunked so that generating 10^9 values needs no (N, K) temporaries.
    """
    generator = torch.Generator().manual_seed(seed)
    prevalence = torch.from_numpy(
        long_tailed_prevalence(num_classes, np.random.default_rng(seed))
    ).float()
    labels = torch.empty((num_items, num_classes), dtype=torch.bool)
    logits = torch.empty((num_items, num_classes), dtype=torch.float32)
    step = max(1, (1 << 22) // num_classes)
    for start in range(0, num_items, step):
        rows = slice(start, min(start + step, num_items))
        shape = (rows.stop - rows.start, num_classes)
        labels[rows] = torch.rand(shape, generator=generator) < prevalence
        side = labels[rows].float().mul_(2).sub_(1)  # ±1: the given value's side
        side[torch.rand(shape, generator=generator) < 0.2] *= -1  # noise: the wrong side
        logits[rows] = torch.randn(shape, generator=generator).mul_(1.5).add_(side.mul_(3))
    return logits, labels
