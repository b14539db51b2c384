"""espeak-ng as a speech and phoneme source: one subprocess call per utterance.

espeak-ng is a formant synthesiser: its output is fully determined by the text, the voice
and the prosody settings (no randomness), which is what makes the synthetic corpora
byte-reproducible. It is a system program, not a Python package.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

ESPEAK = "espeak-ng"
ESPEAK_RATE = 22050  # Hz: espeak-ng's native output rate
INTONATIONS = ("x-low", "low", "medium", "high", "x-high")  # SSML <prosody range=...>
INSTALL_HINT = (
    "espeak-ng is required to synthesise speech but was not found on PATH; install it with "
    "`apt-get install espeak-ng` (Debian/Ubuntu), `dnf install espeak-ng` (Fedora) or "
    "`brew install espeak-ng` (macOS)"
)


class EspeakError(RuntimeError):
    """espeak-ng is missing or failed; the message says how to fix it."""


@functools.lru_cache(maxsize=1)
def espeak_path() -> str:
    """Absolute path of the espeak-ng program; raises :class:`EspeakError` when missing."""
    path = shutil.which(ESPEAK)
    if path is None:
        raise EspeakError(INSTALL_HINT)
    return path


@functools.lru_cache(maxsize=1)
def espeak_version() -> str:
    """The first line of ``espeak-ng --version`` (recorded in each corpus' README)."""
    out = _run([espeak_path(), "--version"], b"")
    # "eSpeak NG text-to-speech: 1.51  Data at: /usr/lib/..." -> drop the machine's data path
    return out.decode("utf-8", "replace").strip().splitlines()[0].split("  Data at:")[0].strip()


@dataclass(frozen=True)
class SpeakRequest:
    """Everything that determines one espeak-ng rendering (hashable: used as a cache key)."""

    text: str
    voice: str = "en-us"  # espeak voice, optionally with a variant: "en-gb+f3"
    pitch: int = 50  # 0..99, espeak -p
    speed: int = 175  # words per minute, espeak -s
    amplitude: int = 100  # 0..200, espeak -a
    intonation: str = "medium"  # pitch range: one of INTONATIONS

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "voice": self.voice,
            "pitch": self.pitch,
            "speed": self.speed,
            "amplitude": self.amplitude,
            "intonation": self.intonation,
        }


def speak(
    text: str,
    voice: str = "en-us",
    pitch: int = 50,
    speed: int = 175,
    amplitude: int = 100,
    sample_rate: int = 16000,
    intonation: str = "medium",
) -> np.ndarray:
    """Synthesise ``text`` with espeak-ng.

    Args:
        text: what to say (plain text; punctuation shapes the prosody).
        voice: espeak voice name, optionally ``+variant`` (``"en-us+f3"``, ``"en-gb+m2"``).
        pitch: base pitch 0..99. speed: words per minute (80..450). amplitude: 0..200.
        sample_rate: output rate in Hz (espeak renders at 22050 Hz; resampled with soxr).
        intonation: pitch range, one of ``x-low low medium high x-high``.

    Returns:
        float32 waveform (S,) in [-1, 1] at ``sample_rate``, including espeak's own
        leading/trailing silence.

    Raises:
        EspeakError: espeak-ng is not installed or rejected the voice.
        ValueError: an argument is out of range.

    Example:
        >>> wav = speak("yes", voice="en-us+f2", pitch=60)  # doctest: +SKIP
        >>> wav.dtype, wav.ndim  # doctest: +SKIP
        (dtype('float32'), 1)
    """
    request = SpeakRequest(text, voice, int(pitch), int(speed), int(amplitude), intonation)
    return render(request, sample_rate)


def render(request: SpeakRequest, sample_rate: int = 16000) -> np.ndarray:
    """:func:`speak` for a :class:`SpeakRequest` (see there)."""
    from speechrep.audio import resample

    _check_request(request)
    command = [
        espeak_path(),
        "-v",
        request.voice,
        "-p",
        str(request.pitch),
        "-s",
        str(request.speed),
        "-a",
        str(request.amplitude),
        "--stdout",
        "--stdin",
    ]
    text = request.text
    if request.intonation != "medium":
        command.insert(-1, "-m")
        text = f'<speak><prosody range="{request.intonation}">{_xml_escape(text)}</prosody></speak>'
    wav = _decode_wav(_run(command, text.encode("utf-8")), request)
    return resample(wav, ESPEAK_RATE, sample_rate) if sample_rate != ESPEAK_RATE else wav


def phonemize(words: list[str], voice: str = "en-us") -> list[list[str]]:
    """IPA phonemes of each word spoken in isolation, e.g. ``"yes" -> ["j", "ˈɛ", "s"]``.

    Stress marks (ˈ primary, ˌ secondary) stay attached to the phoneme they precede.
    One espeak-ng call for the whole list.
    """
    if not words:
        return []
    if any(not w.strip() or "\n" in w for w in words):
        raise ValueError("phonemize: words must be non-empty single-line strings")
    command = [espeak_path(), "-q", "--ipa", "--sep=_", "-v", voice]
    out = _run(command, ("\n".join(words) + "\n").encode("utf-8")).decode("utf-8")
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    if len(lines) != len(words):
        raise EspeakError(f"espeak-ng returned {len(lines)} phoneme lines for {len(words)} words")
    return [[p for p in line.replace(" ", "_").split("_") if p] for line in lines]


def _check_request(request: SpeakRequest) -> None:
    if not request.text.strip():
        raise ValueError("speak: text is empty")
    if not 0 <= request.pitch <= 99:
        raise ValueError(f"speak: pitch must be in 0..99, got {request.pitch}")
    if not 80 <= request.speed <= 450:
        raise ValueError(f"speak: speed must be in 80..450 words per minute, got {request.speed}")
    if not 0 <= request.amplitude <= 200:
        raise ValueError(f"speak: amplitude must be in 0..200, got {request.amplitude}")
    if request.intonation not in INTONATIONS:
        raise ValueError(
            f"speak: intonation must be one of {INTONATIONS}, got {request.intonation!r}"
        )


def _run(command: list[str], stdin: bytes) -> bytes:
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise EspeakError(INSTALL_HINT) from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise EspeakError(
            f"espeak-ng failed ({' '.join(command[1:])}): {err[-1] if err else done.returncode}"
        )
    return done.stdout


def _decode_wav(data: bytes, request: SpeakRequest) -> np.ndarray:
    import soundfile as sf

    # --stdout writes a streaming header (sizes 0x7fffffff); libsndfile reads up to EOF.
    try:
        wav, rate = sf.read(io.BytesIO(data), dtype="float32")
    except Exception as err:  # noqa: BLE001 - libsndfile raises a bare error type
        raise EspeakError(
            f"espeak-ng produced unreadable audio for voice {request.voice!r}: {err}"
        ) from None
    if rate != ESPEAK_RATE or wav.ndim != 1 or wav.size == 0:
        raise EspeakError(
            f"espeak-ng produced no usable audio for voice {request.voice!r} "
            f"(rate {rate}, shape {wav.shape}); is the voice installed?"
        )
    return wav


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
