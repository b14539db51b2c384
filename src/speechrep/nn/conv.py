"""wav2vec 2.0's convolutional feature extractor: waveform (B, S) -> features (B, C, T).

Each layer is Conv1d (no padding) -> optional norm -> GELU. Two norm placements exist:

- ``group_norm`` (fairseq ``extractor_mode="default"``; HF ``feat_extract_norm="group"``): a
  GroupNorm with one group per channel after the FIRST conv only. Its statistics run over
  time, so they are taken over each utterance's valid frames only (:class:`MaskedGroupNorm`):
  a padded batch then gives what each utterance gives alone.
- ``layer_norm`` (HF ``"layer"``): a LayerNorm over channels after EVERY conv (per frame).

Lengths are exact: ``floor((n - kernel) / stride) + 1`` per layer.

Without gradients (extraction, a frozen teacher) the stack runs in time chunks
(:meth:`FeatureExtractor.forward`): output frames ``[j0, j1)`` need only samples
``[j0 * stride, (j1 - 1) * stride + receptive_field)``, so each chunk goes through every layer
while its activations are a few MB, instead of materialising (B, 512, S / 5) tensors of up to
GBs. The first-layer GroupNorm statistics come from a first pass over the same chunks. Valid
frames equal the whole-tensor computation (to float rounding); peak memory and page faults drop.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

ConvSpec = tuple[int, int, int]  # (channels, kernel, stride)

# fairseq's default conv_feature_layers: 512 channels, total stride 320, receptive field 400.
BASE_CONV_LAYERS: tuple[ConvSpec, ...] = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2
EXTRACTOR_MODES = ("group_norm", "layer_norm")
_MAX_CONV_LAYERS = 64
# First-layer output elements per chunk in chunked inference (16 MB in float32).
CHUNK_ELEMENTS = 1 << 22


def parse_conv_layers(spec: str) -> tuple[ConvSpec, ...]:
    """fairseq's layer string, e.g. ``"[(512,10,5)] + [(512,3,2)] * 4"``, read without ``eval``.

    Only list/tuple literals of ints, ``+`` and ``*`` are accepted.

    Example:
        >>> parse_conv_layers("[(32, 10, 5)] + [(32, 3, 2)] * 2")
        ((32, 10, 5), (32, 3, 2), (32, 3, 2))
    """
    try:
        value = _literal(ast.parse(spec.strip(), mode="eval").body)
    except (SyntaxError, ValueError, TypeError) as err:
        raise ValueError(
            f"conv layer spec {spec!r}: not a list of (dim, kernel, stride) ({err})"
        ) from None
    return check_conv_layers(value, where=f"conv layer spec {spec!r}")


def check_conv_layers(
    layers: Sequence[Sequence[int]], where: str = "conv_layers"
) -> tuple[ConvSpec, ...]:
    """Validate ``[(dim, kernel, stride), ...]`` (positive ints) and return it as tuples."""
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError(f"{where}: expected a non-empty list of (dim, kernel, stride)")
    out = []
    for layer in layers:
        if (
            not isinstance(layer, (list, tuple))
            or len(layer) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in layer)
        ):
            raise ValueError(
                f"{where}: each layer must be (dim, kernel, stride), positive ints; found {layer!r}"
            )
        out.append((layer[0], layer[1], layer[2]))
    return tuple(out)


def _literal(node: ast.AST) -> object:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
    ):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = _literal(node.left), _literal(node.right)
        if isinstance(node.op, ast.Mult):
            count = right if isinstance(right, int) else left
            if isinstance(count, int) and count > _MAX_CONV_LAYERS:
                raise ValueError(f"repeat count {count} is too large")
            return left * right  # type: ignore[operator]
        return left + right  # type: ignore[operator]
    raise ValueError(f"unsupported element {ast.dump(node)}")


def conv_output_lengths(lengths: torch.Tensor, layers: Sequence[ConvSpec]) -> torch.Tensor:
    """Valid frames out of the conv stack: ``floor((n - kernel) / stride) + 1`` per layer, >= 0."""
    for _, kernel, stride in layers:
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
    return lengths.clamp(min=0)


def receptive_field(layers: Sequence[ConvSpec]) -> int:
    """Fewest samples that give one output frame (400 for wav2vec 2.0)."""
    size = 1
    for _, kernel, stride in reversed(layers):
        size = (size - 1) * stride + kernel
    return size


def total_stride(layers: Sequence[ConvSpec]) -> int:
    """Samples per output frame (320 for wav2vec 2.0)."""
    stride = 1
    for _, _, s in layers:
        stride *= s
    return stride


class MaskedGroupNorm(nn.Module):
    """GroupNorm with one group per channel, statistics over each utterance's valid frames.

    On an unpadded input it is ``nn.GroupNorm(C, C)`` (computed in float32, as fairseq's
    Fp32GroupNorm); frames past ``lengths`` come out as 0.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, C, T), lengths (B,) valid frames -> (B, C, T)."""
        channels, total = x.shape[1], x.shape[2]
        if bool((lengths == total).all()):  # nothing padded: one call, no copy
            return F.group_norm(x.float(), channels, self.weight, self.bias, self.eps).to(x.dtype)
        out = torch.empty_like(x)
        # One call per utterance on its valid frames: the same computation as a single run.
        for b, n in enumerate(lengths.tolist()):
            if n > 0:
                valid = x[b : b + 1, :, :n].float()
                out[b, :, :n] = F.group_norm(valid, channels, self.weight, self.bias, self.eps)[0]
            out[b, :, n:] = 0
        return out


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over channels of a (B, C, T) tensor, in float32 (fairseq's Fp32LayerNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T) -> (B, C, T)."""
        y = F.layer_norm(
            x.transpose(1, 2).float(), self.normalized_shape, self.weight, self.bias, self.eps
        )
        return y.transpose(1, 2).to(x.dtype)


class ConvLayer(nn.Module):
    """Conv1d -> optional per-frame norm (``ChannelLayerNorm``) -> GELU; lengths follow the conv."""

    def __init__(self, conv: nn.Conv1d, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.conv = conv
        self.norm = norm

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C_in, T_in), lengths (B,) -> (B, C_out, T_out), lengths (B,)."""
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        return F.gelu(x), conv_output_lengths(lengths, [self.spec])

    @property
    def spec(self) -> ConvSpec:
        return (self.conv.out_channels, self.conv.kernel_size[0], self.conv.stride[0])


class GroupNormConvLayer(ConvLayer):
    """Conv1d -> :class:`MaskedGroupNorm` over each utterance's valid frames -> GELU."""

    def __init__(self, conv: nn.Conv1d, norm: MaskedGroupNorm) -> None:
        super().__init__(conv, norm)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C_in, T_in), lengths (B,) -> (B, C_out, T_out), lengths (B,)."""
        x = self.conv(x)
        lengths = conv_output_lengths(lengths, [self.spec])
        return F.gelu(self.norm(x, lengths)), lengths


class FeatureExtractor(nn.Module):
    """A stack of conv layers over the raw waveform (see the module doc for chunked inference)."""

    def __init__(self, layers: Sequence[ConvLayer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.chunk_elements = CHUNK_ELEMENTS

    def forward(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """wavs (B, S), wav_lens (B,) samples -> features (B, C, T), lengths (B,) frames.

        Frames past ``lengths`` hold 0 (chunked) or arbitrary finite values (with gradients).
        """
        specs = [layer.spec for layer in self.layers]
        frames = int(conv_output_lengths(torch.tensor([wavs.shape[1]]), specs)[0])
        needs_grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        if needs_grad or frames == 0:
            return self._forward_whole(wavs, wav_lens)
        return self._forward_chunked(wavs, wav_lens, specs, frames)

    def _forward_whole(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = wavs[:, None, :]  # (B, S) -> (B, 1, S)
        lengths = wav_lens
        for layer in self.layers:
            x, lengths = layer(x, lengths)
        return x, lengths

    def _forward_chunked(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor, specs: list[ConvSpec], frames: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        stride, field = total_stride(specs), receptive_field(specs)
        first = self.layers[0]
        batch, (channels, _, stride0) = wavs.shape[0], first.spec
        per_frame = batch * channels * (stride // stride0)  # first-layer elements per out frame
        step = max(1, self.chunk_elements // per_frame)
        x = wavs[:, None, :]
        lengths = conv_output_lengths(wav_lens, specs)
        norm = None
        if isinstance(first, GroupNormConvLayer):
            first_lens = conv_output_lengths(wav_lens, specs[:1]).to(wavs.device)
            norm = _group_norm_affine(first, x, first_lens, step * (stride // stride0))
        out: torch.Tensor | None = None
        for j0 in range(0, frames, step):
            j1 = min(frames, j0 + step)
            h = x[:, :, j0 * stride : (j1 - 1) * stride + field]
            if norm is None:
                h, _ = first(h, wav_lens)  # lengths unused: per-frame norms only
            else:
                scale, shift = norm
                h = first.conv(h)
                h = F.gelu(torch.addcmul(shift, h.float(), scale).to(h.dtype))
            for layer in self.layers[1:]:
                h, _ = layer(h, wav_lens)
            if out is None:
                out = h.new_empty(batch, h.shape[1], frames)
            out[:, :, j0:j1] = h
        assert out is not None
        tail = torch.arange(frames, device=out.device)[None, :] >= lengths.to(out.device)[:, None]
        return out.masked_fill_(tail[:, None, :], 0.0), lengths


def _group_norm_affine(
    layer: GroupNormConvLayer, x: torch.Tensor, lengths: torch.Tensor, step: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-utterance, per-channel GroupNorm of ``layer``'s conv output over its valid frames,
    as (scale, shift) (B, C, 1) float32 tensors: ``norm(y) = y * scale + shift``.

    The conv runs over ``step``-frame chunks; sums are accumulated in float64.
    """
    _, kernel, conv_stride = layer.spec
    total = (x.shape[2] - kernel) // conv_stride + 1
    sums = torch.zeros(x.shape[0], layer.spec[0], 2, dtype=torch.float64, device=x.device)
    for a in range(0, total, step):
        b = min(total, a + step)
        y = layer.conv(x[:, :, a * conv_stride : (b - 1) * conv_stride + kernel]).float()
        keep = (torch.arange(a, b, device=x.device)[None, :] < lengths[:, None])[:, None, :]
        y = y.masked_fill(~keep, 0.0)
        sums[..., 0] += y.sum(-1, dtype=torch.float64)
        sums[..., 1] += y.square().sum(-1, dtype=torch.float64)
    count = lengths.clamp(min=1).to(torch.float64)[:, None]
    mean = sums[..., 0] / count
    var = (sums[..., 1] / count - mean.square()).clamp(min=0.0)
    norm = layer.norm
    scale = norm.weight.double() / torch.sqrt(var + norm.eps)
    shift = norm.bias.double() - mean * scale
    return scale.float()[:, :, None], shift.float()[:, :, None]


def build_feature_extractor(
    layers: Sequence[ConvSpec], mode: str = "group_norm", conv_bias: bool = False
) -> FeatureExtractor:
    """The conv stack for ``layers`` = [(dim, kernel, stride), ...] in ``mode`` (see module doc).

    State-dict keys: ``layers.{i}.conv.weight`` (``.bias`` with conv_bias) and
    ``layers.{i}.norm.weight/bias`` where a norm exists.

    Example:
        >>> fe = build_feature_extractor(BASE_CONV_LAYERS)
        >>> feats, lens = fe(torch.zeros(1, 16000), torch.tensor([16000]))
        >>> feats.shape, lens.tolist()
        (torch.Size([1, 512, 49]), [49])
    """
    if mode not in EXTRACTOR_MODES:
        raise ValueError(f"extractor mode must be one of {EXTRACTOR_MODES}, found {mode!r}")
    blocks: list[ConvLayer] = []
    in_dim = 1
    for i, (dim, kernel, stride) in enumerate(layers):
        conv = nn.Conv1d(in_dim, dim, kernel, stride=stride, bias=conv_bias)
        if mode == "layer_norm":
            blocks.append(ConvLayer(conv, ChannelLayerNorm(dim)))
        elif i == 0:
            blocks.append(GroupNormConvLayer(conv, MaskedGroupNorm(dim)))
        else:
            blocks.append(ConvLayer(conv))
        in_dim = dim
    return FeatureExtractor(blocks)
