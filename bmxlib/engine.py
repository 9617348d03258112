"""Training core: ``fit(config) -> run dir`` built from a few dull verbs.

``train_step`` is one optimisation step (the method owns forward + loss), and
``train_one_epoch`` runs ``ceil(N / batch)`` of them; ``full_data_pass`` is SPEC §1.1 and
``evaluate`` measures per-class AP on the test split (both in ``bmxlib.passes``, with the
device helpers ``to_device`` and ``autocast`` that bench and methods share). ``fit`` is a
short loop over those verbs that writes the run directory (``bmxlib.runs``) and resumes
exactly from its checkpoint (``bmxlib.checkpoints``).

Determinism: every epoch re-seeds torch / numpy / random and the samplers from
(seed, epoch), so a run resumed at an epoch boundary repeats the uninterrupted run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from . import distributed as dist
from . import runs
from .checkpoints import load_checkpoint, save_checkpoint
from .config import Config
from .data import IndexedDataset
from .experiment import Setup, build, cached_inputs
from .methods import Batch, EpochResult, Method
from .metrics import confidence_vs_ap, noisy_label_fit
from .passes import (
    EVAL_BATCH,
    TrainingDiverged,
    autocast,
    check_finite,
    evaluate,
    full_data_pass,
    predict,
    predict_views,
    relabel_views,
    show_bars,
    to_device,
    transform_parts,
)
from .provenance import run_provenance
from .sampling import MinoritySampler
from .stats import imbalance
from .tensorboard import EpochWriter

# A step whose loss per label exceeds this is diverging (BCE of a logit 100 on the wrong
# side is 100): training stops before the weights turn to inf / NaN.
MAX_LOSS_PER_LABEL = 100.0

__all__ = ["EVAL_BATCH", "EngineContext", "RunExistsError", "TrainingDiverged", "autocast",
           "build", "epoch_loaders", "evaluate", "fit", "full_data_pass", "predict",
           "predict_views", "relabel_views", "seed_epoch", "to_device", "train_one_epoch",
           "train_step", "transform_parts"]


RunExistsError = runs.RunExistsError  # the run directory exists; see runs.check_writable


def seed_epoch(seed: int, epoch: int) -> int:
    """Seed every RNG for ``epoch``; returns the epoch seed."""
    epoch_seed = (seed * 1_000_003 + epoch * 7_919) % (2**31 - 1)
    random.seed(epoch_seed)
    np.random.seed(epoch_seed)  # noqa: NPY002 (third-party code may use it)
    torch.manual_seed(epoch_seed)
    return epoch_seed


# --------------------------------------------------------------------------------------
# device helpers and data loading for one epoch
# --------------------------------------------------------------------------------------
def _loader(dataset, sampler, config: Config, *, batch_size: int, device) -> DataLoader:
    per_image, _ = transform_parts(dataset.transform)
    return DataLoader(
        IndexedDataset(dataset.with_transform(per_image)),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


class _Subset(Sampler[int]):
    """A sampler over positions 0..len(indices)-1 yielding ``indices[position]``."""

    def __init__(self, sampler: Sampler[int], indices: torch.Tensor) -> None:
        self.sampler, self.indices = sampler, indices.tolist()

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        return (self.indices[i] for i in self.sampler)


def epoch_loaders(s: Setup, epoch: int) -> tuple[DataLoader, DataLoader | None, MinoritySampler]:
    """The random(-or-weighted) loader and the optional second loader of ``epoch``.

    Weighted draws (ROS's oversampling, SPEC §1.2's minority sampler) come from one global
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
    make = lambda sampler: _loader(  # noqa: E731
        s.train_set, sampler, c, batch_size=c.batch_size, device=s.device
    )
    return make(first), (make(second) if second is not None else None), minority


# --------------------------------------------------------------------------------------
# the verbs
# --------------------------------------------------------------------------------------
def train_step(method: Method, model: torch.nn.Module, batch: Batch,
               optimizer: torch.optim.Optimizer, scheduler=None, *, amp: bool = True,
               step: int = 0) -> dict[str, Any]:
    """One optimisation step: the method's forward + loss, backward, SGD, schedule.

    Returns the method's output dict with ``loss`` (a detached float from here on).
    Raises :class:`TrainingDiverged` (naming epoch and step) before ``optimizer.step``
    when the loss is not finite or exceeds ``MAX_LOSS_PER_LABEL`` per label, so the
    weights stay those of the last finite step.
    """
    with autocast(batch.x_r.device, amp):
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
    first, second, _ = epoch_loaders(s, epoch)
    s.model.train()
    for module in s.method.extra_modules().values():
        module.train()
    s.method.start_epoch(epoch)
    _, augment = transform_parts(s.train_set.transform)
    lam_generator = torch.Generator().manual_seed(c.seed * 1_000_003 + epoch + 17)
    batches = zip(first, second) if second is not None else ((b, None) for b in first)
    bar = tqdm(
        batches, total=len(first), desc=f"epoch {epoch}/{c.epochs}", leave=False,
        disable=not show_bars(c), dynamic_ncols=True,
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
                         step=step)
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


class EngineContext:
    """The engine's :class:`bmxlib.methods.EpochContext`: passes through data loaders."""

    def __init__(self, setup: Setup, epoch: int, full_diagnostics: bool) -> None:
        self.setup, self.epoch, self.full_diagnostics = setup, epoch, full_diagnostics
        self._noise_fit: dict[str, float] | None = None

    @property
    def model(self) -> torch.nn.Module:
        return self.setup.model

    def full_data_pass(self, model: torch.nn.Module | None = None) -> torch.Tensor:
        logits = check_finite(full_data_pass(self.setup, model), epoch=self.epoch,
                              what="full-data pass")
        if self._noise_fit is None and (model is None or model is self.setup.model):
            # measured now, before a method may overwrite the logits in place
            self._noise_fit = self._fit_of(logits)
        return logits

    def noise_fit(self) -> dict[str, float] | None:
        """``metrics.noisy_label_fit`` of the current model: from the method's own full-data
        pass when it made one, else from a new pass (None without full diagnostics or
        synthetic noise)."""
        if self._noise_fit is None:
            self._noise_fit = self._fit_of(full_data_pass(self.setup))
        return self._noise_fit

    def _fit_of(self, logits: torch.Tensor) -> dict[str, float] | None:
        s = self.setup
        if not (self.full_diagnostics and s.corrupted.any()):
            return None
        return noisy_label_fit(logits, s.noisy, s.corrupted)

    def predict_views(self, rows: torch.Tensor, *, n_views: int = 2) -> torch.Tensor:
        return relabel_views(self.setup, rows, n_views=n_views)


# --------------------------------------------------------------------------------------
# one epoch, and the run around it
# --------------------------------------------------------------------------------------
def is_full_diagnostics_epoch(config: Config, epoch: int) -> bool:
    every = config.diagnostics_every
    return bool(every) and (epoch % every == 0 or epoch == config.epochs)


def is_evaluation_epoch(config: Config, epoch: int) -> bool:
    return (epoch % config.eval_every == 0 or epoch == config.epochs
            or is_full_diagnostics_epoch(config, epoch))


def relate_confidence(result: EpochResult, record: dict[str, Any], s: Setup) -> None:
    """SPEC §3 confidence vs AP of an evaluated epoch, into the record and diagnostics."""
    cva = confidence_vs_ap(result.class_confidence, np.array(record["ap"], dtype=float),
                           s.train_set.labels.sum(axis=0))
    record["confidence_ap_pearson"] = cva["pearson_r"]
    result.diagnostics["group_confidence"] = np.asarray(cva["group_confidence"])
    result.diagnostics["group_ap"] = np.asarray(cva["group_ap"])


def run_epoch(s: Setup, epoch: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Train one epoch, let the method update itself, evaluate; (record, diagnostics)."""
    c = s.config
    seed_epoch(c.seed, epoch)
    start = time.perf_counter()
    record: dict[str, Any] = {"epoch": epoch, **train_one_epoch(s, epoch)}
    context = EngineContext(s, epoch, is_full_diagnostics_epoch(c, epoch))
    result = s.method.end_of_epoch(context)
    if is_evaluation_epoch(c, epoch):
        record.update(evaluate(s, epoch=epoch))
        if result.class_confidence is not None:
            relate_confidence(result, record, s)
    record.update(result.logs)
    if context.full_diagnostics and s.corrupted.any():  # how much noise the model fits
        record.update(context.noise_fit())
    record["seconds"] = time.perf_counter() - start
    return record, result.diagnostics


#: keys that do not change the instance noise's reference model
_NOT_REFERENCE = ("name", "out_dir", "progress", "num_workers", "tensorboard", "noise",
                  "noise_rate", "method", "protocol", "mixup", "seed", "epochs")


def reference_confidence(config: Config) -> np.ndarray:
    """SPEC §2 ``instance``: the confidences (N, K) float32 of a reference model trained
    with BCE on the *clean* training labels for ``instance_reference_epochs`` epochs (seed
    ``noise_seed``; the run's data, model and optimiser settings otherwise), from its
    full-data pass. Cached by everything that determines it, so every run drawing noise
    for the same data shares one reference."""
    import hashlib
    import json

    from .data.digits_lt import cache_dir
    from .io import atomic_write_bytes

    values = {k: v for k, v in config.to_dict().items() if k not in _NOT_REFERENCE}
    key = json.dumps({**values, "torch": torch.__version__}, sort_keys=True)
    path = cache_dir() / f"instance-reference-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path)
    print(f"bmxlib: training the instance-noise reference model ({config.instance_reference_epochs}"
          f" epochs of BCE on the clean labels; once, then cached at {path})",
          file=sys.stderr, flush=True)
    reference = dataclasses.replace(
        config, noise="none", noise_rate=0.0, method="bce", protocol="custom", mixup=False,
        seed=config.noise_seed, epochs=config.instance_reference_epochs, tensorboard=False,
        progress=False)
    s = build(reference)
    for epoch in range(1, reference.epochs + 1):
        seed_epoch(reference.seed, epoch)
        train_one_epoch(s, epoch)
    confidence = torch.sigmoid(full_data_pass(s)).cpu().numpy().astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, confidence)
    atomic_write_bytes(path, buffer.getvalue())
    return confidence


def build_run(config: Config) -> Setup:
    """``build`` with the instance noise's reference model when the config needs it."""
    reference = reference_confidence(config) if config.noise == "instance" else None
    return build(config, reference=reference)


def prepare_run_dir(config: Config, *, resume: bool, overwrite: bool) -> Path:
    """``out_dir/name`` after ``runs.check_writable`` (which writes nothing)."""
    run_dir = Path(config.out_dir) / config.name
    runs.check_writable(run_dir, resume=resume, overwrite=overwrite)
    return run_dir


def start_run(s: Setup, run_dir: Path) -> int:
    """Write the run header (config, provenance, labels, dataset facts) and run a method's
    initial full-data pass when it needs one (its diagnostics as epoch 0); returns 1."""
    if dist.is_main():
        stats = imbalance(s.train_set.labels)
        runs.write_header(
            run_dir,
            config_text=s.config.to_yaml(),
            provenance=run_provenance(device=s.device, cached_inputs=cached_inputs(s)),
            labels={"clean": s.train_set.labels, "noisy": s.noisy, "corrupted": s.corrupted,
                    "test": s.test_set.labels, "class_names": np.array(s.train_set.class_names),
                    "shot_groups": s.groups.astype(str),
                    **({"reference_confidence": s.reference.astype(np.float16)}
                       if s.reference is not None else {})},
            dataset={"class_names": s.train_set.class_names, "n_train": len(s.train_set),
                     "n_test": len(s.test_set), "positives": stats["positives"],
                     "class_imbalance": stats["class_imbalance"], "pos_neg": stats["pos_neg"],
                     "shot_groups": s.groups,
                     "shot_thresholds": {"many": s.config.shot_many or s.train_set.shot_many,
                                         "few": s.config.shot_few or s.train_set.shot_few},
                     "noise_rate_observed": float(s.corrupted.mean())},
        )
    if s.method.needs_initial_pass():
        seed_epoch(s.config.seed, 0)
        result = s.method.end_of_epoch(EngineContext(s, 0, False))
        if dist.is_main() and result.diagnostics:
            runs.write_diagnostics(run_dir, 0, result.diagnostics)
    return 1


def resume_run(s: Setup, run_dir: Path) -> int:
    """Restore the checkpoint, drop metrics of unfinished epochs; returns the next epoch.

    A run killed before its first checkpoint has nothing trained to keep: it starts again
    at epoch 1 in place. Half-written files of the killed process are removed.
    """
    if dist.is_main():
        runs.remove_stale_temporaries(run_dir)
    if not runs.checkpoint_path(run_dir).is_file():
        if dist.is_main():
            runs.truncate_metrics(run_dir, max_epoch=0)
        return start_run(s, run_dir)
    start = load_checkpoint(s, run_dir) + 1
    if dist.is_main():
        runs.truncate_metrics(run_dir, max_epoch=start - 1)
    return start


MIN_FREE_BYTES = 256 << 20  # stop (keeping the last checkpoint) below this much free disk


def check_disk(run_dir: Path, epoch: int) -> None:
    """Refuse to write an epoch onto a nearly full disk (one line, the last epoch kept)."""
    free = shutil.disk_usage(run_dir).free
    if free < MIN_FREE_BYTES:
        raise OSError(f"only {free >> 20} MB free on the disk of {run_dir}: stopped before "
                      f"writing epoch {epoch} (the last checkpoint is kept; free space and "
                      f"resume, or raise diagnostics_every)")


def write_epoch(s: Setup, run_dir: Path, record: dict[str, Any],
                diagnostics: dict[str, np.ndarray], board: EpochWriter | None = None) -> None:
    """Diagnostics, the metrics line, then the checkpoint: a kill leaves whole epochs.

    The record gets the run directory's size after the diagnostics (``run_dir_bytes``).
    """
    epoch = record["epoch"]
    if dist.is_main():
        check_disk(run_dir, epoch)
        if diagnostics:
            runs.write_diagnostics(run_dir, epoch, diagnostics)
        record["run_dir_bytes"] = runs.directory_bytes(run_dir)
        runs.append_metrics(run_dir, record)
        save_checkpoint(s, run_dir, epoch)
        if board is not None:
            board.write(record, diagnostics)
    dist.barrier()
    _report_epoch(s.config, record)


def fit(config: Config, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Train ``config`` and write its run directory; returns the run directory.

    Parameters
    ----------
    config : Config
        A validated configuration (``bmxlib.config.load_config``).
    resume : bool
        Continue ``out_dir/name`` from its last checkpoint (the config is read from it).
    overwrite : bool
        Replace an existing run directory instead of refusing.
    """
    dist.init()
    run_dir = prepare_run_dir(config, resume=resume, overwrite=overwrite)
    s = build_run(config)  # validates data and model before anything is written
    # one writer per run directory (the lock is released by the OS if this process dies)
    with runs.writer_lock(run_dir) if dist.is_main() else contextlib.nullcontext():
        if dist.is_main():  # check again, now locked; only then the old run goes
            prepare_run_dir(config, resume=resume, overwrite=overwrite)
            if overwrite and not resume:
                runs.clear_dir(run_dir)
        dist.barrier()
        start = resume_run(s, run_dir) if resume else start_run(s, run_dir)
        board = EpochWriter(run_dir, enabled=config.tensorboard and dist.is_main(),
                            start_epoch=start)
        try:
            for epoch in range(start, config.epochs + 1):
                record, diagnostics = run_epoch(s, epoch)
                write_epoch(s, run_dir, record, diagnostics, board)
        finally:
            board.close()
        if dist.is_main():
            runs.write_summary(run_dir)
        dist.barrier()
    return run_dir


def _report_epoch(config: Config, record: dict[str, Any]) -> None:
    """One summary line per epoch (rank 0), whatever ``progress`` says."""
    if not dist.is_main():
        return
    fmt = lambda v: "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"  # noqa: E731
    scores = (f"mAP {fmt(record.get('mAP'))} (many {fmt(record.get('mAP_many'))} medium "
              f"{fmt(record.get('mAP_medium'))} few {fmt(record.get('mAP_few'))}) "
              if "mAP" in record else "(not evaluated: eval_every) ")
    tqdm.write(
        f"[{config.name}] epoch {record['epoch']}/{config.epochs} loss {record['train_loss']:.4f} "
        f"{scores}{record['seconds']:.1f}s {record['images_per_s']:.0f} img/s", file=sys.stderr
    )
