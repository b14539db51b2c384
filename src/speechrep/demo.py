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
BASELINES = ("fbank", "mfcc")
# (method, steps): tiny configs that visibly learn on the synthetic corpus in well under a minute
PRETRAIN = (("apc", 60), ("tera", 300))
CORPUS_SIZE = "small"
UPSTREAMS = BASELINES + tuple(method for method, _ in PRETRAIN)
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
    losses: dict[str, tuple[float, float]] = field(default_factory=dict)  # method -> first, last


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


def make_corpus(state: DemoRun) -> str:
    """An unlabelled audio folder for pretraining (``speechrep synth audio_folder --size small``)."""
    from speechrep.synth import synthesize

    corpus = state.out / "corpus"
    made = not corpus.is_dir()
    if made:
        synthesize("audio_folder", corpus, size=CORPUS_SIZE, seed=0)
    count = sum(1 for p in corpus.rglob("*.wav"))
    return f"{count} utterances in {corpus} ({'synthesised now' if made else 'reused'})"


def pretrain_upstreams(state: DemoRun) -> str:
    """Pretrain tiny APC and TERA models on the corpus (``speechrep pretrain METHOD -c tiny``)."""
    import json

    from speechrep.pretrain.run import pretrain

    for method, steps in PRETRAIN:
        expdir = state.out / "pretrain" / method
        results_file = expdir / "results.json"
        if not results_file.is_file():
            pretrain(method, state.out / "corpus", expdir, config="tiny",
                     overrides=[f"train.total_steps={steps}", f"train.save_every={steps}"])
        results = json.loads(results_file.read_text())
        state.losses[method] = (results["first_loss"], results["last_loss"])
    return ", ".join(
        f"{m}: loss {first:.3f} -> {last:.3f}" for m, (first, last) in state.losses.items()
    )


def _upstream_for(state: DemoRun, name: str):
    from speechrep.upstream import load_upstream

    return load_upstream(name if name in BASELINES else state.out / "pretrain" / name)


def extract_features(state: DemoRun) -> str:
    """Run every upstream (baselines and the models just trained) over the sentences."""
    from speechrep.extract import ExtractOptions, extract

    written = 0
    for name in UPSTREAMS:
        result = extract(
            _upstream_for(state, name),
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


def export_s3prl(state: DemoRun) -> str:
    """Write the trained TERA in s3prl's checkpoint layout and check it reloads identically."""
    import torch

    from speechrep.convert.cli import convert
    from speechrep.upstream import load_upstream

    target = state.out / "export" / "tera_s3prl.ckpt"
    if not target.is_file():
        convert(state.out / "pretrain" / "tera", target, to="s3prl")
    wav = torch.randn(1, SAMPLE_RATE) * 0.1
    lens = torch.tensor([SAMPLE_RATE])
    with torch.no_grad():
        ours = _upstream_for(state, "tera")(wav, lens).hidden_states
        again = load_upstream(target)(wav, lens).hidden_states
    worst = max(float((a - b).abs().max()) for a, b in zip(ours, again, strict=True))
    if worst > 0:
        raise RuntimeError(f"{target} reloads with different outputs (max difference {worst:.2e})")
    return f"{target} ({len(ours)} hidden states, identical after reload)"


STEPS: tuple[Step, ...] = (
    Step("synthesise", "speak a few sentences with espeak-ng", synthesise),
    Step("corpus", "a synthetic unlabelled corpus for pretraining", make_corpus),
    Step("pretrain", "tiny APC and TERA models with `speechrep pretrain`", pretrain_upstreams),
    Step("extract", "baseline and pretrained features with `speechrep extract`", extract_features),
    Step("export", "the trained TERA as an s3prl checkpoint", export_s3prl),
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
