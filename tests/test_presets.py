"""Batched augmentation (data.presets) against torchvision's per-image transforms."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from bmxlib.data import EvalPreset, TrainPreset, presets
from bmxlib.data.presets import BatchAugment

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _images(batch: int, channels: int, size: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # smooth-ish content so Equalize / AutoContrast / Sharpness have something to do
    base = torch.randint(0, 256, (batch, channels, size // 4, size // 4), generator=g)
    up = torch.nn.functional.interpolate(base.float(), size=(size, size), mode="bilinear")
    return up.round().clamp(0, 255).to(torch.uint8)


def _per_image(transform, images: torch.Tensor, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.stack([transform(image) for image in images])


@pytest.mark.parametrize(
    ("channels", "num_ops", "magnitude", "hflip"),
    [(1, 2, 9, False), (3, 2, 9, True), (3, 3, 15, False), (1, 1, 30, True), (3, 0, 9, True)],
    ids=["gray-2x9", "rgb-2x9-flip", "rgb-3x15", "gray-1x30-flip", "rgb-0ops-flip"],
)
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("bytes_per_call", "min_group_call"),
                         [(1 << 20, 16), (5000, 1), (5000, 16)],
                         ids=["grouped", "grouped-chunks-of-2", "one-by-one"])
def test_batch_augment_bit_identical_to_torchvision(channels, num_ops, magnitude, hflip, seed,
                                                   bytes_per_call, min_group_call, monkeypatch):
    monkeypatch.setattr(presets, "CPU_BYTES_PER_CALL", bytes_per_call)
    monkeypatch.setattr(presets, "MIN_GROUP_CALL", min_group_call)
    images = _images(48, channels, seed=seed)
    steps = [v2.RandomHorizontalFlip()] if hflip else []
    reference = v2.Compose([*steps, v2.RandAugment(num_ops=num_ops, magnitude=magnitude)])
    expected = _per_image(reference, images, seed)
    torch.manual_seed(seed)
    got = BatchAugment(hflip=hflip, num_ops=num_ops, magnitude=magnitude,
                       implementation="grouped")(images)
    assert torch.equal(got, expected)
    # and the RNG is left where torchvision leaves it
    torch.manual_seed(seed)
    _per_image(reference, images, seed)
    after_reference = torch.rand(3)
    torch.manual_seed(seed)
    BatchAugment(hflip=hflip, num_ops=num_ops, magnitude=magnitude,
                 implementation="grouped")(images)
    assert torch.equal(torch.rand(3), after_reference)


def test_batch_augment_draws_every_op_and_changes_images():
    augment = BatchAugment(num_ops=2, magnitude=9, implementation="grouped")
    torch.manual_seed(0)
    flips, ops = augment.plan(4000, 32, 32)
    assert flips == []
    names = {name for image_ops in ops for name, _ in image_ops}
    assert names == set(v2.RandAugment._AUGMENTATION_SPACE)
    signs = [m > 0 for image_ops in ops for name, m in image_ops if name == "Rotate"]
    assert 0.4 < sum(signs) / len(signs) < 0.6  # signed ops flip their sign half the time
    images = _images(64, 1)
    assert not torch.equal(augment(images), images)
    assert torch.equal(images, _images(64, 1))  # the input is not modified in place


@pytest.mark.parametrize("implementation", ["batched", "grouped"])
def test_batch_augment_off_is_identity_and_rejects_float(implementation):
    images = _images(8, 3)
    off = BatchAugment(randaugment=False, implementation=implementation)
    assert torch.equal(off(images), images)
    assert BatchAugment(implementation=implementation)(images[:0]).shape == (0, 3, 24, 24)
    with pytest.raises(ValueError, match="uint8 batch"):
        BatchAugment(implementation=implementation)(images.float())


def test_unknown_implementation_is_refused():
    with pytest.raises(ValueError, match="'fast' is not one of batched, grouped"):
        BatchAugment(implementation="fast")


@pytest.mark.parametrize("hflip", [False, True], ids=["digits", "photos"])
def test_train_preset_matches_the_torchvision_pipeline(hflip):
    images = _images(16, 3, size=20)
    preset = TrainPreset(image_size=24, mean=MEAN, std=STD, hflip=hflip, augmentation="grouped")
    reference = v2.Compose([
        v2.Resize((24, 24), antialias=True),
        *([v2.RandomHorizontalFlip()] if hflip else []),
        v2.RandAugment(num_ops=2, magnitude=9),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(MEAN), list(STD)),
    ])
    expected = _per_image(reference, images, 5)
    single = _per_image(preset, images, 5)  # one image at a time through the preset
    torch.manual_seed(5)
    batched = preset.per_batch(torch.stack([preset.per_image(im) for im in images]))
    assert torch.equal(single, expected)
    assert torch.equal(batched, expected)
    assert expected.dtype == torch.float32 and expected.shape == (16, 3, 24, 24)


def test_train_preset_defaults_to_the_batched_augmentation():
    preset = TrainPreset(image_size=24, mean=MEAN, std=STD)
    assert preset.per_batch.transforms[0].implementation == "batched"
    images = _images(16, 1)
    torch.manual_seed(2)
    first = preset.per_batch(images)
    torch.manual_seed(2)
    assert torch.equal(preset.per_batch(images), first)  # deterministic for a seed


def test_eval_preset_is_deterministic_normalisation():
    image = _images(1, 3, size=24)[0]
    out = EvalPreset(image_size=24, mean=MEAN, std=STD)(image)
    expected = (image.float() / 255 - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[
        :, None, None]
    torch.testing.assert_close(out, expected)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batch_augment_on_cuda_matches_cpu_ops():
    images = _images(64, 3)
    torch.manual_seed(3)
    flips, ops = BatchAugment(hflip=True, implementation="grouped").plan(64, 24, 24)
    torch.manual_seed(3)
    cpu = BatchAugment(hflip=True, implementation="grouped")(images)
    torch.manual_seed(3)
    gpu = BatchAugment(hflip=True, implementation="grouped")(images.cuda()).cpu()
    # geometric ops may round differently on the GPU; most pixels must agree exactly
    assert (cpu == gpu).float().mean() > 0.99
    assert len(flips) == 64 and len(ops) == 64


@pytest.mark.parametrize("implementation", ["batched", "grouped"])
def test_the_augmentation_key_reaches_the_training_preset(implementation):
    from bmxlib.config import load_config
    from bmxlib.experiment import build

    config = load_config(None, [f"augmentation={implementation}", "n_train=100",
                                "n_test=20", "epochs=1"])
    train = build(config).train_set.transform
    augment = train.per_batch.transforms[0]
    assert augment.implementation == implementation


def test_an_unknown_augmentation_is_refused_naming_the_key():
    from bmxlib.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="augmentation"):
        load_config(None, ["augmentation=fast"])


def test_dataset_presets_take_the_datasets_defaults_unless_overridden():
    from types import SimpleNamespace

    from bmxlib.data.presets import IMAGENET_MEAN, IMAGENET_STD, dataset_presets

    def normalise_and_size(preset):
        normalize = preset.per_batch.transforms[-1]
        return tuple(normalize.mean), tuple(normalize.std), preset.per_image.transforms[0].size

    plain = SimpleNamespace(default_image_size=32)  # names no statistics of its own
    train, evaluation = dataset_presets(plain, randaugment=False)
    assert normalise_and_size(train) == (IMAGENET_MEAN, IMAGENET_STD, [32, 32])
    assert normalise_and_size(evaluation) == (IMAGENET_MEAN, IMAGENET_STD, [32, 32])
    own = SimpleNamespace(default_image_size=32, mean=(0.5,), std=(0.25,))
    train, evaluation = dataset_presets(own, image_size=48)
    assert normalise_and_size(train) == ((0.5,), (0.25,), [48, 48])
    assert normalise_and_size(evaluation) == ((0.5,), (0.25,), [48, 48])
