"""The one dict of upstream names. Adding a checkpoint means adding one entry here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UpstreamInfo:
    """A named upstream: which family builds it and where its weights live.

    ``url`` None means parameter-free (built from ``config``); ``sha256``/``size_bytes`` are
    checked after a download when known.
    """

    name: str
    family: str
    description: str
    url: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    sample_rate: int = 16000
    num_layers: int | None = None
    hidden_size: int | None = None


def _entries(*infos: UpstreamInfo) -> dict[str, UpstreamInfo]:
    return {info.name: info for info in infos}


UPSTREAMS: dict[str, UpstreamInfo] = _entries(
    # --- parameter-free baselines (speechrep.upstream.spectral) ---
    UpstreamInfo("fbank", "spectral", "Kaldi fbank 80 + delta + delta-delta, CMVN (240)",
                 config={"kind": "fbank"}, num_layers=1, hidden_size=240),
    UpstreamInfo("fbank_no_cmvn", "spectral", "Kaldi fbank 80 + delta + delta-delta, no CMVN (240)",
                 config={"kind": "fbank", "cmvn": False}, num_layers=1, hidden_size=240),
    UpstreamInfo("mfcc", "spectral", "Kaldi MFCC 13 + delta + delta-delta, CMVN (39)",
                 config={"kind": "mfcc"}, num_layers=1, hidden_size=39),
    UpstreamInfo("spectrogram", "spectral", "Kaldi spectrogram 512-point FFT, CMVN (257)",
                 config={"kind": "spectrogram"}, num_layers=1, hidden_size=257),
    UpstreamInfo("mel", "spectral", "log mel 80 from a centred STFT, CMVN (80)",
                 config={"kind": "mel"}, num_layers=1, hidden_size=80),
    UpstreamInfo("linear", "spectral", "log linear spectrum from a centred STFT, CMVN (201)",
                 config={"kind": "linear"}, num_layers=1, hidden_size=201),
    # --- wav2vec 2.0 family (speechrep.upstream.wav2vec2 / wavlm / distilhubert) ---
    # --- s3prl's own models (speechrep.upstream.mockingjay / apc / npc) ---
)


def get_info(name: str) -> UpstreamInfo:
    if name not in UPSTREAMS:
        import difflib

        close = difflib.get_close_matches(name, UPSTREAMS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown upstream '{name}': not a registered name, an existing path or a URL.{hint} "
            "Run `speechrep list` for the names."
        )
    return UPSTREAMS[name]
