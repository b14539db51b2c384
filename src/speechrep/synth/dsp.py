"""Signal helpers for the synthetic corpora: noise, levels, trimming, channels, files.

Every random draw takes an explicit ``np.random.Generator`` so each file's content is a
function of the corpus seed and the file's name only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NOISE_KINDS = ("white", "pink", "brown", "hum", "babble_like", "fan")


def noise(
    rng: np.random.Generator, kind: str, num_samples: int, sample_rate: int = 16000
) -> np.ndarray:
    """A generated background noise (S,) float32 with unit RMS.

    Kinds: ``white``; ``pink`` (1/f); ``brown`` (1/f^2); ``hum`` (50/60 Hz mains with
    harmonics plus a little white noise); ``babble_like`` (speech-shaped noise with a
    syllable-rate envelope); ``fan`` (low-passed noise with a blade-rate tone).
    """
    if num_samples <= 0:
        raise ValueError(f"noise: num_samples must be positive, got {num_samples}")
    white = rng.standard_normal(num_samples)
    if kind == "white":
        out = white
    elif kind in ("pink", "brown", "fan", "babble_like"):
        size = 1 << max(1, int(num_samples - 1).bit_length())  # a fast FFT length
        spectrum = np.fft.rfft(white, n=size)
        freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
        freqs[0] = freqs[1]
        if kind == "pink":
            shape = 1.0 / np.sqrt(freqs)
        elif kind == "brown":
            shape = 1.0 / freqs
        elif kind == "fan":
            shape = 1.0 / (1.0 + (freqs / 400.0) ** 2)
        else:  # speech-shaped: a broad bump around 500 Hz
            shape = np.exp(-0.5 * (np.log(freqs / 500.0) / 0.8) ** 2)
        out = np.fft.irfft(spectrum * shape, n=size)[:num_samples]
        t = np.arange(num_samples) / sample_rate
        if kind == "fan":
            out = out / (np.std(out) + 1e-12) + 0.5 * np.sin(2 * np.pi * rng.uniform(80, 140) * t)
        elif kind == "babble_like":
            rate = rng.uniform(3.0, 5.0)  # syllables per second
            out = out * (1.2 + np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    elif kind == "hum":
        t = np.arange(num_samples) / sample_rate
        base = 50.0 if rng.random() < 0.5 else 60.0
        out = sum(
            np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3, 5)
        )
        out = out + 0.05 * white
    else:
        raise ValueError(f"noise: unknown kind {kind!r}; expected one of {NOISE_KINDS}")
    return (out / (rms(out) + 1e-12)).astype(np.float32)


def rms(wav: np.ndarray) -> float:
    """Root mean square level of ``wav`` (0 for empty input)."""
    return float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0


def set_level(wav: np.ndarray, dbfs: float) -> np.ndarray:
    """Scale ``wav`` to an RMS level of ``dbfs`` dB relative to full scale."""
    return (wav * (10 ** (dbfs / 20) / (rms(wav) + 1e-12))).astype(np.float32)


def add_noise(speech: np.ndarray, background: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + background`` scaled so the speech-to-noise ratio is ``snr_db`` dB.

    The speech level is measured over its active part (samples above -40 dB of the peak
    envelope) so leading/trailing silence does not lower it.
    """
    background = fit_length(background, len(speech))
    noise_level = active_rms(speech) / (10 ** (snr_db / 20))
    return (speech + background * (noise_level / (rms(background) + 1e-12))).astype(np.float32)


def active_rms(wav: np.ndarray) -> float:
    """RMS over the samples in ``wav``'s active region (see :func:`speech_bounds`)."""
    start, end = speech_bounds(wav)
    return rms(wav[start:end]) if end > start else rms(wav)


def speech_bounds(
    wav: np.ndarray, threshold_db: float = -40.0, frame: int = 160
) -> tuple[int, int]:
    """(first, last+1) sample of the region whose 10 ms frame RMS is within ``threshold_db``
    of the loudest frame; (0, 0) for silence."""
    if wav.size == 0:
        return 0, 0
    num_frames = int(np.ceil(len(wav) / frame))
    padded = np.pad(wav, (0, num_frames * frame - len(wav)))
    energy = np.sqrt(np.mean(padded.reshape(num_frames, frame).astype(np.float64) ** 2, axis=1))
    if energy.max() <= 0:
        return 0, 0
    active = np.nonzero(energy >= energy.max() * 10 ** (threshold_db / 20))[0]
    return int(active[0] * frame), int(min(len(wav), (active[-1] + 1) * frame))


def trim(wav: np.ndarray, keep_seconds: float = 0.02, sample_rate: int = 16000) -> np.ndarray:
    """Cut leading/trailing silence, keeping ``keep_seconds`` of margin on each side."""
    start, end = speech_bounds(wav)
    if end <= start:
        return wav
    margin = int(keep_seconds * sample_rate)
    return wav[max(0, start - margin) : min(len(wav), end + margin)]


def pad(wav: np.ndarray, before: int, after: int) -> np.ndarray:
    """Zero-pad ``before``/``after`` samples."""
    return np.pad(wav, (max(0, before), max(0, after))).astype(np.float32)


def fit_length(wav: np.ndarray, length: int) -> np.ndarray:
    """Tile (if shorter) and cut ``wav`` to exactly ``length`` samples."""
    if len(wav) == 0:
        raise ValueError("fit_length: empty input")
    if len(wav) < length:
        wav = np.tile(wav, int(np.ceil(length / len(wav))))
    return wav[:length]


def place(wav: np.ndarray, length: int, offset: int) -> np.ndarray:
    """Put ``wav`` into a zero buffer of ``length`` samples starting at ``offset`` (cropped)."""
    out = np.zeros(length, dtype=np.float32)
    offset = max(0, offset)
    piece = wav[: max(0, length - offset)]
    out[offset : offset + len(piece)] = piece
    return out


def channel(rng: np.random.Generator, wav: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """A random recording channel: a spectral tilt (muffled or thin) and a short echo."""
    length = len(wav) + sample_rate // 10  # room for the echo tail; cut afterwards
    freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
    corner = rng.uniform(1500.0, 5000.0) if rng.random() < 0.5 else rng.uniform(100.0, 400.0)
    if corner > 1000.0:  # first-order low-pass magnitude
        response = 1.0 / np.sqrt(1.0 + (freqs / corner) ** 2)
    else:  # first-order high-pass magnitude
        response = (freqs / corner) / np.sqrt(1.0 + (freqs / corner) ** 2)
    delay = rng.uniform(0.01, 0.05)
    response = response * (1.0 + rng.uniform(0.0, 0.3) * np.exp(-2j * np.pi * freqs * delay))
    out = np.fft.irfft(np.fft.rfft(wav, n=length) * response, n=length)[: len(wav)]
    return out.astype(np.float32)


def peak_normalize(wav: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Scale down (never up) so that ``max|wav| <= peak``."""
    top = float(np.max(np.abs(wav))) if wav.size else 0.0
    return (wav * (peak / top)).astype(np.float32) if top > peak else wav.astype(np.float32)


def write_audio(path: Path, wav: np.ndarray, sample_rate: int) -> None:
    """Write mono audio; the format follows the suffix (.wav/.flac: 16-bit PCM, .mp3)."""
    import soundfile as sf

    wav = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 32767 / 32768)
    suffix = path.suffix.lower()
    if suffix == ".wav":
        sf.write(str(path), wav, sample_rate, subtype="PCM_16", format="WAV")
    elif suffix == ".flac":
        sf.write(str(path), wav, sample_rate, subtype="PCM_16", format="FLAC")
    elif suffix == ".mp3":
        sf.write(str(path), wav, sample_rate, subtype="MPEG_LAYER_III", format="MP3")
    else:
        raise ValueError(f"write_audio: unsupported audio suffix {suffix!r} for {path}")


def record(
    rng: np.random.Generator,
    speech: np.ndarray,
    sample_rate: int = 16000,
    lead: tuple[float, float] = (0.1, 0.5),
    tail: tuple[float, float] = (0.1, 0.4),
    snr_db: tuple[float, float] = (30.0, 50.0),
    level_dbfs: tuple[float, float] = (-28.0, -20.0),
    kinds: tuple[str, ...] = NOISE_KINDS,
) -> tuple[np.ndarray, dict]:
    """Simulate a recording of clean synthetic ``speech``.

    Trims espeak's silences, pads ``lead``/``tail`` seconds of room tone (uniform ranges),
    sets the speech level and adds a generated background at a uniform random SNR.

    Returns:
        ``(wav, info)``: float32 (S,), and ``{"snr_db", "noise", "speech_start"}``
        (speech_start in samples) for the manifest.
    """
    speech = trim(np.asarray(speech, dtype=np.float32), sample_rate=sample_rate)
    before = int(rng.uniform(*lead) * sample_rate)
    after = int(rng.uniform(*tail) * sample_rate)
    speech = set_level(speech, 0.0)
    speech = speech * (10 ** (rng.uniform(*level_dbfs) / 20))
    clean = pad(speech, before, after)
    kind = kinds[int(rng.integers(len(kinds)))]
    snr = float(rng.uniform(*snr_db))
    wav = add_noise(clean, noise(rng, kind, len(clean), sample_rate), snr)
    return peak_normalize(wav), {"snr_db": snr, "noise": kind, "speech_start": before}
