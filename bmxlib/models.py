"""Backbones and heads: a small CNN for digits-lt and torchvision ResNets.

``build_model(arch, num_classes, ..., head=...)`` returns an ``nn.Module`` mapping images
(B, C, H, W) to float32 logits (B, K): a linear head on globally pooled features, or an
ML-Decoder-style transformer decoder on the spatial feature map (``bmxlib.heads``; the
paper's head). Heads compute in float32 even under autocast. digits-lt configs start by
default from a small CNN pretrained on single clean source digits of the train split
(docs/method.md §5), the analogue of the paper's ImageNet-pretrained ResNet-50; it trains in
seconds and is cached (``bmxlib.pretrain``).
"""

from __future__ import annotations

import copy
import itertools
import weakref
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn

from .heads import DecoderHead, Float32Head, Float32Linear, decoder_options

ARCHS = ("small_cnn", "resnet18", "resnet50", "resnet101")
HEADS = ("linear", "decoder")
#: the small CNN's pretrained backbones (``bmxlib.pretrain``): single clean source images
#: of digits-lt ("digits", 10 classes) or of glyphs-coco ("glyphs", 80 classes)
BACKBONE_SOURCES = ("digits", "glyphs")


def _conv_block(c_in: int, c_out: int, *, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """Four conv blocks (width w, 2w, 4w, 8w), then a linear or a decoder head.

    Sized for 32×32 one-channel canvases: about 3 M multiply-adds per image at w = 16,
    so a digits-lt epoch takes seconds on two CPU cores.

    ``head="linear"``: ``features`` ends with global average pooling and a flatten,
    (B, 8w), and ``fc`` maps it to the K logits. ``head="decoder"``: ``features`` stops at
    the last conv block, (B, 8w, H/8, W/8), and ``head`` is a :class:`DecoderHead` sized
    by :func:`bmxlib.heads.decoder_options`. Either way ``features`` holds the same
    parameters under the same keys, so the pretrained digits backbone loads into both.
    """

    def __init__(self, num_classes: int, *, in_channels: int = 1, width: int = 16,
                 head: str = "linear") -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
        w = width
        blocks = [
            _conv_block(in_channels, w, pool=True),
            _conv_block(w, 2 * w, pool=True),
            _conv_block(2 * w, 4 * w, pool=True),
            _conv_block(4 * w, 8 * w, pool=False),
        ]
        self.head_type = head
        if head == "linear":
            self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.fc = Float32Linear(8 * w, num_classes)
        else:
            self.features = nn.Sequential(*blocks)
            self.head = DecoderHead(8 * w, num_classes, **decoder_options(8 * w, small=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images → (B, K) float32 logits."""
        head = self.fc if self.head_type == "linear" else self.head
        return head(self.features(x))


class _GreyToRGB(nn.Module):
    """Repeat a one-channel image to three channels for ImageNet backbones."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.model(x)


RESNET_TRUNK = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


def _resnet(arch: str, num_classes: int, *, pretrained: str, weights_path: str,
            head: str = "linear") -> nn.Module:
    """A torchvision ResNet (ImageNet weights if asked) with a fresh K-way head.

    ``head="linear"``: the ResNet itself with ``fc`` replaced (global average pooling, then
    a float32 linear layer). ``head="decoder"``: ``Sequential(features=conv1 … layer4,
    head=DecoderHead)`` on the (B, C, H/32, W/32) map, ML-Decoder's sizes. Both wrapped
    so that one-channel images are repeated to three channels.
    """
    import torchvision

    model = getattr(torchvision.models, arch)(weights=None)
    if pretrained == "imagenet":
        if weights_path:
            path = Path(weights_path)
            if path.is_dir():
                raise IsADirectoryError(f"weights_path {weights_path} is a directory; give "
                                        "the .pth weights file in it")
            if not path.is_file():
                raise FileNotFoundError(f"weights_path {weights_path} does not exist")
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:  # junk, truncated or pickled-object files
                raise ValueError(f"weights_path {weights_path} is not a torch weights file "
                                 f"({err.__class__.__name__})") from None
            state = state.get("model", state) if isinstance(state, dict) else state
            if not isinstance(state, dict):
                raise ValueError(f"weights_path {weights_path} holds no state dict")
            try:
                missing, unexpected = model.load_state_dict(state, strict=False)
            except RuntimeError:  # tensors of other shapes
                raise ValueError(f"weights_path {weights_path} does not match {arch}") from None
            if unexpected or [k for k in missing if not k.startswith("fc.")]:
                raise ValueError(f"weights_path {weights_path} does not match {arch}")
        else:
            enum = torchvision.models.get_model_weights(arch).DEFAULT
            try:
                model.load_state_dict(enum.get_state_dict(progress=True))
            except Exception as err:  # offline machines cannot download: a user's error,
                raise OSError(  # one line at the command line, not a traceback
                    f"could not fetch ImageNet weights for {arch} ({err.__class__.__name__}); "
                    "set weights_path to a local .pth file or pretrained=none"
                ) from None
    if head == "linear":
        model.fc = Float32Linear(model.fc.in_features, num_classes)
        return _GreyToRGB(model)
    trunk = nn.Sequential(OrderedDict((name, getattr(model, name)) for name in RESNET_TRUNK))
    decoder = DecoderHead(model.fc.in_features, num_classes)
    return _GreyToRGB(nn.Sequential(OrderedDict(features=trunk, head=decoder)))


def inference_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with each Conv2d → BatchNorm2d pair folded into one
    convolution, for the no-grad passes (evaluation, full-data pass, re-label views).

    In eval mode a batch norm is a fixed per-channel affine map, so folding it into the
    preceding convolution computes the same function (to float rounding, ~1e-7 relative)
    with one memory pass fewer per block: the small CNN's forward is ~40 % faster on the
    CPU. Uses ``torch.fx.experimental.optimization.fuse`` on a graph traced with the
    heads (:class:`bmxlib.heads.Float32Head`) kept as leaf modules, so they keep computing
    in float32 under autocast (a decoder head's attention stays unfused); a module whose
    forward cannot be traced symbolically (data-dependent control flow) is fused child by
    child. ``model`` itself is not modified.
    """
    import torch.fx as fx
    from torch.fx.experimental.optimization import fuse
    from torch.fx.proxy import TraceError

    class HeadsAsLeaves(fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualified_name: str) -> bool:
            return isinstance(m, Float32Head) or super().is_leaf_module(m, qualified_name)

    def fold(module: nn.Module) -> nn.Module:
        if not any(isinstance(m, nn.BatchNorm2d) for m in module.modules()):
            return module
        try:
            graph = HeadsAsLeaves().trace(module)
        except TraceError:
            for name, child in module.named_children():
                setattr(module, name, fold(child))
            return module
        traced = fx.GraphModule(module, graph, module.__class__.__name__)
        return fuse(traced, inplace=True, no_trace=True)

    return fold(copy.deepcopy(model).eval())


_FOLDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _weights_version(model: torch.nn.Module) -> tuple[int, ...]:
    """Changes whenever a parameter or buffer of ``model`` is written (the optimiser's
    in-place step, a batch norm's running statistics, ``load_state_dict``)."""
    return tuple(t._version for t in itertools.chain(model.parameters(), model.buffers()))


def folded_copy(model: torch.nn.Module) -> torch.nn.Module:
    """``inference_copy(model)``, folded once per state of the weights: the passes
    at the end of an epoch (full-data pass, re-label views, evaluation) share one copy
    instead of tracing and folding the model for each (~16 ms each on the small CNN)."""
    version = _weights_version(model)
    cached = _FOLDED.get(model)
    if cached is None or cached[0] != version:
        cached = (version, inference_copy(model))
        _FOLDED[model] = cached
    return cached[1]


def build_model(
    arch: str,
    num_classes: int,
    *,
    in_channels: int = 1,
    pretrained: str = "none",
    weights_path: str = "",
    width: int = 16,
    features_state: dict[str, torch.Tensor] | None = None,
    head: str = "linear",
) -> nn.Module:
    """Build a backbone with a fresh K-way head.

    Parameters
    ----------
    arch : {"small_cnn", "resnet18", "resnet50", "resnet101"}
    num_classes : int
        K, the number of output logits.
    pretrained : {"none", "digits", "glyphs", "imagenet"}
        "digits" / "glyphs": the small CNN's features loaded from ``features_state`` (the
        backbone pretrained on single clean digits of digits-lt or glyphs of glyphs-coco,
        ``bmxlib.pretrain.pretrained_digits_backbone``);
        "imagenet": torchvision weights from ``weights_path`` or the weight enum; either
        way into the backbone only, under both heads.
    head : {"linear", "decoder"}
        "linear": global average pooling and one linear layer; "decoder": the
        ML-Decoder-style :class:`bmxlib.heads.DecoderHead` on the last spatial feature
        map (the paper's head). Both compute in float32 under autocast.

    Returns
    -------
    nn.Module
        Images (B, in_channels, H, W) → float32 logits (B, K).
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    if arch == "small_cnn":
        model = SmallCNN(num_classes, in_channels=in_channels, width=width, head=head)
        if pretrained in BACKBONE_SOURCES:
            if features_state is None:
                raise ValueError(f"pretrained={pretrained} needs the backbone's weights "
                                 "(bmxlib.pretrain.pretrained_digits_backbone)")
            model.features.load_state_dict(features_state)
        elif pretrained == "imagenet":
            raise ValueError("pretrained=imagenet needs a ResNet arch, not small_cnn")
        return model
    if pretrained in BACKBONE_SOURCES:
        raise ValueError(f"pretrained={pretrained} is only available for small_cnn, not {arch}")
    return _resnet(arch, num_classes, pretrained=pretrained, weights_path=weights_path,
                   head=head)
