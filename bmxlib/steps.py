"""The training verbs: the loaders of an epoch, one step, one epoch.

``train_step`` is one optimisation step (the method owns forward + loss), and
``train_one_epoch`` runs ``ceil(N / batch)`` of them over ``epoch_loaders``. ``seed_epoch``
re-seeds every RNG from (seed, epoch), so a run resumed at an epoch boundary repeats the
uninterrupted run. ``bmxlib.engine.fit`` loops over these; ``bmxlib.reference`` and
``bmxlib.bench`` use them too.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from . import distributed as dist
from .compute import TrainingDiverged, autocast, show_bars, to_device
from .data.batches import batch_loader
from .data.presets import transform_parts
from .experiment import Setup
from .methods import Batch, Method
from .sampling import MinoritySampler

# A step whose loss per label exceeds this is diverging (BCE of a logit 100 on the wrong
# side is 100): training stops before the weights turn to inf / NaN.
MAX_LOSS_PER_LABEL = 100.0


def seed_epoch(seed: int, epoch: int) -> int:
    """Seed every RNG for ``epoch``; returns the epoch seed."""
    epoch_seed = (seed * 1_000_003 + epoch * 7_919) % (2**31 - 1)
    random.seed(epoch_seed)
    np.random.seed(epoch_seed)  # noqa: NPY002 (third-party code may use it)
    torch.manual_seed(epoch_seed)
    return epoch_seed


# --------------------------------------------------------------------------------------
# data loading for one epoch
# --------------------------------------------------------------------------------------
class _Subset(Sampler[int]):
    """A sampler over positions 0..len(indices)-1 yielding ``indices[position]``."""

    def __init__(self, sampler: Sampler[int], indices: torch.Tensor) -> None:
        self.sampler, self.indices = sampler, indices.tolist()

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        return (self.indices[i] for i in self.sampler)


class EpochLoaders(NamedTuple):
    """The loaders of one epoch and the per-batch part of the training transform."""

    first: DataLoader  # the random (or weighted) loader
    second: DataLoader | None  # the method's second loader, if it has one
    minority: MinoritySampler  # docs/method.md §1.2's minority sampler of this epoch
    augment: Any  # the per-batch part of the transform, run on the device (or None)


def epoch_loaders(s: Setup, epoch: int) -> EpochLoaders:
    """The random(-or-weighted) loader and the optional second loader of ``epoch``, with
    the per-batch part of the training transform (the loaders run the per-image part).

    Weighted draws (ROS's oversampling, docs/method.md §1.2's minority sampler) come from one global
    sequence per epoch that DDP ranks split, like the shuffled passes; a method's
    ``training_indices`` restrict the shuffled passes to a subset.
    """
    c, n = s.config, len(s.train_set)
    base = c.seed * 1_000_003 + epoch
    subset = s.method.training_indices()
    size = n if subset is None else len(subset)
    weights = s.method.instance_weights()

    def drawn(seed: int, probabilities) -> MinoritySampler:
        sampler = MinoritySampler(n, num_samples=size, seed=seed,
                                  num_replicas=dist.world_size(), rank=dist.rank())
        sampler.set_epoch(epoch)
        if probabilities is not None:
            sampler.set_probabilities(probabilities)
        return sampler

    def shuffled(seed: int) -> Sampler[int]:
        sampler = dist.shuffled_sampler(size, seed=seed)
        return sampler if subset is None else _Subset(sampler, subset)

    first = drawn(base, weights) if weights is not None else shuffled(base)
    minority = drawn(base + 500_009, s.method.minority_probabilities())
    second = {"minority": minority,
              "random": shuffled(base + 250_007) if s.method.second_sampler == "random" else None,
              "weighted": drawn(base + 250_007, weights) if weights is not None else None,
              None: None}[s.method.second_sampler]
    per_image, augment = transform_parts(s.train_set.transform)
    make = lambda sampler: batch_loader(  # noqa: E731
        s.train_set, sampler, batch_size=c.batch_size, per_image=per_image,
        num_workers=c.num_workers, pin_memory=s.device.type == "cuda")
    return EpochLoaders(make(first), make(second) if second is not None else None, minority,
                        augment)


# --------------------------------------------------------------------------------------
# the verbs
# --------------------------------------------------------------------------------------
def train_step(method: Method, model: torch.nn.Module, batch: Batch,
               optimizer: torch.optim.Optimizer, scheduler=None, *, amp: bool = True,
               amp_cpu: bool = False, step: int = 0) -> dict[str, Any]:
    """One optimisation step: the method's forward + loss, backward, SGD, schedule.

    Returns the method's output dict with ``loss`` (a detached float from here on).
    Raises :class:`TrainingDiverged` (naming epoch and step) before ``optimizer.step``
    when the loss is not finite or exceeds ``MAX_LOSS_PER_LABEL`` per label, so the
    weights stay those of the last finite step.
    """
    with autocast(batch.x_r.device, amp, cpu=amp_cpu):
        out = method.training_step(model, batch)
    loss = out["loss"]
    value = float(loss.detach())
    labels = method.data.noisy_labels.shape[1]
    if not math.isfinite(value) or value > MAX_LOSS_PER_LABEL * labels:
        raise TrainingDiverged(
            f"training diverged at epoch {batch.epoch} step {step + 1}: loss {value:.4g} "
            f"(lower lr, check momentum / weight_decay); the last good checkpoint is kept"
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return {**out, "loss": value}


def train_one_epoch(s: Setup, epoch: int) -> dict[str, float]:
    """One epoch of ``ceil(N / batch)`` steps; returns loss, lr, seconds, images/s."""
    c, device = s.config, s.device
    # first, so that the loaders read the epoch's sampling weights and subset from a
    # method that has started it
    s.method.start_epoch(epoch)
    first, second, _, augment = epoch_loaders(s, epoch)
    s.model.train()
    for module in s.method.extra_modules().values():
        module.train()
    lam_generator = torch.Generator().manual_seed(c.seed * 1_000_003 + epoch + 17)
    batches = zip(first, second) if second is not None else ((b, None) for b in first)
    bar = tqdm(
        batches, total=len(first), desc=f"epoch {epoch}/{c.epochs}", leave=False,
        disable=not show_bars(c.progress), dynamic_ncols=True,
    )
    total_loss, images, skipped, start = 0.0, 0, 0, time.perf_counter()
    for step, loaded in enumerate(bar):
        parts, dropped = _readable(loaded)
        skipped += dropped
        if not len(parts[0][1]):  # every image of the step failed to decode
            s.scheduler.step()
            continue
        (x_r, index_r), second_part = parts[0], parts[1]
        batch = Batch(x_r=to_device(x_r, device, c.channels_last, augment),
                      index_r=index_r.to(device), epoch=epoch, generator=lam_generator)
        if second_part is not None:
            batch.x_m = to_device(second_part[0], device, c.channels_last, augment)
            batch.index_m = second_part[1].to(device)
        out = train_step(s.method, s.model, batch, s.optimizer, s.scheduler, amp=c.amp,
                         amp_cpu=c.amp_cpu, step=step)
        total_loss += out["loss"]
        images += batch.x_r.shape[0]
        if step % 10 == 0:
            rate = images / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(loss=f"{total_loss / (step + 1):.4f}",
                            lr=f"{s.scheduler.get_last_lr()[0]:.2e}", img_s=f"{rate:.0f}")
    seconds = time.perf_counter() - start
    record = {
        "train_loss": total_loss / max(len(first), 1),
        "lr": s.optimizer.param_groups[0]["lr"],
        "train_seconds": seconds,
        "images_per_s": images * dist.world_size() / max(seconds, 1e-9),
    }
    if skipped:
        record["skipped_images"] = skipped
    return record


def _readable(loaded) -> tuple[list, int]:
    """The (images, indices) of a step's one or two batches without the images that failed
    to decode (``skip_bad_images``), both cut to one length so they can be mixed; and how
    many were dropped."""
    batches = [b for b in loaded if b is not None]
    kept = [(images[ok], index[ok]) if not bool(ok.all()) else (images, index)
            for images, index, ok in batches]
    dropped = sum(int((~ok).sum()) for _, _, ok in batches)
    size = min(len(index) for _, index in kept)
    kept = [(images[:size], index[:size]) for images, index in kept]
    return kept + [None] * (2 - len(kept)), dropped
