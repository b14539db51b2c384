"""Google Speech Commands v0.01 (keyword spotting, SUPERB KS).

Layout (as the two official archives unpack, side by side)::

    speech_commands_v0.01/<word>/<speakerhash>_nohash_<n>.wav   1 s, 16 kHz, 16-bit
    speech_commands_v0.01/_background_noise_/*.wav               long noise recordings
    speech_commands_v0.01/{validation,testing}_list.txt           "<word>/<file>.wav" lines
    speech_commands_test_set_v0.01/<class>/<hash>_nohash_<n>.wav  10 keywords, _unknown_, _silence_

The validation/testing lists agree with the dataset's published hash rule (sha1 of the
speaker hash, 10 % / 10 %), which is also how s3prl splits the training folder.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from speechrep.synth import dsp
from speechrep.synth.core import SynthContext
from speechrep.synth.voices import Speaker, sample_speakers

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
OTHER_WORDS = tuple(
    "bed bird cat dog eight five four happy house marvin nine one seven sheila six "
    "three tree two wow zero".split()
)
BACKGROUND_NAMES = (
    ("white_noise", "white"),
    ("pink_noise", "pink"),
    ("running_tap", "babble_like"),
    ("exercise_bike", "fan"),
    ("doing_the_dishes", "brown"),
    ("dude_miaowing", "hum"),
)
TRAIN_DIR = "speech_commands_v0.01"
TEST_DIR = "speech_commands_test_set_v0.01"
RATE = 16000
MAX_PER_CLASS = 2**27 - 1  # the dataset's hash modulus


@dataclass(frozen=True)
class Size:
    speakers: dict  # split -> number of speakers (train/valid/test by hash)
    test_set_speakers: int  # speakers of the separate test-set archive
    other_words: int  # how many of OTHER_WORDS are spoken
    repetitions: int  # utterances per speaker and word (_nohash_0.._nohash_{n-1})
    background_seconds: float
    backgrounds: int
    test_silence: int


SIZES = {
    "tiny": Size({"train": 2, "valid": 1, "test": 1}, 1, 3, 1, 3.0, 2, 2),
    "small": Size({"train": 32, "valid": 4, "test": 4}, 6, 20, 1, 20.0, 6, 24),
}


def which_set(file_name: str) -> str:
    """The published split rule: sha1 of the speaker hash decides train/valid/test."""
    speaker = file_name.split("_nohash_")[0]
    value = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)
    percentage = (value % (MAX_PER_CLASS + 1)) * (100.0 / MAX_PER_CLASS)
    return "valid" if percentage < 10 else "test" if percentage < 20 else "train"


def _speaker_hash(rng: np.random.Generator, split: str, taken: set[str]) -> str:
    while True:
        candidate = f"{int(rng.integers(0, 2**32)):08x}"
        if candidate not in taken and which_set(candidate + "_nohash_0.wav") == split:
            taken.add(candidate)
            return candidate


def build(ctx: SynthContext) -> None:
    """Speech Commands v0.01 + its test-set archive (12-class keyword spotting)."""
    size = SIZES[ctx.size]
    plan = _plan(ctx, size)
    ctx.prefetch(item[-1] for item in plan)
    lists: dict[str, list[str]] = {"valid": [], "test": []}
    for folder, file_name, word, split, request in plan:
        relative = f"{folder}/{file_name}"
        wav, info = _clip(ctx, relative, request)
        label = word if word in KEYWORDS else "_unknown_"
        speaker = file_name.split("_")[0]
        ctx.write_audio(
            relative,
            wav,
            RATE,
            text=word,
            speaker=speaker,
            render=[request],
            label=label,
            split=split,
            **info,
        )
        if split in lists:
            lists[split].append(f"{word}/{file_name}")
    for split, file_name in (("valid", "validation_list.txt"), ("test", "testing_list.txt")):
        ctx.write_text(f"{TRAIN_DIR}/{file_name}", "".join(f"{p}\n" for p in sorted(lists[split])))
    _write_backgrounds(ctx, size)


def _plan(ctx: SynthContext, size: Size) -> list:
    """(folder, file name, word, split, request) for every one-second clip."""
    taken: set[str] = set()
    hashes = {
        s: [_speaker_hash(ctx.rng, s, taken) for _ in range(n)] for s, n in size.speakers.items()
    }
    # The separate test-set archive has its own speakers (hashes that fall in "train").
    hashes["testset"] = [
        _speaker_hash(ctx.rng, "train", taken) for _ in range(size.test_set_speakers)
    ]
    names = [h for split in ("train", "valid", "test", "testset") for h in hashes[split]]
    speakers = dict(
        zip(names, sample_speakers(ctx.rng, names, speed_range=(150, 210)), strict=True)
    )
    plan = []
    for split in ("train", "valid", "test"):
        for name in hashes[split]:
            for word in KEYWORDS + OTHER_WORDS[: size.other_words]:
                for n in range(size.repetitions):
                    request = _request(ctx, speakers[name], word, n)
                    plan.append(
                        (f"{TRAIN_DIR}/{word}", f"{name}_nohash_{n}.wav", word, split, request)
                    )
    for name in hashes["testset"]:
        for word in KEYWORDS:
            request = _request(ctx, speakers[name], word, 0)
            plan.append((f"{TEST_DIR}/{word}", f"{name}_nohash_0.wav", word, "testset", request))
        for n in range(2):  # two unknown words per test speaker
            word = OTHER_WORDS[int(ctx.rng.integers(len(OTHER_WORDS)))]
            request = _request(ctx, speakers[name], word, n)
            plan.append(
                (f"{TEST_DIR}/_unknown_", f"{name}_nohash_{n}.wav", word, "testset", request)
            )
    return plan


def _request(ctx: SynthContext, speaker: Speaker, word: str, repetition: int):
    rng = ctx.rng_for("prosody", speaker.name, word, repetition)
    return speaker.request(
        word, pitch_shift=int(rng.integers(-4, 5)), speed_scale=rng.uniform(0.9, 1.1)
    )


def _clip(ctx: SynthContext, relative: str, request) -> tuple[np.ndarray, dict]:
    """One second: the word at a random offset over a quiet background."""
    rng = ctx.rng_for("clip", relative)
    speech = dsp.trim(ctx.speak(request, RATE), sample_rate=RATE)
    if len(speech) > RATE:  # keep the middle second of an unusually slow rendering
        start = (len(speech) - RATE) // 2
        speech = speech[start : start + RATE]
    offset = int(rng.integers(0, RATE - len(speech) + 1))
    clean = dsp.place(dsp.set_level(speech, rng.uniform(-26.0, -16.0)), RATE, offset)
    kind = dsp.NOISE_KINDS[int(rng.integers(len(dsp.NOISE_KINDS)))]
    snr = float(rng.uniform(15.0, 35.0))
    wav = dsp.add_noise(clean, dsp.noise(rng, kind, RATE, RATE), snr)
    return dsp.peak_normalize(wav), {"snr_db": snr, "noise": kind, "speech_start": offset}


def _write_backgrounds(ctx: SynthContext, size: Size) -> None:
    length = int(size.background_seconds * RATE)
    for name, kind in BACKGROUND_NAMES[: size.backgrounds]:
        rng = ctx.rng_for("background", name)
        wav = dsp.set_level(dsp.noise(rng, kind, length, RATE), rng.uniform(-30.0, -18.0))
        ctx.write_audio(
            f"{TRAIN_DIR}/_background_noise_/{name}.wav",
            wav,
            RATE,
            label="_silence_",
            split="train",
            noise=kind,
        )
    for n in range(size.test_silence):
        rng = ctx.rng_for("test-silence", n)
        kind = dsp.NOISE_KINDS[n % len(dsp.NOISE_KINDS)]
        wav = dsp.set_level(dsp.noise(rng, kind, RATE, RATE), rng.uniform(-50.0, -25.0))
        name = f"{int(rng.integers(0, 2**32)):08x}_nohash_{n}.wav"
        ctx.write_audio(
            f"{TEST_DIR}/_silence_/{name}",
            wav,
            RATE,
            label="_silence_",
            split="testset",
            noise=kind,
        )
