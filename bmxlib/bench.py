"""``bmx bench``: bmxlib against the peers it replaces, in one process, on the same inputs.

Benchmarks (``python -m bmxlib.bench --only NAME[,NAME]`` runs a subset):

* ``gmm``: the 2K clean-label mixtures of SPEC §1.4 at COCO scale (N = 82,783, K = 80,
  bimodal BCE losses) vs a loop of scikit-learn ``GaussianMixture`` with the SPEC settings;
  plus the share of labels on which the two agree about p_G > 0.5.
* ``ap``: per-class AP at N = 40,137, K = 80 (scores with ties) vs a loop of
  ``sklearn.metrics.average_precision_score`` (and torchmetrics if installed); plus the
  largest absolute difference.
* ``label_management``: the minority-sampler probabilities and the full per-epoch label
  management (BCE losses, sampler, 2K GMMs, re-labeling candidates, ``manage_labels``) at
  N = 10^6, K = 10^3, in a fresh subprocess so that its peak memory (``ru_maxrss``) is its
  own.
* ``randaugment``: ``data.presets.BatchAugment`` (per-image RandAugment ops applied to a
  stacked batch) vs torchvision's ``v2.RandAugment`` called image by image, on the same
  32×32 digits-sized and 224×224 RGB batches under the same seed; plus whether the outputs
  are bit-identical.
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
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .provenance import machine_info

BENCHMARKS = ("gmm", "ap", "label_management", "randaugment", "epoch", "gpu")


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one bench run (full or ``--quick``)."""

    gmm: tuple[int, int] = (82_783, 80)  # COCO train2014 images × classes
    ap: tuple[int, int] = (40_137, 80)  # COCO val2014 (minival-free) images × classes
    label_management: tuple[int, int] = (1_000_000, 1_000)
    digits: tuple[str, ...] = ()  # extra config overrides of the epoch benchmark
    epochs: int = 2  # epoch 1 warms up (and runs the first label management); epoch 2 timed
    repeats: int = 3  # bmxlib timings: best of this many
    randaugment: tuple[tuple[int, int, int], ...] = ((4096, 1, 32), (256, 3, 224))  # B, C, side
    gpu_images: int = 512  # in-memory synthetic images of the GPU throughput benchmark
    gpu_batch: int = 32
    gpu_image_size: int = 448
    gpu_arch: str = "resnet50"
    threads: int = 0  # torch CPU threads during the run (0 = leave torch's default)


FULL = Sizes()
QUICK = Sizes(
    gmm=(2_000, 6), ap=(3_000, 8), label_management=(5_000, 20),
    randaugment=((64, 1, 32), (8, 3, 64)),
    digits=("n_train=200", "n_test=100", "width=8", "batch_size=32", "pretrained=none",
            "threads=1"),
    epochs=2, repeats=1, gpu_images=16, gpu_batch=8, gpu_image_size=64, threads=1,
)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_time(fn: Callable[[], Any], *, repeats: int, device: torch.device) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls (after one untimed warm-up) and the last result."""
    result = fn()
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        result = fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best, result


@contextmanager
def _timed(into: dict[str, float], key: str, device: torch.device | None = None):
    device = device or torch.device("cpu")
    _sync(device)
    start = time.perf_counter()
    yield
    _sync(device)
    into[key] = into.get(key, 0.0) + time.perf_counter() - start


# --------------------------------------------------------------------------------------
# synthetic inputs (seeded)
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# GMM: bmxlib vs a scikit-learn loop
# --------------------------------------------------------------------------------------
def sklearn_clean_probability(losses: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """p_G (N, K) by a loop over the 2K groups with sklearn ``GaussianMixture`` (SPEC §1.4).

    The DivideMix recipe with the SPEC settings; groups with fewer than 2 members or all
    losses equal are clean (p_G = 1), as in bmxlib.
    """
    from sklearn.mixture import GaussianMixture

    p_clean = np.ones(losses.shape, dtype=np.float64)
    for k in range(losses.shape[1]):
        for value in (0, 1):
            members = labels[:, k] == value
            x = losses[members, k].astype(np.float64)
            if x.size < 2 or x.max() - x.min() <= 4 * np.finfo(losses.dtype).eps * max(
                abs(x.max()), 1.0
            ):
                continue
            x = ((x - x.min()) / (x.max() - x.min()))[:, None]
            gmm = GaussianMixture(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4,
                                  random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter=10
                gmm.fit(x)
            p_clean[members, k] = gmm.predict_proba(x)[:, gmm.means_.argmin()]
    return p_clean


def bench_gmm(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """2K GMM fits: bmxlib (best of ``repeats``) vs the sklearn loop (once), same losses."""
    from .gmm import clean_probability

    num_items, num_classes = sizes.gmm
    losses, labels = bimodal_losses(num_items, num_classes)
    losses_t = torch.from_numpy(losses).to(device)
    labels_t = torch.from_numpy(labels).to(device)
    seconds, p_ours = _best_time(lambda: clean_probability(losses_t, labels_t),
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


# --------------------------------------------------------------------------------------
# AP: bmxlib vs scikit-learn (and torchmetrics)
# --------------------------------------------------------------------------------------
def _sklearn_ap(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    from sklearn.metrics import average_precision_score

    return np.array([
        average_precision_score(targets[:, k], scores[:, k]) if targets[:, k].any() else np.nan
        for k in range(targets.shape[1])
    ])


def _torchmetrics_ap(scores: torch.Tensor, targets: torch.Tensor) -> Callable[[], Any] | None:
    try:
        from torchmetrics.functional.classification import multilabel_average_precision
    except ImportError:
        return None
    return lambda: multilabel_average_precision(
        scores, targets.long(), num_labels=scores.shape[1], average="none"
    )


def bench_ap(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """Per-class AP: bmxlib (best of ``repeats``) vs the sklearn loop (best of 2)."""
    from .metrics import average_precision

    num_items, num_classes = sizes.ap
    scores, targets = tied_scores(num_items, num_classes)
    scores_t, targets_t = torch.from_numpy(scores).to(device), torch.from_numpy(targets)
    targets_t = targets_t.to(device)
    seconds, ours = _best_time(lambda: average_precision(scores_t, targets_t),
                               repeats=sizes.repeats, device=device)
    peer_seconds, oracle = _best_time(lambda: _sklearn_ap(scores, targets), repeats=1,
                                      device=device)
    result = {
        "name": "ap", "items": num_items, "classes": num_classes, "device": device.type,
        "bmxlib_s": seconds, "peer": "sklearn average_precision_score loop",
        "peer_s": peer_seconds, "speedup": peer_seconds / seconds,
        "max_abs_diff": float(np.nanmax(np.abs(ours - oracle))),
        "ties": int(num_items * num_classes - sum(np.unique(c).size for c in scores.T)),
    }
    torchmetrics_fn = _torchmetrics_ap(scores_t, targets_t)
    if torchmetrics_fn is None:
        result["torchmetrics_s"] = None  # not installed
    else:
        tm_seconds, tm = _best_time(torchmetrics_fn, repeats=1, device=device)
        result["torchmetrics_s"] = tm_seconds
        result["torchmetrics_max_abs_diff"] = float(np.nanmax(np.abs(tm.cpu().numpy() - ours)))
    return result


# --------------------------------------------------------------------------------------
# label management at scale, in a subprocess (its own peak memory)
# --------------------------------------------------------------------------------------
def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


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


def label_management_worker(num_items: int, num_classes: int) -> dict[str, Any]:
    """The per-epoch label management on synthetic outputs; times and peak memory.

    The lean order a trainer can use at this scale: F is only needed by the sampler (the
    re-labeling views are a new forward pass), so it is dropped before the GMMs; the views
    buffer and p_G become the targets and weights (``manage_labels(out=...)``).
    """
    from .gmm import clean_probability
    from .labels import ManagedLabels, label_losses, manage_labels
    from .sampling import minority_probabilities

    baseline = _peak_rss_bytes()
    logits, labels = synthetic_epoch_outputs(num_items, num_classes)
    seconds: dict[str, float] = {}
    with _timed(seconds, "bce_losses"):
        losses = label_losses(logits, labels)
    with _timed(seconds, "sampling_probabilities"):
        probabilities = minority_probabilities(logits.sigmoid_(), labels)
    del logits
    with _timed(seconds, "gmm_clean_probability"):
        p_clean = clean_probability(losses, labels)
    del losses
    with _timed(seconds, "relabel_candidates"):
        candidates = p_clean.amin(dim=1) <= 0.5  # rows holding a non-clean label
    views = torch.rand(labels.shape, generator=torch.Generator().manual_seed(1))
    views[~candidates] = torch.nan  # stand-in for the two-view confidences: not timed
    with _timed(seconds, "manage_labels"):
        state = torch.empty(labels.shape, dtype=torch.uint8)
        managed = manage_labels(labels, p_clean, views,
                                out=ManagedLabels(targets=views, state=state, weight=p_clean))
    return {
        "items": num_items, "classes": num_classes, "seconds": seconds,
        "sampling_s": seconds["sampling_probabilities"],
        "label_management_s": sum(seconds.values()),
        "peak_rss_bytes": _peak_rss_bytes(), "baseline_rss_bytes": baseline,
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


# --------------------------------------------------------------------------------------
# training epochs on digits-lt
# --------------------------------------------------------------------------------------
def bench_randaugment(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """BatchAugment vs torchvision's per-image RandAugment (num_ops 2, magnitude 9)."""
    from torchvision.transforms import v2

    from .data.presets import BatchAugment

    batched = BatchAugment(num_ops=2, magnitude=9)
    reference = v2.RandAugment(num_ops=2, magnitude=9)
    cases = []
    for count, channels, side in sizes.randaugment:
        generator = torch.Generator().manual_seed(count)
        coarse = torch.randint(0, 256, (count, channels, side // 8, side // 8),
                               generator=generator).float()
        images = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear")
        images = images.round().clamp(0, 255).to(torch.uint8).to(device)

        def ours(images=images):
            torch.manual_seed(0)
            return batched(images)

        def peer(images=images):
            torch.manual_seed(0)
            return torch.stack([reference(image) for image in images])

        seconds, result = _best_time(ours, repeats=sizes.repeats, device=device)
        _sync(device)
        start = time.perf_counter()
        expected = peer()
        _sync(device)
        peer_seconds = time.perf_counter() - start
        cases.append({"images": count, "channels": channels, "side": side,
                      "bmxlib_s": seconds, "peer_s": peer_seconds,
                      "speedup": peer_seconds / seconds,
                      "identical": bool(torch.equal(result, expected))})
    return {"name": "randaugment", "device": device.type, "cases": cases}


def _digits_config(method: str, sizes: Sizes, out_dir: str):
    """configs/digits_balancemix.yaml settings, ``method`` swapped, warm-up of one epoch."""
    from .config import load_config

    return load_config(None, [
        "dataset=digits-lt", "noise=mislabel", "noise_rate=0.4", "arch=small_cnn",
        "pretrained=digits", "batch_size=64", "lr=0.01", "mix_alpha=4.0", f"method={method}",
        f"epochs={sizes.epochs}", "warmup_epochs=1", "progress=false", "device=cpu",
        "diagnostics_every=0", f"out_dir={out_dir}", *sizes.digits,
    ])


def _timed_context_class():
    from .engine import EpochContext

    class TimedContext(EpochContext):
        """EpochContext that adds up the time of the full-data pass and re-label views."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.seconds = {"full_data_pass": 0.0, "relabel_views": 0.0}

        def full_data_pass(self, model=None):
            with _timed(self.seconds, "full_data_pass", self.setup.device):
                return super().full_data_pass(model)

        def predict_views(self, rows, *, n_views=2):
            with _timed(self.seconds, "relabel_views", self.setup.device):
                return super().predict_views(rows, n_views=n_views)

    return TimedContext


def _loading_seconds(setup, epoch: int) -> float:
    """Time to draw one epoch of training batches without the model: the loader plus the
    per-batch augmentation (RandAugment, float, normalise) that the engine applies."""
    from .engine import epoch_loaders, transform_parts

    _, augment = transform_parts(setup.train_set.transform)
    first, second, _ = epoch_loaders(setup, epoch)
    start = time.perf_counter()
    for batches in zip(first, second) if second is not None else ((b,) for b in first):
        for images, _ in batches:
            if augment is not None:
                augment(images)
    return time.perf_counter() - start


def _time_method_epochs(method: str, sizes: Sizes, out_dir: str) -> dict[str, Any]:
    """Epoch 1 warms up; each later epoch times training and end-of-epoch work apart."""
    from .engine import build, seed_epoch, train_one_epoch

    config = _digits_config(method, sizes, out_dir)
    setup = build(config)
    context_class = _timed_context_class()
    epochs = []
    for epoch in range(1, config.epochs + 1):
        seed_epoch(config.seed, epoch)
        record = {"epoch": epoch}
        with _timed(record, "train_s"):
            train_one_epoch(setup, epoch)
        context = context_class(setup, epoch, False)
        with _timed(record, "end_of_epoch_s"):
            setup.method.end_of_epoch(context)
        record.update({f"{k}_s": v for k, v in context.seconds.items()})
        record["epoch_s"] = record["train_s"] + record["end_of_epoch_s"]
        epochs.append(record)
    best = min(epochs[1:] or epochs, key=lambda r: r["epoch_s"])
    result = {"method": method, "n_train": len(setup.train_set), **best, "epochs": epochs}
    if method == "balancemix":
        result.update(_balancemix_breakdown(setup, config.epochs))
    return result


def _balancemix_breakdown(setup, epoch: int) -> dict[str, float]:
    """GMM time on the current F, and the share of training time spent drawing batches."""
    import torch.nn.functional as F

    from .engine import full_data_pass
    from .gmm import clean_probability_with_fit

    logits = full_data_pass(setup)
    noisy = setup.method.data.noisy_labels
    losses = F.binary_cross_entropy_with_logits(logits, noisy, reduction="none")
    start = time.perf_counter()
    clean_probability_with_fit(losses, noisy)
    gmm_seconds = time.perf_counter() - start
    return {"gmm_s": gmm_seconds, "loading_s": _loading_seconds(setup, epoch)}


def bench_epochs(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """bce, mixup and balancemix epochs side by side on digits-lt (CPU), and the ratios."""
    with tempfile.TemporaryDirectory(prefix="bmx-bench-") as out_dir:
        runs = {m: _time_method_epochs(m, sizes, out_dir) for m in ("bce", "mixup", "balancemix")}
    mixup = runs["mixup"]["epoch_s"]
    bm = runs["balancemix"]
    loading = min(bm["loading_s"], bm["train_s"])  # measured apart, on the same sampler
    profile = {
        "training_steps_s": bm["train_s"] - loading,
        "batch_loading_randaugment_s": loading,
        "full_data_pass_s": bm["full_data_pass_s"],
        "relabel_views_s": bm["relabel_views_s"],
        "gmm_s": bm["gmm_s"],
        "other_end_of_epoch_s": max(
            bm["end_of_epoch_s"] - bm["full_data_pass_s"] - bm["relabel_views_s"] - bm["gmm_s"],
            0.0,
        ),
    }
    return {
        "name": "epoch", "device": "cpu", "dataset": "digits-lt", "runs": runs,
        "ratio_balancemix_to_mixup": bm["epoch_s"] / mixup,
        "ratio_bce_to_mixup": runs["bce"]["epoch_s"] / mixup,
        "balancemix_profile": profile,
    }


# --------------------------------------------------------------------------------------
# GPU: GMM / AP on the device, ResNet-50 throughput on in-memory images
# --------------------------------------------------------------------------------------
class InMemoryContext:
    """What ``BalanceMix.end_of_epoch`` needs, over uint8 images already on the device.

    As in the engine: the full-data pass uses the evaluation preset, the re-label views
    the training preset (independent RandAugment draws per view, ``BatchAugment`` on the
    device), both through the batch-norm-folded ``models.inference_copy`` under bf16
    autocast on CUDA. No data loader is timed.
    """

    def __init__(self, model, images, *, epoch: int, batch: int, train_tf, eval_tf) -> None:
        self.model, self.images, self.epoch, self.batch = model, images, epoch, batch
        self.train_tf, self.eval_tf = train_tf, eval_tf
        self.full_diagnostics = False

    @torch.no_grad()
    def _logits(self, images: torch.Tensor, transform) -> torch.Tensor:
        from .engine import _autocast, _to_device
        from .models import inference_copy

        model, device = inference_copy(self.model), images.device
        outputs = []
        for start in range(0, len(images), self.batch):
            x = _to_device(images[start : start + self.batch], device, True, transform)
            with _autocast(device, True):
                outputs.append(model(x).float())
        return torch.cat(outputs)

    def full_data_pass(self, model=None) -> torch.Tensor:
        return self._logits(self.images, self.eval_tf)

    def predict_views(self, rows: torch.Tensor, *, n_views: int = 2) -> torch.Tensor:
        copies = self.images[rows].repeat_interleave(n_views, dim=0)
        logits = self._logits(copies, self.train_tf)
        return torch.sigmoid(logits).view(len(rows), n_views, -1).mean(dim=1)


def _method_for_throughput(method: str, model, noisy: torch.Tensor):
    from .config import load_config
    from .methods import TrainingData, build_method

    config = load_config(None, [f"method={method}", "warmup_epochs=1", "progress=false"])
    data = TrainingData(noisy_labels=noisy, clean_labels=noisy.cpu().numpy().astype(np.uint8),
                        corrupted=np.zeros(tuple(noisy.shape), dtype=bool), noise_known=False)
    return build_method(config, data, model=model)


def _throughput_epoch(method, model, optimizer, images, epoch: int, batch: int, generator,
                      presets):
    """One epoch of training steps plus the method's end-of-epoch work; images/s.

    ``images`` are uint8 on the device; each batch gets the training preset's per-batch part
    (per-image RandAugment, float, normalise) on the device, as in ``engine.train_one_epoch``.
    """
    from .engine import _autocast, _to_device
    from .methods import Batch

    train_tf, eval_tf = presets
    device = images.device
    count = len(images) // batch * batch
    order = torch.randperm(len(images), device=device)[:count]
    probabilities = method.minority_probabilities()
    second = (torch.multinomial(probabilities.to(device).float(), count, replacement=True)
              if probabilities is not None else torch.randperm(len(images), device=device)[:count])
    method.start_epoch(epoch)
    _sync(device)
    start = time.perf_counter()
    for step in range(count // batch):
        index_r = order[step * batch : (step + 1) * batch]
        index_m = second[step * batch : (step + 1) * batch]
        step_batch = Batch(x_r=_to_device(images[index_r], device, True, train_tf),
                           index_r=index_r,
                           x_m=_to_device(images[index_m], device, True, train_tf),
                           index_m=index_m, epoch=epoch, generator=generator)
        with _autocast(device, True):
            out = method.training_step(model, step_batch)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizer.step()
    method.end_of_epoch(InMemoryContext(model, images, epoch=epoch, batch=2 * batch,
                                        train_tf=train_tf, eval_tf=eval_tf))
    _sync(device)
    return count / (time.perf_counter() - start)


def throughput(sizes: Sizes, device: torch.device, *, num_classes: int = 80) -> dict[str, Any]:
    """Training images/s of bce, mixup and balancemix on one backbone and in-memory images.

    Each method gets a fresh backbone (``sizes.gpu_arch``, channels_last, bf16 autocast on
    CUDA); epoch 1 warms up (cuDNN autotuning, first label management), epoch 2 is timed,
    including balancemix's end-of-epoch work.
    """
    from .data import EvalPreset, TrainPreset
    from .engine import IMAGENET_MEAN, IMAGENET_STD
    from .models import build_model

    generator = torch.Generator().manual_seed(0)
    side = sizes.gpu_image_size
    shape = (sizes.gpu_images, 3, side, side)
    images = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8).to(device)
    presets = (
        TrainPreset(image_size=side, mean=IMAGENET_MEAN, std=IMAGENET_STD).per_batch,
        EvalPreset(image_size=side, mean=IMAGENET_MEAN, std=IMAGENET_STD).per_batch,
    )
    noisy = (torch.rand(sizes.gpu_images, num_classes, generator=generator) < 0.05).float()
    noisy = noisy.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rates = {}
    for name in ("bce", "mixup", "balancemix"):
        torch.manual_seed(0)
        model = build_model(sizes.gpu_arch, num_classes, pretrained="none").to(device)
        model = model.to(memory_format=torch.channels_last)
        method = _method_for_throughput(name, model, noisy)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        for epoch in (1, 2):
            rate = _throughput_epoch(method, model, optimizer, images, epoch, sizes.gpu_batch,
                                     generator, presets)
        rates[name] = rate
    reference = min(rates["bce"], rates["mixup"])
    return {
        "name": "throughput", "device": device.type, "arch": sizes.gpu_arch,
        "image_size": sizes.gpu_image_size, "batch": sizes.gpu_batch,
        "images": sizes.gpu_images, "images_per_s": rates,
        "balancemix_share_of_bce_mixup": rates["balancemix"] / reference,
    }


def bench_gpu(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """GMM and AP on the device (vs the sklearn loops on the CPU) and training throughput."""
    gmm = bench_gmm(sizes, device)
    ap = bench_ap(sizes, device)
    return {"name": "gpu", "device": device.type, "gmm": gmm, "ap": ap,
            "throughput": throughput(sizes, device)}


# --------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------
def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(benchmark, bmxlib, peer, ratio, check) rows for the printed table."""
    rows = []
    for key, result in results.items():
        rows += _ROW_MAKERS[key](result)
    return rows


def _gmm_rows(r):
    return [(f"GMM 2K fits N={r['items']:,} K={r['classes']} [{r['device']}]",
             _seconds(r["bmxlib_s"]), f"{_seconds(r['peer_s'])} sklearn loop",
             f"{r['speedup']:.1f}x", f"agree {100 * r['agreement']:.2f}%")]


def _ap_rows(r):
    rows = [(f"AP N={r['items']:,} K={r['classes']} [{r['device']}]", _seconds(r["bmxlib_s"]),
             f"{_seconds(r['peer_s'])} sklearn loop", f"{r['speedup']:.1f}x",
             f"max|diff| {r['max_abs_diff']:.1e}")]
    tm = r.get("torchmetrics_s")
    rows.append(("  vs torchmetrics", "", "not installed" if tm is None else _seconds(tm),
                 "" if tm is None else f"{tm / r['bmxlib_s']:.1f}x", ""))
    return rows


def _label_rows(r):
    size = f"N={r['items']:,} K={r['classes']:,}"
    peak = f"peak RSS {r['peak_rss_bytes'] / 1e9:.2f} GB"
    return [(f"sampling probabilities {size}", _seconds(r["sampling_s"]), "", "", ""),
            (f"label management {size}", _seconds(r["label_management_s"]), "", "",
             f"{peak} (limit 16 GB)")]


def _randaugment_rows(r):
    return [(f"RandAugment {c['images']:,}x{c['channels']}x{c['side']}² [{r['device']}]",
             _seconds(c["bmxlib_s"]), f"{_seconds(c['peer_s'])} torchvision per image",
             f"{c['speedup']:.1f}x", "bit-identical" if c["identical"] else "DIFFERENT")
            for c in r["cases"]]


def _epoch_rows(r):
    runs = r["runs"]
    rows = [(f"digits-lt epoch {name} (n={run['n_train']})", _seconds(run["epoch_s"]), "",
             f"{run['epoch_s'] / runs['mixup']['epoch_s']:.2f}x mixup", "")
            for name, run in runs.items()]
    profile = r["balancemix_profile"]
    rows.append(("  balancemix split", "", "", "",
                 ", ".join(f"{k[:-2]} {_seconds(v)}" for k, v in profile.items())))
    return rows


def _gpu_rows(r):
    t = r["throughput"]
    rates = ", ".join(f"{k} {v:.0f}" for k, v in t["images_per_s"].items())
    return [*_gmm_rows(r["gmm"]), *_ap_rows(r["ap"]),
            (f"{t['arch']} {t['image_size']}px img/s", rates, "", "",
             f"balancemix {100 * t['balancemix_share_of_bce_mixup']:.0f}% of bce/mixup")]


_ROW_MAKERS = {"gmm": _gmm_rows, "ap": _ap_rows, "label_management": _label_rows,
               "randaugment": _randaugment_rows, "epoch": _epoch_rows, "gpu": _gpu_rows}


def format_table(results: dict[str, Any], info: dict[str, Any]) -> str:
    header = ("benchmark", "bmxlib", "peer", "ratio", "check")
    rows = [header, *table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"bmx bench — {info['cpu']} ({info['cpu_count']} CPUs, {info['torch_threads']} "
             f"torch threads), torch {info['torch']}, {info['date']}"]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  "
                     + row[4])
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------
_RUNNERS = {"gmm": bench_gmm, "ap": bench_ap, "label_management": bench_label_management,
            "randaugment": bench_randaugment, "epoch": bench_epochs, "gpu": bench_gpu}


def _selected(only, device: torch.device) -> list[str]:
    if only is None:
        names = [n for n in BENCHMARKS if n != "gpu" or device.type == "cuda"]
    else:
        names = [only] if isinstance(only, str) else list(only)
        names = [n.strip() for name in names for n in name.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    if "gpu" in names and device.type != "cuda":
        raise ValueError("benchmark 'gpu' needs --device cuda")
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
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("bench: --device cuda requested but CUDA is not available")
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
            results[name] = _RUNNERS[name](sizes, torch_device)
            print(f"[bench] {name} done", file=sys.stderr, flush=True)
    finally:
        torch.set_num_threads(threads)
    report = {"machine": info, "device": device, "quick": quick, "sizes": sizes.__dict__,
              "results": results}
    print(format_table(results, info), flush=True)
    if out:
        from .io import atomic_write_json

        atomic_write_json(out, report)
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m bmxlib.bench [--device D] [--out F] [--quick] [--only NAMES]``."""
    parser = argparse.ArgumentParser(prog="python -m bmxlib.bench", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", help="write the results as JSON")
    parser.add_argument("--quick", action="store_true", help="small sizes (for tests)")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--worker", choices=("label_management",), help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--classes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(label_management_worker(args.items, args.classes)), flush=True)
        return 0
    try:
        run_bench(device=args.device, out=args.out, quick=args.quick, only=args.only)
    except ValueError as err:
        print(f"bmx: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
