"""APC and VQ-APC: stacked residual GRUs over Kaldi fbank frames.

Hidden states (as s3prl, which reads them off layers 0, 1 and the last): with 3 or more GRU
layers, [layer 0 output, layer 1 output (+ residual), last layer output (+ residual)]; with fewer
layers, every layer's output. The last state is taken before vector quantisation: VQ-APC's
quantiser only feeds the pre-training prediction (:meth:`ApcUpstream.predict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from speechrep.audio.features import KaldiOptions
from speechrep.nn.quantize import GroupVectorQuantizer, VqConfig
from speechrep.nn.rnn import ResidualGRUStack
from speechrep.upstream.base import Upstream
from speechrep.upstream.mockingjay import AcousticFrontEnd, FrontEndConfig


def kaldi_fbank_front_end(num_mel_bins: int = 80, cmvn: bool = True) -> FrontEndConfig:
    """s3prl's APC/NPC features: Kaldi fbank, Hamming window, 25/10 ms, per-utterance CMVN."""
    return FrontEndConfig(
        kind="fbank",
        kaldi=KaldiOptions(num_mel_bins=num_mel_bins, window_type="hamming"),
        cmvn=cmvn,
    )


@dataclass(frozen=True)
class ApcConfig:
    """GRU sizes, optional VQ and features (defaults = s3prl's APC pre-training config)."""

    hidden_size: int = 512  # s3prl: model.paras.hidden_size
    num_layers: int = 3  # s3prl: model.paras.num_layers
    dropout: float = 0.1  # s3prl: model.paras.dropout (on every layer's output)
    residual: bool = True  # s3prl: model.paras.residual
    vq: VqConfig | None = None  # s3prl: model.paras.vq (VQ-APC)
    features: FrontEndConfig = field(default_factory=kaldi_fbank_front_end)  # s3prl: data.audio

    def __post_init__(self) -> None:
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, found {self.num_layers}")
        if self.vq is not None and sum(self.vq.code_dims) != self.hidden_size:
            raise ValueError(
                f"vq.code_dims {list(self.vq.code_dims)} must sum to hidden_size {self.hidden_size}"
            )


class ApcUpstream(Upstream):
    """APC / VQ-APC upstream.

    Attributes:
        front_end: waveform -> (B, T, F) features.
        rnn: :class:`~speechrep.nn.rnn.ResidualGRUStack`; :meth:`encode` returns every layer.
        quantizer: :class:`~speechrep.nn.quantize.GroupVectorQuantizer` or None.
        postnet: Linear(hidden -> F), the pre-training prediction.

    Example:
        >>> up = ApcUpstream(ApcConfig(hidden_size=16)).eval()
        >>> out = up(torch.randn(2, 16000), torch.tensor([16000, 8000]))
        >>> len(out.hidden_states), out.hidden_states[2].shape, out.lengths.tolist()
        (3, torch.Size([2, 100, 16]), [100, 50])
    """

    family = "apc"
    config_class = ApcConfig

    def __init__(self, config: ApcConfig) -> None:
        super().__init__(config)
        self.sample_rate = 16000
        self.downsample_rate = config.features.hop_length
        self.hidden_size = config.hidden_size
        self.num_layers = min(config.num_layers, 3)
        input_dim = config.features.num_features
        self.front_end = AcousticFrontEnd(config.features)
        self.rnn = ResidualGRUStack(
            input_dim, config.hidden_size, config.num_layers, config.dropout, config.residual
        )
        self.quantizer = None
        if config.vq is not None:
            self.quantizer = GroupVectorQuantizer(
                config.vq.codebook_sizes, config.vq.code_dims, config.vq.temperature
            )
        self.postnet = nn.Linear(config.hidden_size, input_dim)

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """feats (B, T, F), lengths (B,) -> every GRU layer's output (B, T, H), pre-VQ."""
        return self.rnn(feats, lengths)

    def predict(self, last_state: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Last layer (B, T, H) -> (predicted frames (B, T, F), VQ one-hots per group or [])."""
        if self.quantizer is None:
            return self.postnet(last_state), []
        _, onehots, codes = self.quantizer(last_state)
        return self.postnet(codes), onehots

    def forward_features(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        feats, lens = self.front_end(wavs, wav_lens)
        layers = self.encode(feats, lens)
        states = [layers[0], layers[1], layers[-1]] if len(layers) >= 3 else layers
        return states, lens


class VqApcUpstream(ApcUpstream):
    """VQ-APC: APC with a grouped Gumbel VQ between the last layer and the prediction."""

    family = "vq_apc"
