"""wav2vec 2.0 / XLS-R, HuBERT and data2vec-audio: one architecture, three families.

waveform -> (per-utterance layer norm, when ``normalize_waveform``) -> conv feature extractor
-> LayerNorm over channels -> Linear to the model width (when ``feature_projection``) ->
transformer encoder. Masking, dropout and LayerDrop are off outside training.

Hidden states, as s3prl returns them: ``num_encoder_layers + 1`` tensors = the input of each
encoder layer, then the encoder output (through the final LayerNorm when ``layer_norm_first``).
Padded batches: the waveform norm and the first conv's GroupNorm use each utterance's valid
samples/frames only and the attention masks padded frames exactly, so a batch gives what each
utterance gives alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from speechrep.nn.conv import (
    BASE_CONV_LAYERS,
    EXTRACTOR_MODES,
    ConvSpec,
    build_feature_extractor,
    check_conv_layers,
    receptive_field,
    total_stride,
)
from speechrep.nn.transformer import ACTIVATIONS, EncoderSpec, TransformerEncoder, build_encoder
from speechrep.upstream.base import Upstream


@dataclass(frozen=True)
class Wav2Vec2Config:
    """Architecture of a wav2vec 2.0-family model (defaults: wav2vec 2.0 Base).

    Field comments name the fairseq (``cfg.model`` / ``cfg.task``) and HuggingFace equivalents.
    """

    # fairseq: conv_feature_layers; HF: conv_dim / conv_kernel / conv_stride
    conv_layers: tuple[tuple[int, int, int], ...] = BASE_CONV_LAYERS
    # fairseq: extractor_mode default | layer_norm; HF: feat_extract_norm group | layer
    extractor_mode: str = "group_norm"
    conv_bias: bool = False  # fairseq: conv_bias; HF: conv_bias
    # a Linear after the feature norm; fairseq: post_extract_proj exists (when the conv dim
    # differs from hidden_size; always in data2vec); HF: feature_projection.projection
    feature_projection: bool = True
    num_layers: int = 12  # fairseq: encoder_layers; HF: num_hidden_layers
    hidden_size: int = 768  # fairseq: encoder_embed_dim; HF: hidden_size
    ffn_size: int = 3072  # fairseq: encoder_ffn_embed_dim; HF: intermediate_size
    num_heads: int = 12  # fairseq: encoder_attention_heads; HF: num_attention_heads
    activation: str = "gelu"  # fairseq: activation_fn; HF: hidden_act
    layer_norm_first: bool = False  # fairseq: layer_norm_first; HF: do_stable_layer_norm
    layer_norm_eps: float = 1e-5  # HF: layer_norm_eps (fairseq: always 1e-5)
    pos_conv_kernel: int = 128  # fairseq: conv_pos; HF: num_conv_pos_embeddings
    pos_conv_groups: int = 16  # fairseq: conv_pos_groups; HF: num_conv_pos_embedding_groups
    pos_conv_depth: int = 1  # fairseq: pos_conv_depth (data2vec); HF: num_conv_pos_embeddings
    normalize_waveform: bool = False  # fairseq: task.normalize; HF: do_normalize
    sample_rate: int = 16000  # fairseq: task.sample_rate
    # training only (off in eval mode)
    dropout: float = 0.1  # fairseq: dropout; HF: hidden_dropout
    attention_dropout: float = 0.1  # fairseq: attention_dropout; HF: attention_dropout
    activation_dropout: float = 0.0  # fairseq: activation_dropout; HF: activation_dropout
    layerdrop: float = 0.0  # fairseq: encoder_layerdrop; HF: layerdrop
    feature_dropout: float = 0.0  # fairseq: dropout_input; HF: feat_proj_dropout
    mask_prob: float = 0.65  # fairseq: mask_prob; HF: mask_time_prob
    mask_length: int = 10  # fairseq: mask_length; HF: mask_time_length

    def __post_init__(self) -> None:
        check_conv_and_activation(self.conv_layers, self.extractor_mode, self.activation)
        if self.hidden_size % self.num_heads or self.hidden_size % self.pos_conv_groups:
            raise ValueError(
                f"hidden_size {self.hidden_size} must be a multiple of num_heads {self.num_heads} "
                f"and pos_conv_groups {self.pos_conv_groups}"
            )
        if not self.feature_projection and self.conv_layers[-1][0] != self.hidden_size:
            raise ValueError(
                f"feature_projection False needs conv dim == hidden_size, found "
                f"{self.conv_layers[-1][0]} != {self.hidden_size}"
            )
        if self.num_layers < 1 or self.pos_conv_depth < 1:
            raise ValueError(
                "num_layers and pos_conv_depth must be >= 1, "
                f"found {self.num_layers}, {self.pos_conv_depth}"
            )

    def encoder_spec(self) -> EncoderSpec:
        return encoder_spec_from(self, pos_conv_depth=self.pos_conv_depth, eps=self.layer_norm_eps)


def check_conv_and_activation(
    conv_layers: tuple[ConvSpec, ...], extractor_mode: str, activation: str
) -> None:
    """Raise ValueError for a conv stack, extractor mode or activation the blocks cannot build."""
    check_conv_layers(conv_layers, "conv_layers")
    if extractor_mode not in EXTRACTOR_MODES:
        raise ValueError(
            f"extractor_mode must be one of {EXTRACTOR_MODES}, found {extractor_mode!r}"
        )
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, found {activation!r}")


def encoder_spec_from(config: Any, pos_conv_depth: int = 1, eps: float = 1e-5) -> EncoderSpec:
    """The encoder part of a wav2vec 2.0-style config (Wav2Vec2Config, DistilHubertConfig: the
    fields ``hidden_size``, ``ffn_size``, ``num_layers``, ``num_heads``, ``activation``,
    ``layer_norm_first``, ``pos_conv_kernel``, ``pos_conv_groups`` and the dropouts)."""
    return EncoderSpec(
        embed_dim=config.hidden_size,
        ffn_dim=config.ffn_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        activation_fn=config.activation,
        layer_norm_first=config.layer_norm_first,
        pos_conv_kernel=config.pos_conv_kernel,
        pos_conv_groups=config.pos_conv_groups,
        pos_conv_depth=pos_conv_depth,
        eps=eps,
        dropout=config.dropout,
        attention_dropout=config.attention_dropout,
        activation_dropout=config.activation_dropout,
        layerdrop=config.layerdrop,
    )


def normalize_waveforms(
    wavs: torch.Tensor, wav_lens: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """Per-utterance zero mean / unit variance over its valid samples; padding stays 0.

    (B, S), (B,) -> (B, S). The same computation as ``F.layer_norm(wav, wav.shape)`` alone.
    """
    out = torch.zeros_like(wavs)
    for b, n in enumerate(wav_lens.tolist()):
        out[b, :n] = F.layer_norm(wavs[b, :n], (n,), eps=eps)
    return out


def check_long_enough(wav_lens: torch.Tensor, layers: tuple[ConvSpec, ...], family: str) -> None:
    """Raise ValueError naming the first utterance shorter than the conv receptive field."""
    need = receptive_field(layers)
    short = (wav_lens < need).nonzero()
    if len(short):
        i = int(short[0])
        raise ValueError(
            f"utterance {i} has {int(wav_lens[i])} samples: too short for upstream '{family}' "
            f"(needs at least {need})"
        )


class Wav2Vec2Upstream(Upstream):
    """wav2vec 2.0 / XLS-R (s3prl ``wav2vec2*``, ``xls_r*``).

    State-dict keys: ``feature_extractor.layers.{i}.{conv,norm}.*``, ``feature_norm.*``,
    ``feature_projection.*``, ``encoder.pos_conv.*``, ``encoder.layer_norm.*`` and
    ``encoder.layers.{i}.`` + ``attention.{q,k,v,out}_proj.*``, ``attention_norm.*``,
    ``feed_forward.{fc1,fc2}.*``, ``final_norm.*``.

    Example:
        >>> cfg = Wav2Vec2Config(num_layers=2, hidden_size=64, ffn_size=128, num_heads=4)
        >>> up = Wav2Vec2Upstream(cfg)
        >>> out = up.eval()(torch.randn(2, 16000), torch.tensor([16000, 8000]))
        >>> len(out.hidden_states), out.hidden_states[0].shape, out.lengths.tolist()
        (3, torch.Size([2, 50, 64]), [50, 25])
    """

    family = "wav2vec2"
    config_class = Wav2Vec2Config

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__(config)
        conv_dim = config.conv_layers[-1][0]
        self.feature_extractor = build_feature_extractor(
            config.conv_layers, config.extractor_mode, config.conv_bias
        )
        self.feature_norm = nn.LayerNorm(conv_dim, eps=config.layer_norm_eps)  # fairseq: layer_norm
        self.feature_projection = (  # fairseq: post_extract_proj
            nn.Linear(conv_dim, config.hidden_size) if config.feature_projection else nn.Identity()
        )
        self.encoder = self.build_encoder(config)
        self.sample_rate = config.sample_rate
        self.downsample_rate = total_stride(config.conv_layers)
        self.hidden_size = config.hidden_size
        self.num_layers = config.num_layers + 1

    def build_encoder(self, config: Wav2Vec2Config) -> TransformerEncoder:
        return build_encoder(config.encoder_spec())

    def encoder_input(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """wavs (B, S), wav_lens (B,) -> encoder input (B, T, D), valid frames (B,)."""
        check_long_enough(wav_lens, self.config.conv_layers, self.family)
        if self.config.normalize_waveform:
            wavs = normalize_waveforms(wavs, wav_lens)
        feats, lengths = self.feature_extractor(wavs, wav_lens)  # (B, C, T)
        x = self.feature_norm(feats.transpose(1, 2))  # (B, C, T) -> (B, T, C)
        x = self.feature_projection(x)  # (B, T, C) -> (B, T, D)
        return F.dropout(x, self.config.feature_dropout, self.training), lengths

    def forward_features(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        x, lengths = self.encoder_input(wavs, wav_lens)
        states, output = self.encoder(x, lengths)
        return states[:-1] + [output], lengths


class HubertUpstream(Wav2Vec2Upstream):
    """HuBERT (s3prl ``hubert*``): the wav2vec 2.0 architecture, trained on cluster targets."""

    family = "hubert"


class Data2VecUpstream(Wav2Vec2Upstream):
    """data2vec-audio (s3prl ``data2vec*``): LayerNorm extractor, stacked positional conv."""

    family = "data2vec"
