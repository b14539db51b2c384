"""Reading audio files: any soundfile format to mono float32 at the model's rate."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".sph", ".aiff", ".aif")


class AudioError(ValueError):
    """An audio file that cannot be used: the message names the file and what was wrong."""


def load_audio(
    path: str | os.PathLike, sample_rate: int | None = 16000
) -> tuple[np.ndarray, int]:
    """Read ``path`` as mono float32 samples in [-1, 1].

    Args:
        path: a wav/flac/ogg (anything libsndfile reads) file.
        sample_rate: resample to this rate (Hz) with soxr; ``None`` keeps the file's rate.

    Returns:
        ``(wav, rate)``: wav float32 of shape (S,), rate in Hz.

    Raises:
        FileNotFoundError: the file does not exist.
        AudioError: unreadable, corrupt, empty, or holding NaN/Inf samples.

    Example:
        >>> wav, sr = load_audio("utt.flac")  # doctest: +SKIP
        >>> wav.shape, sr  # doctest: +SKIP
        ((48000,), 16000)
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises a bare RuntimeError/LibsndfileError
        raise AudioError(f"{path}: cannot read audio ({err}); expected a wav/flac/ogg file") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: audio file holds no samples")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wav).all():
        raise AudioError(f"{path}: audio holds NaN or Inf samples")
    if sample_rate is not None and rate != sample_rate:
        wav = resample(wav, rate, sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(wav, dtype=np.float32), int(rate)


def resample(wav: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr (high quality)."""
    import soxr

    if from_rate == to_rate:
        return wav
    return soxr.resample(wav, from_rate, to_rate, quality="HQ").astype(np.float32)


def save_audio(path: str | os.PathLike, wav: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    """Write ``wav`` (S,) float in [-1, 1]; the format follows the extension (wav/flac/ogg)."""
    import soundfile as sf

    from speechrep.fileio import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fmt = path.suffix.lstrip(".").upper() or "WAV"
        sf.write(str(tmp), np.asarray(wav), sample_rate, subtype=subtype, format=fmt)


def find_audio_files(root: str | os.PathLike, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> list[Path]:
    """All audio files under ``root`` (recursive), sorted for a stable order."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
