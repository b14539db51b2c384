"""WavLM's relative position bias and gated relative position attention.

:class:`RelativePositionBias` turns the distance ``key - query`` into one of ``num_buckets``
buckets (half per direction; exact up to a quarter of them, then log-spaced up to
``max_distance``) and looks up one bias per head. WavLM stores the table in layer 0 only and
hands the bias it computes to every later layer; here the encoder computes it once per forward
(``TransformerEncoder(position_bias=...)``) and gives it to each layer.

:class:`GatedRelativeAttention` (WavLM ``gru_rel_pos``) scales that bias per query frame and
head by a gate computed from the layer's attention input, then attends like
:class:`~speechrep.nn.transformer.SelfAttention`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from speechrep.nn.transformer import SelfAttention


def relative_position_buckets(
    length: int, num_buckets: int, max_distance: int, device: torch.device | None = None
) -> torch.Tensor:
    """(T, T) int64 bucket of ``key - query`` for every (query, key) pair (bidirectional).

    The float32 log arithmetic follows WavLM step by step, so bucket borders match it.
    """
    position = torch.arange(length, dtype=torch.long, device=device)
    relative = position[None, :] - position[:, None]  # (T, T): key - query
    half = num_buckets // 2
    buckets = (relative > 0).long() * half
    distance = relative.abs()
    max_exact = half // 2
    scaled = (
        torch.log(distance.float() / max_exact)
        / math.log(max_distance / max_exact)
        * (half - max_exact)
    )
    large = (max_exact + scaled.to(torch.long)).clamp(max=half - 1)
    return buckets + torch.where(distance < max_exact, distance, large)


class RelativePositionBias(nn.Module):
    """T -> bias (1, H, T, T) from a (num_buckets, H) table; key ``embedding.weight``."""

    def __init__(self, num_buckets: int, max_distance: int, num_heads: int) -> None:
        super().__init__()
        if num_buckets < 4 or max_distance <= num_buckets // 4:
            raise ValueError(
                f"relative position: need num_buckets >= 4 and max_distance > num_buckets // 4, "
                f"found {num_buckets}, {max_distance}"
            )
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.embedding = nn.Embedding(num_buckets, num_heads)  # WavLM: relative_attention_bias

    def forward(self, length: int) -> torch.Tensor:
        """length T -> (1, H, T, T) float."""
        device = self.embedding.weight.device
        buckets = relative_position_buckets(length, self.num_buckets, self.max_distance, device)
        return self.embedding(buckets).permute(2, 0, 1)[None]  # (T, T, H) -> (1, H, T, T)


class GatedRelativeAttention(SelfAttention):
    """Self-attention whose position bias is gated per query frame and head (WavLM ``gru_rel_pos``).

    gate = a * (b * const - 1) + 2 with (a, b) = sigmoid of a per-head linear map of the input
    (8 outputs summed in two groups of 4). Keys: those of SelfAttention, ``gate_proj.*``
    (WavLM ``grep_linear``; HF ``gru_rel_pos_linear``) and ``gate_const`` (1, H, 1, 1)
    (WavLM ``grep_a``; HF ``gru_rel_pos_const``).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__(embed_dim, num_heads, dropout)
        self.gate_proj = nn.Linear(self.head_dim, 8)
        self.gate_const = nn.Parameter(torch.ones(1, num_heads, 1, 1))

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) -> gate (B, H, T, 1)."""
        b, t, _ = x.shape
        heads = x.view(b, t, self.num_heads, self.head_dim).transpose(
            1, 2
        )  # (B, T, D) -> (B, H, T, Dh)
        logits = self.gate_proj(heads).view(b, self.num_heads, t, 2, 4).sum(-1)  # (B, H, T, 2)
        gate_a, gate_b = torch.sigmoid(logits).chunk(2, dim=-1)  # (B, H, T, 1) each
        return gate_a * (gate_b * self.gate_const - 1.0) + 2.0

    def forward(
        self,
        x: torch.Tensor,
        valid: torch.Tensor | None = None,
        attn_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, T, D); valid (B, T) bool or None; attn_bias (1, H, T, T), required -> (B, T, D)."""
        assert attn_bias is not None, "gated relative attention needs the position bias"
        return super().forward(x, valid, self.gate(x) * attn_bias)  # (B, H, T, 1) * (1, H, T, T)
