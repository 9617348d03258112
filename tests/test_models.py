"""Backbones: the digit-pretrained small CNN learns digits; ResNets build offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bmxlib.data.digits_lt import single_digit_canvases
from bmxlib.models import SmallCNN, build_model, inference_copy, pretrained_digits_backbone


def test_pretrained_backbone_recognises_unseen_digits():
    features = pretrained_digits_backbone(width=16, seed=0)
    model = SmallCNN(10, width=16)
    model.features.load_state_dict(features)
    # a linear probe is not needed: fit the head on train canvases, test on other seeds'
    images, targets = single_digit_canvases(seed=0, copies=1)
    x = (torch.from_numpy(images).float() / 255 - 0.1) / 0.25
    with torch.no_grad():
        emb = model.features.eval()(x)
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(max_iter=2000).fit(emb[::2].numpy(), targets[::2])
    assert probe.score(emb[1::2].numpy(), targets[1::2]) > 0.9


def test_backbone_is_cached():
    a = pretrained_digits_backbone(width=16, seed=0)
    b = pretrained_digits_backbone(width=16, seed=0)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("arch", ["small_cnn", "resnet18"])
def test_build_model_gives_k_logits(arch):
    model = build_model(arch, 7, in_channels=1, pretrained="none", width=8)
    out = model(torch.zeros(2, 1, 32, 32))
    assert out.shape == (2, 7)


def test_resnet_imagenet_weights_from_a_local_file(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    model = build_model("resnet18", 5, pretrained="imagenet", weights_path=str(path))
    conv = model.model.conv1.weight
    assert torch.equal(conv, reference.conv1.weight) and model.model.fc.out_features == 5


@pytest.mark.parametrize(
    "kwargs, message",
    [({"arch": "vgg"}, "unknown arch"),
     ({"arch": "resnet18", "pretrained": "digits"}, "only available for small_cnn"),
     ({"arch": "resnet18", "pretrained": "imagenet", "weights_path": "/no/such.pth"},
      "does not exist")],
    ids=["unknown-arch", "digits-on-resnet", "missing-weights"],
)
def test_bad_model_requests(kwargs, message):
    arch = kwargs.pop("arch")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        build_model(arch, 3, **kwargs)


def test_small_cnn_is_cheap():
    # about 3 M multiply-adds per 32×32 image at width 16: keeps CPU epochs at seconds
    model = SmallCNN(10, width=16)
    params = sum(p.numel() for p in model.parameters())
    assert params < 400_000
    assert np.isfinite(model(torch.randn(4, 1, 32, 32)).detach().numpy()).all()


@pytest.mark.parametrize(("arch", "channels"), [("small_cnn", 1), ("resnet18", 1), ("resnet18", 3)],
                         ids=["small-cnn", "resnet18-grey", "resnet18-rgb"])
def test_inference_copy_folds_batch_norm_and_computes_the_same(arch, channels):
    torch.manual_seed(0)
    model = build_model(arch, 5, in_channels=channels, pretrained="none", width=8)
    x = torch.randn(16, channels, 32, 32)
    model.train()
    model(x)  # move the running statistics away from their initial values
    model(x)
    folded = inference_copy(model)
    assert model.training  # the original is untouched
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        expected = model.eval()(x)
        got = folded(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
