"""Libri2Mix (speech separation, SUPERB SS; speaker diarization, SUPERB SD).

Built from a synthetic LibriSpeech written alongside it, as LibriMix is built from
LibriSpeech. Layout of ``DIR`` (LibriMix's ``storage_dir``)::

    LibriSpeech/{train-clean-100,dev-clean,test-clean}/...       the sources (see librispeech)
    Libri2Mix/wav16k/{min,max}/{train-100,dev,test}/{mix_clean,mix_both,mix_single,s1,s2,noise}/
        <uttA>_<uttB>.wav                                          16 kHz, 16-bit
    Libri2Mix/wav16k/{min,max}/metadata/mixture_<part>_<mix>.csv
        mixture_ID,mixture_path,source_1_path,source_2_path[,noise_path],length (absolute paths)
    Libri2Mix/wav16k/{min,max}/metadata/metrics_<part>_<mix>.csv   per-source SNRs
    metadata/LibriSpeech/{train_clean_100,dev_clean,test_clean}.rttm
        "SPEAKER <chapter>-<utt> 1 <start> <dur> <NA> <NA> <speaker> <NA> <NA>" speech activity

``min`` cuts a mixture to its shorter source (separation), ``max`` pads to the longer
(diarization). ``mix_clean = s1 + s2``, ``mix_both = s1 + s2 + noise``,
``mix_single = s1 + noise``; the files hold exactly those sums (before 16-bit rounding).
As in the real metadata, paths in the CSVs are absolute, so they name ``DIR``.
"""

from __future__ import annotations

import numpy as np

from speechrep.synth import dsp
from speechrep.synth.core import SynthContext
from speechrep.synth.librispeech import SplitSize, Utterance, write_librispeech

RATE = 16000
PARTS = {"train-clean-100": "train-100", "dev-clean": "dev", "test-clean": "test"}
SOURCE_SIZES = {
    "tiny": {
        "train-clean-100": SplitSize(3, 1, 2),
        "dev-clean": SplitSize(2, 1, 2),
        "test-clean": SplitSize(2, 1, 2),
    },
    "small": {
        "train-clean-100": SplitSize(16, 2, 4),
        "dev-clean": SplitSize(4, 1, 5),
        "test-clean": SplitSize(4, 1, 5),
    },
}
MIXTURES = {
    "tiny": {"train-100": 3, "dev": 2, "test": 2},
    "small": {"train-100": 80, "dev": 16, "test": 16},
}
# mixture folder -> the signals it sums (and the CSV columns it lists), as in LibriMix
MIX_PARTS = {
    "mix_clean": ("s1", "s2"),
    "mix_both": ("s1", "s2", "noise"),
    "mix_single": ("s1", "noise"),
}
COLUMNS = {"s1": "source_1", "s2": "source_2", "noise": "noise"}


def build(ctx: SynthContext) -> None:
    """Libri2Mix wav16k min/max mixtures, sources, noise, metadata + source LibriSpeech."""
    utterances = write_librispeech(ctx, "LibriSpeech/", SOURCE_SIZES[ctx.size])
    _write_rttm(ctx, utterances)
    for split, part in PARTS.items():
        pool = [u for u in utterances if u.split == split]
        pairs = _pairs(ctx.rng_for("pairs", part), pool, MIXTURES[ctx.size][part])
        for mode in ("min", "max"):
            _write_part(ctx, mode, part, pairs)


def _pairs(
    rng: np.random.Generator, pool: list[Utterance], count: int
) -> list[tuple[Utterance, Utterance]]:
    """``count`` distinct pairs of utterances by different speakers."""
    candidates = [
        (a, b) for i, a in enumerate(pool) for b in pool[i + 1 :] if a.speaker != b.speaker
    ]
    if len(candidates) < count:
        raise ValueError(f"only {len(candidates)} speaker pairs available for {count} mixtures")
    return [
        candidates[int(i)] for i in sorted(rng.choice(len(candidates), size=count, replace=False))
    ]


def _write_part(ctx: SynthContext, mode: str, part: str, pairs) -> None:
    base = f"Libri2Mix/wav16k/{mode}/{part}"
    rows: dict[str, list] = {mix: [] for mix in MIX_PARTS}
    metrics: dict[str, list] = {mix: [] for mix in MIX_PARTS}
    for first, second in pairs:
        mixture_id = f"{first.utterance_id}_{second.utterance_id}"
        rng = ctx.rng_for("mixture", part, mixture_id)  # same gains for min and max
        signals = dict(
            zip(("s1", "s2", "noise"), _sources(rng, first.wav, second.wav, mode), strict=True)
        )
        for mix, parts in MIX_PARTS.items():
            signals[mix] = sum(signals[p] for p in parts)
        paths = {}
        for name, wav in signals.items():
            relative = f"{base}/{name}/{mixture_id}.wav"
            origin = {"s1": first, "s2": second}.get(name)
            ctx.write_audio(
                relative,
                wav,
                RATE,
                speaker=origin.speaker if origin else "",
                source=origin.relative if origin else "",
                mixture_id=mixture_id,
            )
            paths[name] = ctx.final_path(relative)
        for mix, parts in MIX_PARTS.items():
            rows[mix].append(
                [mixture_id, paths[mix], *(paths[p] for p in parts), str(len(signals["s1"]))]
            )
            metrics[mix].append(
                [mixture_id, *(_snr(signals[p], signals[mix] - signals[p]) for p in parts)]
            )
    folder = f"Libri2Mix/wav16k/{mode}/metadata"
    for mix, parts in MIX_PARTS.items():
        columns = ["mixture_ID", "mixture_path", *(f"{COLUMNS[p]}_path" for p in parts), "length"]
        ctx.write_text(f"{folder}/mixture_{part}_{mix}.csv", _csv(columns, rows[mix]))
        columns = ["mixture_ID", *(f"{COLUMNS[p]}_SNR" for p in parts)]
        ctx.write_text(f"{folder}/metrics_{part}_{mix}.csv", _csv(columns, metrics[mix]))


def _sources(rng: np.random.Generator, first: np.ndarray, second: np.ndarray, mode: str):
    """Level the two sources and a noise (LibriMix draws -25..-33 / -38..-30 LUFS), fit lengths."""
    s1 = dsp.set_level(first, float(rng.uniform(-33.0, -25.0)))
    s2 = dsp.set_level(second, float(rng.uniform(-33.0, -25.0)))
    length = min(len(s1), len(s2)) if mode == "min" else max(len(s1), len(s2))
    noise = dsp.set_level(
        dsp.noise(
            rng, "babble_like" if rng.random() < 0.5 else "pink", max(len(s1), len(s2)), RATE
        ),
        float(rng.uniform(-38.0, -30.0)),
    )
    s1, s2, noise = (dsp.pad(x, 0, length - len(x))[:length] for x in (s1, s2, noise))
    # Like LibriMix: if any mixture would clip, scale everything down together.
    peak = max(np.max(np.abs(s1 + s2 + noise)), np.max(np.abs(s1 + noise)), 1e-9)
    scale = min(1.0, 0.9 / peak)
    return (
        (s1 * scale).astype(np.float32),
        (s2 * scale).astype(np.float32),
        (noise * scale).astype(np.float32),
    )


def _write_rttm(ctx: SynthContext, utterances: list[Utterance]) -> None:
    for split in PARTS:
        lines = []
        for u in sorted((u for u in utterances if u.split == split), key=lambda u: u.utterance_id):
            recording = u.utterance_id.split("-", 1)[1]  # "<chapter>-<utt>", as in LibriMix
            start, duration = u.speech_start / RATE, (u.speech_end - u.speech_start) / RATE
            lines.append(
                f"SPEAKER {recording} 1 {start:7.3f} {duration:7.3f} <NA> <NA> {u.speaker} <NA> <NA>\n"
            )
        ctx.write_text(f"metadata/LibriSpeech/{split.replace('-', '_')}.rttm", "".join(lines))


def _snr(signal: np.ndarray, rest: np.ndarray) -> str:
    """SNR of ``signal`` against the rest of the mixture in dB (metrics_*.csv column)."""
    power = np.mean(signal.astype(np.float64) ** 2)
    return f"{10 * np.log10(power / (np.mean(rest.astype(np.float64) ** 2) + 1e-10) + 1e-10):.4f}"


def _csv(header: list[str], rows: list[list[str]]) -> str:
    return ",".join(header) + "\n" + "".join(",".join(row) + "\n" for row in rows)
