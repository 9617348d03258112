"""The embedded datasets' backbones: a SmallCNN pretrained K-way on single clean source
images of the training pool — digits-lt's digits (``source="digits"``, 10-way; docs/method.md §5) or
glyphs-coco's glyphs (``source="glyphs"``, 80-way) — the analogue of the paper's
ImageNet-pretrained ResNet-50.

Above ``bmxlib.models`` (the network) and ``bmxlib.data`` (the sources): trained once, in
seconds to a minute on a CPU, and cached (``bmxlib.cache``) under a key naming everything
that determines it, so every run starting from it shares one file.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .cache import cache_path, cached
from .io import atomic_torch_save
from .models import BACKBONE_SOURCES, SmallCNN

PRETRAIN_EPOCHS = 4  # single-digit pretraining epochs (reaches ~97% source accuracy)
PRETRAIN_LR = 0.05  # SGD lr for pretraining, cosine-annealed
PRETRAIN_BATCH = 128  # pretraining batch size
# One thread, whatever the calling process uses: CPU kernels may split their reductions by
# thread count, and the cached backbone must not depend on which run built it first.
PRETRAIN_THREADS = 1
PRETRAIN_RECIPE = 3  # bump when the pretraining recipe changes (invalidates the cache)
SOURCE_MEAN, SOURCE_STD = 0.1, 0.25  # normalisation of the (mostly black) source canvases
# The pretraining's random streams (initialisation, batch order) are seeded from
# (data seed, this tag) through NumPy's SeedSequence: under recipe 2 they were seeded with
# the data seed itself, so a run whose seed equalled its data seed (every study's seed 0)
# started its head from the initialisation the backbone had co-adapted with
# (docs/reliability.md). torch's CPU generator keeps 32 bits of a seed, so an offset past
# 2**32 would not separate the streams.
PRETRAIN_STREAM_TAG = 0x70726574  # "pret"


def pretraining_stream_seed(seed: int) -> int:
    """The 32-bit seed of the pretraining's random streams for data seed ``seed``: a
    hash of (seed, tag), so no small run seed (0, 1, 2, ...) starts where pretraining did."""
    return int(np.random.SeedSequence([seed, PRETRAIN_STREAM_TAG]).generate_state(1)[0])


def pretraining_source(source: str):
    """(generator version, single-source canvases function, number of classes)."""
    if source == "digits":
        from .data.digits_lt import GENERATOR_VERSION, single_digit_canvases

        return GENERATOR_VERSION, single_digit_canvases, 10
    if source == "glyphs":
        from .data.glyph_sources import CLASS_NAMES, SOURCES_VERSION
        from .data.glyphs_coco import GENERATOR_VERSION, single_glyph_canvases

        return f"{GENERATOR_VERSION}.{SOURCES_VERSION}", single_glyph_canvases, len(CLASS_NAMES)
    raise ValueError(f"unknown backbone source {source!r}; choose one of "
                     f"{', '.join(BACKBONE_SOURCES)}")


@contextlib.contextmanager
def torch_threads(count: int):
    """Run the block with ``torch.set_num_threads(count)``, restoring the old count after."""
    old = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def backbone_cache_key(*, width: int, seed: int, source: str = "digits") -> str:
    """Everything that determines a pretrained backbone, as one string.

    The data recipe and seed, the network width, every pretraining hyperparameter, the
    fixed thread count and the torch version (its kernels define the float rounding);
    for ``source="glyphs"`` also the source name and the Pillow version (glyph rendering).
    """
    version = pretraining_source(source)[0]
    key = (f"data-v{version}-s{seed}|recipe-v{PRETRAIN_RECIPE}|w{width}"
           f"|e{PRETRAIN_EPOCHS}-lr{PRETRAIN_LR}-b{PRETRAIN_BATCH}-t{PRETRAIN_THREADS}"
           f"|torch-{torch.__version__}")
    if source != "digits":  # the digits key stays as it was: existing caches stay valid
        import PIL

        key = f"{source}|{key}|pillow-{PIL.__version__}"
    return key


def backbone_input_name(source: str) -> str:
    """The name under which a run's provenance records the backbone built from ``source``."""
    return f"{source}_backbone"


def backbone_cache_path(*, width: int = 16, seed: int = 0, source: str = "digits") -> Path:
    """Where :func:`pretrained_digits_backbone` caches its weights for (width, seed, source)."""
    return cache_path(f"{source}-backbone",
                      backbone_cache_key(width=width, seed=seed, source=source), suffix=".pt")


def pretrained_digits_backbone(*, width: int = 16, seed: int = 0,
                               source: str = "digits") -> dict[str, torch.Tensor]:
    """Feature weights of a SmallCNN trained K-way on single clean train-split sources:
    digits-lt's digits (``source="digits"``, 10-way) or glyphs-coco's glyphs
    (``source="glyphs"``, 80-way).

    Trained once (seconds on a CPU) and cached under the bmxlib cache directory; only
    source digits of the *train* pool are used, so the test split stays unseen. The result
    depends only on ``(width, seed)`` and the recipe in :func:`backbone_cache_key`: the
    network is initialised from its own seeded generator (never the caller's global random
    state), trained on ``PRETRAIN_THREADS`` threads, and written atomically, so whichever
    run fills the cache first, the weights are the same bit for bit.
    """

    path = backbone_cache_path(width=width, seed=seed, source=source)

    def build() -> dict[str, torch.Tensor]:
        print(f"bmxlib: pretraining the {source} backbone (width {width}, data seed {seed}, "
              f"{PRETRAIN_EPOCHS} epochs, one thread; once, then cached at {path})",
              file=sys.stderr, flush=True)
        return _pretrain(width=width, seed=seed, source=source)

    return cached(path, read=_read_weights, build=build, write=atomic_torch_save)


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _pretrain(*, width: int, seed: int, source: str) -> dict[str, torch.Tensor]:
    """The training itself: SGD with momentum, cosine-annealed per step, cross-entropy."""
    _, single_source_canvases, num_classes = pretraining_source(source)
    images, targets = single_source_canvases(seed=seed)
    x_all = (torch.from_numpy(images).float() / 255.0 - SOURCE_MEAN) / SOURCE_STD
    y_all = torch.from_numpy(targets)
    steps = PRETRAIN_EPOCHS * int(np.ceil(len(y_all) / PRETRAIN_BATCH))
    with torch.random.fork_rng(devices=[]), torch_threads(PRETRAIN_THREADS):
        stream = pretraining_stream_seed(seed)  # not the run seed equal to the data seed
        torch.manual_seed(stream)  # the initialisation: never the caller's random state
        model = SmallCNN(num_classes, in_channels=1, width=width)
        g = torch.Generator().manual_seed(stream)
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
