"""The input pipeline benchmark: how many training images per second one data-loader
worker prepares at the paper's 448×448, on real-format JPEG files the bench writes.

Per image a worker decodes the file, resizes it to 448 and (in this measurement, to price
the whole per-image path) applies RandAugment(2, 9); in training the engine runs
RandAugment on the stacked batch on the device instead (``data.presets.BatchAugment``),
so the decode + resize figure is the one that bounds a GPU. Decoders compared on the same
files: PIL (what bmxlib uses, ``data.files.read_rgb_image``), PIL with JPEG draft mode
(decoding at a reduced DCT scale when the file is at least twice the target size), and
torchvision.io's ``decode_jpeg`` (deprecated in torchvision 0.29).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .inputs import Sizes

TARGET = 448  # the paper's input side


def write_jpegs(folder: Path, count: int, *, seed: int = 0) -> list[Path]:
    """``count`` JPEGs of COCO-like sizes (around 640×480) with smooth, photo-like content."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        width, height = int(rng.integers(480, 641)), int(rng.integers(360, 481))
        coarse = rng.integers(0, 256, size=(height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
        noise = rng.normal(0, 12, size=(height, width, 3))
        pixels = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def _decode_pil(path: Path) -> torch.Tensor:
    from ..data.files import read_rgb_image

    return read_rgb_image(path)


def _decode_pil_draft(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as image:
        image.draft("RGB", (TARGET, TARGET))  # DCT scaling: never below the target size
        array = np.asarray(image.convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def _decode_torchvision(path: Path) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice of torchvision 0.29
        return decode_jpeg(read_file(str(path)), mode=ImageReadMode.RGB)


DECODERS = {"pil": _decode_pil, "pil_draft": _decode_pil_draft,
            "torchvision_io": _decode_torchvision}


def _time_path(paths, decode, resize, augment) -> dict[str, float]:
    """Seconds spent decoding, resizing and augmenting every file once."""
    torch.manual_seed(0)
    seconds = {"decode": 0.0, "resize": 0.0, "randaugment": 0.0}
    for path in paths:
        start = time.perf_counter()
        image = decode(path)
        middle = time.perf_counter()
        image = resize(image)
        after = time.perf_counter()
        augment(image)
        seconds["decode"] += middle - start
        seconds["resize"] += after - middle
        seconds["randaugment"] += time.perf_counter() - after
    return seconds


def bench_loader(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """Per-image seconds of decode, resize to 448 and RandAugment on one CPU thread."""
    from torchvision.transforms import v2

    resize = v2.Resize((TARGET, TARGET), antialias=True)
    augment = v2.RandAugment(num_ops=2, magnitude=9)
    count = sizes.loader_images
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one loader worker is one single-threaded process
    try:
        with tempfile.TemporaryDirectory(prefix="bmx-bench-jpeg-") as folder:
            paths = write_jpegs(Path(folder), count)
            megabytes = sum(p.stat().st_size for p in paths) / 1e6
            cases = []
            for name, decode in DECODERS.items():
                decode(paths[0])  # warm-up (imports, first allocation)
                seconds = min((_time_path(paths, decode, resize, augment)
                               for _ in range(sizes.repeats)),
                              key=lambda s: sum(s.values()))  # the quietest pass
                total = sum(seconds.values())
                cases.append({
                    "decoder": name, **{f"{k}_ms": 1000 * v / count for k, v in seconds.items()},
                    "images_per_s_per_worker": count / total,
                    "decode_resize_images_per_s": count / (seconds["decode"] + seconds["resize"]),
                })
    finally:
        torch.set_num_threads(threads)
    return {"name": "loader", "device": "cpu", "images": count, "target": TARGET,
            "megabytes": megabytes, "cases": cases}
