"""LibriSpeech (ASR, phoneme recognition; also the source of Libri2Mix).

Layout (as the openslr archives unpack into ``LibriSpeech/``)::

    <split>/<speaker>/<chapter>/<speaker>-<chapter>-<nnnn>.flac      16 kHz, 16-bit FLAC
    <split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt        "<utt-id> UPPER CASE TEXT"
    SPEAKERS.TXT, CHAPTERS.TXT                                        "|"-separated tables
    librispeech-lexicon.txt                                           "WORD<TAB>AH0 B ..." (ARPAbet)

Splits: train-clean-100, dev-clean, test-clean and test-other (noisier, filtered channel).
All talkers use espeak's en-us pronunciation so the lexicon matches the audio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechrep.synth import dsp, text
from speechrep.synth.core import SynthContext
from speechrep.synth.lexicon import build_lexicon, format_lexicon
from speechrep.synth.voices import Speaker, sample_speakers

RATE = 16000


@dataclass(frozen=True)
class SplitSize:
    speakers: int
    chapters: int  # per speaker
    utterances: int  # per chapter


SIZES = {
    "tiny": {
        "train-clean-100": SplitSize(3, 1, 3),
        "dev-clean": SplitSize(2, 1, 2),
        "test-clean": SplitSize(2, 1, 2),
        "test-other": SplitSize(1, 1, 2),
    },
    "small": {
        "train-clean-100": SplitSize(20, 2, 5),
        "dev-clean": SplitSize(6, 1, 5),
        "test-clean": SplitSize(6, 1, 5),
        "test-other": SplitSize(4, 1, 5),
    },
}


@dataclass(frozen=True)
class Utterance:
    """One written utterance (what Libri2Mix needs to reuse it)."""

    split: str
    speaker: str
    utterance_id: str  # "<speaker>-<chapter>-<nnnn>"
    relative: str  # path under the corpus root
    wav: np.ndarray  # the samples written (before 16-bit quantisation)
    speech_start: int  # samples
    speech_end: int  # samples


def build(ctx: SynthContext) -> None:
    """LibriSpeech train-clean-100 / dev-clean / test-clean / test-other + lexicon."""
    write_librispeech(ctx, "", SIZES[ctx.size])


def write_librispeech(
    ctx: SynthContext, prefix: str, sizes: dict[str, SplitSize]
) -> list[Utterance]:
    """Write the corpus under ``prefix`` (``""`` or ``"LibriSpeech/"``); return its utterances."""
    speakers, chapters = _plan_speakers(ctx, sizes)
    plan = _plan_utterances(ctx, sizes, speakers, chapters)
    ctx.prefetch(p[-1] for p in plan)
    utterances, transcripts = [], {}
    for split, speaker, chapter, utterance_id, said, request in plan:
        folder = f"{prefix}{split}/{speaker.name}/{chapter}"
        relative = f"{folder}/{utterance_id}.flac"
        wav, info, end = _recording(ctx, split, relative, ctx.speak(request, RATE))
        transcript = " ".join(s.upper for s in said)
        ctx.write_audio(
            relative,
            wav,
            RATE,
            text=transcript,
            speaker=speaker.name,
            render=[request],
            split=split,
            chapter=chapter,
            **info,
        )
        trans_file = f"{folder}/{speaker.name}-{chapter}.trans.txt"
        transcripts.setdefault(trans_file, []).append(f"{utterance_id} {transcript}\n")
        start = info["speech_start"]
        utterances.append(Utterance(split, speaker.name, utterance_id, relative, wav, start, end))
    for path, lines in transcripts.items():
        ctx.write_text(path, "".join(lines))
    _write_tables(ctx, prefix, speakers, chapters, utterances)
    lexicon = build_lexicon(text.vocabulary(), voice="en-us")
    ctx.write_text(f"{prefix}librispeech-lexicon.txt", format_lexicon(lexicon))
    return utterances


def _plan_utterances(ctx: SynthContext, sizes: dict[str, SplitSize], speakers, chapters) -> list:
    """(split, speaker, chapter, utterance id, sentences, request): one or two sentences each."""
    plan = []
    for split, size in sizes.items():
        for speaker in speakers[split]:
            for chapter in chapters[speaker.name]:
                for n in range(size.utterances):
                    rng = ctx.rng_for("text", speaker.name, chapter, n)
                    said = text.sentences(rng, 1 + int(rng.integers(2)), 4, 8)
                    spoken = " ".join(s.written for s in said)
                    request = speaker.request(spoken, speed_scale=rng.uniform(0.95, 1.05))
                    plan.append(
                        (
                            split,
                            speaker,
                            chapter,
                            f"{speaker.name}-{chapter}-{n:04d}",
                            said,
                            request,
                        )
                    )
    return plan


def _plan_speakers(ctx: SynthContext, sizes: dict[str, SplitSize]):
    total = sum(s.speakers for s in sizes.values())
    ids = [str(i) for i in sorted(ctx.rng.choice(np.arange(19, 9000), size=total, replace=False))]
    ids = [ids[i] for i in ctx.rng.permutation(total)]
    pool = sample_speakers(ctx.rng, ids, accents=("en-us",), speed_range=(150, 190))
    chapter_ids = iter(
        int(c)
        for c in ctx.rng.choice(
            np.arange(1000, 300000),
            size=sum(s.speakers * s.chapters for s in sizes.values()),
            replace=False,
        )
    )
    speakers: dict[str, list[Speaker]] = {}
    chapters: dict[str, list[int]] = {}
    start = 0
    for split, size in sizes.items():
        speakers[split] = sorted(pool[start : start + size.speakers], key=lambda s: int(s.name))
        start += size.speakers
        for speaker in speakers[split]:
            chapters[speaker.name] = sorted(next(chapter_ids) for _ in range(size.chapters))
    return speakers, chapters


def _recording(ctx: SynthContext, split: str, relative: str, speech: np.ndarray):
    rng = ctx.rng_for("recording", relative)
    if split.endswith("other"):  # harder condition: noisier, coloured channel
        wav, info = dsp.record(rng, dsp.channel(rng, speech, RATE), RATE, snr_db=(8.0, 18.0))
    else:
        wav, info = dsp.record(rng, speech, RATE, snr_db=(35.0, 50.0))
    speech_length = len(dsp.trim(np.asarray(speech, dtype=np.float32), sample_rate=RATE))
    return wav, info, info["speech_start"] + speech_length


def _write_tables(
    ctx: SynthContext, prefix: str, speakers, chapters, utterances: list[Utterance]
) -> None:
    minutes: dict[str, float] = {}
    for u in utterances:
        minutes[u.speaker] = minutes.get(u.speaker, 0.0) + len(u.wav) / RATE / 60
    speaker_lines = [";ID  |SEX| SUBSET           |MINUTES| NAME\n"]
    chapter_lines = [
        ";ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE | PROJECT TITLE\n"
    ]
    rows = sorted(((int(s.name), s, split) for split, group in speakers.items() for s in group))
    for _, speaker, split in rows:
        speaker_lines.append(
            f"{speaker.name:<5}| {speaker.gender} | {split:<17}| {minutes[speaker.name]:5.2f} "
            f"| espeak-ng {speaker.voice}\n"
        )
        for chapter in chapters[speaker.name]:
            chapter_lines.append(
                f"{chapter:<7}| {speaker.name:<5}| {minutes[speaker.name]:5.2f} | {split:<17}"
                f"| 0    | 0     | Chapter {chapter} | Synthetic readings\n"
            )
    header = "; Synthetic readers (espeak-ng voices); columns as in the LibriSpeech release.\n;\n"
    ctx.write_text(f"{prefix}SPEAKERS.TXT", header + "".join(speaker_lines))
    ctx.write_text(f"{prefix}CHAPTERS.TXT", header + "".join(chapter_lines))
