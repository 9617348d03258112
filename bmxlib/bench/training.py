"""Training benchmarks: digits-lt epochs of bce / mixup / balancemix on the CPU, and
ResNet training throughput on in-memory images (the GPU benchmark)."""

from __future__ import annotations

import tempfile
import time
from typing import Any

import numpy as np
import torch

from .inputs import Sizes
from .kernels import bench_ap, bench_gmm
from .timing import sync, timed


def _digits_config(method: str, sizes: Sizes, out_dir: str):
    """configs/digits_balancemix.yaml settings, ``method`` swapped, warm-up of one epoch."""
    from ..config import load_config

    return load_config(None, [
        "dataset=digits-lt", "noise=mislabel", "noise_rate=0.4", "arch=small_cnn",
        "pretrained=digits", "batch_size=64", "lr=0.01", "mix_alpha=4.0", f"method={method}",
        f"epochs={sizes.epochs}", "warmup_epochs=1", "progress=false", "device=cpu",
        "diagnostics_every=0", f"out_dir={out_dir}", *sizes.digits,
    ])


def _timed_context_class():
    from ..steps import EngineContext

    class TimedContext(EngineContext):
        """The training loop's context, adding up the time of the full-data pass and views."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.seconds = {"full_data_pass": 0.0, "relabel_views": 0.0}

        def full_data_pass(self, model=None):
            with timed(self.seconds, "full_data_pass", self.setup.device):
                return super().full_data_pass(model)

        def predict_views(self, rows, *, n_views=2):
            with timed(self.seconds, "relabel_views", self.setup.device):
                return super().predict_views(rows, n_views=n_views)

    return TimedContext


def _loading_seconds(setup, epoch: int) -> float:
    """Time to draw one epoch of training batches without the model: the loader plus the
    per-batch augmentation (RandAugment, float, normalise) that the engine applies."""
    from ..steps import open_epoch

    first, second, _, augment = open_epoch(setup, epoch)
    start = time.perf_counter()
    for batches in zip(first, second) if second is not None else ((b,) for b in first):
        for images, *_ in batches:  # (images, indices, ok)
            if augment is not None:
                augment(images)
    return time.perf_counter() - start


def _time_method_epochs(method: str, sizes: Sizes, out_dir: str) -> dict[str, Any]:
    """Epoch 1 warms up; each later epoch times training and end-of-epoch work apart."""
    from ..experiment import build
    from ..steps import seed_epoch, train_one_epoch

    config = _digits_config(method, sizes, out_dir)
    setup = build(config)
    context_class = _timed_context_class()
    epochs = []
    for epoch in range(1, config.epochs + 1):
        seed_epoch(config.seed, epoch)
        record = {"epoch": epoch}
        with timed(record, "train_s"):
            train_one_epoch(setup, epoch)
        context = context_class(setup, epoch, False)
        with timed(record, "end_of_epoch_s"):
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

    from ..gmm import clean_probability_with_fit
    from ..passes import full_data_pass

    logits = full_data_pass(setup.model, setup.eval_train_set, device=setup.device,
                            config=setup.config)
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



class InMemoryContext:
    """A :class:`bmxlib.methods.EpochContext` over uint8 images already on the device.

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
        from ..compute import autocast, to_device
        from ..models import inference_copy

        model, device = inference_copy(self.model), images.device
        outputs = []
        for start in range(0, len(images), self.batch):
            x = to_device(images[start : start + self.batch], device, True, transform)
            with autocast(device, True):
                outputs.append(model(x).float())
        return torch.cat(outputs)

    def full_data_pass(self, model=None) -> torch.Tensor:
        return self._logits(self.images, self.eval_tf)

    def predict_views(self, rows: torch.Tensor, *, n_views: int = 2) -> torch.Tensor:
        copies = self.images[rows].repeat_interleave(n_views, dim=0)
        logits = self._logits(copies, self.train_tf)
        return torch.sigmoid(logits).view(len(rows), n_views, -1).mean(dim=1)


def _method_for_throughput(method: str, model, noisy: torch.Tensor):
    from ..config import load_config
    from ..methods import TrainingData, build_method

    config = load_config(None, [f"method={method}", "warmup_epochs=1", "progress=false"])
    data = TrainingData(noisy_labels=noisy, clean_labels=noisy.cpu().numpy().astype(np.uint8),
                        corrupted=np.zeros(tuple(noisy.shape), dtype=bool), noise_known=False)
    return build_method(config, data, model=model)


def _throughput_epoch(method, model, optimizer, images, epoch: int, batch: int, generator,
                      presets):
    """One epoch of training steps plus the method's end-of-epoch work; images/s.

    ``images`` are uint8 on the device; each batch gets the training preset's per-batch part
    (per-image RandAugment, float, normalise) on the device, as in ``steps.train_one_epoch``.
    """
    from ..compute import autocast, to_device
    from ..methods import Batch
    from ..steps import train_step

    train_tf, eval_tf = presets
    device = images.device
    count = len(images) // batch * batch
    method.start_epoch(epoch)  # before its sampling probabilities are read, as in the engine
    order = torch.randperm(len(images), device=device)[:count]
    probabilities = method.minority_probabilities()
    second = (torch.multinomial(probabilities.to(device).float(), count, replacement=True)
              if probabilities is not None else torch.randperm(len(images), device=device)[:count])
    precision = autocast(device, True)
    sync(device)
    start = time.perf_counter()
    for step in range(count // batch):
        index_r = order[step * batch : (step + 1) * batch]
        index_m = second[step * batch : (step + 1) * batch]
        step_batch = Batch(x_r=to_device(images[index_r], device, True, train_tf),
                           index_r=index_r,
                           x_m=to_device(images[index_m], device, True, train_tf),
                           index_m=index_m, epoch=epoch, generator=generator)
        train_step(method, model, step_batch, optimizer, precision=precision, step=step)
    method.end_of_epoch(InMemoryContext(model, images, epoch=epoch, batch=2 * batch,
                                        train_tf=train_tf, eval_tf=eval_tf))
    sync(device)
    return count / (time.perf_counter() - start)


def throughput(sizes: Sizes, device: torch.device, *, num_classes: int = 80) -> dict[str, Any]:
    """Training images/s of bce, mixup and balancemix on one backbone and in-memory images.

    Each method gets a fresh backbone (``sizes.gpu_arch``, channels_last, bf16 autocast on
    CUDA); epoch 1 warms up (cuDNN autotuning, first label management), epoch 2 is timed,
    including balancemix's end-of-epoch work.
    """
    from ..data import EvalPreset, TrainPreset
    from ..data.presets import IMAGENET_MEAN, IMAGENET_STD
    from ..models import build_model

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
        model = build_model(sizes.gpu_arch, num_classes, pretrained="none",
                            head=sizes.gpu_head).to(device)
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
