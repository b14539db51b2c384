"""Mockingjay, TERA and Audio ALBERT: a BERT-style transformer over acoustic frames.

The three differ only in pre-training (and ALBERT shares one layer across depth), so one
model class serves them; the family name is a label. This module also holds the acoustic
front-end that s3prl's own models (these, APC, NPC) compute from the waveform.

Hidden states (as s3prl): L + 1 = [input representation after its LayerNorm, layer 1 output,
..., layer L output]; with pre-LN, state i passes through its own LayerNorm. An input longer
than ``max_frames`` is cut into ``ceil(T / max_frames)`` equal pieces (``torch.chunk``), each
run on its own with positions from 0, and the pieces are joined again — per utterance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from speechrep.audio.features import (
    KaldiOptions,
    StftOptions,
    add_deltas,
    cmvn,
    kaldi_fbank,
    kaldi_mfcc,
    kaldi_spectrogram,
    stft_features,
)
from speechrep.nn.bert import BertEncoder, build_bert_encoder, chunk_spans, init_bert_weights
from speechrep.upstream.base import Upstream

KALDI_EXTRACTORS = {"fbank": kaldi_fbank, "mfcc": kaldi_mfcc, "spectrogram": kaldi_spectrogram}
FRONT_END_KINDS = (*KALDI_EXTRACTORS, "stft")


@dataclass(frozen=True)
class FrontEndConfig:
    """Waveform -> frames for s3prl's own models: Kaldi or centred-STFT features, deltas, CMVN.

    Exactly one of ``kaldi`` / ``stft`` is used, as ``kind`` says.
    """

    # fbank | mfcc | spectrogram (s3prl: audio.kaldi.feat_type) | stft (OnlinePreprocessor)
    kind: str = "stft"
    kaldi: KaldiOptions | None = None  # s3prl: audio.kaldi.<feat_type>; APC/NPC: data.audio
    # s3prl: audio.{target_level, win_ms, hop_ms, n_freq, n_mels} + audio.input
    stft: StftOptions | None = None
    delta_order: int = 0  # s3prl: audio.delta.order / audio.input.delta
    delta_win_length: int = 5  # s3prl: audio.delta.win_length (torchaudio ComputeDeltas)
    cmvn: bool = True  # s3prl: audio.cmvn.use_cmvn / audio.input.cmvn / data.audio.cmvn

    def __post_init__(self) -> None:
        if self.kind not in FRONT_END_KINDS:
            raise ValueError(f"features.kind must be one of {FRONT_END_KINDS}, found {self.kind!r}")
        used, unused = ("stft", "kaldi") if self.kind == "stft" else ("kaldi", "stft")
        if getattr(self, unused) is not None:
            raise ValueError(
                f"features.kind {self.kind!r} reads '{used}' options; '{unused}' must be unset"
            )
        if getattr(self, used) is None:  # frozen: fill the default once, here
            object.__setattr__(self, used, StftOptions() if used == "stft" else KaldiOptions())
        if self.delta_order < 0:
            raise ValueError(f"features.delta_order must be >= 0, found {self.delta_order}")

    @property
    def num_features(self) -> int:
        """Features per frame after deltas."""
        if self.kind == "stft":
            base = self.stft.num_features
        else:
            k = self.kaldi
            base = {
                "fbank": k.num_mel_bins + int(k.use_energy),
                "mfcc": k.num_ceps,
                "spectrogram": k.padded_window_size // 2 + 1,
            }[self.kind]
        return base * (self.delta_order + 1)

    @property
    def hop_length(self) -> int:
        """Samples per frame."""
        return self.stft.hop_length if self.kind == "stft" else self.kaldi.window_shift


class AcousticFrontEnd(nn.Module):
    """Parameter-free features of a padded batch, every utterance as if alone (float32)."""

    def __init__(self, config: FrontEndConfig) -> None:
        super().__init__()
        self.config = config

    def forward(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """wavs (B, S), wav_lens (B,) samples -> (feats (B, T, F), frame_lens (B,))."""
        c = self.config
        with torch.autocast(wavs.device.type, enabled=False):
            wavs = wavs.float()
            if c.kind == "stft":
                feats, lens = stft_features(wavs, wav_lens, c.stft)
            else:
                feats, lens = KALDI_EXTRACTORS[c.kind](wavs, wav_lens, c.kaldi)
            feats = add_deltas(feats, lens, c.delta_order, c.delta_win_length)
            if c.cmvn:
                feats = cmvn(feats, lens)
        return feats, lens.to(feats.device)


@dataclass(frozen=True)
class MockingjayConfig:
    """Transformer sizes and features (defaults = s3prl's TERA base config)."""

    hidden_size: int = 768  # s3prl: transformer.hidden_size
    num_layers: int = 3  # s3prl: transformer.num_hidden_layers
    num_heads: int = 12  # s3prl: transformer.num_attention_heads
    intermediate_size: int = 3072  # s3prl: transformer.intermediate_size
    activation: str = "gelu"  # s3prl: transformer.hidden_act (gelu | relu | swish)
    hidden_dropout: float = 0.1  # s3prl: transformer.hidden_dropout_prob
    attention_dropout: float = 0.1  # s3prl: transformer.attention_probs_dropout_prob
    initializer_range: float = 0.02  # s3prl: transformer.initializer_range
    layer_norm_eps: float = 1e-12  # s3prl: transformer.layer_norm_eps
    share_layers: bool = False  # s3prl: transformer.share_layer (Audio ALBERT)
    pre_layer_norm: bool = False  # s3prl: transformer.pre_layer_norm
    max_frames: int = 1500  # s3prl: task.sequence_length; longer inputs run in pieces; 0 = never
    features: FrontEndConfig = field(
        default_factory=lambda: FrontEndConfig(kind="stft", stft=StftOptions(target_level=-25.0))
    )

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}"
            )
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, found {self.num_layers}")


class MockingjayUpstream(Upstream):
    """Mockingjay / TERA / Audio ALBERT upstream.

    Attributes:
        front_end: waveform -> (B, T, F) features.
        encoder: :class:`~speechrep.nn.bert.BertEncoder`; ``encode(...)[-1]`` is the state a
            pre-training prediction head reads.

    Example:
        >>> cfg = MockingjayConfig(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64)
        >>> up = MockingjayUpstream(cfg).eval()
        >>> out = up(torch.randn(2, 16000), torch.tensor([16000, 8000]))
        >>> len(out.hidden_states), out.hidden_states[0].shape, out.lengths.tolist()
        (3, torch.Size([2, 100, 32]), [100, 50])
    """

    family = "mockingjay"
    config_class = MockingjayConfig

    def __init__(self, config: MockingjayConfig) -> None:
        super().__init__(config)
        self.sample_rate = 16000
        self.downsample_rate = config.features.hop_length
        self.hidden_size = config.hidden_size
        self.num_layers = config.num_layers + 1
        self.front_end = AcousticFrontEnd(config.features)
        self.encoder: BertEncoder = build_bert_encoder(
            config.features.num_features,
            config.hidden_size,
            config.num_layers,
            config.num_heads,
            config.intermediate_size,
            activation=config.activation,
            hidden_dropout=config.hidden_dropout,
            attention_dropout=config.attention_dropout,
            layer_norm_eps=config.layer_norm_eps,
            share_layers=config.share_layers,
            pre_layer_norm=config.pre_layer_norm,
        )
        self.encoder.apply(lambda m: init_bert_weights(m, config.initializer_range))

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """feats (B, T, F), lengths (B,) -> L + 1 states (B, T, D); long inputs run in pieces."""
        pieces = [
            (b, start, size)
            for b in range(feats.shape[0])
            for start, size in chunk_spans(int(lengths[b]), self.config.max_frames)
        ]
        if len(pieces) == feats.shape[0]:
            return self.encoder(feats, lengths)
        # Every piece becomes its own row: (N, max piece, F).
        rows = feats.new_zeros(len(pieces), max(size for _, _, size in pieces), feats.shape[2])
        for r, (b, start, size) in enumerate(pieces):
            rows[r, :size] = feats[b, start : start + size]
        sizes = torch.tensor([size for _, _, size in pieces], device=feats.device)
        states = self.encoder(rows, sizes)
        out = [s.new_zeros(feats.shape[0], feats.shape[1], s.shape[2]) for s in states]
        for r, (b, start, size) in enumerate(pieces):
            for o, s in zip(out, states, strict=True):
                o[b, start : start + size] = s[r, :size]
        return out

    def forward_features(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        feats, lens = self.front_end(wavs, wav_lens)
        return self.encode(feats, lens), lens


class TeraUpstream(MockingjayUpstream):
    """TERA: the Mockingjay architecture pre-trained with time/frequency/magnitude alteration."""

    family = "tera"


class AudioAlbertUpstream(MockingjayUpstream):
    """Audio ALBERT: the Mockingjay architecture with one layer shared across depth."""

    family = "audio_albert"
