"""BERT-style acoustic transformer (Mockingjay, TERA, Audio ALBERT).

Frames (B, T, F) -> Linear(F -> D) + fixed sinusoidal positions -> LayerNorm -> L layers.
Layers are post-LN (BERT) or pre-LN; an ALBERT encoder runs one layer module L times.
Attention masks padded keys exactly from ``lengths`` (never from zero-valued frames); a batch
without padding passes no mask, so ``scaled_dot_product_attention`` may pick a fused kernel.

Training memory (``BertEncoder.activation_checkpointing``, set from the training loop's
``train.activation_checkpointing``): ``attention`` runs attention with dropout (which has no
fused CPU kernel) in query chunks recomputed in backward, so no (B, H, T, T) tensor outlives its
chunk; ``layers`` also keeps only each layer's input and recomputes the rest. Neither changes the
maths (dropout masks are replayed from the saved random state); both are off in eval and
without gradients.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

# Elements (B x H x query rows x keys) of one attention chunk recomputed in backward (256 MB fp32).
ATTENTION_CHUNK_ELEMENTS = 2**26
CHECKPOINTING_MODES = ("none", "attention", "layers")

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,  # erf form, as BERT's original
    "relu": F.relu,
    "swish": F.silu,
}


def sinusoid_table(length: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Fixed position table (length, dim): pos / 10000^(2*(i//2)/dim), sin on even i, cos on odd.

    Computed in float64 then cast to float32, like a numpy-built table.
    """
    pos = torch.arange(length, dtype=torch.float64, device=device)[:, None]
    idx = torch.arange(dim, device=device)
    angle = pos / torch.pow(10000.0, (2 * (idx // 2)).to(torch.float64) / dim)
    table = torch.where(idx % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.float()


def key_padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor | None:
    """(B,) lengths -> (B, 1, 1, T) bool, True where a key may be attended; None if all are.

    An empty row still attends to its first frame, so it gives numbers, not NaN.
    """
    if bool((lengths >= max_len).all()):
        return None  # no padding: let SDPA pick a fused kernel
    valid = torch.arange(max_len, device=lengths.device)[None, :] < lengths.clamp(min=1)[:, None]
    return valid[:, None, None, :]


class AcousticInput(nn.Module):
    """Input representation: projection + sinusoidal position -> LayerNorm -> dropout."""

    def __init__(
        self, input_dim: int, hidden_size: int, layer_norm_eps: float, dropout: float
    ) -> None:
        super().__init__()
        self.projection = nn.Linear(input_dim, hidden_size)  # s3prl: spec_transform
        self.layer_norm = nn.LayerNorm(
            hidden_size, eps=layer_norm_eps
        )  # eps inside the sqrt, as TF
        self.dropout = Dropout(dropout)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, T, D); positions count from 0 on every row."""
        x = self.projection(feats)
        x = x + sinusoid_table(x.shape[1], x.shape[2], x.device).to(x.dtype)
        return self.dropout(self.layer_norm(x))


class SelfAttention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention``."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        if hidden_size % num_heads != 0:
            raise ValueError(
                f"hidden_size {hidden_size} is not a multiple of num_heads {num_heads}"
            )
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size)  # s3prl: attention.output.dense
        self.recompute = False  # chunked attention recomputed in backward (set by the encoder)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, D), mask (B, 1, 1, T) bool or None (no padding) -> (B, T, D)."""
        b, t, d = x.shape
        q, k, v = [
            proj(x).view(b, t, self.num_heads, d // self.num_heads).transpose(1, 2)
            for proj in (self.query, self.key, self.value)
        ]  # 3 x (B, H, T, Dh)
        p = self.dropout if self.training else 0.0
        if self.recompute and torch.is_grad_enabled():
            ctx = chunked_attention(q, k, v, mask, p)
        else:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.out(ctx.transpose(1, 2).reshape(b, t, d))  # (B, H, T, Dh) -> (B, T, D)


def _attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    p: float,
    drop: torch.Tensor | None = None,
) -> torch.Tensor:
    """SDPA; with dropout, written out (SDPA's CPU path for dropout has no fused kernel and
    draws a float mask) with a bool mask: (B, H, t, Dh) x (B, H, T, Dh) -> (B, H, t, Dh).

    ``drop`` (B, H, t, T) bool, True where a probability is dropped, is drawn here when None.
    """
    if p == 0.0:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (B, H, t, T)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # every row keeps >= 1 key
    if drop is None:
        drop, keep = draw_drop_mask(scores.shape, p, scores.device)
    else:
        keep = kept_fraction(p, scores.device)
    probs = scores.softmax(-1).masked_fill(drop, 0.0)
    return (probs @ v) * (1.0 / keep)


_LEVELS = 1 << 15  # drop-mask resolution on the CPU: probabilities are multiples of 2^-15


def _lane_masks(device: torch.device) -> bool:
    """Whether :func:`draw_drop_mask` uses 16-bit lanes here (little-endian CPUs)."""
    return device.type == "cpu" and sys.byteorder == "little"


def kept_fraction(p: float, device: torch.device) -> float:
    """The exact keep probability that :func:`draw_drop_mask` uses for dropout ``p``."""
    if not _lane_masks(device):
        return 1.0 - p
    return round((1.0 - p) * _LEVELS) / _LEVELS


def draw_drop_mask(shape: torch.Size, p: float, device: torch.device) -> tuple[torch.Tensor, float]:
    """A bool dropout mask (True = dropped) and the keep probability to rescale by.

    On the CPU ``bernoulli_`` draws one random number per element (the slowest op of a
    training step with attention dropout); here each 32-bit draw (31 random bits from
    ``random_``) gives two 16-bit lanes, compared with thresholds that give both lanes the
    same keep probability ``round((1 - p) * 2^15) / 2^15`` (p = 0.1: 0.899994). Elsewhere,
    ``bernoulli_`` with exactly ``1 - p``.
    """
    keep = kept_fraction(p, device)
    if not _lane_masks(device):
        kept = torch.empty(shape, dtype=torch.bool, device=device).bernoulli_(keep)
        return ~kept, keep
    levels = round(keep * _LEVELS)
    *lead, last = shape
    bits = torch.empty(*lead, (last + 1) // 2, dtype=torch.int32, device=device).random_()
    lanes = bits.view(torch.int16).view(*lead, -1, 2)  # (low 16 bits, high 15 bits)
    # low lane uniform on [-2^15, 2^15), high lane on [0, 2^15): keep below these thresholds
    limits = torch.tensor([2 * levels - _LEVELS, levels], dtype=torch.int16, device=device)
    return (lanes >= limits).view(*lead, -1)[..., :last], keep


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU masks come from :func:`draw_drop_mask` (same keys: none)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return super().forward(x)
        drop, keep = draw_drop_mask(x.shape, self.p, x.device)
        return x.masked_fill(drop, 0.0) * (1.0 / keep)


def chunked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, p: float
) -> torch.Tensor:
    """SDPA over query chunks, each recomputed in backward: q, k, v (B, H, T, Dh) -> (B, H, T, Dh).

    Backward keeps q, k, v and the bool dropout masks (drawn once, reused by the recompute);
    the (chunk, T) scores and probabilities of one chunk exist at a time. Equal to one SDPA
    call (dropout masks differ in draw order only).
    """
    b, h, t, _ = q.shape
    keys = k.shape[2]
    rows = max(1, ATTENTION_CHUNK_ELEMENTS // max(1, b * h * keys))
    if p == 0.0:  # fused kernels store no (T, T) tensor: nothing to save
        return _attend(q, k, v, mask, p)
    pieces = []
    for i in range(0, t, rows):
        query = q[:, :, i : i + rows]
        drop, _ = draw_drop_mask((b, h, query.shape[2], keys), p, q.device)
        pieces.append(checkpoint(_attend, query, k, v, mask, p, drop, use_reentrant=False))
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)


class FeedForward(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, activation: str) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, found {activation!r}"
            )
        self.intermediate = nn.Linear(hidden_size, intermediate_size)
        self.output = nn.Linear(intermediate_size, hidden_size)
        self.activation = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.activation(self.intermediate(x)))


class PostLNLayer(nn.Module):
    """BERT layer: x = LN(x + drop(attn(x))); x = LN(x + drop(ffn(x)))."""

    def __init__(
        self,
        attention: SelfAttention,
        feed_forward: FeedForward,
        attention_norm: nn.LayerNorm,
        feed_forward_norm: nn.LayerNorm,
        dropout: float,
    ) -> None:
        super().__init__()
        self.attention = attention
        self.attention_norm = attention_norm
        self.feed_forward = feed_forward
        self.feed_forward_norm = feed_forward_norm
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attention_norm(x + self.dropout(self.attention(x, mask)))
        return self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))


class PreLNLayer(PostLNLayer):
    """Pre-LN layer: x = x + drop(attn(LN(x))); x = x + drop(ffn(LN(x)))."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.attention_norm(x), mask))
        return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))


class BertEncoder(nn.Module):
    """Input representation + L layers; returns all L + 1 hidden states.

    Args:
        input_layer: the :class:`AcousticInput`.
        layers: L layer modules, or ONE module that is run L times (ALBERT; ``num_layers`` = L).
        num_layers: L.
        state_norms: pre-LN only: L + 1 LayerNorms, one applied to each returned hidden state
            (s3prl: ``encoder.LayerNorm.{i}``); None for post-LN.
    """

    def __init__(
        self,
        input_layer: AcousticInput,
        layers: nn.ModuleList,
        num_layers: int,
        state_norms: nn.ModuleList | None = None,
    ) -> None:
        super().__init__()
        if len(layers) not in (1, num_layers):
            raise ValueError(
                f"expected 1 (shared) or {num_layers} layer modules, found {len(layers)}"
            )
        if state_norms is not None and len(state_norms) != num_layers + 1:
            raise ValueError(f"expected {num_layers + 1} state norms, found {len(state_norms)}")
        self.input = input_layer
        self.layers = layers
        self.num_layers = num_layers
        self.state_norms = state_norms
        self._checkpointing = "none"

    @property
    def shared(self) -> bool:
        return len(self.layers) == 1 and self.num_layers > 1

    @property
    def activation_checkpointing(self) -> str:
        """Training-memory mode: ``none``; ``attention`` (attention with dropout in query chunks,
        recomputed in backward); ``layers`` (that, and every layer recomputed from its input)."""
        return self._checkpointing

    @activation_checkpointing.setter
    def activation_checkpointing(self, mode: str) -> None:
        if mode not in CHECKPOINTING_MODES:
            raise ValueError(
                f"activation_checkpointing must be one of {CHECKPOINTING_MODES}, found {mode!r}"
            )
        self._checkpointing = mode
        for module in self.layers.modules():
            if isinstance(module, SelfAttention):
                module.recompute = mode != "none"

    def _run_layer(
        self, layer: nn.Module, x: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        if self._checkpointing == "layers" and self.training and torch.is_grad_enabled():
            return checkpoint(layer, x, mask, use_reentrant=False)
        return layer(x, mask)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """feats (B, T, F), lengths (B,) frames -> L + 1 tensors (B, T, D), input side first.

        The last element is what a prediction head reads during pre-training.
        """
        mask = key_padding_mask(lengths.to(feats.device), feats.shape[1])
        x = self.input(feats)
        states = [x]
        for i in range(self.num_layers):
            x = self._run_layer(self.layers[0 if len(self.layers) == 1 else i], x, mask)
            states.append(x)
        if self.state_norms is not None:
            states = [norm(s) for norm, s in zip(self.state_norms, states, strict=True)]
        return states


def build_bert_encoder(
    input_dim: int,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    intermediate_size: int,
    *,
    activation: str = "gelu",
    hidden_dropout: float = 0.1,
    attention_dropout: float = 0.1,
    layer_norm_eps: float = 1e-12,
    share_layers: bool = False,
    pre_layer_norm: bool = False,
) -> BertEncoder:
    """Wire a :class:`BertEncoder` from sizes (all linear layers freshly initialised)."""
    layer_cls = PreLNLayer if pre_layer_norm else PostLNLayer

    def make_layer() -> PostLNLayer:
        return layer_cls(
            SelfAttention(hidden_size, num_heads, attention_dropout),
            FeedForward(hidden_size, intermediate_size, activation),
            nn.LayerNorm(hidden_size, eps=layer_norm_eps),
            nn.LayerNorm(hidden_size, eps=layer_norm_eps),
            hidden_dropout,
        )

    layers = nn.ModuleList([make_layer() for _ in range(1 if share_layers else num_layers)])
    norms = None
    if pre_layer_norm:
        norms = nn.ModuleList(
            nn.LayerNorm(hidden_size, eps=layer_norm_eps) for _ in range(num_layers + 1)
        )
    embed = AcousticInput(input_dim, hidden_size, layer_norm_eps, hidden_dropout)
    return BertEncoder(embed, layers, num_layers, norms)


def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT init: linear weights N(0, std), biases 0, LayerNorm 1/0 (use with ``apply``)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def chunk_spans(length: int, max_frames: int) -> list[tuple[int, int]]:
    """(start, size) pieces of a sequence, as ``torch.chunk(x, ceil(length / max_frames))`` cuts.

    ``max_frames`` <= 0 or ``length`` <= ``max_frames`` gives one piece.
    """
    if max_frames <= 0 or length <= max_frames:
        return [(0, length)]
    size = math.ceil(length / math.ceil(length / max_frames))
    return [(start, min(size, length - start)) for start in range(0, length, size)]
