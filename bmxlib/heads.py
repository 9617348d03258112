"""Classification heads that always compute in float32: a linear layer and an
ML-Decoder-style transformer decoder.

Evaluation, the full-data pass and the re-label views run under bf16 autocast on CUDA;
a bf16 head would give logits with 8 significant bits, so instances that differ only a
little tie exactly and per-class AP (which ranks the scores) moves. Every head here casts
its input to float32 and switches autocast off for its own computation; the backbone
before it keeps running under autocast.

``DecoderHead`` follows ML-Decoder (Ridnik et al., 2023): the spatial feature map is
projected to tokens, a set of query embeddings attends to them through cross-attention
only (no self-attention among the queries), a feed-forward block follows, and "group
fully-connected" maps each query to ceil(K / G) logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DecoderHead", "Float32Head", "Float32Linear", "decoder_options"]

# --- ML-Decoder's defaults -------------------------------------------------------------
DECODER_EMBED = 768  # token / query embedding width D
DECODER_LAYERS = 1  # decoder layers (cross-attention + feed-forward each)
DECODER_HEADS = 8  # attention heads
DECODER_FF = 2048  # feed-forward hidden width (2048 / 768 = 8 / 3 of D)
DECODER_DROPOUT = 0.1  # dropout on attention weights, residual branches and the FF hidden
DECODER_MAX_GROUPS = 100  # G = min(K, 100) queries; each gives ceil(K / G) logits


class Float32Head:
    """Marker for heads that compute in float32 whatever autocast says.

    :func:`bmxlib.models.inference_copy` traces models with these modules kept as leaves,
    so the autocast switch in their ``forward`` survives the tracing.
    """


def _float32(x: torch.Tensor):
    """(``x`` as float32, a context with autocast off on ``x``'s device)."""
    return x.float(), torch.autocast(device_type=x.device.type, enabled=False)


class Float32Linear(nn.Linear, Float32Head):
    """``nn.Linear`` (same parameters, same state-dict keys) computed in float32.

    Parameters / shapes as ``nn.Linear``: input (..., in_features) of any float dtype,
    output (..., out_features) float32.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, no_autocast = _float32(x)
        with no_autocast:
            return F.linear(x, self.weight.float(),
                            None if self.bias is None else self.bias.float())


class _CrossAttentionLayer(nn.Module):
    """One ML-Decoder layer: queries attend to tokens, then a feed-forward block.

    Post-norm residual blocks as in ML-Decoder's layer (and ``nn.TransformerDecoderLayer``
    with its default ``norm_first=False``), with the query self-attention removed: only
    the layer norm that followed it is kept, applied to the incoming queries.
    """

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm_query = nn.LayerNorm(dim)  # where the removed self-attention block was
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.drop_attention = nn.Dropout(dropout)
        self.norm_attention = nn.LayerNorm(dim)
        self.ff_in = nn.Linear(dim, ff_dim)
        self.drop_ff = nn.Dropout(dropout)
        self.ff_out = nn.Linear(ff_dim, dim)
        self.drop_ff_out = nn.Dropout(dropout)
        self.norm_ff = nn.LayerNorm(dim)

    def forward(self, queries: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, G, D) queries, (B, T, D) tokens → (B, G, D) updated queries."""
        q = self.norm_query(queries)
        attended = self.attention(q, tokens, tokens, need_weights=False)[0]
        q = self.norm_attention(q + self.drop_attention(attended))
        hidden = self.ff_out(self.drop_ff(F.relu(self.ff_in(q))))
        return self.norm_ff(q + self.drop_ff_out(hidden))


class DecoderHead(nn.Module, Float32Head):
    """ML-Decoder-style head: (B, C, H, W) feature maps → (B, K) float32 logits.

    The H·W positions become tokens through a linear map C → D and a ReLU (no positional
    encoding, as in ML-Decoder); G = min(K, ``max_groups``) query embeddings cross-attend
    to them in ``layers`` decoder layers; query g then gives logits g·k … g·k + k − 1
    through its own linear map D → k, k = ceil(K / G) (group fully-connected; the last
    G·k − K outputs are dropped), plus one bias per class. With K ≤ ``max_groups`` there
    is one query per class and k = 1.

    Parameters
    ----------
    in_channels : int
        C, the channels of the backbone's last feature map.
    num_classes : int
        K.
    embed_dim, heads, layers, ff_dim, dropout, max_groups : int / float
        D, attention heads (must divide D), decoder layers, feed-forward hidden width,
        dropout rate, most queries G. Defaults: ML-Decoder's (module constants above).
    learn_queries : bool
        True (default): the queries are trained. ML-Decoder's public code freezes its
        randomly initialised queries (the layers around them learn); False does that.
    """

    def __init__(self, in_channels: int, num_classes: int, *, embed_dim: int = DECODER_EMBED,
                 heads: int = DECODER_HEADS, layers: int = DECODER_LAYERS,
                 ff_dim: int = DECODER_FF, dropout: float = DECODER_DROPOUT,
                 max_groups: int = DECODER_MAX_GROUPS, learn_queries: bool = True) -> None:
        super().__init__()
        if embed_dim % heads:
            raise ValueError(f"decoder heads ({heads}) must divide the embedding ({embed_dim})")
        groups = min(num_classes, max_groups)
        self.num_classes = num_classes
        self.per_group = math.ceil(num_classes / groups)  # k logits per query
        self.embed = nn.Linear(in_channels, embed_dim)  # feature channels → token width
        # (G, D); N(0, 1) like an nn.Embedding table
        self.queries = nn.Parameter(torch.randn(groups, embed_dim),
                                    requires_grad=learn_queries)
        self.layers = nn.ModuleList(
            _CrossAttentionLayer(embed_dim, heads, ff_dim, dropout) for _ in range(layers))
        # (G, D, k): query g's own D → k map, Glorot-normal per group; bias per class (K,)
        std = math.sqrt(2.0 / (embed_dim + self.per_group))
        self.group_weight = nn.Parameter(torch.randn(groups, embed_dim, self.per_group) * std)
        self.group_bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) feature map (any float dtype) → (B, K) float32 logits."""
        features, no_autocast = _float32(features)
        with no_autocast:
            tokens = F.relu(self.embed(features.flatten(2).transpose(1, 2)))  # (B, H·W, D)
            q = self.queries.unsqueeze(0).expand(features.shape[0], -1, -1)  # (B, G, D)
            for layer in self.layers:
                q = layer(q, tokens)
            logits = torch.einsum("bgd,gdk->bgk", q, self.group_weight).flatten(1)
            return logits[:, : self.num_classes] + self.group_bias


def decoder_options(in_channels: int, *, small: bool) -> dict[str, int]:
    """DecoderHead sizes for a backbone with ``in_channels`` output channels.

    ResNets (``small=False``) get ML-Decoder's defaults. The small digits CNN (8·width
    channels) gets the embedding D = min(768, C) — at width 16 the head then costs about
    what the backbone does, instead of ~10× — the feed-forward width 8 / 3 of D as in
    ML-Decoder (rounded to a multiple of 8) and the most heads ≤ 8 that divide D.
    """
    if not small:
        return {}
    dim = min(DECODER_EMBED, in_channels)
    heads = max(h for h in range(1, DECODER_HEADS + 1) if dim % h == 0)
    ff = max(8, round(dim * DECODER_FF / DECODER_EMBED / 8) * 8)
    return {"embed_dim": dim, "heads": heads, "ff_dim": ff}
