"""Training core: ``fit(config) -> run dir`` built from a few dull verbs.

``train_one_epoch`` runs the steps of one epoch (a method decides how each batch is
built and its loss), ``full_data_pass`` is SPEC §1.1, ``evaluate`` measures per-class AP
on the test split. ``fit`` wires them together, writes the run directory (SPEC §7) and
resumes exactly from ``checkpoints/last.pt``.

Determinism: every epoch re-seeds torch / numpy / random and the samplers from
(seed, epoch), so a run resumed at an epoch boundary repeats the uninterrupted run.
"""

from __future__ import annotations

import contextlib
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
from tqdm.auto import tqdm

from . import distributed as dist
from .config import Config, save_config
from .data import EvalPreset, IndexedDataset, MultiLabelDataset, TrainPreset, load_dataset
from .io import append_jsonl, atomic_savez, atomic_torch_save, atomic_write_json, read_jsonl
from .methods import Batch, Method, TrainingData, build_method
from .metrics import confidence_vs_ap, map_summary, noisy_label_fit
from .models import backbone_cache_path, build_model, inference_copy
from .noise import inject
from .provenance import run_provenance
from .runs import diagnostics_path, truncate_jsonl, write_provenance
from .sampling import MinoritySampler
from .stats import imbalance, shot_groups

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EVAL_BATCH = 256  # batch size of no-grad passes (evaluation, full-data pass, re-label views)


class RunExistsError(FileExistsError):
    """The run directory already exists and neither resume nor overwrite was asked."""


# --------------------------------------------------------------------------------------
# set-up helpers
# --------------------------------------------------------------------------------------
def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("config key 'device': cuda requested but CUDA is not available")
    return torch.device(name)


def seed_epoch(seed: int, epoch: int) -> int:
    """Seed every RNG for ``epoch``; returns the epoch seed."""
    epoch_seed = (seed * 1_000_003 + epoch * 7_919) % (2**31 - 1)
    random.seed(epoch_seed)
    np.random.seed(epoch_seed)  # noqa: NPY002 (third-party code may use it)
    torch.manual_seed(epoch_seed)
    return epoch_seed


def _dataset_options(config: Config, split: str) -> dict[str, Any]:
    if config.dataset == "digits-lt":
        return {"seed": config.data_seed, "n_train": config.n_train, "n_test": config.n_test}
    options: dict[str, Any] = {"root": config.data_root}
    if config.max_images:
        options["max_images"] = config.max_images
    return options


def build_presets(config: Config, dataset: MultiLabelDataset) -> tuple[TrainPreset, EvalPreset]:
    size = config.image_size or dataset.default_image_size
    mean = getattr(dataset, "mean", IMAGENET_MEAN)
    std = getattr(dataset, "std", IMAGENET_STD)
    train = TrainPreset(
        image_size=size,
        mean=mean,
        std=std,
        randaugment=config.randaugment,
        num_ops=config.randaugment_ops,
        magnitude=config.randaugment_magnitude,
        hflip=config.hflip,
    )
    return train, EvalPreset(image_size=size, mean=mean, std=std)


@dataclass
class Setup:
    """Everything ``fit`` builds before the first epoch."""

    config: Config
    device: torch.device
    train_set: MultiLabelDataset  # with the training transform
    eval_train_set: MultiLabelDataset  # training images with the evaluation transform
    test_set: MultiLabelDataset
    noisy: np.ndarray
    corrupted: np.ndarray
    groups: np.ndarray
    model: torch.nn.Module
    method: Method
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    steps_per_epoch: int


def build(config: Config) -> Setup:
    """Datasets, noise, model, method, optimiser and schedule for ``config``."""
    if config.threads:
        torch.set_num_threads(config.threads)
    device = select_device(config.device)
    train_raw = load_dataset(config.dataset, "train", **_dataset_options(config, "train"))
    test_raw = load_dataset(config.dataset, "test", **_dataset_options(config, "test"))
    train_tf, eval_tf = build_presets(config, train_raw)
    rate = config.noise_rate if config.noise in ("mislabel", "flip") else None
    noisy, corrupted = inject(train_raw.labels, config.noise, rate, seed=config.noise_seed)
    positives = train_raw.labels.sum(axis=0)
    groups = shot_groups(positives, many=train_raw.shot_many, few=train_raw.shot_few)

    torch.manual_seed(config.seed)  # model initialisation
    model = build_model(
        config.arch,
        train_raw.num_classes,
        in_channels=int(train_raw.load_image(0).shape[0]),
        pretrained=config.pretrained,
        weights_path=config.weights_path,
        width=config.width,
        data_seed=config.data_seed,
    ).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    data = TrainingData(
        noisy_labels=torch.from_numpy(noisy.astype(np.float32)).to(device),
        clean_labels=train_raw.labels,
        corrupted=corrupted,
        noise_known=config.noise != "none",
    )
    method = build_method(config, data, model=model)
    for module in method.extra_modules().values():
        module.to(device)
    params = list(model.parameters())
    for module in method.extra_modules().values():
        params += list(module.parameters())
    optimizer = torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    steps = math.ceil(len(train_raw) / dist.world_size() / config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps)
    return Setup(
        config=config,
        device=device,
        train_set=train_raw.with_transform(train_tf),
        eval_train_set=train_raw.with_transform(eval_tf),
        test_set=test_raw.with_transform(eval_tf),
        noisy=noisy,
        corrupted=corrupted,
        groups=groups,
        model=dist.wrap_model(model, device),
        method=method,
        optimizer=optimizer,
        scheduler=scheduler,
        steps_per_epoch=steps,
    )


# --------------------------------------------------------------------------------------
# data loading for one epoch
# --------------------------------------------------------------------------------------
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


def epoch_loaders(s: Setup, epoch: int) -> tuple[DataLoader, DataLoader | None, MinoritySampler]:
    """The random(-or-weighted) loader and the optional second loader of ``epoch``."""
    c, n = s.config, len(s.train_set)
    base = c.seed * 1_000_003 + epoch
    weights = s.method.instance_weights()
    if weights is not None:
        first = WeightedRandomSampler(
            torch.as_tensor(weights, dtype=torch.float64), n, replacement=True,
            generator=torch.Generator().manual_seed(base),
        )
    else:
        first = dist.shuffled_sampler(n, seed=base)
    second = None
    minority = MinoritySampler(
        n, seed=base + 500_009, num_replicas=dist.world_size(), rank=dist.rank()
    )
    minority.set_epoch(epoch)
    if s.method.second_sampler == "minority":
        probabilities = s.method.minority_probabilities()
        if probabilities is not None:
            minority.set_probabilities(probabilities)
        second = minority
    elif s.method.second_sampler == "random":
        second = dist.shuffled_sampler(n, seed=base + 250_007)
    make = lambda sampler: _loader(  # noqa: E731
        s.train_set, sampler, c, batch_size=c.batch_size, device=s.device
    )
    return make(first), (make(second) if second is not None else None), minority


# --------------------------------------------------------------------------------------
# the verbs
# --------------------------------------------------------------------------------------
def _autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to_device(x: torch.Tensor, device, channels_last: bool, batch_transform=None) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if batch_transform is not None:
        x = batch_transform(x)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


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
        disable=not c.progress or not dist.is_main(), dynamic_ncols=True,
    )
    total_loss, images, start = 0.0, 0, time.perf_counter()
    for step, (random_batch, minority_batch) in enumerate(bar):
        batch = Batch(
            x_r=_to_device(random_batch[0], device, c.channels_last, augment),
            index_r=random_batch[1].to(device),
            epoch=epoch,
            generator=lam_generator,
        )
        if minority_batch is not None:
            batch.x_m = _to_device(minority_batch[0], device, c.channels_last, augment)
            batch.index_m = minority_batch[1].to(device)
        with _autocast(device, c.amp):
            out = s.method.training_step(s.model, batch)
        s.optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        s.optimizer.step()
        s.scheduler.step()
        total_loss += float(out["loss"].detach())
        images += batch.x_r.shape[0]
        if step % 10 == 0:
            rate = images / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(loss=f"{total_loss / (step + 1):.4f}",
                            lr=f"{s.scheduler.get_last_lr()[0]:.2e}", img_s=f"{rate:.0f}")
    seconds = time.perf_counter() - start
    return {
        "train_loss": total_loss / max(len(first), 1),
        "lr": s.optimizer.param_groups[0]["lr"],
        "train_seconds": seconds,
        "images_per_s": images * dist.world_size() / max(seconds, 1e-9),
    }


class _Views(Dataset):
    """Item i: ``n_views`` copies of image ``rows[i]`` after the per-image transform."""

    def __init__(self, dataset: MultiLabelDataset, rows: torch.Tensor, transform, n_views: int):
        self.dataset, self.rows, self.transform, self.n_views = dataset, rows, transform, n_views

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> torch.Tensor:
        image = self.dataset.load_image(int(self.rows[i]))
        if self.transform is not None:
            image = self.transform(image)
        return torch.stack([image] * self.n_views)


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
    model = inference_copy(_unwrap(model))
    # EVAL_BATCH images per forward (not per row): bigger batches fall out of the CPU caches
    loader = DataLoader(_Views(dataset, rows.cpu(), per_image, n_views),
                        batch_size=max(EVAL_BATCH // n_views, 1),
                        shuffle=False, num_workers=config.num_workers,
                        pin_memory=device.type == "cuda")
    outputs = []
    for views in tqdm(loader, desc=desc, leave=False,
                      disable=not config.progress or not dist.is_main()):
        images = _to_device(views.flatten(0, 1), device, config.channels_last, per_batch)
        with _autocast(device, config.amp):
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


def full_data_pass(s: Setup, model: torch.nn.Module | None = None) -> torch.Tensor:
    """SPEC §1.1: logits of every training instance, evaluation transform, no grad.

    Under DDP each rank computes its shard and the shards are gathered, so every rank
    holds the same global (N, K) matrix.
    """
    model = s.model if model is None else model
    indices = dist.shard_indices(len(s.eval_train_set))
    logits = predict(model, s.eval_train_set, device=s.device, config=s.config,
                     indices=indices, desc="full-data pass")
    return dist.gather_rows(logits, indices, len(s.eval_train_set))


def relabel_views(s: Setup, rows: torch.Tensor, *, n_views: int = 2) -> torch.Tensor:
    """Mean confidence over ``n_views`` RandAugment views of the instances ``rows``.

    One pass over the rows: each image is loaded once and augmented ``n_views`` times
    independently; the views of a batch go through the model together.
    """
    logits = predict_views(s.model, s.train_set, rows, n_views=n_views, device=s.device,
                           config=s.config, desc="re-label views")
    return torch.sigmoid(logits).mean(dim=1)


def evaluate(s: Setup) -> dict[str, Any]:
    """Per-class AP, mAP and mAP per shot group on the test split (SPEC §3)."""
    logits = predict(s.model, s.test_set, device=s.device, config=s.config, desc="evaluate")
    summary = map_summary(torch.sigmoid(logits), s.test_set.labels, groups=s.groups)
    return {
        "mAP": summary["mAP"],
        "mAP_many": summary.get("mAP_many"),
        "mAP_medium": summary.get("mAP_medium"),
        "mAP_few": summary.get("mAP_few"),
        "n_excluded": summary["n_excluded"],
        "ap": summary["ap"],
    }


@dataclass
class EpochContext:
    """What a method may use at the end of an epoch."""

    setup: Setup
    epoch: int
    full_diagnostics: bool
    _noise_fit: dict[str, float] | None = None

    @property
    def model(self) -> torch.nn.Module:
        return self.setup.model

    def full_data_pass(self, model: torch.nn.Module | None = None) -> torch.Tensor:
        logits = full_data_pass(self.setup, model)
        if self._noise_fit is None and (model is None or model is self.setup.model):
            # measured now, before a method may overwrite the logits in place
            self._noise_fit = self._fit_of(logits)
        return logits

    def noise_fit(self) -> dict[str, float]:
        """``metrics.noisy_label_fit`` of the current model: from the method's own full-data
        pass when it made one, else from a new pass."""
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
# checkpoints
# --------------------------------------------------------------------------------------
def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()  # noqa: NPY002
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))  # noqa: NPY002
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def save_checkpoint(s: Setup, run_dir: Path, epoch: int) -> None:
    state = {
        "epoch": epoch,
        "config": s.config.to_dict(),
        "model": _unwrap(s.model).state_dict(),
        "extra_modules": {k: m.state_dict() for k, m in s.method.extra_modules().items()},
        "optimizer": s.optimizer.state_dict(),
        "scheduler": s.scheduler.state_dict(),
        "method": s.method.state_dict(),
        "rng": _rng_state(),
    }
    atomic_torch_save(run_dir / "checkpoints" / "last.pt", state)


def load_checkpoint(s: Setup, run_dir: Path) -> int:
    """Restore ``s`` from ``run_dir/checkpoints/last.pt``; returns the finished epoch."""
    path = run_dir / "checkpoints" / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: nothing to resume")
    try:
        state = torch.load(path, map_location=s.device, weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint {path} is corrupt ({err.__class__.__name__})") from None
    _unwrap(s.model).load_state_dict(state["model"])
    for key, module in s.method.extra_modules().items():
        module.load_state_dict(state["extra_modules"][key])
    s.optimizer.load_state_dict(state["optimizer"])
    s.scheduler.load_state_dict(state["scheduler"])
    s.method.load_state_dict(state["method"])
    _set_rng_state(state["rng"])
    return int(state["epoch"])


# --------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------
def prepare_run_dir(config: Config, *, resume: bool, overwrite: bool) -> Path:
    run_dir = Path(config.out_dir) / config.name
    if resume:
        if not (run_dir / "config.yaml").is_file():
            raise FileNotFoundError(f"{run_dir} is not a run directory: nothing to resume")
        return run_dir
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise RunExistsError(
                f"run directory {run_dir} already exists (use --resume, --overwrite or name=...)"
            )
        if dist.is_main():
            shutil.rmtree(run_dir)
    dist.barrier()
    return run_dir


def cached_inputs(s: Setup) -> dict[str, Path]:
    """The cached files this run's numbers depend on (for ``provenance.run_provenance``)."""
    c = s.config
    files: dict[str, Path] = {}
    data_file = getattr(s.train_set, "cache_file", None)
    if data_file is not None:
        files["dataset"] = Path(data_file)
    if c.pretrained == "digits":
        files["digits_backbone"] = backbone_cache_path(width=c.width, seed=c.data_seed)
    return files


def _write_run_header(s: Setup, run_dir: Path) -> None:
    save_config(s.config, run_dir / "config.yaml")
    write_provenance(run_dir, run_provenance(device=s.device, cached_inputs=cached_inputs(s)))
    train_labels = s.train_set.labels
    atomic_savez(
        run_dir / "labels.npz",
        clean=train_labels,
        noisy=s.noisy,
        corrupted=s.corrupted,
        test=s.test_set.labels,
        class_names=np.array(s.train_set.class_names),
        shot_groups=s.groups.astype(str),
    )
    stats = imbalance(train_labels)
    atomic_write_json(run_dir / "dataset.json", {
        "class_names": s.train_set.class_names,
        "n_train": len(s.train_set),
        "n_test": len(s.test_set),
        "positives": stats["positives"],
        "class_imbalance": stats["class_imbalance"],
        "pos_neg": stats["pos_neg"],
        "shot_groups": s.groups,
        "noise_rate_observed": float(s.corrupted.mean()),
    })


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
    s = build(config)  # validates data and model before anything is written
    start = 1
    if resume:
        start = load_checkpoint(s, run_dir) + 1
        if dist.is_main():
            truncate_jsonl(run_dir / "metrics.jsonl", max_epoch=start - 1)
    elif dist.is_main():
        _write_run_header(s, run_dir)
    for epoch in range(start, config.epochs + 1):
        seed_epoch(config.seed, epoch)
        epoch_start = time.perf_counter()
        record: dict[str, Any] = {"epoch": epoch}
        record.update(train_one_epoch(s, epoch))
        full = bool(config.diagnostics_every) and (
            epoch % config.diagnostics_every == 0 or epoch == config.epochs
        )
        context = EpochContext(s, epoch, full)
        logs, diagnostics = s.method.end_of_epoch(context)
        evaluated = full or epoch % config.eval_every == 0 or epoch == config.epochs
        if evaluated:
            record.update(evaluate(s))
        presence = logs.pop("class_presence_confidence", None)
        if presence is not None and evaluated:
            cva = confidence_vs_ap(presence, np.array(record["ap"], dtype=float),
                                   s.train_set.labels.sum(axis=0))
            record["confidence_ap_pearson"] = cva["pearson_r"]
            diagnostics["group_confidence"] = np.asarray(cva["group_confidence"])
            diagnostics["group_ap"] = np.asarray(cva["group_ap"])
        record.update(logs)
        if full and s.corrupted.any():  # how much of the noise the model has memorized
            record.update(context.noise_fit())
        record["seconds"] = time.perf_counter() - epoch_start
        if dist.is_main():
            if diagnostics:
                atomic_savez(diagnostics_path(run_dir, epoch), **diagnostics)
            append_jsonl(run_dir / "metrics.jsonl", record)
            save_checkpoint(s, run_dir, epoch)
        dist.barrier()
        _report_epoch(config, record)
    if dist.is_main():
        _write_summary(run_dir)
    dist.barrier()
    return run_dir


def _report_epoch(config: Config, record: dict[str, Any]) -> None:
    if not config.progress or not dist.is_main():
        return
    fmt = lambda v: "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"  # noqa: E731
    tqdm.write(
        f"[{config.name}] epoch {record['epoch']}/{config.epochs} loss {record['train_loss']:.4f} "
        f"mAP {fmt(record.get('mAP'))} (many {fmt(record.get('mAP_many'))} medium "
        f"{fmt(record.get('mAP_medium'))} few {fmt(record.get('mAP_few'))}) "
        f"{record['seconds']:.1f}s {record['images_per_s']:.0f} img/s"
    )


def _write_summary(run_dir: Path) -> None:
    records = read_jsonl(run_dir / "metrics.jsonl")
    last = records[-1]
    keep = ("mAP", "mAP_many", "mAP_medium", "mAP_few", "n_excluded", "selection_precision",
            "selection_recall", "relabel_accuracy", "confidence_ap_pearson", "memorized_noisy",
            "fit_clean")
    summary = {"epochs": last["epoch"], **{k: last.get(k) for k in keep if k in last}}
    summary["total_seconds"] = sum(r.get("seconds", 0.0) for r in records)
    summary["mean_epoch_train_seconds"] = float(np.mean([r["train_seconds"] for r in records]))
    atomic_write_json(run_dir / "summary.json", summary)
