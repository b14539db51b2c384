"""DistilHuBERT: a small wav2vec 2.0-style student whose heads predict teacher layers.

waveform -> conv feature extractor -> Linear to the model width (when the conv dim differs) ->
transformer encoder -> prediction heads (Linear(D -> N * H) -> GELU -> one Linear(H -> P)
per head; s3prl's ``expand-last`` output layer + SplitLinear). No waveform normalisation and
no LayerNorm on the conv features.

Hidden states, as s3prl returns them: ``1 + num_layers + num_prediction_heads`` tensors =
[conv features after the projection (frames past each utterance's length are 0), the output
of each encoder layer, each head's prediction]. :meth:`DistilHubertUpstream.forward_student`
returns the same pieces for distillation training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from speechrep.nn.conv import BASE_CONV_LAYERS, build_feature_extractor, total_stride
from speechrep.nn.transformer import EncoderSpec, build_encoder, valid_mask
from speechrep.upstream.base import Upstream
from speechrep.upstream.wav2vec2 import (
    check_conv_and_activation,
    check_long_enough,
    encoder_spec_from,
)


@dataclass(frozen=True)
class DistilHubertConfig:
    """Student architecture (defaults: DistilHuBERT as released, 2 layers, heads for 4/8/12).

    Field comments name s3prl's ``Config["distiller"]`` keys.
    """

    # s3prl: extractor_conv_feature_layers
    conv_layers: tuple[tuple[int, int, int], ...] = BASE_CONV_LAYERS
    extractor_mode: str = "group_norm"  # s3prl: extractor_mode default|layer_norm
    num_layers: int = 2  # s3prl: encoder_layers
    hidden_size: int = 768  # s3prl: encoder_embed_dim
    ffn_size: int = 3072  # s3prl: encoder_ffn_embed_dim
    num_heads: int = 12  # s3prl: encoder_attention_heads
    activation: str = "gelu"  # s3prl: activation_fn
    layer_norm_first: bool = False  # s3prl: layer_norm_first
    pos_conv_kernel: int = 128  # s3prl: conv_pos
    pos_conv_groups: int = 16  # s3prl: conv_pos_groups
    num_prediction_heads: int = 3  # s3prl: n_tasks
    prediction_size: int = 768  # s3prl: final_dim (teacher width)
    head_hidden_size: int | None = None  # s3prl: out_layer_inter_dim (-1/None: hidden_size)
    # s3prl: pred_layer_id (the teacher layer each head predicts; training only)
    teacher_layers: tuple[int, ...] = (4, 8, 12)
    sample_rate: int = 16000
    # training only (off in eval mode)
    dropout: float = 0.1  # s3prl: dropout
    attention_dropout: float = 0.1  # s3prl: attention_dropout
    activation_dropout: float = 0.1  # s3prl: activation_dropout
    layerdrop: float = 0.0  # s3prl: encoder_layerdrop
    feature_grad_mult: float = 0.1  # s3prl: feature_grad_mult (scales the conv stack's gradient)

    def __post_init__(self) -> None:
        check_conv_and_activation(self.conv_layers, self.extractor_mode, self.activation)
        if self.num_layers < 1 or self.num_prediction_heads < 1:
            raise ValueError("num_layers and num_prediction_heads must be >= 1")
        if len(self.teacher_layers) != self.num_prediction_heads:
            raise ValueError(
                f"teacher_layers {list(self.teacher_layers)} must have num_prediction_heads "
                f"({self.num_prediction_heads}) entries"
            )

    def encoder_spec(self) -> EncoderSpec:
        return encoder_spec_from(self)  # one positional conv, LayerNorm eps 1e-5


class PredictionHeads(nn.Module):
    """(B, T, D) -> (B, N, T, P): shared Linear(D -> N * H), GELU, head n's own Linear(H -> P).

    Keys: ``proj.*``, ``weight`` (N, H, P), ``bias`` (1, 1, N, P) (s3prl: output_layer.0 / .2).
    """

    def __init__(
        self, hidden_size: int, head_hidden_size: int, num_heads: int, prediction_size: int
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_hidden_size = head_hidden_size
        self.proj = nn.Linear(hidden_size, head_hidden_size * num_heads)
        bound = 1 / math.sqrt(head_hidden_size)
        self.weight = nn.Parameter(
            torch.empty(num_heads, head_hidden_size, prediction_size).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.zeros(1, 1, num_heads, prediction_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h = F.gelu(self.proj(x)).view(b, t, self.num_heads, self.head_hidden_size)  # (B, T, N, H)
        out = torch.einsum("btnh,nhp->btnp", h, self.weight) + self.bias  # (B, T, N, P)
        return out.permute(0, 2, 1, 3)  # (B, N, T, P)


@dataclass
class StudentOutput:
    """What the student computes.

    Attributes:
        features: (B, T, D) conv features after the projection; frames past ``lengths`` are 0.
        layer_outputs: one (B, T, D) per encoder layer.
        predictions: (B, N, T, P) head n's prediction of teacher layer ``teacher_layers[n]``.
        lengths: (B,) valid frames.
    """

    features: torch.Tensor
    layer_outputs: list[torch.Tensor]
    predictions: torch.Tensor
    lengths: torch.Tensor


class DistilHubertUpstream(Upstream):
    """DistilHuBERT (s3prl ``distilhubert*``, ``distiller_local``); also the pre-training student.

    Keys: ``feature_extractor.*``, ``feature_projection.*``, ``encoder.*`` (as
    :class:`~speechrep.upstream.wav2vec2.Wav2Vec2Upstream`), ``heads.*``.

    Example:
        >>> cfg = DistilHubertConfig(hidden_size=64, ffn_size=128, num_heads=4, prediction_size=64)
        >>> up = DistilHubertUpstream(cfg).eval()
        >>> out = up(torch.randn(1, 16000), torch.tensor([16000]))
        >>> up.num_layers, len(out.hidden_states)
        (6, 6)
    """

    family = "distilhubert"
    config_class = DistilHubertConfig

    def __init__(self, config: DistilHubertConfig) -> None:
        super().__init__(config)
        conv_dim = config.conv_layers[-1][0]
        self.feature_extractor = build_feature_extractor(
            config.conv_layers, config.extractor_mode, conv_bias=False
        )
        self.feature_projection = (  # s3prl: post_extract_proj
            nn.Linear(conv_dim, config.hidden_size)
            if conv_dim != config.hidden_size
            else nn.Identity()
        )
        self.encoder = build_encoder(config.encoder_spec())
        head_hidden = config.head_hidden_size or config.hidden_size
        self.heads = PredictionHeads(
            config.hidden_size, head_hidden, config.num_prediction_heads, config.prediction_size
        )
        self.sample_rate = config.sample_rate
        self.downsample_rate = total_stride(config.conv_layers)
        self.hidden_size = config.hidden_size
        self.num_layers = 1 + config.num_layers + config.num_prediction_heads

    def forward_student(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> StudentOutput:
        """wavs (B, S) zero-padded, wav_lens (B,) samples -> :class:`StudentOutput`.

        Native frames (``floor`` conv lengths); this is what distillation training uses.
        """
        check_long_enough(wav_lens, self.config.conv_layers, self.family)
        feats, lengths = self.feature_extractor(wavs, wav_lens)  # (B, C, T)
        feats = scale_gradient(feats, self.config.feature_grad_mult)
        x = self.feature_projection(feats.transpose(1, 2))  # (B, T, C) -> (B, T, D)
        x = x.masked_fill(~valid_mask(lengths, x.shape[1], x.device)[..., None], 0.0)
        states, output = self.encoder(x, lengths)
        return StudentOutput(x, states[1:], self.heads(output), lengths)

    def forward_features(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        out = self.forward_student(wavs, wav_lens)
        return [out.features, *out.layer_outputs, *out.predictions.unbind(1)], out.lengths

    def init_from_teacher(self, teacher: nn.Module, conv: bool = True, layers: bool = True) -> None:
        """Copy a HuBERT teacher's weights into the student (s3prl ``init_teacher_conv_layers``:
        conv stack + projection; ``init_teacher_encoder_layers``: positional conv + the first
        ``num_layers`` encoder layers). ``teacher`` is a wav2vec 2.0-family upstream."""
        if conv:
            self.feature_extractor.load_state_dict(teacher.feature_extractor.state_dict())
            self.feature_projection.load_state_dict(teacher.feature_projection.state_dict())
        if layers:
            self.encoder.pos_conv.load_state_dict(teacher.encoder.pos_conv.state_dict())
            for student, source in zip(self.encoder.layers, teacher.encoder.layers, strict=False):
                student.load_state_dict(source.state_dict())


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.scale, None


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; the gradient flowing back is multiplied by ``scale`` (fairseq GradMultiply)."""
    return x if scale == 1.0 else _ScaleGradient.apply(x, scale)
