"""The training verbs: open an epoch, one step, one epoch, the epoch with its evaluation.

``open_epoch`` starts the method's epoch and builds the loaders that read its sampling
weights; ``train_step`` is one optimisation step (the method owns forward + loss), and
``train_one_epoch`` runs ``ceil(N / batch)`` of them. ``run_epoch`` trains one epoch, lets
the method update itself through an :class:`EngineContext` (its full-data passes and
re-label views, ``bmxlib.passes``), evaluates on the test split and relates confidence to
AP (docs/method.md §3); it returns the epoch's :class:`EpochRecord`, which
``bmxlib.recorder.Recorder`` writes. ``initial_pass`` is a method's pass before epoch 1.
``seed_epoch`` re-seeds every RNG from (seed, epoch), so a run resumed at an epoch boundary
repeats the uninterrupted run. ``bmxlib.engine.fit`` loops over ``run_epoch``;
``bmxlib.reference`` and ``bmxlib.bench`` use the verbs too.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from . import distributed as dist
from .compute import TrainingDiverged, autocast, check_finite, show_bars, to_device
from .config import Config
from .data.batches import batch_loader
from .data.presets import transform_parts
from .experiment import Setup
from .methods import Batch, Method
from .metrics import confidence_vs_ap, noisy_label_fit
from .passes import evaluate, full_data_pass, relabel_views
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


def open_epoch(s: Setup, epoch: int) -> EpochLoaders:
    """Start ``epoch``: the method's ``start_epoch``, then the random(-or-weighted) loader
    and the optional second loader, which read the epoch's sampling weights and subset from
    the started method, with the per-batch part of the training transform (the loaders run
    the per-image part).

    Weighted draws (ROS's oversampling, docs/method.md §1.2's minority sampler) come from one global
    sequence per epoch that DDP ranks split, like the shuffled passes; a method's
    ``training_indices`` restrict the shuffled passes to a subset.
    """
    s.method.start_epoch(epoch)
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
               optimizer: torch.optim.Optimizer, scheduler=None, *,
               precision: contextlib.AbstractContextManager | None = None,
               step: int = 0) -> dict[str, Any]:
    """One optimisation step: the method's forward + loss under ``precision`` (the run's
    ``compute.autocast``, entered once per step; None computes in float32), backward, SGD,
    schedule.

    Returns the method's output dict with ``loss`` (a detached float from here on).
    Raises :class:`TrainingDiverged` (naming epoch and step) before ``optimizer.step``
    when the loss is not finite or exceeds ``MAX_LOSS_PER_LABEL`` per label, so the
    weights stay those of the last finite step.
    """
    with precision or contextlib.nullcontext():
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
    first, second, _, augment = open_epoch(s, epoch)
    s.model.train()
    for module in s.method.extra_modules().values():
        module.train()
    precision = autocast(device, c.amp, cpu=c.amp_cpu)  # re-entered at every step
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
        out = train_step(s.method, s.model, batch, s.optimizer, s.scheduler,
                         precision=precision, step=step)
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


# --------------------------------------------------------------------------------------
# one epoch: train, let the method update itself, evaluate
# --------------------------------------------------------------------------------------
class EpochRecord(NamedTuple):
    """What one epoch produced: its metrics.jsonl record and its diagnostics arrays."""

    metrics: dict[str, Any]
    diagnostics: dict[str, np.ndarray]


# Diagnostics keys run_epoch writes (docs/method.md §3 confidence vs AP per frequency group, (G,))
GROUP_CONFIDENCE = "group_confidence"
GROUP_AP = "group_ap"


class EngineContext:
    """The training loop's :class:`bmxlib.methods.EpochContext`: passes through data
    loaders (``bmxlib.passes``)."""

    def __init__(self, setup: Setup, epoch: int, full_diagnostics: bool) -> None:
        self.setup, self.epoch, self.full_diagnostics = setup, epoch, full_diagnostics
        self._noise_fit: dict[str, float] | None = None

    @property
    def model(self) -> torch.nn.Module:
        return self.setup.model

    def full_data_pass(self, model: torch.nn.Module | None = None) -> torch.Tensor:
        logits = check_finite(self._pass(model), epoch=self.epoch, what="full-data pass")
        if self._noise_fit is None and (model is None or model is self.setup.model):
            # measured now, before a method may overwrite the logits in place; the pass
            # exists anyway, so every epoch that makes one records the memorization
            self._noise_fit = self._fit_of(logits)
        return logits

    def noise_fit(self, *, new_pass: bool = True) -> dict[str, float] | None:
        """``metrics.noisy_label_fit`` of the current model: from the method's own full-data
        pass when it made one, else from a new pass if ``new_pass`` (None without synthetic
        noise, or without either pass)."""
        if self._noise_fit is None and new_pass:
            self._noise_fit = self._fit_of(self._pass(None))
        return self._noise_fit

    def _pass(self, model: torch.nn.Module | None) -> torch.Tensor:
        s = self.setup
        return full_data_pass(s.model if model is None else model, s.eval_train_set,
                              device=s.device, config=s.config)

    def _fit_of(self, logits: torch.Tensor) -> dict[str, float] | None:
        s = self.setup
        return noisy_label_fit(logits, s.noisy, s.corrupted) if s.corrupted.any() else None

    def predict_views(self, rows: torch.Tensor, *, n_views: int = 2) -> torch.Tensor:
        s = self.setup
        return relabel_views(s.model, s.views_set, rows, device=s.device, config=s.config,
                             n_views=n_views)


def is_full_diagnostics_epoch(config: Config, epoch: int) -> bool:
    every = config.diagnostics_every
    return bool(every) and (epoch % every == 0 or epoch == config.epochs)


def is_evaluation_epoch(config: Config, epoch: int) -> bool:
    return (epoch % config.eval_every == 0 or epoch == config.epochs
            or is_full_diagnostics_epoch(config, epoch))


def run_epoch(s: Setup, epoch: int) -> EpochRecord:
    """Train one epoch, let the method update itself, evaluate; the epoch's record."""
    c = s.config
    full_diagnostics, evaluating = (is_full_diagnostics_epoch(c, epoch),
                                    is_evaluation_epoch(c, epoch))
    context = EngineContext(s, epoch, full_diagnostics)
    seed_epoch(c.seed, epoch)
    start = time.perf_counter()
    record: dict[str, Any] = {"epoch": epoch, **train_one_epoch(s, epoch)}
    result = s.method.end_of_epoch(context)
    if evaluating:
        record.update(evaluate(s.model, s.test_set, s.groups, device=s.device,
                               config=s.config, epoch=epoch))
        if result.class_confidence is not None:
            # docs/method.md §3 confidence vs AP per frequency group of the clean training positives
            cva = confidence_vs_ap(result.class_confidence,
                                   np.array(record["ap"], dtype=float),
                                   s.train_set.labels.sum(axis=0))
            record["confidence_ap_pearson"] = cva["pearson_r"]
            result.diagnostics[GROUP_CONFIDENCE] = np.asarray(cva["group_confidence"])
            result.diagnostics[GROUP_AP] = np.asarray(cva["group_ap"])
    record.update(result.logs)
    # how much noise the model fits: every epoch with a full-data pass, a new pass only
    # on full-diagnostics epochs
    record.update(context.noise_fit(new_pass=full_diagnostics) or {})
    record["seconds"] = time.perf_counter() - start
    return EpochRecord(record, result.diagnostics)


def initial_pass(s: Setup) -> dict[str, np.ndarray]:
    """A method's full-data pass before the first epoch when it needs one; its
    diagnostics (written as epoch 0), else none."""
    if not s.method.needs_initial_pass():
        return {}
    context = EngineContext(s, 0, False)
    seed_epoch(s.config.seed, 0)
    return s.method.end_of_epoch(context).diagnostics
