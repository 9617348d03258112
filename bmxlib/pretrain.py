"""The digits backbone: a SmallCNN pretrained 10-way on single clean digits (SPEC §5).

Above ``bmxlib.models`` (the network) and ``bmxlib.data.digits_lt`` (the digits): trained
once, in seconds on a CPU, and cached (``bmxlib.cache``) under a key naming everything
that determines it, so every digits-lt run starting from it shares one file.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .cache import cache_path, cached
from .data.digits_lt import GENERATOR_VERSION, single_digit_canvases
from .io import atomic_torch_save
from .models import SmallCNN

PRETRAIN_EPOCHS = 4  # single-digit pretraining epochs (reaches ~97% source accuracy)
PRETRAIN_LR = 0.05  # SGD lr for pretraining, cosine-annealed
PRETRAIN_BATCH = 128  # pretraining batch size
# One thread, whatever the calling process uses: CPU kernels may split their reductions by
# thread count, and the cached backbone must not depend on which run built it first.
PRETRAIN_THREADS = 1
PRETRAIN_RECIPE = 2  # bump when the pretraining recipe changes (invalidates the cache)


@contextlib.contextmanager
def torch_threads(count: int):
    """Run the block with ``torch.set_num_threads(count)``, restoring the old count after."""
    old = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def backbone_cache_key(*, width: int, seed: int) -> str:
    """Everything that determines the pretrained digits backbone, as one string.

    The data recipe and seed, the network width, every pretraining hyperparameter, the
    fixed thread count and the torch version (its kernels define the float rounding).
    """
    return (f"data-v{GENERATOR_VERSION}-s{seed}|recipe-v{PRETRAIN_RECIPE}|w{width}"
            f"|e{PRETRAIN_EPOCHS}-lr{PRETRAIN_LR}-b{PRETRAIN_BATCH}-t{PRETRAIN_THREADS}"
            f"|torch-{torch.__version__}")


def backbone_cache_path(*, width: int = 16, seed: int = 0) -> Path:
    """Where :func:`pretrained_digits_backbone` caches its weights for (width, seed)."""
    return cache_path("digits-backbone", backbone_cache_key(width=width, seed=seed),
                      suffix=".pt")


def pretrained_digits_backbone(*, width: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """Feature weights of a SmallCNN trained 10-way on single clean train-split digits.

    Trained once (seconds on a CPU) and cached under the bmxlib cache directory; only
    source digits of the *train* pool are used, so the test split stays unseen. The result
    depends only on ``(width, seed)`` and the recipe in :func:`backbone_cache_key`: the
    network is initialised from its own seeded generator (never the caller's global random
    state), trained on ``PRETRAIN_THREADS`` threads, and written atomically, so whichever
    run fills the cache first, the weights are the same bit for bit.
    """

    def read(path: Path) -> dict[str, torch.Tensor]:
        return torch.load(path, map_location="cpu", weights_only=True)

    def build() -> dict[str, torch.Tensor]:
        print(f"bmxlib: pretraining the digits backbone (width {width}, data seed {seed}, "
              f"{PRETRAIN_EPOCHS} epochs, one thread; once, then cached at {path})",
              file=sys.stderr, flush=True)
        return _pretrain(width=width, seed=seed)

    path = backbone_cache_path(width=width, seed=seed)
    return cached(path, read=read, build=build, write=atomic_torch_save)


def _pretrain(*, width: int, seed: int) -> dict[str, torch.Tensor]:
    """The training itself: SGD with momentum, cosine-annealed per step, cross-entropy."""
    images, targets = single_digit_canvases(seed=seed)
    x_all = (torch.from_numpy(images).float() / 255.0 - 0.1) / 0.25
    y_all = torch.from_numpy(targets)
    steps = PRETRAIN_EPOCHS * int(np.ceil(len(y_all) / PRETRAIN_BATCH))
    with torch.random.fork_rng(devices=[]), torch_threads(PRETRAIN_THREADS):
        torch.manual_seed(seed)  # the initialisation: never the caller's random state
        model = SmallCNN(10, in_channels=1, width=width)
        g = torch.Generator().manual_seed(seed)
        opt = torch.optim.SGD(model.parameters(), lr=PRETRAIN_LR, momentum=0.9,
                              weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        model.train()
        for _ in range(PRETRAIN_EPOCHS):
            order = torch.randperm(len(y_all), generator=g)
            for start in range(0, len(order), PRETRAIN_BATCH):
                idx = order[start : start + PRETRAIN_BATCH]
                loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    state = {k: v.detach().clone() for k, v in model.features.state_dict().items()}
    return state
