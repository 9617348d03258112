"""Backbones: the digit-pretrained small CNN learns digits; ResNets build offline; the
decoder head and float32 heads under autocast."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bmxlib.data.digits_lt import single_digit_canvases
from bmxlib.heads import DecoderHead
from bmxlib.models import SmallCNN, build_model, inference_copy
from bmxlib.pretrain import pretrained_digits_backbone


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


@pytest.mark.parametrize("run_seed", [0, 1, 2], ids=lambda s: f"seed={s}")
def test_a_run_head_starts_untrained_whatever_its_seed(run_seed):
    """The run's model is initialised under ``torch.manual_seed(seed)`` (experiment.py).
    Under pretraining recipe 2 the backbone was pretrained from ``manual_seed(data_seed)``,
    so at seed == data_seed the run's fresh head was the one the features had co-adapted
    with: it named 95.8% of the source digits before any training (chance: 10%)."""
    features = pretrained_digits_backbone(width=16, seed=0)
    torch.manual_seed(run_seed)  # as experiment.setup does before build_model
    model = build_model("small_cnn", 10, in_channels=1, pretrained="digits", width=16,
                        features_state=features).eval()
    images, targets = single_digit_canvases(seed=0, copies=1)
    x = (torch.from_numpy(images).float() / 255 - 0.1) / 0.25
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == torch.from_numpy(targets)).float().mean().item()
    assert accuracy < 0.3


def test_small_cnn_min_size_is_the_smallest_side_it_takes():
    from bmxlib.config import SMALL_CNN_MIN_SIZE

    model = SmallCNN(3, width=4)
    model(torch.zeros(2, 1, SMALL_CNN_MIN_SIZE, SMALL_CNN_MIN_SIZE))
    with pytest.raises(RuntimeError):
        model(torch.zeros(2, 1, SMALL_CNN_MIN_SIZE - 1, SMALL_CNN_MIN_SIZE - 1))


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
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert folded(x).dtype == torch.float32  # the float32 head survives the tracing
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------
# the decoder head (ML-Decoder style) and float32 heads under autocast
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [3, 80, 150], ids=["k3", "k80", "k150-groups"])
@pytest.mark.parametrize("arch", ["small_cnn", "resnet18"])
def test_decoder_head_gives_k_logits(arch, k):
    torch.manual_seed(0)
    model = build_model(arch, k, pretrained="none", width=8, head="decoder").eval()
    head = model.head if arch == "small_cnn" else model.model.head
    assert isinstance(head, DecoderHead)
    groups = min(k, 100)  # one query per class up to 100, then groups of ceil(K / 100)
    assert head.queries.shape[0] == groups and head.per_group == -(-k // groups)
    assert head.group_weight.shape[::2] == (groups, head.per_group)
    with torch.no_grad():
        out = model(torch.randn(2, 1, 64, 64))
    assert out.shape == (2, k) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_decoder_head_sizes():
    small = build_model("small_cnn", 10, width=16, head="decoder").head
    assert small.embed.out_features == 128 and small.layers[0].attention.num_heads == 8
    assert small.layers[0].ff_in.out_features == 344 and len(small.layers) == 1
    big = DecoderHead(2048, 80)  # ML-Decoder's defaults
    layer = big.layers[0]
    assert (big.embed.out_features, layer.attention.num_heads, layer.ff_in.out_features,
            layer.drop_ff.p, len(big.layers)) == (768, 8, 2048, 0.1, 1)
    assert not any(isinstance(m, torch.nn.TransformerDecoderLayer) for m in big.modules())
    assert sum(isinstance(m, torch.nn.MultiheadAttention) for m in big.modules()) == 1


def test_decoder_one_training_step_reaches_queries_and_backbone():
    torch.manual_seed(0)
    model = build_model("small_cnn", 5, pretrained="none", width=8, head="decoder")
    x, y = torch.randn(16, 1, 32, 32), (torch.rand(16, 5) < 0.3).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def eval_loss() -> float:
        with torch.no_grad():
            return float(F.binary_cross_entropy_with_logits(model.eval()(x), y))

    before = eval_loss()
    for step in range(5):
        model.train()
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        if step == 0:
            grads = {n: p.grad for n, p in model.named_parameters()}
            assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
            for name in ("head.queries", "head.group_weight", "head.embed.weight",
                         "features.0.0.weight"):
                assert grads[name].abs().sum() > 0, name
        opt.step()
    assert eval_loss() < before


def test_pretrained_backbones_load_into_the_decoder_variant(tmp_path):
    cached = pretrained_digits_backbone(width=16, seed=0)
    model = build_model("small_cnn", 10, pretrained="digits", width=16, head="decoder",
                        features_state=cached)
    state = model.features.state_dict()
    assert state.keys() == cached.keys() and all(torch.equal(state[k], cached[k]) for k in state)
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    model = build_model("resnet18", 5, pretrained="imagenet", weights_path=str(path),
                        head="decoder")
    trunk = model.model.features.state_dict()
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in trunk.items())
    assert len(trunk) == len(reference.state_dict()) - 2  # all but fc.weight, fc.bias


@pytest.mark.parametrize("arch", ["small_cnn", "resnet18"])
def test_inference_copy_of_the_decoder_model(arch):
    torch.manual_seed(0)
    model = build_model(arch, 12, pretrained="none", width=8, head="decoder")
    x = torch.randn(4, 1, 64, 64)
    model.train()
    model(x)  # move the running statistics away from their initial values
    model(x)
    folded = inference_copy(model)
    assert model.training
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, DecoderHead) for m in folded.modules()) == 1  # kept as a leaf
    with torch.no_grad():
        expected = model.eval()(x)
        got = folded(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert folded(x).dtype == torch.float32  # the head's autocast switch survives
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def _near_tied_inputs(n: int, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """(n, *shape) float32 inputs equal after rounding to bf16, distinct in float32.

    One base of bf16-representable values with |v| ≥ 0.25 (half a bf16 ulp there is
    2^-10 ≈ 1e-3), plus per-instance offsets of at most 1e-4.
    """
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(shape, generator=g)
    base = (base.sign() * base.abs().clamp(min=0.25)).bfloat16().float()
    x = base + 1e-4 * (2 * torch.rand((n, *shape), generator=g) - 1)
    assert (x.bfloat16() == base.bfloat16()).all()
    return x


@pytest.mark.parametrize("head", ["linear", "decoder"])
def test_heads_compute_in_float32_under_bf16_autocast(head):
    from bmxlib.metrics import average_precision

    torch.manual_seed(0)
    k, n = 3, 200
    model = build_model("small_cnn", k, pretrained="none", width=8, head=head).eval()
    model.features = torch.nn.Identity()  # the head sees float32 inputs tied only in bf16
    x = _near_tied_inputs(n, (64,) if head == "linear" else (64, 2, 2))
    with torch.no_grad():
        reference = model(x)  # pure float32
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
    assert logits.dtype == torch.float32
    assert all(len(torch.unique(reference[:, c])) > n // 2 for c in range(k))  # no ties
    # labels that follow the float32 ranking for class 0, random for the others
    targets = (torch.rand(n, k) < 0.3).numpy()
    targets[:, 0] = (reference[:, 0] > reference[:, 0].median()).numpy()
    ap_reference = average_precision(reference, targets)
    np.testing.assert_allclose(average_precision(logits, targets), ap_reference, atol=1e-6)
    if head == "linear":  # without the fix: a plain bf16 linear layer ties every instance
        plain = torch.nn.Linear(64, k)
        plain.load_state_dict(model.fc.state_dict())
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = plain(x)
        assert bf16.dtype == torch.bfloat16
        assert all(len(torch.unique(bf16[:, c])) == 1 for c in range(k))
        ap_bf16 = average_precision(bf16.float(), targets)
        assert ap_reference[0] == 1.0 and ap_bf16[0] < 0.6


@pytest.mark.parametrize("head", ["linear", "decoder"])
def test_backbone_keeps_autocast_and_the_head_does_not(head):
    model = build_model("small_cnn", 4, pretrained="none", width=8, head=head).eval()
    seen = {}

    def record(module, inputs, output) -> None:
        seen["dtype"] = output.dtype

    model.features.register_forward_hook(record)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 1, 32, 32))
    assert seen["dtype"] == torch.bfloat16 and out.dtype == torch.float32


def test_unknown_head_is_refused():
    with pytest.raises(ValueError, match="unknown head"):
        build_model("small_cnn", 3, head="mlp")
