"""WavLM: the wav2vec 2.0 architecture with a bucketed relative position bias.

The bias table lives once per model (WavLM keeps it in layer 0); it is computed once per
forward and given to every layer. With ``gated_relative_position`` each layer's attention
gates it per frame and head (:class:`~speechrep.nn.relative_attention.GatedRelativeAttention`).
Hidden states: ``num_layers + 1`` (input of each encoder layer, then the encoder output).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from speechrep.nn.relative_attention import GatedRelativeAttention, RelativePositionBias
from speechrep.nn.transformer import SelfAttention, TransformerEncoder, build_encoder
from speechrep.upstream.wav2vec2 import Wav2Vec2Config, Wav2Vec2Upstream


@dataclass(frozen=True)
class WavLMConfig(Wav2Vec2Config):
    """WavLM architecture: :class:`Wav2Vec2Config` plus the relative position fields.

    Defaults of the added fields are WavLM's own (its Base/Large checkpoints set them).
    """

    relative_position_embedding: bool = False  # WavLM: relative_position_embedding
    num_buckets: int = 320  # WavLM: num_buckets; HF: num_buckets
    max_distance: int = 1280  # WavLM: max_distance; HF: max_bucket_distance
    gated_relative_position: bool = False  # WavLM: gru_rel_pos

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gated_relative_position and not self.relative_position_embedding:
            raise ValueError("gated_relative_position needs relative_position_embedding")
        if self.pos_conv_depth != 1:
            raise ValueError(
                f"WavLM has one positional conv layer, found pos_conv_depth {self.pos_conv_depth}"
            )


class WavLMUpstream(Wav2Vec2Upstream):
    """WavLM Base / Base+ / Large (s3prl ``wavlm*``).

    Extra keys: ``encoder.relative_position_bias.embedding.weight`` (num_buckets, H) and, when
    gated, ``encoder.layers.{i}.attention.gate_proj.*`` / ``gate_const``.

    Example:
        >>> import torch
        >>> cfg = WavLMConfig(num_layers=2, hidden_size=64, ffn_size=128, num_heads=4,
        ...                   relative_position_embedding=True, gated_relative_position=True)
        >>> out = WavLMUpstream(cfg).eval()(torch.randn(1, 8000), torch.tensor([8000]))
        >>> len(out.hidden_states), out.hidden_states[-1].shape
        (3, torch.Size([1, 25, 64]))
    """

    family = "wavlm"
    config_class = WavLMConfig

    def build_encoder(self, config: WavLMConfig) -> TransformerEncoder:  # type: ignore[override]
        spec = config.encoder_spec()
        attention = GatedRelativeAttention if config.gated_relative_position else SelfAttention

        def make_attention() -> nn.Module:
            return attention(spec.embed_dim, spec.num_heads, spec.attention_dropout)

        bias = (
            RelativePositionBias(config.num_buckets, config.max_distance, config.num_heads)
            if config.relative_position_embedding
            else None
        )
        return build_encoder(spec, make_attention, bias)
