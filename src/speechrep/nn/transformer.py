"""The wav2vec 2.0 family's transformer encoder.

Blocks receive their sub-modules; :class:`PostLNLayer` (wav2vec 2.0 / HuBERT Base) and
:class:`PreLNLayer` (``layer_norm_first``: Large models, XLS-R) are separate blocks. Attention is
``scaled_dot_product_attention`` with an exact key padding mask; an optional additive bias
(WavLM's relative positions, see ``relative_attention.py``) is computed once per forward.

Positional information comes from a grouped convolution over time: one weight-normed conv
(wav2vec 2.0, HuBERT, WavLM) or a stack of plain convs with a parameter-free LayerNorm
(data2vec, ``pos_conv_depth > 1``). Padded frames are zeroed before every positional conv, so
each utterance sees the zeros it would see alone.

Dropout and LayerDrop act only in training mode (they are functional calls, not modules).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Hidden elements per piece of a feed-forward block run without gradients (16 MB in float32).
FFN_CHUNK_ELEMENTS = 1 << 22


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,  # erf form (fairseq computes it in float32)
    "gelu_accurate": _gelu_tanh,  # fairseq's tanh approximation; HF: gelu_new
    "gelu_fast": _gelu_tanh,
    "relu": F.relu,
    "tanh": torch.tanh,
    "swish": F.silu,
    "linear": lambda x: x,
}


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def valid_mask(lengths: torch.Tensor, max_len: int, device: torch.device) -> torch.Tensor:
    """(B,) frame counts -> (B, T) bool, True on valid frames."""
    return torch.arange(max_len, device=device)[None, :] < lengths.to(device)[:, None]


class SelfAttention(nn.Module):
    """Multi-head self-attention; state-dict keys ``{q,k,v,out}_proj.{weight,bias}``."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} is not a multiple of num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def forward(
        self,
        x: torch.Tensor,
        valid: torch.Tensor | None = None,
        attn_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, T, D); valid (B, T) bool keys that may be attended (None: all);
        attn_bias (B or 1, H, T, T) added to the scaled scores (None: none) -> (B, T, D)."""
        b, t, d = x.shape
        shape = (b, t, self.num_heads, self.head_dim)
        q, k, v = (  # (B, T, D) -> (B, H, T, Dh)
            proj(x).view(shape).transpose(1, 2) for proj in (self.q_proj, self.k_proj, self.v_proj)
        )
        mask = None if valid is None else valid[:, None, None, :]  # (B, 1, 1, T)
        if attn_bias is not None:
            bias = attn_bias.to(q.dtype)
            mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, T, Dh)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    """fc1 -> activation -> (dropout) -> fc2; keys ``fc1``, ``fc2``."""

    def __init__(
        self, embed_dim: int, ffn_dim: int, activation_fn: str = "gelu", dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, embed_dim)
        self.activation = activation(activation_fn)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D).

        Without gradients, rows go through in pieces of at most ``FFN_CHUNK_ELEMENTS`` hidden
        elements: the (B, T, ffn_dim) intermediate is never materialised whole.
        """
        rows = max(1, FFN_CHUNK_ELEMENTS // self.fc1.out_features)
        if torch.is_grad_enabled() or x.numel() // x.shape[-1] <= rows:
            return self._rows(x)
        flat = x.reshape(-1, x.shape[-1])
        out = flat.new_empty(flat.shape[0], self.fc2.out_features)
        for i in range(0, flat.shape[0], rows):
            out[i : i + rows] = self._rows(flat[i : i + rows])
        return out.view(*x.shape[:-1], -1)

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        h = F.dropout(self.activation(self.fc1(x)), self.dropout, self.training)
        return self.fc2(h)


class PostLNLayer(nn.Module):
    """x -> LN(x + attn(x)) -> LN(x + ffn(x)) (wav2vec 2.0 Base, HuBERT Base).

    Keys: ``attention.*``, ``attention_norm.*``, ``feed_forward.*``, ``final_norm.*``.
    """

    def __init__(
        self,
        attention: nn.Module,
        feed_forward: FeedForward,
        embed_dim: int,
        dropout: float = 0.0,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.attention = attention
        self.attention_norm = nn.LayerNorm(embed_dim, eps=eps)  # fairseq: self_attn_layer_norm
        self.feed_forward = feed_forward
        self.final_norm = nn.LayerNorm(embed_dim, eps=eps)  # fairseq: final_layer_norm
        self.dropout = dropout

    def residual(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return x + F.dropout(branch, self.dropout, self.training)

    def forward(
        self,
        x: torch.Tensor,
        valid: torch.Tensor | None = None,
        attn_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T, D) -> (B, T, D); ``valid``/``attn_bias`` as :meth:`SelfAttention.forward`."""
        x = self.attention_norm(self.residual(x, self.attention(x, valid, attn_bias)))
        return self.final_norm(self.residual(x, self.feed_forward(x)))


class PreLNLayer(PostLNLayer):
    """x -> x + attn(LN(x)) -> x + ffn(LN(x)) (fairseq ``layer_norm_first``); same keys."""

    def forward(
        self,
        x: torch.Tensor,
        valid: torch.Tensor | None = None,
        attn_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        x = self.residual(x, self.attention(self.attention_norm(x), valid, attn_bias))
        return self.residual(x, self.feed_forward(self.final_norm(x)))


def _trim_even(y: torch.Tensor, kernel: int) -> torch.Tensor:
    # padding k//2 on both sides gives one extra frame for an even kernel (fairseq's SamePad)
    return y[..., :-1] if kernel % 2 == 0 else y


def _zero_padded(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    return x if valid is None else x.masked_fill(~valid[..., None], 0.0)


class ConvPositionalEmbedding(nn.Module):
    """Weight-normed grouped Conv1d over time -> GELU (wav2vec 2.0's ``pos_conv``).

    ``weight_g`` (1, 1, K) and ``weight_v`` (D, D/groups, K) are stored as plain tensors; the
    weight ``g * v / ||v||`` (norm over all dims but the kernel dim, fairseq's ``dim=2``) is
    computed in forward.
    """

    def __init__(self, embed_dim: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        if embed_dim % groups != 0:
            raise ValueError(f"embed_dim {embed_dim} is not a multiple of pos conv groups {groups}")
        self.kernel_size = kernel_size
        self.groups = groups
        std = math.sqrt(4.0 / (kernel_size * embed_dim))
        self.weight_v = nn.Parameter(torch.randn(embed_dim, embed_dim // groups, kernel_size) * std)
        self.weight_g = nn.Parameter(self.weight_v.detach().norm(dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(embed_dim))

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, D), valid (B, T) bool or None -> positional term (B, T, D)."""
        weight = self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))
        x = _zero_padded(x, valid).transpose(1, 2)  # (B, T, D) -> (B, D, T)
        y = F.conv1d(
            x,
            weight.to(x.dtype),
            self.bias.to(x.dtype),
            padding=self.kernel_size // 2,
            groups=self.groups,
        )
        return F.gelu(_trim_even(y, self.kernel_size)).transpose(1, 2)


class StackedConvPositionalEmbedding(nn.Module):
    """data2vec's positional conv: ``depth`` x [Conv1d -> trim -> LayerNorm (no affine) -> GELU].

    Kernel ``max(3, conv_pos // depth)``; keys ``layers.{i}.weight/bias``.
    """

    def __init__(
        self, embed_dim: int, conv_pos: int, groups: int, depth: int, eps: float = 1e-5
    ) -> None:
        super().__init__()
        kernel = max(3, conv_pos // depth)
        self.eps = eps
        self.layers = nn.ModuleList(
            nn.Conv1d(embed_dim, embed_dim, kernel, padding=kernel // 2, groups=groups)
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, D), valid (B, T) bool or None -> positional term (B, T, D)."""
        for conv in self.layers:
            # every conv must see zeros past the end, as in a single run
            y = conv(_zero_padded(x, valid).transpose(1, 2))  # (B, D, T)
            y = _trim_even(y, conv.kernel_size[0]).transpose(1, 2)  # (B, T, D)
            x = F.gelu(F.layer_norm(y, y.shape[-1:], eps=self.eps))
        return x


@dataclass(frozen=True)
class EncoderSpec:
    """Sizes and regularisation of a wav2vec 2.0-style encoder (filled from a family's config)."""

    embed_dim: int = 768
    ffn_dim: int = 3072
    num_layers: int = 12
    num_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    pos_conv_depth: int = 1
    eps: float = 1e-5
    dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    layerdrop: float = 0.0


class TransformerEncoder(nn.Module):
    """features (B, T, D) -> every layer's input and the encoder output.

    ``layer_norm_first`` False (post-LN): ``layer_norm`` right after the positional conv; True
    (pre-LN): the same LayerNorm on the last layer's output instead. ``position_bias`` (or None)
    maps T to an attention bias (1, H, T, T) computed once and handed to every layer.
    Keys: ``pos_conv.*``, ``layers.{i}.*``, ``layer_norm.*`` (+ ``relative_position_bias.*``).
    """

    def __init__(
        self,
        pos_conv: nn.Module,
        layers: Sequence[nn.Module],
        layer_norm: nn.LayerNorm,
        layer_norm_first: bool = False,
        position_bias: nn.Module | None = None,
        *,
        dropout: float = 0.0,
        layerdrop: float = 0.0,
    ) -> None:
        super().__init__()
        self.pos_conv = pos_conv
        self.layers = nn.ModuleList(layers)
        self.layer_norm = layer_norm
        self.layer_norm_first = layer_norm_first
        self.relative_position_bias = position_bias
        self.dropout = dropout
        self.layerdrop = layerdrop

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x (B, T, D), lengths (B,) valid frames ->
        (states: L+1 tensors (B, T, D) = input of layer 0, output of each layer; output (B, T, D)).

        ``output`` is the last state, through ``layer_norm`` when ``layer_norm_first``.
        Frames past ``lengths`` hold arbitrary (finite) values.
        """
        t = x.shape[1]
        valid = (
            valid_mask(lengths, t, x.device) if int(lengths.min()) < t else None
        )  # None: no padding
        x = x + self.pos_conv(x, valid)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = F.dropout(x, self.dropout, self.training)
        bias = None if self.relative_position_bias is None else self.relative_position_bias(t)
        states = [x]
        for layer in self.layers:
            if not (
                self.training and self.layerdrop > 0 and float(torch.rand(())) < self.layerdrop
            ):
                x = layer(x, valid, bias)
            states.append(x)
        return states, (self.layer_norm(x) if self.layer_norm_first else x)


def build_encoder(
    spec: EncoderSpec,
    make_attention: Callable[[], nn.Module] | None = None,
    position_bias: nn.Module | None = None,
) -> TransformerEncoder:
    """Wire an encoder from ``spec``: positional conv (weight-normed, or stacked when
    ``pos_conv_depth > 1``), post-LN or pre-LN layers, final LayerNorm.

    ``make_attention`` returns each layer's attention block (default :class:`SelfAttention`).

    Example:
        >>> enc = build_encoder(EncoderSpec(embed_dim=16, ffn_dim=32, num_layers=2, num_heads=2,
        ...                                 pos_conv_kernel=4, pos_conv_groups=2))
        >>> states, out = enc(torch.zeros(1, 5, 16), torch.tensor([5]))
        >>> len(states), out.shape
        (3, torch.Size([1, 5, 16]))
    """
    if spec.pos_conv_depth > 1:
        pos_conv: nn.Module = StackedConvPositionalEmbedding(
            spec.embed_dim, spec.pos_conv_kernel, spec.pos_conv_groups, spec.pos_conv_depth
        )
    else:
        pos_conv = ConvPositionalEmbedding(
            spec.embed_dim, spec.pos_conv_kernel, spec.pos_conv_groups
        )
    if make_attention is None:

        def make_attention() -> nn.Module:
            return SelfAttention(spec.embed_dim, spec.num_heads, spec.attention_dropout)

    layer_class = PreLNLayer if spec.layer_norm_first else PostLNLayer
    layers = [
        layer_class(
            make_attention(),
            FeedForward(spec.embed_dim, spec.ffn_dim, spec.activation_fn, spec.activation_dropout),
            spec.embed_dim,
            spec.dropout,
            spec.eps,
        )
        for _ in range(spec.num_layers)
    ]
    return TransformerEncoder(
        pos_conv,
        layers,
        nn.LayerNorm(spec.embed_dim, eps=spec.eps),
        spec.layer_norm_first,
        position_bias,
        dropout=spec.dropout,
        layerdrop=spec.layerdrop,
    )
