"""The batched RandAugment (data.augment) against torchvision, op by op and as a whole.

Every op is compared bit for bit with its ``torchvision.transforms.v2.functional``
reference on fixed magnitudes (all 31 bins, both signs, for the geometric ops), on 1- and
3-channel images, square and odd-sized; no tolerance is needed anywhere: the sampling grid
is built by the same float32 operations as torchvision's, and the blends round as
torchvision's fused multiply-add does.
"""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as F

from bmxlib.data import augment as A

NEAREST = InterpolationMode.NEAREST


def _images(batch: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # smooth-ish content so Equalize / AutoContrast / Sharpness have something to do
    base = torch.randint(0, 256, (batch, channels, size // 4, size // 4), generator=g)
    up = torch.nn.functional.interpolate(base.float(), size=(size, size), mode="bilinear")
    return up.round().clamp(0, 255).to(torch.uint8)


def _reference(image: torch.Tensor, op: str, magnitude: float) -> torch.Tensor:
    """torchvision's RandAugment op (public v2 functionals, as RandAugment calls them)."""
    if op in ("ShearX", "ShearY"):
        shear = math.degrees(math.atan(magnitude))
        return F.affine(image, angle=0.0, translate=[0, 0], scale=1.0,
                        shear=[shear, 0.0] if op == "ShearX" else [0.0, shear],
                        interpolation=NEAREST, center=[0, 0])
    if op in ("TranslateX", "TranslateY"):
        shift = [int(magnitude), 0] if op == "TranslateX" else [0, int(magnitude)]
        return F.affine(image, angle=0.0, translate=shift, scale=1.0, shear=[0.0, 0.0],
                        interpolation=NEAREST)
    return {
        "Identity": lambda: image,
        "Rotate": lambda: F.rotate(image, angle=magnitude, interpolation=NEAREST),
        "Brightness": lambda: F.adjust_brightness(image, 1.0 + magnitude),
        "Color": lambda: F.adjust_saturation(image, 1.0 + magnitude),
        "Contrast": lambda: F.adjust_contrast(image, 1.0 + magnitude),
        "Sharpness": lambda: F.adjust_sharpness(image, 1.0 + magnitude),
        "Posterize": lambda: F.posterize(image, int(magnitude)),
        "Solarize": lambda: F.solarize(image, 255.0 * magnitude),
        "AutoContrast": lambda: F.autocontrast(image),
        "Equalize": lambda: F.equalize(image),
    }[op]()


SHAPES = [(1, 32), (3, 24), (3, 31)]
SHAPE_IDS = ["digits-1x32", "rgb-24", "rgb-odd-31"]


@pytest.mark.parametrize(("channels", "size"), SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("op", A.GEOMETRIC)
def test_geometric_op_equals_torchvision_on_every_bin_and_sign(op, channels, size):
    values = [float(v) for v in A.magnitude_table(31, size, size)[op]]
    magnitudes = values + [-v for v in values]  # 62 images, each its own matrix
    images = _images(len(magnitudes), channels, size)
    matrices = torch.tensor([A.inverse_affine_matrix(op, m, size, size) for m in magnitudes],
                            dtype=torch.float64).view(-1, 2, 3)
    got = A.affine_nearest(images, matrices)
    expected = torch.stack([_reference(im, op, m) for im, m in zip(images, magnitudes)])
    assert torch.equal(got, expected)
    assert not torch.equal(got, images)


def test_inverse_affine_matrix_refuses_a_colour_op():
    with pytest.raises(ValueError, match="not a geometric op: 'Brightness'"):
        A.inverse_affine_matrix("Brightness", 0.3, 32, 32)


COLOUR = {
    "Brightness": A.adjust_brightness, "Color": A.adjust_saturation,
    "Contrast": A.adjust_contrast, "Sharpness": A.adjust_sharpness,
}


@pytest.mark.parametrize(("channels", "size"), SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("op", sorted(COLOUR))
def test_blend_op_equals_torchvision_with_a_factor_per_image(op, channels, size):
    values = A.magnitude_table(31, size, size)[op].double()
    magnitudes = torch.cat([values, -values])  # factor 1 + m in [0.1, 1.9]
    images = _images(len(magnitudes), channels, size, seed=1)
    got = COLOUR[op](images, 1.0 + magnitudes)
    expected = torch.stack([_reference(im, op, float(m)) for im, m in zip(images, magnitudes)])
    assert torch.equal(got, expected)
    if not (op == "Color" and channels == 1):  # saturation of a grey image: unchanged
        assert not torch.equal(got, images)


@pytest.mark.parametrize(("channels", "size"), SHAPES, ids=SHAPE_IDS)
def test_posterize_and_solarize_equal_torchvision_with_a_value_per_image(channels, size):
    images = _images(31, channels, size, seed=2)
    bits = A.magnitude_table(31, size, size)["Posterize"]
    expected = torch.stack([_reference(im, "Posterize", int(b)) for im, b in zip(images, bits)])
    assert torch.equal(A.posterize(images, bits), expected)
    levels = A.magnitude_table(31, size, size)["Solarize"].double()
    expected = torch.stack([_reference(im, "Solarize", float(t))
                            for im, t in zip(images, levels)])
    assert torch.equal(A.solarize(images, 255.0 * levels), expected)


def _replay(augment: A.BatchedRandAugment, images: torch.Tensor, seed: int) -> torch.Tensor:
    """The batch's draws replayed image by image through torchvision's ops."""
    torch.manual_seed(seed)
    flips, ops, negated = augment.plan(len(images))
    table = A.magnitude_table(augment.num_magnitude_bins, *images.shape[-2:])
    out = []
    for i, image in enumerate(images):
        if flips is not None and flips[i]:
            image = F.horizontal_flip(image)
        for slot in range(ops.shape[0]):
            name = A.OPS[int(ops[slot, i])]
            values = table[name]
            magnitude = 0.0 if values is None else float(values[augment.magnitude])
            if name in A.SIGNED and negated[slot, i]:
                magnitude = -magnitude
            image = _reference(image, name, magnitude)
        out.append(image)
    return torch.stack(out)


@pytest.mark.parametrize(
    ("channels", "size", "num_ops", "magnitude", "hflip"),
    [(1, 32, 2, 9, False), (3, 24, 2, 9, True), (3, 31, 3, 30, False), (1, 32, 1, 0, True)],
    ids=["digits-2x9", "rgb-2x9-flip", "rgb-odd-3x30", "digits-1x0-flip"],
)
def test_batched_randaugment_equals_torchvision_ops_on_its_own_draws(channels, size, num_ops,
                                                                   magnitude, hflip):
    images = _images(96, channels, size, seed=3)
    augment = A.BatchedRandAugment(hflip=hflip, num_ops=num_ops, magnitude=magnitude)
    expected = _replay(augment, images, seed=7)
    torch.manual_seed(7)
    got = augment(images)
    assert torch.equal(got, expected)
    torch.manual_seed(7)
    assert torch.equal(augment(images), got)  # deterministic for a seed
    assert torch.equal(images, _images(96, channels, size, seed=3))  # input untouched


def test_magnitudes_are_torchvision_randaugments():
    space = v2.RandAugment._AUGMENTATION_SPACE
    assert tuple(space) == A.OPS
    assert {name for name, (_, signed) in space.items() if signed} == A.SIGNED
    for height, width in [(32, 32), (24, 40)]:
        table = A.magnitude_table(31, height, width)
        for name, (magnitudes_fn, _) in space.items():
            expected = magnitudes_fn(31, height, width)
            assert (table[name] is None) == (expected is None), name
            if expected is not None:
                assert torch.equal(table[name], expected), name


def test_op_and_sign_frequencies_match_torchvisions_distribution():
    """Over 2 x 7,000 draws each op should come up 1/14 of the time (torchvision draws it
    with ``torch.randint(14)``) and signed ops are negated half of the time. Chi-square
    with 13 degrees of freedom: 45 is exceeded with probability < 1e-5 when the draw is
    uniform, while an op missing or doubled adds ~1,000 to the statistic."""
    augment = A.BatchedRandAugment(num_ops=2, magnitude=9)
    torch.manual_seed(0)
    flips, ops, negated = augment.plan(7000)
    assert flips is None and ops.shape == (2, 7000)
    counts = torch.bincount(ops.flatten(), minlength=14).double()
    expected = ops.numel() / 14
    assert float(((counts - expected) ** 2 / expected).sum()) < 45
    signed = torch.tensor([name in A.SIGNED for name in A.OPS])[ops]
    share = negated[signed].double().mean()
    assert abs(float(share) - 0.5) < 4 * 0.5 / math.sqrt(int(signed.sum()))  # 4 sigma
    assert A.BatchedRandAugment(hflip=True).plan(5)[0].dtype == torch.bool


class _RecordingRandAugment(v2.RandAugment):
    """torchvision's RandAugment, recording each (op, magnitude) it applies."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.applied: list[tuple[str, float]] = []

    def _apply_image_or_video_transform(self, image, transform_id, magnitude, **kwargs):
        self.applied.append((transform_id, magnitude))
        return image


def test_op_magnitude_and_sign_draws_match_torchvision_randaugments():
    """Two-sample chi-square over the 23 (op, signed magnitude) outcomes of magnitude 9:
    4,000 images × 2 ops from torchvision's RandAugment against as many from ours. With 22
    degrees of freedom the statistic exceeds 60 with probability < 1e-4 when both draw
    from one distribution; a wrong magnitude or sign rule makes categories disjoint
    (statistic in the hundreds)."""
    count = 4000
    recorder = _RecordingRandAugment(num_ops=2, magnitude=9)
    torch.manual_seed(1)
    image = torch.zeros(1, 8, 8, dtype=torch.uint8)
    for _ in range(count):
        recorder(image)
    theirs = [(name, round(m, 5)) for name, m in recorder.applied]
    augment = A.BatchedRandAugment(num_ops=2, magnitude=9)
    torch.manual_seed(2)
    _, ops, negated = augment.plan(count)
    table = A.magnitude_table(31, 8, 8)
    ours = []
    for op, neg in zip(ops.flatten().tolist(), negated.flatten().tolist()):
        name = A.OPS[op]
        value = 0.0 if table[name] is None else float(table[name][9])
        ours.append((name, round(-value if neg and name in A.SIGNED else value, 5)))
    categories = sorted(set(theirs) | set(ours))
    assert len(categories) == 14 + len(A.SIGNED)  # signed ops: both signs, no extra value
    statistic = 0.0
    for category in categories:
        a, b = theirs.count(category), ours.count(category)
        statistic += (a - b) ** 2 / (a + b)
    assert statistic < 60


def test_magnitude_outside_the_bins_is_refused():
    with pytest.raises(ValueError, match="magnitude 31 is outside 0..30"):
        A.BatchedRandAugment(magnitude=31)


def test_photo_sized_images_on_the_cpu_go_image_by_image_to_the_same_pixels(monkeypatch):
    images = _images(24, 3, 24, seed=4)
    augment = A.BatchedRandAugment(hflip=True, num_ops=3, magnitude=12)
    torch.manual_seed(11)
    batched = augment(images)
    monkeypatch.setattr(A, "CPU_BATCHED_MAX_BYTES", 0)  # every image is "photo-sized"
    torch.manual_seed(11)
    assert torch.equal(augment(images), batched)
    torch.manual_seed(11)
    assert torch.equal(augment.apply(images, augment.plan(24), one_by_one=True), batched)
    with pytest.raises(ValueError, match="unknown RandAugment op 'Invert'"):
        A.torchvision_op(images[0], "Invert", 0.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batched_randaugment_on_cuda_matches_the_cpu():
    """Same draws on both devices (the plan is drawn on the CPU generator). Gathers,
    integer blurs, posterize and solarize are exact anywhere; the float blends and
    torchvision's grayscale may contract to different FMAs on the GPU, so at most 0.1% of
    the pixels may differ (by one grey level where they do)."""
    images = _images(128, 3, 32, seed=5)
    augment = A.BatchedRandAugment(hflip=True)
    torch.manual_seed(3)
    cpu = augment(images)
    torch.manual_seed(3)
    gpu = augment(images.cuda()).cpu()
    assert (cpu == gpu).float().mean() > 0.999
    assert (cpu.int() - gpu.int()).abs().max() <= 1
