"""``speechrep demo``: a small run of the whole pipeline on speech synthesised on the spot.

The run is a list of steps sharing one :class:`DemoRun`; each step reads what earlier steps
left there and adds its own results, so later stages plug in as further steps. Every step
resumes: a second run with the same ``--out`` reuses what is already written.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# (utterance id, espeak voice, text): a few voices and lengths
SENTENCES = (
    ("utt01_us_male", "en-us+m3", "The quick brown fox jumps over the lazy dog."),
    ("utt02_gb_female", "en-gb+f3", "Speech representations are learned from unlabelled audio."),
    ("utt03_us_female", "en-us+f2", "Seven, eight, nine."),
    ("utt04_scotland", "en-gb-scotland+m2", "Every frame counts, even the last one."),
    ("utt05_rp_female", "en-gb-x-rp+f4", "Yes."),
)
UPSTREAMS = ("fbank", "mfcc")
SAMPLE_RATE = 16000


@dataclass
class DemoRun:
    """State shared by the steps: the output folder and what each step produced."""

    out: Path
    audio: dict[str, Path] = field(default_factory=dict)  # utterance id -> wav
    seconds: dict[str, float] = field(default_factory=dict)
    features: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=dict
    )  # upstream -> id -> row


@dataclass(frozen=True)
class Step:
    name: str
    description: str
    run: Callable[[DemoRun], str]  # returns a one-line summary


def synthesise(state: DemoRun) -> str:
    """Speak each sentence with espeak-ng into ``out/audio/<id>.wav`` (16 kHz, 16-bit)."""
    import soundfile as sf

    from speechrep.audio import save_audio
    from speechrep.synth.espeak import speak

    made = 0
    for utt_id, voice, text in SENTENCES:
        path = state.out / "audio" / f"{utt_id}.wav"
        if not path.is_file():
            save_audio(path, speak(text, voice=voice, sample_rate=SAMPLE_RATE), SAMPLE_RATE)
            made += 1
        state.audio[utt_id] = path
        state.seconds[utt_id] = sf.info(str(path)).duration
    return f"{len(SENTENCES)} utterances in {state.out / 'audio'} ({made} synthesised now)"


def extract_features(state: DemoRun) -> str:
    """Run each baseline upstream over the audio folder with the ``extract`` machinery."""
    from speechrep.extract import ExtractOptions, extract
    from speechrep.upstream import load_upstream

    written = 0
    for name in UPSTREAMS:
        result = extract(
            load_upstream(name),
            [state.out / "audio"],
            state.out / "features" / name,
            ExtractOptions(label=name, progress=False),
        )
        if result.failures:
            listing = "; ".join(f"{path}: {reason}" for path, reason in result.failures)
            raise RuntimeError(f"extracting {name} failed for {listing}")
        state.features[name] = {row["id"]: row for row in result.index}
        written += result.written
    return (
        f"{', '.join(UPSTREAMS)} features in {state.out / 'features'} ({written} files written now)"
    )


def report(state: DemoRun) -> str:
    """Print one row per utterance: seconds, then frames x dims per upstream."""
    from safetensors import safe_open

    header = ["utterance", "seconds", *UPSTREAMS]
    rows = [header]
    for utt_id in sorted(state.audio):
        cells = [utt_id, f"{state.seconds[utt_id]:.2f}"]
        for name in UPSTREAMS:
            row = state.features[name][utt_id]
            with safe_open(
                str(state.out / "features" / name / row["file"]), framework="pt"
            ) as handle:
                frames, dims = handle.get_slice(f"layer_{row['layers'][-1]}").get_shape()
            cells.append(f"{frames} x {dims}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  "
            + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return f"{len(rows) - 1} utterances x {len(UPSTREAMS)} upstreams"


STEPS: tuple[Step, ...] = (
    Step("synthesise", "speak a few sentences with espeak-ng", synthesise),
    Step("extract", "baseline features with `speechrep extract`", extract_features),
    Step("report", "what was produced", report),
)


def run_demo(out: str | Path) -> DemoRun:
    """Run every step in order, printing a numbered heading and a summary for each."""
    state = DemoRun(out=Path(out))
    for number, step in enumerate(STEPS, start=1):
        print(f"[{number}/{len(STEPS)}] {step.name}: {step.description}", flush=True)
        start = time.perf_counter()
        summary = step.run(state)
        print(f"    {summary} ({time.perf_counter() - start:.1f} s)", flush=True)
    return state


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")


def run(args: argparse.Namespace) -> int:
    run_demo(args.out)
    return 0
