"""The no-grad passes over a dataset (docs/method.md §1.1 full-data pass, §1.4 re-label views, §3
evaluation).

``predict_views`` loads each image once for all its views and runs the per-batch part of
the transform on the device; the model runs as a batch-norm-folded copy
(``models.folded_copy``) under bf16 autocast on CUDA, with its head in float32. Under
DDP the full-data pass is sharded and gathered, so every rank holds the same global F.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from . import distributed as dist
from .compute import autocast, check_finite, show_bars, to_device
from .config import Config
from .data import MultiLabelDataset
from .data.batches import view_loader
from .data.presets import transform_parts
from .metrics import map_summary
from .models import folded_copy

EVAL_BATCH = 256  # batch size of no-grad passes (evaluation, full-data pass, re-label views)


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
    # EVAL_BATCH images per forward (not per row): bigger batches fall out of the CPU caches
    loader = view_loader(dataset, rows.cpu().tolist(), n_views=n_views,
                         batch_size=max(EVAL_BATCH // n_views, 1), per_image=per_image,
                         num_workers=config.num_workers, pin_memory=device.type == "cuda")
    model = folded_copy(dist.unwrap(model))
    outputs = []
    for views in tqdm(loader, desc=desc, leave=False, disable=not show_bars(config.progress)):
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


def evaluate(model: torch.nn.Module, dataset: MultiLabelDataset, groups, *,
             device: torch.device, config: Config, epoch: int | None = None) -> dict[str, Any]:
    """Per-class AP, mAP and mAP per shot group on the test split (docs/method.md §3).

    ``dataset`` is the test set with the evaluation transform; ``groups`` (K,) the shot
    group of each class.
    """
    logits = predict(model, dataset, device=device, config=config, desc="evaluate")
    check_finite(logits, epoch=epoch, what="test-set")
    # AP ranks the logits: the same order as the confidences, without the ties float32's
    # sigmoid makes where it saturates (exactly 1.0 above z ≈ 16.6)
    summary = map_summary(logits, dataset.labels, groups=groups)
    return {
        "mAP": summary["mAP"],
        "mAP_many": summary.get("mAP_many"),
        "mAP_medium": summary.get("mAP_medium"),
        "mAP_few": summary.get("mAP_few"),
        "n_excluded": summary["n_excluded"],
        "ap": summary["ap"],
    }
