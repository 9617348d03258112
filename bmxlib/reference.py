"""The instance noise's reference model (docs/method.md §2 ``instance``), trained once and cached.

Above ``bmxlib.experiment`` and the training verbs (``bmxlib.steps``): the reference is a
BCE run on the *clean* training labels, built and trained like any run, whose full-data
pass gives the confidences the instance noise is drawn from.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch

from .cache import cache_path, cached
from .config import Config
from .experiment import build
from .io import atomic_write_bytes
from .passes import full_data_pass
from .steps import seed_epoch, train_one_epoch

#: keys that do not change the instance noise's reference model
NOT_REFERENCE_KEYS = ("name", "out_dir", "progress", "num_workers", "tensorboard", "noise",
                      "noise_rate", "method", "protocol", "mixup", "seed", "epochs")


def reference_cache_path(config: Config) -> Path:
    """The cached confidences for ``config``: keyed by every key that determines them."""
    values = {k: v for k, v in config.to_dict().items() if k not in NOT_REFERENCE_KEYS}
    key = json.dumps({**values, "torch": torch.__version__}, sort_keys=True)
    return cache_path("instance-reference", key, suffix=".npy")


def reference_confidence(config: Config) -> np.ndarray:
    """docs/method.md §2 ``instance``: the confidences (N, K) float32 of a reference model trained
    with BCE on the *clean* training labels for ``instance_reference_epochs`` epochs (seed
    ``noise_seed``; the run's data, model and optimiser settings otherwise), from its
    full-data pass. Cached by everything that determines it, so every run drawing noise
    for the same data shares one reference."""
    path = reference_cache_path(config)

    def train() -> np.ndarray:
        print(f"bmxlib: training the instance-noise reference model "
              f"({config.instance_reference_epochs} epochs of BCE on the clean labels; once, "
              f"then cached at {path})", file=sys.stderr, flush=True)
        reference = dataclasses.replace(
            config, noise="none", noise_rate=0.0, method="bce", protocol="custom",
            mixup=False, seed=config.noise_seed, epochs=config.instance_reference_epochs,
            tensorboard=False, progress=False)
        s = build(reference)
        for epoch in range(1, reference.epochs + 1):
            seed_epoch(reference.seed, epoch)
            train_one_epoch(s, epoch)
        logits = full_data_pass(s.model, s.eval_train_set, device=s.device, config=s.config)
        return torch.sigmoid(logits).cpu().numpy().astype(np.float32)

    def write(target: Path, confidence: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, confidence)
        atomic_write_bytes(target, buffer.getvalue())

    return cached(path, read=np.load, build=train, write=write)
