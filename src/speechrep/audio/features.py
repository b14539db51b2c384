"""Parameter-free acoustic features on padded batches: Kaldi fbank/MFCC/spectrogram, STFT
log-mel/linear spectra, deltas and CMVN.

Every function takes a zero-padded batch ``(B, S)`` plus exact lengths and returns
``(feats (B, T, F), frame_lens (B,))``. Each utterance is computed as if it were alone:
edge rules (reflection, replicate padding) use the utterance's own last sample/frame and every
statistic uses its own valid samples/frames only. Frames past ``frame_lens`` are 0.

The Kaldi functions follow torchaudio.compliance.kaldi (itself matching Kaldi's
compute-{fbank,mfcc,spectrogram}-feats); :func:`stft_features` follows s3prl's on-the-fly
OnlinePreprocessor (torch.stft + torchaudio MelScale).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from speechrep.audio.collate import lengths_to_mask

# std::numeric_limits<float>::epsilon(): Kaldi's floor on power and mel energies.
FLOAT_EPSILON = float(torch.finfo(torch.float32).eps)
WINDOW_TYPES = ("povey", "hamming", "hanning", "rectangular", "blackman")
STFT_FEAT_TYPES = ("linear", "mel")


@dataclass(frozen=True)
class KaldiOptions:
    """Kaldi feature options (defaults = torchaudio.compliance.kaldi's = Kaldi's)."""

    sample_rate: float = 16000.0  # torchaudio: sample_frequency (Hz)
    frame_length_ms: float = 25.0  # torchaudio: frame_length
    frame_shift_ms: float = 10.0  # torchaudio: frame_shift
    window_type: str = "povey"  # povey | hamming | hanning | rectangular | blackman
    blackman_coeff: float = 0.42
    preemphasis: float = 0.97  # torchaudio: preemphasis_coefficient
    remove_dc_offset: bool = True
    dither: float = 0.0  # std of Gaussian noise added to each frame (0 = off)
    snip_edges: bool = True  # False: frames depend on the shift only, signal reflected at the ends
    round_to_power_of_two: bool = True  # zero-pad each frame to the next power of two for the FFT
    raw_energy: bool = True  # log energy before pre-emphasis and windowing
    energy_floor: float = 1.0  # floor on the log-energy term (absolute energy; 0 = none)
    min_duration: float = 0.0  # seconds; shorter utterances give no frame
    num_mel_bins: int = 23
    low_freq: float = 20.0  # Hz
    high_freq: float = 0.0  # Hz; <= 0 means offset from Nyquist
    use_energy: bool = False  # fbank/mfcc: add the log energy as a feature
    use_log_fbank: bool = True
    use_power: bool = True  # power (True) or magnitude spectrum into the mel banks
    htk_compat: bool = False  # energy last instead of first
    subtract_mean: bool = False  # subtract each utterance's mean over its frames
    num_ceps: int = 13  # mfcc
    cepstral_lifter: float = 22.0  # mfcc; 0 = no liftering

    def __post_init__(self) -> None:
        if self.window_type not in WINDOW_TYPES:
            raise ValueError(f"window_type must be one of {WINDOW_TYPES}, found {self.window_type!r}")
        if not 2 <= self.window_size or self.window_shift <= 0:
            raise ValueError(
                f"frame_length_ms/frame_shift_ms give a window of {self.window_size} and a shift of "
                f"{self.window_shift} samples; expected a window >= 2 and a shift >= 1"
            )
        if self.padded_window_size % 2:
            raise ValueError(f"the FFT size {self.padded_window_size} must be even; "
                             "use round_to_power_of_two or change frame_length_ms")
        if not 0.0 <= self.preemphasis <= 1.0:
            raise ValueError(f"preemphasis must be in [0, 1], found {self.preemphasis}")
        nyquist = 0.5 * self.sample_rate
        high = self.high_freq + nyquist if self.high_freq <= 0 else self.high_freq
        if not (0.0 <= self.low_freq < nyquist and 0.0 < high <= nyquist and self.low_freq < high):
            raise ValueError(f"low_freq {self.low_freq} / high_freq {self.high_freq} do not fit "
                             f"Nyquist {nyquist}")
        if self.num_mel_bins <= 3 or not 1 <= self.num_ceps <= self.num_mel_bins:
            raise ValueError(f"need num_mel_bins > 3 and 1 <= num_ceps <= num_mel_bins, found "
                             f"{self.num_mel_bins} and {self.num_ceps}")

    @property
    def window_size(self) -> int:
        """Samples per frame (Kaldi truncates, as here)."""
        return int(self.sample_rate * self.frame_length_ms * 0.001)

    @property
    def window_shift(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms * 0.001)

    @property
    def padded_window_size(self) -> int:
        size = self.window_size
        return 1 << (size - 1).bit_length() if self.round_to_power_of_two else size

    @classmethod
    def from_kaldi_args(cls, args: Mapping[str, Any], **overrides: Any) -> KaldiOptions:
        """Options from torchaudio.compliance.kaldi keyword names (as in s3prl configs).

        Example:
            >>> KaldiOptions.from_kaldi_args({"num_mel_bins": 80, "frame_length": 25.0}).num_mel_bins
            80
        """
        renames = {"sample_frequency": "sample_rate", "frame_length": "frame_length_ms",
                   "frame_shift": "frame_shift_ms", "preemphasis_coefficient": "preemphasis"}
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in {**args, **overrides}.items():
            if key in ("vtln_low", "vtln_high") or (key == "channel" and value in (-1, 0)):
                continue  # no effect without VTLN warping / on mono input
            if key == "vtln_warp" and float(value) == 1.0:
                continue
            name = renames.get(key, key)
            if name not in fields:
                raise ValueError(f"unsupported Kaldi feature option {key}={value!r}; supported: "
                                 f"{sorted(fields | set(renames))}")
            kwargs[name] = value
        return cls(**kwargs)


@dataclass(frozen=True)
class StftOptions:
    """s3prl OnlinePreprocessor options (centred STFT, periodic Hann window, power spectrum)."""

    feat_type: str = "mel"  # s3prl: feat_type; linear | mel
    sample_rate: int = 16000
    win_ms: float = 25.0  # s3prl: win_ms
    hop_ms: float = 10.0  # s3prl: hop_ms
    n_freq: int = 201  # s3prl: n_freq; n_fft = 2 * (n_freq - 1)
    n_mels: int = 80  # s3prl: n_mels (every s3prl config sets 80)
    log: bool = True  # s3prl: log; log(x + eps)
    target_level: float | None = None  # s3prl: audio.target_level (dB); None = no scaling
    eps: float = 1e-10  # s3prl OnlinePreprocessor eps

    def __post_init__(self) -> None:
        if self.feat_type not in STFT_FEAT_TYPES:
            raise ValueError(f"feat_type must be one of {STFT_FEAT_TYPES}, found {self.feat_type!r}")
        if not 0 < self.win_length <= self.n_fft or self.hop_length <= 0:
            raise ValueError(f"need 0 < win_length ({self.win_length}) <= n_fft ({self.n_fft}) and "
                             f"hop_length ({self.hop_length}) > 0")

    @property
    def n_fft(self) -> int:
        return 2 * (self.n_freq - 1)

    @property
    def win_length(self) -> int:
        return round(self.win_ms * self.sample_rate / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.hop_ms * self.sample_rate / 1000)

    @property
    def num_features(self) -> int:
        return self.n_mels if self.feat_type == "mel" else self.n_freq


# --------------------------------------------------------------------------- helpers


def _gather_time(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, S) or (B, S, F), index (B, P) -> x[b, index[b]]."""
    if x.dim() == 2:
        return torch.gather(x, 1, index)
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[2]))


def _zero_invalid(x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    mask = lengths_to_mask(lens.to(x.device), x.shape[1])
    return x.masked_fill(~mask[:, :, None], 0.0)


def _check_batch(wavs: torch.Tensor, wav_lens: torch.Tensor) -> torch.Tensor:
    if wavs.dim() != 2 or wavs.shape[0] == 0:
        raise ValueError(f"wavs: expected shape (B, S) with B >= 1, found {tuple(wavs.shape)}")
    wav_lens = torch.as_tensor(wav_lens, dtype=torch.long, device=wavs.device)
    if wav_lens.shape != (wavs.shape[0],) or (wav_lens < 0).any() or (wav_lens > wavs.shape[1]).any():
        raise ValueError(f"wav_lens: expected {wavs.shape[0]} lengths in 0..{wavs.shape[1]}, "
                         f"found {wav_lens.tolist()}")
    return wav_lens


def kaldi_window(options: KaldiOptions) -> torch.Tensor:
    """The analysis window, (window_size,) float64 (symmetric, as Kaldi)."""
    n, kind = options.window_size, options.window_type
    if kind == "rectangular":
        return torch.ones(n, dtype=torch.float64)
    a = 2 * math.pi / (n - 1)
    t = torch.arange(n, dtype=torch.float64)
    if kind == "blackman":
        c = options.blackman_coeff
        return c - 0.5 * torch.cos(a * t) + (0.5 - c) * torch.cos(2 * a * t)
    if kind == "hamming":
        return 0.54 - 0.46 * torch.cos(a * t)
    hann = 0.5 - 0.5 * torch.cos(a * t)
    return hann.pow(0.85) if kind == "povey" else hann


@functools.lru_cache(maxsize=32)
def kaldi_mel_banks(options: KaldiOptions) -> torch.Tensor:
    """Kaldi triangular mel banks, (padded_window_size // 2 + 1, num_mel_bins) float64.

    Triangles are linear in Kaldi's mel scale 1127 ln(1 + f/700); the Nyquist bin gets weight 0.
    """
    num_fft_bins = options.padded_window_size // 2
    nyquist = 0.5 * options.sample_rate
    high = options.high_freq + nyquist if options.high_freq <= 0 else options.high_freq

    def mel(f: Any) -> Any:
        return 1127.0 * (torch.log1p(f / 700.0) if torch.is_tensor(f) else math.log1p(f / 700.0))

    low_mel, high_mel = mel(options.low_freq), mel(high)
    delta = (high_mel - low_mel) / (options.num_mel_bins + 1)
    edges = low_mel + delta * torch.arange(options.num_mel_bins + 2, dtype=torch.float64)
    left, center, right = edges[None, :-2], edges[None, 1:-1], edges[None, 2:]  # (1, M)
    fft_mel = mel(options.sample_rate / options.padded_window_size
                  * torch.arange(num_fft_bins, dtype=torch.float64))[:, None]  # (K, 1)
    up, down = (fft_mel - left) / (center - left), (right - fft_mel) / (right - center)
    banks = torch.minimum(up, down).clamp(min=0.0)  # (K, M)
    return torch.cat([banks, banks.new_zeros(1, options.num_mel_bins)], dim=0)


@functools.lru_cache(maxsize=32)
def mel_filterbank(n_freq: int, n_mels: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None) -> torch.Tensor:
    """HTK mel filterbank as torchaudio's MelScale defaults (no norm), (n_freq, n_mels) float64.

    Triangles are linear in Hz between points equally spaced on 2595 log10(1 + f/700).
    """
    f_max = sample_rate // 2 if f_max is None else f_max
    all_freqs = torch.linspace(0, sample_rate // 2, n_freq, dtype=torch.float64)
    to_mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)  # noqa: E731
    mels = torch.linspace(to_mel(f_min), to_mel(f_max), n_mels + 2, dtype=torch.float64)
    points = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)  # (M + 2,) Hz
    width = points[1:] - points[:-1]
    slopes = points[None, :] - all_freqs[:, None]  # (n_freq, M + 2)
    down = -slopes[:, :-2] / width[:-1]
    up = slopes[:, 2:] / width[1:]
    return torch.minimum(down, up).clamp(min=0.0)


# --------------------------------------------------------------------------- Kaldi features


def kaldi_frame_lengths(wav_lens: torch.Tensor, options: KaldiOptions) -> torch.Tensor:
    """Frames per utterance: ``1 + (n - window) // shift`` (0 if ``n < window``) with snip_edges,
    else ``(n + shift // 2) // shift``; 0 below ``min_duration``."""
    win, shift = options.window_size, options.window_shift
    if options.snip_edges:
        frames = torch.where(wav_lens >= win, 1 + (wav_lens - win).clamp(min=0) // shift, 0)
    else:
        frames = (wav_lens + shift // 2) // shift
    too_short = wav_lens < options.min_duration * options.sample_rate
    return frames.masked_fill(too_short, 0)


def _kaldi_frames(
    wavs: torch.Tensor, wav_lens: torch.Tensor, options: KaldiOptions
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Windowed frames (B, T, padded_window), log energy (B, T), frame_lens (B,)."""
    wav_lens = _check_batch(wavs, wav_lens)
    win, shift = options.window_size, options.window_shift
    frame_lens = kaldi_frame_lengths(wav_lens, options)
    # At least one frame: FFT back ends reject empty input; _finish_kaldi trims it again.
    num_frames = max(1, int(frame_lens.max()))
    span = (num_frames - 1) * shift + win
    if options.snip_edges:
        signal = torch.nn.functional.pad(wavs, (0, max(0, span - wavs.shape[1])))
    else:
        # Kaldi mirrors each utterance at its own ends, edge sample repeated: [2 1 0 | 0 1 2 ..].
        pos = torch.arange(span, device=wavs.device)[None, :] - (win // 2 - shift // 2)
        length = wav_lens.clamp(min=1)[:, None]
        pos = pos % (2 * length)
        signal = _gather_time(wavs, torch.where(pos >= length, 2 * length - 1 - pos, pos))
    frames = signal.unfold(1, win, shift)[:, :num_frames]  # (B, T, win)
    if options.dither != 0.0:
        frames = frames + torch.randn_like(frames) * options.dither
    if options.remove_dc_offset:
        frames = frames - frames.mean(dim=-1, keepdim=True)
    if options.raw_energy:
        energy = _log_energy(frames, options.energy_floor)
    if options.preemphasis != 0.0:
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = frames - options.preemphasis * previous
    frames = frames * kaldi_window(options).to(frames)
    frames = torch.nn.functional.pad(frames, (0, options.padded_window_size - win))
    if not options.raw_energy:
        energy = _log_energy(frames, options.energy_floor)
    return frames, energy, frame_lens


def _log_energy(frames: torch.Tensor, energy_floor: float) -> torch.Tensor:
    energy = frames.pow(2).sum(-1).clamp(min=FLOAT_EPSILON).log()
    return energy.clamp(min=math.log(energy_floor)) if energy_floor > 0 else energy


def _finish_kaldi(feats: torch.Tensor, frame_lens: torch.Tensor, options: KaldiOptions
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    feats = _zero_invalid(feats[:, : int(frame_lens.max())], frame_lens)
    if options.subtract_mean:
        count = frame_lens.to(feats).clamp(min=1)[:, None, None]
        feats = _zero_invalid(feats - feats.sum(1, keepdim=True) / count, frame_lens)
    return feats, frame_lens


def kaldi_spectrogram(wavs: torch.Tensor, wav_lens: torch.Tensor, options: KaldiOptions = KaldiOptions()
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Kaldi log power spectrogram, bin 0 replaced by the frame's log energy.

    Args:
        wavs: (B, S) float, zero-padded. wav_lens: (B,) samples.

    Returns:
        ``(feats (B, T, padded_window_size // 2 + 1), frame_lens (B,))``.

    Example:
        >>> x, n = kaldi_spectrogram(torch.randn(2, 16000), torch.tensor([16000, 8000]))
        >>> x.shape, n.tolist()
        (torch.Size([2, 98, 257]), [98, 48])
    """
    frames, energy, frame_lens = _kaldi_frames(wavs, wav_lens, options)
    spectrum = torch.fft.rfft(frames)
    power = (spectrum.real.square() + spectrum.imag.square()).clamp(min=FLOAT_EPSILON).log()
    feats = torch.cat([energy[..., None], power[..., 1:]], dim=-1)
    return _finish_kaldi(feats, frame_lens, options)


def _log_mel(wavs: torch.Tensor, wav_lens: torch.Tensor, options: KaldiOptions
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    frames, energy, frame_lens = _kaldi_frames(wavs, wav_lens, options)
    spectrum = torch.fft.rfft(frames).abs()  # (B, T, K)
    if options.use_power:
        spectrum = spectrum.square()
    mel = spectrum @ kaldi_mel_banks(options).to(spectrum)  # (B, T, M)
    if options.use_log_fbank:
        mel = mel.clamp(min=FLOAT_EPSILON).log()
    return mel, energy, frame_lens


def kaldi_fbank(wavs: torch.Tensor, wav_lens: torch.Tensor, options: KaldiOptions = KaldiOptions()
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Kaldi (log) mel filterbank energies.

    Returns:
        ``(feats (B, T, num_mel_bins + use_energy), frame_lens (B,))``; the energy column is
        first, or last with ``htk_compat``.

    Example:
        >>> opts = KaldiOptions(num_mel_bins=80)
        >>> x, n = kaldi_fbank(torch.randn(1, 16000), torch.tensor([16000]), opts)
        >>> x.shape, n.tolist()
        (torch.Size([1, 98, 80]), [98])
    """
    mel, energy, frame_lens = _log_mel(wavs, wav_lens, options)
    if options.use_energy:
        parts = [mel, energy[..., None]] if options.htk_compat else [energy[..., None], mel]
        mel = torch.cat(parts, dim=-1)
    return _finish_kaldi(mel, frame_lens, options)


def kaldi_dct_matrix(num_ceps: int, num_mel_bins: int) -> torch.Tensor:
    """Orthonormal DCT-II, (num_mel_bins, num_ceps) float64: ``mfcc = log_mel @ dct``."""
    n = torch.arange(num_mel_bins, dtype=torch.float64)[:, None]
    k = torch.arange(num_ceps, dtype=torch.float64)[None, :]
    dct = torch.cos(math.pi / num_mel_bins * (n + 0.5) * k) * math.sqrt(2.0 / num_mel_bins)
    dct[:, 0] = math.sqrt(1.0 / num_mel_bins)
    return dct


def kaldi_mfcc(wavs: torch.Tensor, wav_lens: torch.Tensor, options: KaldiOptions = KaldiOptions()
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Kaldi MFCC: DCT of the log power mel energies, liftered.

    Returns:
        ``(feats (B, T, num_ceps), frame_lens (B,))``. C0 is replaced by the log energy with
        ``use_energy``; ``htk_compat`` moves C0/energy last.

    Example:
        >>> x, n = kaldi_mfcc(torch.randn(1, 16000), torch.tensor([16000]))
        >>> x.shape
        torch.Size([1, 98, 13])
    """
    mel_options = dataclasses.replace(options, use_log_fbank=True, use_power=True)
    mel, energy, frame_lens = _log_mel(wavs, wav_lens, mel_options)
    feats = mel @ kaldi_dct_matrix(options.num_ceps, options.num_mel_bins).to(mel)
    if options.cepstral_lifter != 0.0:
        i = torch.arange(options.num_ceps, dtype=torch.float64)
        lifter = 1.0 + 0.5 * options.cepstral_lifter * torch.sin(math.pi * i / options.cepstral_lifter)
        feats = feats * lifter.to(feats)
    first = energy[..., None] if options.use_energy else feats[..., :1]
    if options.htk_compat:
        # HTK's C0 is sqrt(2) times Kaldi's orthonormal one (the energy is left as it is).
        first = first if options.use_energy else first * math.sqrt(2.0)
        feats = torch.cat([feats[..., 1:], first], dim=-1)
    else:
        feats = torch.cat([first, feats[..., 1:]], dim=-1)
    return _finish_kaldi(feats, frame_lens, options)


# --------------------------------------------------------------------------- STFT features


def stft_frame_lengths(wav_lens: torch.Tensor, options: StftOptions) -> torch.Tensor:
    """Frames of a centred STFT: ``1 + n // hop_length``."""
    return 1 + wav_lens // options.hop_length


def stft_features(wavs: torch.Tensor, wav_lens: torch.Tensor, options: StftOptions = StftOptions()
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred-STFT power spectrum -> (mel) -> (log), per utterance as s3prl's OnlinePreprocessor.

    Each utterance is optionally scaled to ``target_level`` dB (rms over its own samples), then
    reflect-padded by ``n_fft // 2`` at its own start and end (as torch.stft ``center=True``).

    Args:
        wavs: (B, S) float, zero-padded. wav_lens: (B,) samples.

    Returns:
        ``(feats (B, T, n_mels | n_freq), frame_lens (B,))`` with ``frame_lens = 1 + n // hop``.

    Example:
        >>> x, n = stft_features(torch.randn(2, 16000), torch.tensor([16000, 8000]))
        >>> x.shape, n.tolist()
        (torch.Size([2, 101, 80]), [101, 51])
    """
    wav_lens = _check_batch(wavs, wav_lens)
    if options.target_level is not None:
        count = wav_lens.to(wavs).clamp(min=1)
        rms = (wavs.square() * lengths_to_mask(wav_lens, wavs.shape[1])).sum(1).div(count).sqrt()
        wavs = wavs * (10 ** (options.target_level / 20) / (rms + 1e-10))[:, None]
    n_fft, hop = options.n_fft, options.hop_length
    frame_lens = stft_frame_lengths(wav_lens, options)
    num_frames = int(frame_lens.max())
    # Reflection without repeating the edge sample: [.. 2 1 | 0 1 2 .. n-1 | n-2 n-3 ..].
    pos = torch.arange((num_frames - 1) * hop + n_fft, device=wavs.device)[None, :] - n_fft // 2
    length = wav_lens.clamp(min=1)[:, None]
    period = (2 * (length - 1)).clamp(min=1)
    pos = pos % period
    signal = _gather_time(wavs, torch.where(pos >= length, period - pos, pos))
    frames = signal.unfold(1, n_fft, hop)  # (B, T, n_fft)
    window = torch.hann_window(options.win_length, periodic=True, dtype=torch.float64)
    left = (n_fft - options.win_length) // 2  # torch.stft centres a shorter window
    window = torch.nn.functional.pad(window, (left, n_fft - options.win_length - left))
    spectrum = torch.fft.rfft(frames * window.to(frames))
    feats = spectrum.real.square() + spectrum.imag.square()  # (B, T, n_freq)
    if options.feat_type == "mel":
        fbank = mel_filterbank(options.n_freq, options.n_mels, options.sample_rate)
        feats = feats @ fbank.to(feats)
    if options.log:
        feats = (feats + options.eps).log()
    return _zero_invalid(feats, frame_lens), frame_lens


# --------------------------------------------------------------------------- post-processing


def compute_deltas(x: torch.Tensor, lens: torch.Tensor, win_length: int = 5) -> torch.Tensor:
    """Regression deltas over time, (B, T, F) -> (B, T, F).

    ``d[t] = sum_{k=1..N} k (x[t+k] - x[t-k]) / (2 sum k^2)``, ``N = (win_length - 1) // 2``,
    with frames beyond an utterance's own first/last valid frame replicated (torchaudio's
    compute_deltas on that utterance alone).
    """
    if win_length < 3:
        raise ValueError(f"win_length must be >= 3, found {win_length}")
    if x.shape[1] == 0:
        return x.clone()
    n = (win_length - 1) // 2
    lens = lens.to(x.device)
    t = torch.arange(x.shape[1] + 2 * n, device=x.device)[None, :] - n
    index = torch.minimum(t.clamp(min=0), (lens - 1).clamp(min=0)[:, None])  # (B, T + 2N)
    windows = _gather_time(x, index).unfold(1, 2 * n + 1, 1)  # (B, T, F, 2N + 1)
    kernel = torch.arange(-n, n + 1, device=x.device, dtype=x.dtype)
    return _zero_invalid(windows @ kernel / (n * (n + 1) * (2 * n + 1) / 3), lens)


def add_deltas(x: torch.Tensor, lens: torch.Tensor, order: int = 2, win_length: int = 5
               ) -> torch.Tensor:
    """Append ``order`` rounds of deltas: (B, T, F) -> (B, T, F * (order + 1)) = [x, d, dd, ..].

    Example:
        >>> ramp = torch.arange(6.0).view(1, 6, 1)
        >>> add_deltas(ramp, torch.tensor([6]), order=1)[0, 2:4, 1].tolist()
        [1.0, 1.0]
    """
    feats = [_zero_invalid(x, lens.to(x.device))]
    for _ in range(order):
        feats.append(compute_deltas(feats[-1], lens, win_length))
    return torch.cat(feats, dim=-1)


def cmvn(x: torch.Tensor, lens: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Per-utterance mean/variance normalisation over valid frames: ``(x - mean) / (eps + std)``.

    ``std`` is unbiased (n - 1); an utterance with one frame gets std 0 (output 0). (B, T, F) ->
    (B, T, F), padded frames 0.

    Example:
        >>> x = torch.tensor([[[1.0], [3.0], [99.0]]])
        >>> cmvn(x, torch.tensor([2]))[0, :, 0].tolist()
        [-0.7071067690849304, 0.7071067690849304, 0.0]
    """
    lens = lens.to(x.device)
    mask = lengths_to_mask(lens, x.shape[1])[:, :, None]
    count = lens.to(x.dtype)[:, None, None]
    mean = (x * mask).sum(1, keepdim=True) / count.clamp(min=1)
    centred = (x - mean) * mask
    std = (centred.square().sum(1, keepdim=True) / (count - 1).clamp(min=1)).sqrt()
    return centred / (eps + std)
