"""RandAugment as a handful of tensor operations per batch (issue 19, item 2).

:class:`BatchedRandAugment` applies torchvision's RandAugment (the same 14 ops, the same
magnitudes: ``num_ops`` ops per image, each op uniform over the 14, signed ops negated
with probability 0.5) to a uint8 batch (B, C, H, W) without grouping images by op: per op
slot, all the images that drew a geometric op (ShearX/Y, TranslateX/Y, Rotate) go through
ONE ``gather`` by per-image source-pixel indices (cached per image size: torchvision's
``F.affine`` / ``F.rotate`` inverse matrix and nearest-neighbour grid, fill 0), and the
colour ops run as one batched tensor op each with per-image parameters.

Each op equals torchvision's ``transforms.v2.functional`` op bit for bit on the same
magnitude (``tests/test_augment.py``). The random draws are made for the whole batch at
once (``torch.rand`` / ``torch.randint`` on the global generator), so a seed gives the
same batch every time, but not the batch the per-image torchvision loop would give: the
grouped, stream-identical implementation stays available as
``presets.BatchAugment(implementation="grouped")``.
"""

from __future__ import annotations

import math

import torch
from torch.nn.functional import avg_pool2d, grid_sample
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

#: torchvision's RandAugment op space, in its order (``v2.RandAugment._AUGMENTATION_SPACE``)
OPS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
       "Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize")
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
SIGNED = frozenset(GEOMETRIC + ("Brightness", "Color", "Contrast", "Sharpness"))


def magnitude_table(num_bins: int, height: int, width: int) -> dict[str, torch.Tensor | None]:
    """Each op's magnitude per bin (None: the op has none), as torchvision's RandAugment."""
    return {
        "Identity": None,
        "ShearX": torch.linspace(0.0, 0.3, num_bins),
        "ShearY": torch.linspace(0.0, 0.3, num_bins),
        "TranslateX": torch.linspace(0.0, 150.0 / 331.0 * width, num_bins),
        "TranslateY": torch.linspace(0.0, 150.0 / 331.0 * height, num_bins),
        "Rotate": torch.linspace(0.0, 30.0, num_bins),
        "Brightness": torch.linspace(0.0, 0.9, num_bins),
        "Color": torch.linspace(0.0, 0.9, num_bins),
        "Contrast": torch.linspace(0.0, 0.9, num_bins),
        "Sharpness": torch.linspace(0.0, 0.9, num_bins),
        "Posterize": (8 - (torch.arange(num_bins) / ((num_bins - 1) / 4))).round().int(),
        "Solarize": torch.linspace(1.0, 0.0, num_bins),
        "AutoContrast": None,
        "Equalize": None,
    }


# ------------------------------------------------------------------ geometric ops
def inverse_affine_matrix(op: str, magnitude: float, height: int, width: int) -> list[float]:
    """The 2×3 inverse affine matrix (output pixel → input pixel, centred coordinates) that
    torchvision's RandAugment builds for a geometric op, in double precision.

    The formula is ``_get_inverse_affine_matrix`` of ``transforms.v2.functional`` with
    scale 1, written out for the single non-zero parameter of each op; the centre is the
    image centre except for the shears, which torchvision applies about pixel (0, 0).
    """
    angle, shear_x, shear_y, tx, ty = 0.0, 0.0, 0.0, 0.0, 0.0
    cx, cy = 0.0, 0.0
    if op in ("ShearX", "ShearY"):
        shear = math.degrees(math.atan(magnitude))
        shear_x, shear_y = (shear, 0.0) if op == "ShearX" else (0.0, shear)
        cx, cy = -width * 0.5, -height * 0.5  # center=[0, 0] in pixel coordinates
    elif op == "TranslateX":
        tx = float(int(magnitude))
    elif op == "TranslateY":
        ty = float(int(magnitude))
    elif op == "Rotate":
        angle = -(magnitude % 360)  # F.rotate turns the other way round than F.affine
    else:
        raise ValueError(f"not a geometric op: {op!r}")
    rot, sx, sy = math.radians(angle), math.radians(shear_x), math.radians(shear_y)
    cos_sy, tan_sx, rot_minus_sy = math.cos(sy), math.tan(sx), rot - sy
    a = math.cos(rot_minus_sy) / cos_sy
    b = -(a * tan_sx + math.sin(rot))
    c = math.sin(rot_minus_sy) / cos_sy
    d = math.cos(rot) - c * tan_sx
    matrix = [d, -b, 0.0, -c, a, 0.0]
    matrix[2] += cx - matrix[0] * (cx + tx) - matrix[1] * (cy + ty)
    matrix[5] += cy - matrix[3] * (cx + tx) - matrix[4] * (cy + ty)
    return matrix


def sampling_grid(matrices: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """torchvision's nearest-neighbour sampling grid (n, H, W, 2) float32 for inverse affine
    matrices (n, 2, 3) (:func:`inverse_affine_matrix`), by the float32 operations of its
    ``_affine_grid``, one matrix at a time (as torchvision computes it, so it is bit-equal)."""
    base = torch.empty(1, height, width, 3, dtype=torch.float32)
    base[..., 0].copy_(torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width))
    base[..., 1].copy_(torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5,
                                      steps=height).unsqueeze_(-1))
    base[..., 2].fill_(1)
    scale = torch.tensor([0.5 * width, 0.5 * height], dtype=torch.float32)
    grids = []
    for theta in matrices.to(torch.float32).view(-1, 1, 2, 3):
        rescaled = theta.transpose(1, 2).div(scale)
        grids.append(base.view(1, height * width, 3).bmm(rescaled).view(height, width, 2))
    return torch.stack(grids) if grids else torch.empty(0, height, width, 2)


def source_indices(matrices: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Which input pixel each output pixel takes under nearest-neighbour warping:
    int64 (n, H·W) flat indices, ``H·W`` where the pixel falls outside (fill 0).

    Found by ``grid_sample``-ing an image whose pixels hold their own index + 1 (exact in
    float32 below 2^24 pixels) with torchvision's grid: nearest sampling only selects, so a
    gather by these indices equals torchvision's warp pixel for pixel.
    """
    grid = sampling_grid(matrices, height, width)
    labels = torch.arange(1, height * width + 1, dtype=torch.float32).view(1, 1, height, width)
    picked = grid_sample(labels.expand(len(grid), 1, height, width), grid, mode="nearest",
                         padding_mode="zeros", align_corners=False)
    picked = picked.round_().long().view(len(grid), height * width) - 1
    return torch.where(picked < 0, height * width, picked)


def warp(images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Gather each image's pixels by its own :func:`source_indices` row: uint8 (n, C, H, W),
    0 where the index is H·W (outside the image); one ``gather`` for the batch."""
    n, channels, height, width = images.shape
    flat = images.reshape(n, channels, height * width)
    padded = torch.cat([flat, flat.new_zeros(n, channels, 1)], dim=2)
    index = indices.to(images.device).view(n, 1, -1).expand(n, channels, height * width)
    return padded.gather(2, index).view(n, channels, height, width)


def affine_nearest(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Warp each image (uint8 (n, C, H, W)) by its own inverse affine matrix (float
    (n, 2, 3), :func:`inverse_affine_matrix`): torchvision's ``F.affine`` / ``F.rotate``
    with nearest interpolation and fill 0, pixel for pixel."""
    height, width = images.shape[-2:]
    return warp(images, source_indices(matrices, height, width))


# ------------------------------------------------------------------ colour ops
def _per_image(values: torch.Tensor, like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return values.to(device=like.device, dtype=dtype).view(-1, 1, 1, 1)


def _fma_float32(product_a: torch.Tensor, product_b: torch.Tensor,
                 addend: torch.Tensor) -> torch.Tensor:
    """float32(a·b + c) rounded once, as torch's ``add_(b, alpha=a)`` computes it (a fused
    multiply-add): the float32 product is exact in float64, so only the sum rounds."""
    return (product_a.double() * product_b.double() + addend.double()).float()


def _blend(images: torch.Tensor, other: torch.Tensor, ratios: torch.Tensor) -> torch.Tensor:
    """torchvision's ``_blend`` with a ratio per image (float64 (n,))."""
    ratio = _per_image(ratios, images, torch.float32)
    alpha = _per_image(1.0 - ratios.double(), images, torch.float32)
    scaled = images.float() * ratio
    return _fma_float32(other, alpha, scaled).clamp_(0, 255).to(torch.uint8)


def adjust_brightness(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``F.adjust_brightness`` with a factor per image (float64 (n,))."""
    factor = _per_image(factors, images, torch.float32)
    return (images.float() * factor).clamp_(0, 255).to(torch.uint8)


def _gray_floor(images: torch.Tensor) -> torch.Tensor:
    # F.rgb_to_grayscale keeps uint8 by truncation: the floor torchvision's colour ops take
    return F.rgb_to_grayscale(images).float()


def adjust_saturation(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``F.adjust_saturation`` ("Color") with a factor per image; 1 channel: unchanged."""
    if images.shape[1] == 1:
        return images.clone()
    return _blend(images, _gray_floor(images), factors)


def adjust_contrast(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``F.adjust_contrast`` with a factor per image: blend with the grey mean."""
    gray = _gray_floor(images) if images.shape[1] == 3 else images.float()
    mean = gray.mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(images, mean, factors)


def adjust_sharpness(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``F.adjust_sharpness`` with a factor per image: blend the interior with a 3×3 blur."""
    height, width = images.shape[-2:]
    if images.numel() == 0 or height <= 2 or width <= 2:
        return images.clone()
    # torchvision blurs with the float32 kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 and
    # rounds; S/13 for an integer S is never within 0.038 of a half, far beyond float32
    # error, so the rounded blur is exactly round(S / 13) in integers: (2S + 13) // 26
    output = images.float()
    window = avg_pool2d(output, 3, stride=1, divisor_override=1)  # sums of 9 integers: exact
    total = window + 4 * output[..., 1:-1, 1:-1]
    blurred = torch.div(2 * total + 13, 26, rounding_mode="floor")
    inner = output[..., 1:-1, 1:-1]
    alpha = _per_image(1.0 - factors.double(), images, torch.float32)
    inner.copy_(_fma_float32(blurred.sub_(inner), alpha, inner))
    return output.clamp_(0, 255).to(torch.uint8)


def posterize(images: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """``F.posterize`` with a bit count per image (integer (n,), 0–8)."""
    bits = bits.to(device=images.device, dtype=torch.int64).clamp(0, 8)
    masks = ((1 << bits) - 1) << (8 - bits)  # bits = 8: 255, the image unchanged
    return images & masks.to(torch.uint8).view(-1, 1, 1, 1)


def solarize(images: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """``F.solarize`` with a threshold per image (float64 (n,), in pixel values)."""
    # integer pixels: x >= t exactly when x >= ceil(t) (t as float32, as torchvision
    # compares); 255 - x is x ^ 255 for uint8, and xor is cheaper than torch.where
    threshold = _per_image(thresholds, images, torch.float32).ceil().to(torch.int16)
    flip = (images.to(torch.int16) >= threshold).to(torch.uint8).mul_(255)
    return images ^ flip


# ------------------------------------------------------------------ RandAugment
#: uint8 bytes per image above which the CPU applies the ops image by image (224×224 RGB,
#: 150 KB: the batched blends' float64 temporaries fall out of the caches and are ~1.5×
#: slower than torchvision's per-image ops; 32×32 digits are 2–4× faster batched)
CPU_BATCHED_MAX_BYTES = 1 << 16


def torchvision_op(image: torch.Tensor, op: str, magnitude: float) -> torch.Tensor:
    """One RandAugment op by torchvision's public functionals, as ``v2.RandAugment``
    calls them (nearest interpolation, fill 0)."""
    nearest = InterpolationMode.NEAREST
    if op in ("ShearX", "ShearY"):
        shear = math.degrees(math.atan(magnitude))
        return F.affine(image, angle=0.0, translate=[0, 0], scale=1.0,
                        shear=[shear, 0.0] if op == "ShearX" else [0.0, shear],
                        interpolation=nearest, center=[0, 0])
    if op in ("TranslateX", "TranslateY"):
        shift = [int(magnitude), 0] if op == "TranslateX" else [0, int(magnitude)]
        return F.affine(image, angle=0.0, translate=shift, scale=1.0, shear=[0.0, 0.0],
                        interpolation=nearest)
    if op == "Rotate":
        return F.rotate(image, angle=magnitude, interpolation=nearest)
    if op in ("Brightness", "Color", "Contrast", "Sharpness"):
        adjust = {"Brightness": F.adjust_brightness, "Color": F.adjust_saturation,
                  "Contrast": F.adjust_contrast, "Sharpness": F.adjust_sharpness}[op]
        return adjust(image, 1.0 + magnitude)
    if op == "Posterize":
        return F.posterize(image, int(magnitude))
    if op == "Solarize":
        return F.solarize(image, 255.0 * magnitude)
    if op == "AutoContrast":
        return F.autocontrast(image)
    if op == "Equalize":
        return F.equalize(image)
    if op == "Identity":
        return image
    raise ValueError(f"unknown RandAugment op {op!r}")


#: the colour ops, each called once per op slot on the images that drew it, with their
#: magnitudes (float64 (n,)) as RandAugment turns them into the functional's argument
COLOUR_OPS = {
    "Brightness": lambda x, m: adjust_brightness(x, 1.0 + m),
    "Color": lambda x, m: adjust_saturation(x, 1.0 + m),
    "Contrast": lambda x, m: adjust_contrast(x, 1.0 + m),
    "Sharpness": lambda x, m: adjust_sharpness(x, 1.0 + m),
    "Posterize": lambda x, m: posterize(x, m.long()),
    "Solarize": lambda x, m: solarize(x, 255.0 * m),
    "AutoContrast": lambda x, m: F.autocontrast(x),
    "Equalize": lambda x, m: F.equalize(x),
}


class BatchedRandAugment:
    """Random horizontal flip and RandAugment of a uint8 batch (B, C, H, W), batched.

    Per batch: one ``torch.rand(B)`` for the flips (when ``hflip``), then one
    ``torch.randint(14, (num_ops, B))`` for the ops and one ``torch.rand(num_ops, B)`` for
    the signs (op ``i`` of image ``j`` is negated where it is signed and its draw is
    ≤ 0.5, as torchvision does). Then, op slot by op slot, each kind of op runs once on
    the images that drew it; all geometric ops of a slot are one ``gather``.

    Parameters
    ----------
    hflip : bool
        Flip each image horizontally with probability 0.5 (before RandAugment).
    randaugment : bool
        Apply RandAugment.
    num_ops, magnitude, num_magnitude_bins :
        As ``torchvision.transforms.v2.RandAugment`` (defaults 2, 9, 31).
    """

    def __init__(self, *, hflip: bool = False, randaugment: bool = True, num_ops: int = 2,
                 magnitude: int = 9, num_magnitude_bins: int = 31) -> None:
        if not 0 <= magnitude < num_magnitude_bins:
            raise ValueError(f"magnitude {magnitude} is outside 0..{num_magnitude_bins - 1}")
        self.hflip, self.randaugment = hflip, randaugment
        self.num_ops, self.magnitude = num_ops, magnitude
        self.num_magnitude_bins = num_magnitude_bins
        self._tables: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def _table(self, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(magnitudes float64 (14, 2): [op, negated]; source indices int64 (14, 2, H·W)
        of the geometric ops, :func:`source_indices`), built once per image size."""
        key = (height, width)
        if key not in self._tables:
            table = magnitude_table(self.num_magnitude_bins, height, width)
            magnitudes = torch.zeros(len(OPS), 2, dtype=torch.float64)
            matrices = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], dtype=torch.float64)
            matrices = matrices.view(1, 1, 2, 3).repeat(len(OPS), 2, 1, 1)
            for i, name in enumerate(OPS):
                values = table[name]
                value = 0.0 if values is None else float(values[self.magnitude])
                for negated in (0, 1):
                    signed = -value if negated and name in SIGNED else value
                    magnitudes[i, negated] = signed
                    if name in GEOMETRIC:
                        matrices[i, negated] = torch.tensor(
                            inverse_affine_matrix(name, signed, height, width),
                            dtype=torch.float64).view(2, 3)
            indices = source_indices(matrices.view(-1, 2, 3), height, width)
            self._tables[key] = (magnitudes, indices.view(len(OPS), 2, height * width))
        return self._tables[key]

    def plan(self, batch_size: int) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Draw the batch's randomness: (flips bool (B,) or None, ops int64 (num_ops, B),
        negated int64 (num_ops, B)); ``negated`` is 1 where a signed op's sign flips."""
        flips = torch.rand(batch_size) < 0.5 if self.hflip else None
        num_ops = self.num_ops if self.randaugment else 0
        ops = torch.randint(len(OPS), (num_ops, batch_size))
        negated = (torch.rand(num_ops, batch_size) <= 0.5).long()
        return flips, ops, negated

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"expected a uint8 batch (B, C, H, W), got {images.dtype} "
                             f"{tuple(images.shape)}")
        batch, _, height, width = images.shape
        if batch == 0:
            return images.clone()
        one_by_one = images.device.type == "cpu" and images[0].numel() > CPU_BATCHED_MAX_BYTES
        # photo-sized images on the CPU: torchvision's ops image by image (the same pixels:
        # every batched op equals its torchvision op) beat float64 temporaries of the batch
        return self.apply(images, self.plan(batch), one_by_one=one_by_one)

    def apply(self, images: torch.Tensor, plan: tuple, *, one_by_one: bool = False
              ) -> torch.Tensor:
        """Apply drawn randomness (:meth:`plan`) to a uint8 batch (B, C, H, W): batched, or
        (``one_by_one``) through torchvision's ops image by image — the same pixels."""
        flips, ops, negated = plan
        batch, _, height, width = images.shape
        out = images.clone()
        if flips is not None and bool(flips.any()):
            out = torch.where(flips.to(images.device).view(-1, 1, 1, 1), out.flip(-1), out)
        if ops.shape[0] == 0:
            return out
        magnitudes, indices = self._table(height, width)
        if one_by_one:
            values = magnitudes[ops, negated].tolist()
            for i in range(batch):
                for slot in range(ops.shape[0]):
                    out[i] = torchvision_op(out[i], OPS[int(ops[slot, i])], values[slot][i])
            return out
        for slot in range(ops.shape[0]):
            self._apply_slot(out, ops[slot], negated[slot], magnitudes, indices)
        return out

    @staticmethod
    def _apply_slot(out: torch.Tensor, ops: torch.Tensor, negated: torch.Tensor,
                    magnitudes: torch.Tensor, indices: torch.Tensor) -> None:
        """Apply one op per image in place: each op kind once, on the rows that drew it.

        The batch is gathered once in op order (geometric ops first), so each op kind works
        on a contiguous slice, and scattered back once."""
        kinds = ops.tolist()
        rank = {name: i for i, name in enumerate(GEOMETRIC + tuple(COLOUR_OPS))}
        order = sorted((i for i, op in enumerate(kinds) if OPS[op] != "Identity"),
                       key=lambda i: rank[OPS[kinds[i]]])  # stable: ties keep batch order
        if not order:
            return
        rows = torch.tensor(order, dtype=torch.long)
        index = rows.to(out.device)
        work = out.index_select(0, index)
        sorted_ops, sorted_negated = ops[rows], negated[rows]
        values = magnitudes[sorted_ops, sorted_negated]  # (n,) float64
        names = [OPS[kinds[i]] for i in order]
        geometric = sum(name in GEOMETRIC for name in names)
        if geometric:
            work[:geometric] = warp(work[:geometric], indices[sorted_ops[:geometric],
                                                              sorted_negated[:geometric]])
        start = geometric
        for name, op in COLOUR_OPS.items():
            stop = start + names.count(name)
            if stop > start:
                work[start:stop] = op(work[start:stop], values[start:stop])
            start = stop
        out.index_copy_(0, index, work)

    def __repr__(self) -> str:
        return (f"BatchedRandAugment(hflip={self.hflip}, randaugment={self.randaugment}, "
                f"num_ops={self.num_ops}, magnitude={self.magnitude}, "
                f"num_magnitude_bins={self.num_magnitude_bins})")
