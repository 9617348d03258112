"""Source glyphs of glyphs-coco: 80 visually distinct classes, each rendered many ways.

Classes (look-alikes left out: no O/o/0, l/I/1, S/5, Z/2, no letter whose two cases
differ only in size, no ``(``/C, ``+``/plus shape, ``^``/V):

- 10 handwritten digits, scikit-learn's ``load_digits`` (1,797 8×8 images of 43 writers);
- 22 capitals ``ABCDEFGHJKLMNPQRTUVWXY`` and 12 small letters ``abdefhjmnrty``;
- 18 symbols ``&@#$%?!*=<>~{}[]©±``;
  letters and symbols rendered with Pillow's bundled TrueType font
  (``ImageFont.load_default(size=…)``, Aileron Regular in Pillow ≥ 10.1);
- 18 shapes drawn with ``PIL.ImageDraw`` (disc, square, star, heart, …).

Each font glyph and shape is rendered ``TRAIN_RENDERINGS + TEST_RENDERINGS`` times with
random stroke width, rotation, shear and aspect ratio; the first renderings form the
training pool, the rest the test pool. Digits are split by image (stratified, 60/40), as
in digits-lt. So no source glyph is shared between the splits. Every source is cropped to
its ink, centred in a square and resized to each size in ``GLYPH_SIZES``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DIGITS = [str(d) for d in range(10)]
CAPITALS = list("ABCDEFGHJKLMNPQRTUVWXY")
SMALL = list("abdefhjmnrty")
SYMBOLS = list("&@#$%?!*=<>~{}[]©±")
SHAPES = ["disc", "square", "square-outline", "triangle", "triangle-outline-down",
          "diamond", "star", "hexagon-outline", "plus", "heart", "crescent", "arrow",
          "half-disc", "checker", "dot-grid", "pie", "bullseye", "bowtie"]
CLASS_NAMES = DIGITS + CAPITALS + SMALL + SYMBOLS + SHAPES
GLYPH_SIZES = (12, 14, 16, 18)  # glyph sides in pixels (canvas cells are 16)
TRAIN_RENDERINGS = 40  # renderings per font glyph / shape in the training pool
TEST_RENDERINGS = 20  # ... and in the test pool
DIGITS_TEST_FRACTION = 0.4
RENDER = 64  # side of the high-resolution rendering canvas
SOURCES_VERSION = 1  # bump when the rendering recipe changes


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _font_glyph(char: str, rng: np.random.Generator) -> Image.Image:
    font = _font(int(rng.integers(38, 46)))
    image = Image.new("L", (RENDER, RENDER))
    ImageDraw.Draw(image).text((RENDER / 2, RENDER / 2), char, fill=255, font=font,
                               anchor="mm", stroke_width=int(rng.integers(0, 3)),
                               stroke_fill=255)
    return image


def _shape(name: str, rng: np.random.Generator) -> Image.Image:
    image = Image.new("L", (RENDER, RENDER))
    draw = ImageDraw.Draw(image)
    line = int(rng.integers(4, 8))
    lo, hi, mid = 12, RENDER - 12, RENDER / 2
    box = (lo, lo, hi, hi)

    def regular(sides: int, radius: float, turn: float = 0.0) -> list[tuple[float, float]]:
        return [(mid + radius * math.cos(2 * math.pi * i / sides + turn),
                 mid + radius * math.sin(2 * math.pi * i / sides + turn)) for i in range(sides)]

    if name == "disc":
        draw.ellipse(box, fill=255)
    elif name == "square":
        draw.rectangle(box, fill=255)
    elif name == "square-outline":
        draw.rectangle(box, outline=255, width=line)
    elif name == "triangle":
        draw.polygon([(mid, lo), (hi, hi), (lo, hi)], fill=255)
    elif name == "triangle-outline-down":
        draw.polygon([(lo, lo), (hi, lo), (mid, hi)], outline=255, width=line)
    elif name == "diamond":
        draw.polygon([(mid, lo - 4), (hi, mid), (mid, hi + 4), (lo, mid)], fill=255)
    elif name == "star":
        points = []
        for i in range(10):
            radius = 22 if i % 2 == 0 else 9
            angle = -math.pi / 2 + math.pi * i / 5
            points.append((mid + radius * math.cos(angle), mid + radius * math.sin(angle)))
        draw.polygon(points, fill=255)
    elif name == "hexagon-outline":
        draw.polygon(regular(6, 20), outline=255, width=line)
    elif name == "plus":
        draw.rectangle((mid - 5, lo, mid + 5, hi), fill=255)
        draw.rectangle((lo, mid - 5, hi, mid + 5), fill=255)
    elif name == "heart":
        draw.ellipse((lo, lo + 2, mid + 1, mid + 4), fill=255)
        draw.ellipse((mid - 1, lo + 2, hi, mid + 4), fill=255)
        draw.polygon([(lo + 1, mid - 2), (hi - 1, mid - 2), (mid, hi + 2)], fill=255)
    elif name == "crescent":
        draw.ellipse(box, fill=255)
        draw.ellipse((lo + 12, lo - 4, hi + 12, hi - 4), fill=0)
    elif name == "arrow":
        draw.rectangle((lo, mid - 5, mid + 2, mid + 5), fill=255)
        draw.polygon([(mid, lo + 2), (hi, mid), (mid, hi - 2)], fill=255)
    elif name == "half-disc":
        draw.pieslice(box, 0, 180, fill=255)
    elif name == "checker":
        draw.rectangle((lo, lo, mid, mid), fill=255)
        draw.rectangle((mid, mid, hi, hi), fill=255)
    elif name == "dot-grid":
        for row in range(3):
            for col in range(3):
                cy, cx = lo + 4 + 16 * row, lo + 4 + 16 * col
                draw.ellipse((cx - 4, cy - 4, cx + 4, cy + 4), fill=255)
    elif name == "pie":
        draw.pieslice(box, 45, 315, fill=255)
    elif name == "bullseye":
        draw.ellipse(box, outline=255, width=line)
        draw.ellipse((mid - 7, mid - 7, mid + 7, mid + 7), fill=255)
    elif name == "bowtie":
        draw.polygon([(lo, lo), (mid, mid), (lo, hi)], fill=255)
        draw.polygon([(hi, lo), (mid, mid), (hi, hi)], fill=255)
    else:
        raise ValueError(f"unknown shape {name!r}")
    return image


def _jitter(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Random rotation (±12°), shear (±0.15) and aspect ratio (0.85–1.15) of a rendering."""
    angle = math.radians(rng.uniform(-12, 12))
    shear = rng.uniform(-0.15, 0.15)
    aspect = rng.uniform(0.85, 1.15)
    cos, sin = math.cos(angle), math.sin(angle)
    # inverse map output → input about the centre: (rotation · shear · aspect)^-1
    a, b = cos / aspect, (sin + shear * cos) / aspect
    d, e = -sin * aspect, (cos - shear * sin) * aspect
    c = RENDER / 2 - a * RENDER / 2 - b * RENDER / 2
    f = RENDER / 2 - d * RENDER / 2 - e * RENDER / 2
    return image.transform(image.size, Image.Transform.AFFINE, (a, b, c, d, e, f),
                           resample=Image.Resampling.BILINEAR)


def _tiles(image: Image.Image) -> list[np.ndarray]:
    """Crop to the ink, centre in a square, resize to every size of GLYPH_SIZES."""
    bbox = image.getbbox() or (0, 0, image.width, image.height)
    ink = image.crop(bbox)
    side = max(ink.size)
    square = Image.new("L", (side, side))
    square.paste(ink, ((side - ink.width) // 2, (side - ink.height) // 2))
    return [np.asarray(square.resize((s, s), Image.Resampling.LANCZOS), dtype=np.uint8)
            for s in GLYPH_SIZES]


@functools.lru_cache(maxsize=4)
def source_pools(seed: int = 0) -> dict[str, dict]:
    """The train and test pools of source glyphs (deterministic for ``seed``).

    Returns
    -------
    dict
        ``{"train": pool, "test": pool}``; a pool holds ``tiles`` (one uint8 array
        (M, s, s) per size s in GLYPH_SIZES), ``targets`` int64 (M,) class indices and
        ``source`` int64 (M,) ids unique across both pools (digits: 0–1,796, the index
        in ``load_digits``; renderings: 10,000 + their running number).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    pools: dict[str, dict[str, list]] = {
        split: {"tiles": [[] for _ in GLYPH_SIZES], "targets": [], "source": []}
        for split in ("train", "test")}

    def add(split: str, image: Image.Image, target: int, source: int) -> None:
        for store, tile in zip(pools[split]["tiles"], _tiles(image)):
            store.append(tile)
        pools[split]["targets"].append(target)
        pools[split]["source"].append(source)

    digits = load_digits()
    train_idx, test_idx = train_test_split(
        np.arange(digits.target.size), test_size=DIGITS_TEST_FRACTION,
        stratify=digits.target, random_state=seed)
    for split, indices in (("train", train_idx), ("test", test_idx)):
        for j in indices:
            pixels = (digits.images[j] * (255.0 / 16.0)).round().astype(np.uint8)
            big = Image.fromarray(pixels).resize((32, 32), Image.Resampling.BILINEAR)
            add(split, big, int(digits.target[j]), int(j))
    rng = np.random.default_rng([seed, 81])
    running = 10_000
    for k, name in enumerate(CLASS_NAMES):
        if name in DIGITS:
            continue
        for r in range(TRAIN_RENDERINGS + TEST_RENDERINGS):
            base = _shape(name, rng) if name in SHAPES else _font_glyph(name, rng)
            add("train" if r < TRAIN_RENDERINGS else "test", _jitter(base, rng), k, running)
            running += 1
    return {split: {"tiles": [np.stack(t) for t in pool["tiles"]],
                    "targets": np.asarray(pool["targets"], dtype=np.int64),
                    "source": np.asarray(pool["source"], dtype=np.int64)}
            for split, pool in pools.items()}
