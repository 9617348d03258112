"""The no-grad passes over a dataset (docs/method.md §1.1 full-data pass, §1.4 re-label views, §3
evaluation) and the two device helpers every step shares.

``predict_views`` loads each image once for all its views and runs the per-batch part of
the transform on the device; the model runs as a batch-norm-folded copy
(``models.inference_copy``) under bf16 autocast on CUDA, with its head in float32. Under
DDP the full-data pass is sharded and gathered, so every rank holds the same global F.
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from . import distributed as dist
from .checkpoints import unwrap
from .config import Config
from .data import MultiLabelDataset
from .data.base import load_or_blank
from .data.batches import InMemoryBatches, images_in_memory
from .metrics import map_summary
from .models import inference_copy

EVAL_BATCH = 256  # batch size of no-grad passes (evaluation, full-data pass, re-label views)


class TrainingDiverged(ValueError):
    """A training step produced a non-finite or exploding loss, or a pass non-finite
    outputs (the message names the epoch, and the step)."""


def show_bars(config: Config) -> bool:
    """Progress bars only for an interactive terminal: in a log file, a cluster job or a
    ``--jobs`` worker they would be one long line of carriage returns. The per-epoch
    summary lines are printed either way."""
    import sys

    return bool(config.progress) and dist.is_main() and sys.stderr.isatty()


def autocast(device: torch.device, enabled: bool, *, cpu: bool = False):
    """bf16 autocast when ``enabled``: on CUDA, and on the CPU only when ``cpu`` too (config
    ``amp_cpu``); a no-op context elsewhere."""
    if enabled and (device.type == "cuda" or (cpu and device.type == "cpu")):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(x: torch.Tensor, device, channels_last: bool, batch_transform=None) -> torch.Tensor:
    """Move a batch to ``device``, apply the per-batch transform there, set channels_last."""
    x = x.to(device, non_blocking=True)
    if batch_transform is not None:
        x = batch_transform(x)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def transform_parts(transform) -> tuple[Any, Any]:
    """(per-image part, per-batch part) of a dataset transform.

    The presets of :mod:`bmxlib.data.presets` split into the resize (run per image in the
    data loader, so images can be stacked) and the rest (run by the engine on the stacked
    uint8 batch, on the device, with per-image random ops). Any other callable runs per
    image in the loader.
    """
    if hasattr(transform, "per_image") and hasattr(transform, "per_batch"):
        return transform.per_image, transform.per_batch
    return transform, None



_FOLDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _weights_version(model: torch.nn.Module) -> tuple[int, ...]:
    """Changes whenever a parameter or buffer of ``model`` is written (the optimiser's
    in-place step, a batch norm's running statistics, ``load_state_dict``)."""
    return tuple(t._version for t in itertools.chain(model.parameters(), model.buffers()))


def folded_copy(model: torch.nn.Module) -> torch.nn.Module:
    """``models.inference_copy(model)``, folded once per state of the weights: the passes
    at the end of an epoch (full-data pass, re-label views, evaluation) share one copy
    instead of tracing and folding the model for each (~16 ms each on the small CNN)."""
    version = _weights_version(model)
    cached = _FOLDED.get(model)
    if cached is None or cached[0] != version:
        cached = (version, inference_copy(model))
        _FOLDED[model] = cached
    return cached[1]


class _Views(Dataset):
    """Item i: ``n_views`` copies of image ``rows[i]`` after the per-image transform."""

    def __init__(self, dataset: MultiLabelDataset, rows: torch.Tensor, transform, n_views: int):
        self.dataset, self.rows, self.transform, self.n_views = dataset, rows, transform, n_views

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> torch.Tensor:
        image, _ = load_or_blank(self.dataset, int(self.rows[i]))  # a bad file: black
        if self.transform is not None:
            image = self.transform(image)
        return torch.stack([image] * self.n_views)


class _ViewBatches:
    """``n_views`` copies of every image of in-memory batches, (B, n_views, C, H, W)."""

    def __init__(self, batches: InMemoryBatches, n_views: int) -> None:
        self.batches, self.n_views = batches, n_views

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return (images.unsqueeze(1).expand(-1, self.n_views, -1, -1, -1)
                for images, _, _ in iter(self.batches))


@torch.no_grad()
def predict_views(
    model: torch.nn.Module,
    dataset: MultiLabelDataset,
    rows: torch.Tensor,
    *,
    n_views: int,
    device: torch.device,
    config: Config,
    desc: str = "predict",
) -> torch.Tensor:
    """Logits (len(rows), n_views, K) float32: each image loaded once for all its views.

    The per-batch part of the transform (for the training preset: an independent flip and
    RandAugment draw for every copy) runs on the device on the stacked copies.
    """
    per_image, per_batch = transform_parts(dataset.transform)
    model = folded_copy(unwrap(model))
    # EVAL_BATCH images per forward (not per row): bigger batches fall out of the CPU caches
    batch_size = max(EVAL_BATCH // n_views, 1)
    in_memory = images_in_memory(dataset, per_image) if config.num_workers == 0 else None
    if in_memory is not None:  # the same batches as the DataLoader below, gathered at once
        loader = _ViewBatches(InMemoryBatches(in_memory, rows.cpu().tolist(),
                                              batch_size=batch_size), n_views)
    else:
        loader = DataLoader(_Views(dataset, rows.cpu(), per_image, n_views),
                            batch_size=batch_size, shuffle=False,
                            num_workers=config.num_workers, pin_memory=device.type == "cuda")
    outputs = []
    for views in tqdm(loader, desc=desc, leave=False, disable=not show_bars(config)):
        images = to_device(views.flatten(0, 1), device, config.channels_last, per_batch)
        with autocast(device, config.amp, cpu=config.amp_cpu):
            logits = model(images).float()
        outputs.append(logits.view(len(views), n_views, -1))
    if not outputs:
        return torch.empty(0, n_views, dataset.num_classes, device=device)
    return torch.cat(outputs)


def predict(
    model: torch.nn.Module,
    dataset: MultiLabelDataset,
    *,
    device: torch.device,
    config: Config,
    indices: torch.Tensor | None = None,
    desc: str = "predict",
) -> torch.Tensor:
    """Logits (len, K) float32 on ``device`` of ``dataset`` (or its ``indices``)."""
    rows = torch.arange(len(dataset)) if indices is None else indices
    return predict_views(model, dataset, rows, n_views=1, device=device, config=config,
                         desc=desc)[:, 0]


def full_data_pass(model: torch.nn.Module, dataset: MultiLabelDataset, *,
                   device: torch.device, config: Config) -> torch.Tensor:
    """docs/method.md §1.1: logits (N, K) of every training instance, no grad.

    ``dataset`` is the training set with the evaluation transform (``Setup.eval_train_set``).
    Under DDP each rank computes its shard and the shards are gathered, so every rank
    holds the same global (N, K) matrix.
    """
    indices = dist.shard_indices(len(dataset))
    logits = predict(model, dataset, device=device, config=config, indices=indices,
                     desc="full-data pass")
    return dist.gather_rows(logits, indices, len(dataset))


def relabel_views(model: torch.nn.Module, dataset: MultiLabelDataset, rows: torch.Tensor, *,
                  device: torch.device, config: Config, n_views: int = 2) -> torch.Tensor:
    """Mean confidence (len(rows), K) over ``n_views`` RandAugment views of the instances
    ``rows`` (RandAugment even when training runs without it, docs/method.md §1.4).

    ``dataset`` is the training set with the RandAugment transform (``Setup.views_set``).
    One pass over the rows: each image is loaded once and augmented ``n_views`` times
    independently; the views of a batch go through the model together.
    """
    logits = predict_views(model, dataset, rows, n_views=n_views, device=device,
                           config=config, desc="re-label views")
    return torch.sigmoid(logits).mean(dim=1)


def check_finite(logits: torch.Tensor, *, epoch: int | None, what: str) -> torch.Tensor:
    """Raise :class:`TrainingDiverged` when a no-grad pass produced inf / NaN outputs."""
    if not bool(torch.isfinite(logits).all()):
        when = f" after epoch {epoch}" if epoch is not None else ""
        raise TrainingDiverged(f"training diverged: the model's {what} outputs are not "
                               f"finite{when}; the last good checkpoint is kept")
    return logits


def evaluate(model: torch.nn.Module, dataset: MultiLabelDataset, groups, *,
             device: torch.device, config: Config, epoch: int | None = None) -> dict[str, Any]:
    """Per-class AP, mAP and mAP per shot group on the test split (docs/method.md §3).

    ``dataset`` is the test set with the evaluation transform; ``groups`` (K,) the shot
    group of each class.
    """
    logits = predict(model, dataset, device=device, config=config, desc="evaluate")
    check_finite(logits, epoch=epoch, what="test-set")
    summary = map_summary(torch.sigmoid(logits), dataset.labels, groups=groups)
    return {
        "mAP": summary["mAP"],
        "mAP_many": summary.get("mAP_many"),
        "mAP_medium": summary.get("mAP_medium"),
        "mAP_few": summary.get("mAP_few"),
        "n_excluded": summary["n_excluded"],
        "ap": summary["ap"],
    }
