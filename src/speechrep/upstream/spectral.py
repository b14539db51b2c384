"""Parameter-free baselines: s3prl's fbank, fbank_no_cmvn, mfcc, spectrogram, mel and linear.

One hidden state each. The Kaldi kinds (fbank, mfcc, spectrogram) use snip_edges framing, so an
utterance has ``1 + (n - 400) // 160`` native frames; the STFT kinds (mel, linear) are centred
and have ``1 + n // 160``. CMVN runs over these native frames of each utterance (as s3prl on a
single utterance); the base class then repeats the last frame / drops the extra ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

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
from speechrep.upstream.base import Upstream

KALDI_KINDS = ("fbank", "mfcc", "spectrogram")
STFT_KINDS = ("mel", "linear")
# s3prl's baseline yaml files: deltas for fbank/mfcc only.
DEFAULT_DELTA_ORDER = {"fbank": 2, "mfcc": 2, "spectrogram": 0, "mel": 0, "linear": 0}


@dataclass(frozen=True)
class SpectralConfig:
    """Which baseline and its options (defaults = s3prl's baseline yaml files)."""

    kind: str = "fbank"  # s3prl: upstream name / kaldi.feat_type; fbank | mfcc | spectrogram | mel | linear
    cmvn: bool = True  # s3prl: cmvn.use_cmvn (Kaldi kinds) / input.cmvn (mel, linear)
    delta_order: int | None = None  # s3prl: delta.order / input.delta; None = the kind's default
    delta_win_length: int = 5  # s3prl: delta.win_length (torchaudio ComputeDeltas)
    num_mel_bins: int = 80  # fbank: kaldi.fbank.num_mel_bins; mel: n_mels
    num_ceps: int = 13  # mfcc: kaldi.mfcc.num_ceps
    mfcc_mel_bins: int = 23  # mfcc: kaldi.mfcc.num_mel_bins (torchaudio default)
    frame_length_ms: float = 25.0  # s3prl: kaldi.<kind>.frame_length / win_ms
    frame_shift_ms: float = 10.0  # s3prl: kaldi.<kind>.frame_shift / hop_ms
    n_freq: int = 201  # mel, linear: s3prl n_freq (n_fft = 2 * (n_freq - 1))

    def __post_init__(self) -> None:
        if self.kind not in KALDI_KINDS + STFT_KINDS:
            raise ValueError(f"kind must be one of {KALDI_KINDS + STFT_KINDS}, found {self.kind!r}")
        if self.delta_order is not None and self.delta_order < 0:
            raise ValueError(f"delta_order must be >= 0, found {self.delta_order}")

    @property
    def deltas(self) -> int:
        return DEFAULT_DELTA_ORDER[self.kind] if self.delta_order is None else self.delta_order

    def kaldi_options(self) -> KaldiOptions:
        mel_bins = self.mfcc_mel_bins if self.kind == "mfcc" else self.num_mel_bins
        return KaldiOptions(frame_length_ms=self.frame_length_ms, frame_shift_ms=self.frame_shift_ms,
                            num_mel_bins=mel_bins, num_ceps=self.num_ceps)

    def stft_options(self) -> StftOptions:
        return StftOptions(feat_type=self.kind, win_ms=self.frame_length_ms, hop_ms=self.frame_shift_ms,
                           n_freq=self.n_freq, n_mels=self.num_mel_bins, log=True)


class SpectralUpstream(Upstream):
    """A parameter-free feature extractor with the upstream interface (one hidden state).

    Example:
        >>> up = SpectralUpstream(SpectralConfig(kind="mfcc"))
        >>> up.num_layers, up.hidden_size, up.downsample_rate
        (1, 39, 160)
        >>> out = up(torch.randn(2, 16000), torch.tensor([16000, 8000]))
        >>> out.hidden_states[0].shape, out.lengths.tolist()
        (torch.Size([2, 100, 39]), [100, 50])
    """

    family = "spectral"
    config_class = SpectralConfig

    def __init__(self, config: SpectralConfig) -> None:
        super().__init__(config)
        self.sample_rate = 16000
        self.num_layers = 1
        if config.kind in KALDI_KINDS:
            self.kaldi = config.kaldi_options()
            self.downsample_rate = self.kaldi.window_shift
            base = {"fbank": self.kaldi.num_mel_bins, "mfcc": self.kaldi.num_ceps,
                    "spectrogram": self.kaldi.padded_window_size // 2 + 1}[config.kind]
        else:
            self.stft = config.stft_options()
            self.downsample_rate = self.stft.hop_length
            base = self.stft.num_features
        self.hidden_size = base * (config.deltas + 1)

    def forward_features(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        kind = self.config.kind
        # Features are always computed in float32, whatever autocast the caller chose.
        with torch.autocast(wavs.device.type, enabled=False):
            wavs = wavs.float()
            if kind in STFT_KINDS:
                feats, lens = stft_features(wavs, wav_lens, self.stft)  # (B, T, F)
            else:
                extract = {"fbank": kaldi_fbank, "mfcc": kaldi_mfcc, "spectrogram": kaldi_spectrogram}
                feats, lens = extract[kind](wavs, wav_lens, self.kaldi)
            feats = add_deltas(feats, lens, self.config.deltas, self.config.delta_win_length)
            if self.config.cmvn:
                feats = cmvn(feats, lens)
        return [feats], lens
