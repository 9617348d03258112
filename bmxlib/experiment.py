"""Everything a run builds before its first epoch: ``build(config) -> Setup``.

Datasets with their training / evaluation transforms, the injected noise (docs/method.md
§2), shot groups (docs/method.md §3), the model, the method (docs/method.md §4), the
optimiser and the per-step cosine schedule (docs/method.md §1 defaults). ``bmxlib.engine``
trains a Setup; ``bmxlib.bench`` times one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import distributed as dist
from .compute import warn_if_emulated_bf16
from .config import Config
from .data import GENERATED_DATASETS, MultiLabelDataset, dataset_presets, load_dataset
from .data.batches import resolve_workers
from .data.presets import transform_parts
from .methods import Method, TrainingData, build_method
from .models import BACKBONE_SOURCES, build_model
from .noise import inject
from .pretrain import backbone_cache_path, backbone_input_name, pretrained_digits_backbone
from .stats import shot_groups


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("config key 'device': cuda requested but CUDA is not available")
    return torch.device(name)


def dataset_options(config: Config) -> dict[str, Any]:
    """Keyword options of ``load_dataset`` for the config's dataset."""
    if config.dataset in GENERATED_DATASETS:
        return {"seed": config.data_seed, "n_train": config.n_train, "n_test": config.n_test}
    options: dict[str, Any] = {"root": config.data_root,
                               "skip_bad_images": config.skip_bad_images}
    if config.max_images:
        options["max_images"] = config.max_images
    if config.dataset == "coco":
        options["drop_empty"] = config.coco_drop_empty
        options["year"] = str(config.coco_year)
    if config.dataset == "manifest":
        options["allow_outside_root"] = config.manifest_allow_outside_root
    if config.dataset == "voc":
        options["year"] = str(config.voc_year)
        if config.voc_classes_file:
            options["classes_file"] = config.voc_classes_file
        elif config.voc_classes == "auto":
            options["classes"] = "auto"
        elif config.voc_classes:
            options["classes"] = [c.strip() for c in config.voc_classes.split(",") if c.strip()]
    return options


def load_splits(config: Config) -> tuple[MultiLabelDataset, MultiLabelDataset]:
    """(train, test) datasets; a class list read from the training split ("auto") is
    given to the test split, so both index the same classes."""
    options = dataset_options(config)
    train = load_dataset(config.dataset, "train", **options)
    if options.get("classes") == "auto":
        options["classes"] = list(train.class_names)
    test = load_dataset(config.dataset, "test", **options)
    if list(test.class_names) != list(train.class_names):
        raise ValueError(f"dataset {config.dataset}: the test split's classes "
                         f"{test.class_names[:5]}... differ from the training split's")
    return train, test


@dataclass
class Setup:
    """Everything ``fit`` builds before the first epoch."""

    config: Config
    device: torch.device
    train_set: MultiLabelDataset  # with the training transform
    eval_train_set: MultiLabelDataset  # training images with the evaluation transform
    views_set: MultiLabelDataset  # training images with RandAugment (re-label views, §1.4)
    test_set: MultiLabelDataset
    noisy: np.ndarray
    corrupted: np.ndarray
    groups: np.ndarray
    reference: np.ndarray | None  # instance noise: the reference confidences (N, K)
    model: torch.nn.Module
    method: Method
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    steps_per_epoch: int


def build(config: Config, *, reference: np.ndarray | None = None) -> Setup:
    """Datasets, noise, model, method, optimiser and schedule for ``config``.

    ``reference``: for ``noise: instance``, the reference model's confidences (N, K) the
    noise is drawn from (``reference.reference_confidence`` trains them).
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    device = select_device(config.device)
    if config.amp_cpu and device.type == "cpu":
        warn_if_emulated_bf16()
    train_raw, test_raw = load_splits(config)
    augmentation = {"image_size": config.image_size, "num_ops": config.randaugment_ops,
                    "magnitude": config.randaugment_magnitude, "hflip": config.hflip,
                    "augmentation": config.augmentation}
    train_tf, eval_tf = dataset_presets(train_raw, randaugment=config.randaugment,
                                        **augmentation)
    workers = resolve_workers(config.num_workers, device, train_raw, transform_parts(train_tf)[0])
    config = dataclasses.replace(config, num_workers=workers)
    # the re-label views always use RandAugment (docs/method.md §1.4)
    views_tf, _ = dataset_presets(train_raw, randaugment=True, **augmentation)
    rate = config.noise_rate if config.noise in ("mislabel", "flip", "instance") else None
    if config.noise == "instance" and reference is None:
        raise ValueError("noise 'instance' needs the reference confidences "
                         "(reference.reference_confidence)")
    noisy, corrupted = inject(train_raw.labels, config.noise, rate, seed=config.noise_seed,
                              confidence=reference if config.noise == "instance" else None)
    positives = train_raw.labels.sum(axis=0)
    groups = shot_groups(positives, many=config.shot_many or train_raw.shot_many,
                         few=config.shot_few or train_raw.shot_few)

    # the small CNN's pretrained features (trained on their own generator when not cached)
    features_state = (pretrained_digits_backbone(width=config.width, seed=config.data_seed,
                                                 source=config.pretrained)
                      if config.pretrained in BACKBONE_SOURCES else None)
    torch.manual_seed(config.seed)  # model initialisation
    model = build_model(
        config.arch,
        train_raw.num_classes,
        in_channels=int(train_raw.load_image(0).shape[0]),
        pretrained=config.pretrained,
        weights_path=config.weights_path,
        width=config.width,
        features_state=features_state,
        head=config.head,
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
    method.wrap_extra_modules(lambda module: dist.wrap_model(module, device))
    params = list(model.parameters())
    for module in method.extra_modules().values():
        params += list(module.parameters())
    optimizer = torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    subset = method.training_indices()  # e.g. T-estimator's held-out validation set
    trained = len(train_raw) if subset is None else len(subset)
    steps = math.ceil(trained / dist.world_size() / config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps)
    return Setup(
        config=config,
        device=device,
        train_set=train_raw.with_transform(train_tf),
        eval_train_set=train_raw.with_transform(eval_tf),
        views_set=train_raw.with_transform(views_tf),
        test_set=test_raw.with_transform(eval_tf),
        noisy=noisy,
        corrupted=corrupted,
        groups=groups,
        reference=reference if config.noise == "instance" else None,
        model=dist.wrap_model(model, device),
        method=method,
        optimizer=optimizer,
        scheduler=scheduler,
        steps_per_epoch=steps,
    )


def cached_inputs(s: Setup) -> dict[str, Path]:
    """The cached files this run's numbers depend on (for ``provenance.run_provenance``)."""
    c = s.config
    files: dict[str, Path] = {}
    data_file = getattr(s.train_set, "cache_file", None)
    if data_file is not None:
        files["dataset"] = Path(data_file)
    if c.pretrained in BACKBONE_SOURCES:
        files[backbone_input_name(c.pretrained)] = backbone_cache_path(
            width=c.width, seed=c.data_seed, source=c.pretrained)
    return files
