"""VoiceBank-DEMAND at 16 kHz (speech enhancement, SUPERB SE).

Layout (s3prl's ``noisy-vctk-16k`` archive)::

    clean_trainset_28spk_wav_16k/p226_001.wav   noisy_trainset_28spk_wav_16k/p226_001.wav
    clean_testset_wav_16k/p232_001.wav          noisy_testset_wav_16k/p232_001.wav
    trainset_28spk_txt/p226_001.txt             testset_txt/p232_001.txt   (the prompt + newline)

Each noisy file is its clean twin plus a noise at the published SNRs (train 15/10/5/0 dB,
test 17.5/12.5/7.5/2.5 dB); train and test use different noise types. Speaker ids are
the real ones (test p232, p257; SUPERB validates on train speakers p226 and p287).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechrep.synth import dsp, text
from speechrep.synth.core import SynthContext
from speechrep.synth.voices import sample_speakers

RATE = 16000
TRAIN_SPEAKERS = tuple(
    "p226 p287 p227 p228 p230 p231 p233 p236 p239 p243 p244 p250 p254 p256 p258 p259 "
    "p267 p268 p269 p270".split()
)
FEMALE = frozenset(
    "p228 p230 p231 p233 p236 p239 p244 p250 p256 p257 p258 p267 p268 p269 p270".split()
)
TEST_SPEAKERS = ("p232", "p257")
SNRS = {"train": (15.0, 10.0, 5.0, 0.0), "test": (17.5, 12.5, 7.5, 2.5)}
NOISES = {
    "train": ("pink", "brown", "hum", "fan", "babble"),
    "test": ("white", "babble_like", "babble"),
}
FOLDERS = {
    "train": ("clean_trainset_28spk_wav_16k", "noisy_trainset_28spk_wav_16k", "trainset_28spk_txt"),
    "test": ("clean_testset_wav_16k", "noisy_testset_wav_16k", "testset_txt"),
}


@dataclass(frozen=True)
class Size:
    train_speakers: int
    utterances: int  # per speaker


SIZES = {"tiny": Size(4, 2), "small": Size(10, 12)}


def build(ctx: SynthContext) -> None:
    """VoiceBank-DEMAND clean/noisy train and test sets (16 kHz) + prompts."""
    plan = _plan(ctx, SIZES[ctx.size])
    ctx.prefetch(p[-1] for p in plan)
    cleans = {}  # all clean takes first: babble noise is made of other talkers' takes
    for *_, name, _, request in plan:
        speech = ctx.speak(request, RATE)
        cleans[name] = dsp.record(
            ctx.rng_for("clean", name),
            speech,
            RATE,
            lead=(0.2, 0.5),
            tail=(0.2, 0.5),
            snr_db=(55.0, 65.0),
            level_dbfs=(-30.0, -24.0),
        )[0]
    for subset, speaker, name, said, request in plan:
        clean_dir, noisy_dir, text_dir = FOLDERS[subset]
        rng = ctx.rng_for("noisy", name)
        kind = NOISES[subset][int(rng.integers(len(NOISES[subset])))]
        snr = SNRS[subset][int(rng.integers(len(SNRS[subset])))]
        clean = cleans[name]
        if kind == "babble":
            background = _babble(rng, cleans, speaker.name, len(clean))
        else:
            background = dsp.noise(rng, kind, len(clean), RATE)
        noisy = dsp.add_noise(clean, background, snr)
        scale = min(1.0, 0.95 / max(float(np.max(np.abs(noisy))), 1e-9))  # one gain for the pair
        labels = {
            "text": said.written,
            "speaker": speaker.name,
            "render": [request],
            "subset": subset,
        }
        ctx.write_audio(f"{clean_dir}/{name}.wav", clean * scale, RATE, **labels)
        ctx.write_audio(
            f"{noisy_dir}/{name}.wav", noisy * scale, RATE, noise=kind, snr_db=snr, **labels
        )
        ctx.write_text(f"{text_dir}/{name}.txt", said.written + "\n")


def _plan(ctx: SynthContext, size: Size) -> list:
    """(subset, speaker, utterance name, sentence, request) for every utterance."""
    names = list(TRAIN_SPEAKERS[: size.train_speakers]) + list(TEST_SPEAKERS)
    genders = ["F" if n in FEMALE else "M" for n in names]
    plan = []
    for speaker in sample_speakers(ctx.rng, names, genders=genders):
        subset = "test" if speaker.name in TEST_SPEAKERS else "train"
        for n in range(1, size.utterances + 1):
            rng = ctx.rng_for("text", speaker.name, n)
            said = text.sentence(rng, 4, 8)
            request = speaker.request(said.written, speed_scale=rng.uniform(0.95, 1.05))
            plan.append((subset, speaker, f"{speaker.name}_{n:03d}", said, request))
    return plan


def _babble(rng: np.random.Generator, cleans: dict, exclude: str, length: int) -> np.ndarray:
    """Three other talkers at once (speech babble), looped to ``length``."""
    others = sorted(k for k in cleans if not k.startswith(exclude + "_"))
    picks = [
        others[int(i)] for i in rng.choice(len(others), size=min(3, len(others)), replace=False)
    ]
    babble = sum(dsp.fit_length(dsp.set_level(cleans[p], -25.0), length) for p in picks)
    return np.asarray(babble, dtype=np.float32)
