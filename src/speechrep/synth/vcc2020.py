"""Voice Conversion Challenge 2020 (SUPERB VC: any-to-one conversion to TEF1/TEF2/TEM1/TEM2).

Layout (as s3prl's ``data_download.sh`` arranges the release)::

    <SPK>/<E|F|G|M><1|2|3>xxxx.wav     24 kHz, 16-bit, like the real corpus
        sources SEF1 SEF2 SEM1 SEM2: E1xxxx (training) + E3xxxx (evaluation)
        task-1 targets TEF1 TEF2 TEM1 TEM2: E1xxxx (parallel with the sources) + E2xxxx
        task-2 targets TFF1 TFM1 (Finnish), TGF1 TGM1 (German), TMF1 TMM1 (Mandarin): F/G/M1xxxx
    prompts/{Eng,Fin,Ger,Man}_transcriptions.txt   "<utt-id> <text>"
    lists/{E,F,G,M}_{train,dev}_list.txt, lists/eval_list.txt, lists/ref_list.txt   utterance ids

As in the release, E1 numbers are the same sentence for every English speaker (the
parallel part) while E2 sentences are spoken by targets only.
"""

from __future__ import annotations

from dataclasses import dataclass

from speechrep.synth import dsp, text
from speechrep.synth.core import SynthContext
from speechrep.synth.espeak import SpeakRequest
from speechrep.synth.voices import sample_speakers

RATE = 24000
SOURCES = ("SEF1", "SEF2", "SEM1", "SEM2")
TARGETS = ("TEF1", "TEF2", "TEM1", "TEM2")
CROSS_LINGUAL = {"TFF1": "F", "TFM1": "F", "TGF1": "G", "TGM1": "G", "TMF1": "M", "TMM1": "M"}
LANGUAGE_VOICES = {"E": "en-us", "F": "fi", "G": "de", "M": "cmn"}
PROMPT_FILES = {"E": "Eng", "F": "Fin", "G": "Ger", "M": "Man"}


@dataclass(frozen=True)
class Size:
    nonparallel: int  # sources' E1 lines not spoken by targets (= targets' E2 lines)
    parallel: int  # E1 lines spoken by sources and targets
    dev: int  # last E1 lines held out as dev
    evaluation: int  # sources' E3 lines
    cross_lingual: int  # utterances per task-2 target


SIZES = {"tiny": Size(2, 2, 1, 2, 3), "small": Size(20, 10, 5, 10, 12)}


def build(ctx: SynthContext) -> None:
    """VCC2020 source/target speaker folders (24 kHz), prompts and lists."""
    size = SIZES[ctx.size]
    names = list(SOURCES + TARGETS + tuple(CROSS_LINGUAL))
    speakers = {s.name: s for s in sample_speakers(ctx.rng, names, genders=[n[2] for n in names])}
    prompts = _prompts(ctx, size)
    plan = []  # (speaker, utterance id, text, request)
    for name in names:
        for utt in _utterances(name, size):
            speaker = speakers[name]
            voice = f"{LANGUAGE_VOICES[utt[0]]}+{speaker.voice.split('+')[1]}"
            plan.append(
                (
                    name,
                    utt,
                    prompts[utt],
                    SpeakRequest(prompts[utt], voice, speaker.pitch, speaker.speed),
                )
            )
    ctx.prefetch((p[-1] for p in plan), RATE)
    for name, utt, said, request in plan:
        wav, info = dsp.record(
            ctx.rng_for("recording", name, utt),
            ctx.speak(request, RATE),
            RATE,
            lead=(0.1, 0.3),
            tail=(0.1, 0.3),
            snr_db=(40.0, 55.0),
        )
        ctx.write_audio(
            f"{name}/{utt}.wav", wav, RATE, text=said, speaker=name, render=[request], **info
        )
    for letter, label in PROMPT_FILES.items():
        lines = [f"{utt} {said}\n" for utt, said in sorted(prompts.items()) if utt[0] == letter]
        ctx.write_text(f"prompts/{label}_transcriptions.txt", "".join(lines))
    _write_lists(ctx, size)


def _ids(letter: str, block: int, first: int, count: int) -> list[str]:
    return [f"{letter}{block}{n:04d}" for n in range(first, first + count)]


def _utterances(name: str, size: Size) -> list[str]:
    e1 = size.nonparallel + size.parallel
    if name in SOURCES:
        return _ids("E", 1, 1, e1) + _ids("E", 3, 1, size.evaluation)
    if name in TARGETS:
        return _ids("E", 1, size.nonparallel + 1, size.parallel) + _ids("E", 2, 1, size.nonparallel)
    return _ids(CROSS_LINGUAL[name], 1, 1, size.cross_lingual)


def _prompts(ctx: SynthContext, size: Size) -> dict[str, str]:
    rng = ctx.rng_for("prompts")
    e1 = size.nonparallel + size.parallel
    english = text.sentences(rng, e1 + size.nonparallel + size.evaluation, 4, 8)
    ids = _ids("E", 1, 1, e1) + _ids("E", 2, 1, size.nonparallel) + _ids("E", 3, 1, size.evaluation)
    prompts = {utt: s.written for utt, s in zip(ids, english, strict=True)}
    german = text.sentences(rng, size.cross_lingual, 4, 8)
    for n in range(size.cross_lingual):
        prompts[f"F1{n + 1:04d}"] = text.FINNISH[n % len(text.FINNISH)]
        prompts[f"G1{n + 1:04d}"] = german[n].german
        prompts[f"M1{n + 1:04d}"] = text.MANDARIN[n % len(text.MANDARIN)]
    return prompts


def _write_lists(ctx: SynthContext, size: Size) -> None:
    e1 = size.nonparallel + size.parallel
    lists = {
        "E_train": _ids("E", 1, 1, e1 - size.dev) + _ids("E", 2, 1, size.nonparallel),
        "E_dev": _ids("E", 1, e1 - size.dev + 1, size.dev),
        "eval": _ids("E", 3, 1, size.evaluation),
        "ref": _ids("E", 2, 1, size.nonparallel),
    }
    cross_dev = max(1, size.cross_lingual // 6)
    for letter in ("F", "G", "M"):
        lists[f"{letter}_train"] = _ids(letter, 1, 1, size.cross_lingual - cross_dev)
        lists[f"{letter}_dev"] = _ids(letter, 1, size.cross_lingual - cross_dev + 1, cross_dev)
    for name, ids in lists.items():
        ctx.write_text(f"lists/{name}_list.txt", "".join(f"{i}\n" for i in ids))
