"""In-memory batches (bmxlib.data.batches) are the DataLoader's batches, bit for bit, and a
run through them is the run through the DataLoader."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from bmxlib.data import IndexedDataset, load_dataset
from bmxlib.data import batches as batches_module
from bmxlib.data.batches import (
    InMemoryBatches,
    batch_loader,
    images_in_memory,
    resolve_workers,
)
from bmxlib.engine import fit

TIMING = {"seconds", "train_seconds", "images_per_s", "run_dir_bytes"}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits-lt", "train", n_train=100, n_test=20)


def test_images_in_memory_only_when_the_per_image_transform_is_the_identity(digits):
    same = v2.Compose([v2.Resize((32, 32), antialias=True)])
    other = v2.Compose([v2.Resize((16, 16), antialias=True)])
    assert images_in_memory(digits, same) is digits.images
    assert images_in_memory(digits, None) is digits.images
    assert images_in_memory(digits, other) is None


@pytest.mark.parametrize("batch_size", [7, 32, 100], ids=["ragged", "even", "one-batch"])
def test_in_memory_batches_equal_the_dataloaders_and_leave_the_rng_alike(digits, batch_size):
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0)).tolist()
    torch.manual_seed(5)
    expected = list(DataLoader(IndexedDataset(digits), batch_size=batch_size, sampler=order))
    after_loader = torch.rand(3)
    torch.manual_seed(5)
    got = list(InMemoryBatches(digits.images, order, batch_size=batch_size))
    assert torch.equal(torch.rand(3), after_loader)  # the same draws follow
    assert len(got) == len(expected) == len(InMemoryBatches(digits.images, order,
                                                            batch_size=batch_size))
    for (images, index, ok), (images_ref, index_ref, ok_ref) in zip(got, expected):
        assert torch.equal(images, images_ref) and images.dtype == images_ref.dtype
        assert torch.equal(index, index_ref) and index.dtype == index_ref.dtype
        assert torch.equal(ok, ok_ref) and ok.dtype == ok_ref.dtype


def test_batch_loader_uses_a_dataloader_with_workers_or_a_resizing_transform(digits):
    resize = v2.Compose([v2.Resize((16, 16), antialias=True)])
    assert isinstance(batch_loader(digits, range(10), batch_size=4), InMemoryBatches)
    assert isinstance(batch_loader(digits, range(10), batch_size=4, per_image=resize),
                      DataLoader)
    assert isinstance(batch_loader(digits, range(10), batch_size=4, num_workers=1),
                      DataLoader)


class _OnDisk:
    """A dataset whose images are files (no ``images`` tensor): the loader must decode."""

    def __len__(self) -> int:
        return 10


@pytest.mark.parametrize(
    ("device", "dataset", "num_workers", "expected"),
    [("cuda", "memory", -1, 0), ("cuda", "disk", -1, min(8, os.cpu_count() or 1)),
     ("cpu", "disk", -1, 0), ("cpu", "memory", -1, 0), ("cuda", "memory", 3, 3),
     ("cpu", "disk", 2, 2)],
    ids=["cuda-in-memory", "cuda-files", "cpu-files", "cpu-in-memory", "cuda-explicit",
         "cpu-explicit"])
def test_auto_workers_only_where_images_must_be_decoded(digits, device, dataset,
                                                        num_workers, expected):
    """Auto (-1) starts worker processes only on CUDA and only for images that are not in
    memory: an in-memory batch is one index_select, and workers started every epoch for
    every loader made a glyphs-coco epoch take 75 s instead of 3 with 14 runs sharing an
    H200 and 16 cores (2026-12-04)."""
    data = digits if dataset == "memory" else _OnDisk()
    resize = v2.Compose([v2.Resize((32, 32), antialias=True)])
    assert resolve_workers(num_workers, torch.device(device), data, resize) == expected


def test_auto_workers_decode_when_the_transform_resizes(digits):
    resize = v2.Compose([v2.Resize((16, 16), antialias=True)])
    assert resolve_workers(-1, torch.device("cuda"), digits, resize) == \
        min(8, os.cpu_count() or 1)


@pytest.mark.parametrize("method", ["balancemix", "coteaching"])
def test_a_run_through_in_memory_batches_is_the_dataloader_run(tiny_config, monkeypatch,
                                                                method):
    common = (f"method={method}", "noise=mislabel", "noise_rate=0.4", "tensorboard=false")
    fast = fit(tiny_config(*common, "name=fast"))
    monkeypatch.setattr(batches_module, "images_in_memory", lambda *a, **k: None)
    slow = fit(tiny_config(*common, "name=slow"))
    rows = [[json.loads(line) for line in open(d / "metrics.jsonl")] for d in (fast, slow)]
    assert len(rows[0]) == len(rows[1]) == 2
    for a, b in zip(*rows):
        assert {k: v for k, v in a.items() if k not in TIMING} == \
               {k: v for k, v in b.items() if k not in TIMING}
    for path in sorted((fast / "diagnostics").glob("*.npz")):
        with np.load(path) as x, np.load(slow / "diagnostics" / path.name) as y:
            for key in x.files:
                floats = x[key].dtype.kind == "f"
                assert np.array_equal(x[key], y[key], equal_nan=floats), (path.name, key)


def test_folded_copy_is_shared_until_the_weights_change():
    from bmxlib.models import SmallCNN, folded_copy

    torch.manual_seed(0)
    model = SmallCNN(10, width=8)
    first = folded_copy(model)
    assert folded_copy(model) is first  # no write since: the same folded copy
    x = torch.randn(4, 1, 32, 32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(x).sum().backward()  # train mode: batch-norm running statistics change too
    optimizer.step()
    second = folded_copy(model)
    assert second is not first
    model.eval()
    with torch.no_grad():
        assert torch.allclose(second(x), model(x), atol=1e-5)
    model.load_state_dict(SmallCNN(10, width=8).state_dict())
    assert folded_copy(model) is not second
