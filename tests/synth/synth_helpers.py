"""Helpers for the synthetic-corpus tests: manifest access, audio/text agreement."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechrep.synth.dsp import trim
from speechrep.synth.espeak import SpeakRequest, render

requires_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)

# s3prl's phoneme vocabulary (downstream/ctc/vocab/phoneme.txt): ARPAbet with stress + SIL, SPN.
ARPABET_71 = (
    {"SIL", "SPN"}
    | {
        v + s
        for v in (
            "AA",
            "AE",
            "AH",
            "AO",
            "AW",
            "AY",
            "EH",
            "ER",
            "EY",
            "IH",
            "IY",
            "OW",
            "OY",
            "UH",
            "UW",
        )
        for s in "012"
    }
    | {
        "B",
        "CH",
        "D",
        "DH",
        "F",
        "G",
        "HH",
        "JH",
        "K",
        "L",
        "M",
        "N",
        "NG",
        "P",
        "R",
        "S",
        "SH",
        "T",
        "TH",
        "V",
        "W",
        "Y",
        "Z",
        "ZH",
    }
)


def manifest(root: Path) -> dict[str, dict]:
    """The corpus manifest keyed by relative path."""
    lines = (root / "synth_manifest.jsonl").read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    return {e["path"]: e for e in entries}


def said(entry: dict) -> str:
    """What espeak-ng was actually asked to say for this file (all renders, in order)."""
    return " ".join(r["text"] for r in entry["render"])


def normalised(text: str) -> str:
    """Upper case, punctuation dropped: how transcripts write the spoken text."""
    return re.sub(r"[^\w' ]", "", text).upper()


def read(root: Path, relative: str) -> tuple[np.ndarray, int]:
    wav, rate = sf.read(str(root / relative), dtype="float32")
    return wav, rate


def best_correlation(signal: np.ndarray, template: np.ndarray) -> float:
    """Max over lags of the normalised correlation between ``template`` and a window of ``signal``."""
    signal = np.asarray(signal, dtype=np.float64)
    template = np.asarray(template, dtype=np.float64)
    if len(template) > len(signal):
        signal = np.pad(signal, (0, len(template) - len(signal)))
    size = 1 << int(len(signal) + len(template)).bit_length()
    dots = np.fft.irfft(np.fft.rfft(signal, size) * np.conj(np.fft.rfft(template, size)), size)
    lags = len(signal) - len(template) + 1
    energy = np.concatenate([[0.0], np.cumsum(signal**2)])
    window = np.sqrt(
        np.maximum(energy[len(template) : len(template) + lags] - energy[:lags], 1e-12)
    )
    return float(np.max(dots[:lags] / (window * np.linalg.norm(template) + 1e-12)))


def spoken(request: dict, sample_rate: int, **change) -> np.ndarray:
    """Re-render a manifest ``render`` entry (optionally changed), without espeak's silences."""
    fields = {**request, **change}
    return trim(
        render(SpeakRequest(**fields), sample_rate), keep_seconds=0.0, sample_rate=sample_rate
    )


def assert_says(root: Path, entry: dict, other_text: str, margin: float = 0.15) -> None:
    """The file's audio matches a rendering of its recorded text, clearly better than
    the same voice saying ``other_text`` (the perturbed twin)."""
    wav, rate = read(root, entry["path"])
    request = entry["render"][0]
    own = best_correlation(wav, spoken(request, rate))
    other = best_correlation(wav, spoken(request, rate, text=other_text))
    assert own > 0.5, f"{entry['path']}: correlation with its own text {own:.2f}"
    assert own > other + margin, f"{entry['path']}: own {own:.2f} vs other text {other:.2f}"


def tree_digest(root: Path) -> str:
    """sha256 over every file's relative path and bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
