"""VoxCeleb1 (speaker identification, SUPERB SID; speaker verification, SUPERB ASV).

Layout (the dev and test archives unpacked side by side, plus the two meta files)::

    dev/wav/id1xxxx/<11-char video id>/<nnnnn>.wav     16 kHz, 16-bit
    test/wav/id10270.../<video>/<nnnnn>.wav            the verification test speakers
    iden_split.txt     "<1|2|3> id10001/<video>/00001.wav"   (1 train, 2 dev, 3 test)
    veri_test.txt      "<1|0> id10270/<video>/00001.wav id10271/<video>/00002.wav"

As in the real corpus, identification uses every speaker and splits each speaker's
recordings by video; verification trains on ``dev/`` and tests on ``test/`` speakers
(ids from 10270). Each video has its own channel and background, so a model has to
learn the voice rather than the recording conditions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechrep.synth import dsp, text
from speechrep.synth.core import SynthContext
from speechrep.synth.voices import sample_speakers

RATE = 16000
FIRST_TEST_ID = 10270
VIDEO_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


@dataclass(frozen=True)
class Size:
    dev_speakers: int
    test_speakers: int
    videos: int  # per speaker (>= 3: one each for identification train/dev/test)
    utterances: int  # per video


SIZES = {"tiny": Size(4, 2, 3, 1), "small": Size(20, 6, 4, 3)}


def build(ctx: SynthContext) -> None:
    """VoxCeleb1 dev/ + test/ wav folders, iden_split.txt and veri_test.txt."""
    size = SIZES[ctx.size]
    plan = _plan(ctx, size)
    ctx.prefetch(p[-1] for p in plan)
    iden_lines = []
    for part, uid, speaker, video_index, request in plan:
        condition = ctx.rng_for("video", uid.rsplit("/", 1)[0])  # shared by the video's clips
        coloured = dsp.channel(condition, ctx.speak(request, RATE), RATE)
        kind = dsp.NOISE_KINDS[int(condition.integers(len(dsp.NOISE_KINDS)))]
        snr_low = float(condition.uniform(8.0, 25.0))
        wav, info = dsp.record(
            ctx.rng_for("recording", uid),
            coloured,
            RATE,
            lead=(0.05, 0.3),
            tail=(0.05, 0.3),
            snr_db=(snr_low, snr_low + 5.0),
            kinds=(kind,),
        )
        ctx.write_audio(
            f"{part}/wav/{uid}",
            wav,
            RATE,
            text=request.text,
            speaker=speaker.name,
            render=[request],
            part=part,
            **info,
        )
        iden_lines.append(f"{_iden_code(video_index, size.videos)} {uid}\n")
    ctx.write_text("iden_split.txt", "".join(iden_lines))
    test_uids = [uid for part, uid, *_ in plan if part == "test"]
    ctx.write_text("veri_test.txt", "".join(_trials(ctx.rng_for("trials"), test_uids)))


def _plan(ctx: SynthContext, size: Size) -> list:
    """(part, "idNNNNN/<video>/<nnnnn>.wav", speaker, video index, request) per utterance."""
    ids = [f"id{10001 + i}" for i in range(size.dev_speakers)]
    ids += [f"id{FIRST_TEST_ID + i}" for i in range(size.test_speakers)]
    genders = [("F", "M")[int(ctx.rng.integers(2))] for _ in ids]
    plan = []
    for speaker in sample_speakers(ctx.rng, ids, genders=genders):
        part = "test" if int(speaker.name[2:]) >= FIRST_TEST_ID else "dev"
        for v in range(size.videos):
            video = _video_id(ctx.rng)
            for n in range(size.utterances):
                rng = ctx.rng_for("text", speaker.name, v, n)
                spoken = " ".join(s.written for s in text.sentences(rng, 2, 5, 8))
                request = speaker.request(
                    spoken,
                    pitch_shift=int(rng.integers(-3, 4)),
                    speed_scale=rng.uniform(0.93, 1.07),
                )
                plan.append((part, f"{speaker.name}/{video}/{n + 1:05d}.wav", speaker, v, request))
    return plan


def _iden_code(video_index: int, videos: int) -> int:
    """iden_split code: the last video is test (3), the one before dev (2), the rest train (1)."""
    return 3 if video_index == videos - 1 else 2 if video_index == videos - 2 else 1


def _video_id(rng: np.random.Generator) -> str:
    return "".join(VIDEO_ALPHABET[int(i)] for i in rng.integers(0, len(VIDEO_ALPHABET), size=11))


def _trials(rng: np.random.Generator, uids: list[str]) -> list[str]:
    """For every test utterance: one same-speaker and one different-speaker trial."""
    lines = []
    for enrol in uids:
        speaker = enrol.split("/")[0]
        same = [u for u in uids if u.split("/")[0] == speaker and u != enrol]
        other = [u for u in uids if u.split("/")[0] != speaker]
        if same:
            lines.append(f"1 {enrol} {same[int(rng.integers(len(same)))]}\n")
        if other:
            lines.append(f"0 {enrol} {other[int(rng.integers(len(other)))]}\n")
    return lines
