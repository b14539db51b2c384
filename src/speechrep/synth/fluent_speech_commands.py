"""Fluent Speech Commands (intent classification, SUPERB IC).

Layout (``fluent_speech_commands_dataset/``)::

    wavs/speakers/<speakerId>/<uuid>.wav                       16 kHz, 16-bit
    data/{train,valid,test}_data.csv   ",path,speakerId,transcription,action,object,location"

The CSVs start with an unnamed pandas index column; ``path`` is relative to the root.
Intents are the real (action, object, location) triples; speakers do not overlap
between splits and every slot value of valid/test also occurs in train.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass

from speechrep.synth import dsp
from speechrep.synth.core import SynthContext
from speechrep.synth.voices import sample_speakers

RATE = 16000
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

# (transcription, action, object, location) — phrasings from the real command set.
COMMANDS = (
    ("Turn on the lights", "activate", "lights", "none"),
    ("Turn off the lights", "deactivate", "lights", "none"),
    ("Turn on the kitchen lights", "activate", "lights", "kitchen"),
    ("Turn off the lights in the bedroom", "deactivate", "lights", "bedroom"),
    ("Switch on the washroom lights", "activate", "lights", "washroom"),
    ("Increase the volume", "increase", "volume", "none"),
    ("Turn the volume down", "decrease", "volume", "none"),
    ("Increase the heating in the kitchen", "increase", "heat", "kitchen"),
    ("Decrease the temperature in the bedroom", "decrease", "heat", "bedroom"),
    ("Make it warmer in the washroom", "increase", "heat", "washroom"),
    ("Bring me the newspaper", "bring", "newspaper", "none"),
    ("Get me some juice", "bring", "juice", "none"),
    ("Fetch my socks", "bring", "socks", "none"),
    ("Bring me my shoes", "bring", "shoes", "none"),
    ("Play the music", "activate", "music", "none"),
    ("Stop the music", "deactivate", "music", "none"),
    ("Turn the lamp on", "activate", "lamp", "none"),
    ("Turn the lamp off", "deactivate", "lamp", "none"),
    ("Change language", "change language", "none", "none"),
    ("Switch the language to Chinese", "change language", "Chinese", "none"),
    ("Set my language to Korean", "change language", "Korean", "none"),
    ("Use German", "change language", "German", "none"),
    ("Language English please", "change language", "English", "none"),
    ("Decrease the heating", "decrease", "heat", "none"),
)


@dataclass(frozen=True)
class Size:
    speakers: dict  # split -> speaker count
    commands: int  # how many of COMMANDS are used
    eval_commands: int  # commands each valid/test speaker says (train speakers say all)


SIZES = {
    "tiny": Size({"train": 3, "valid": 1, "test": 1}, 8, 4),
    "small": Size({"train": 12, "valid": 3, "test": 3}, len(COMMANDS), len(COMMANDS)),
}


def build(ctx: SynthContext) -> None:
    """Fluent Speech Commands wavs/ + data/{train,valid,test}_data.csv (intents)."""
    plan = _plan(ctx, SIZES[ctx.size])
    ctx.prefetch(p[-1] for p in plan)
    rows: dict[str, list[list[str]]] = {"train": [], "valid": [], "test": []}
    for split, speaker, (transcription, action, obj, location), request in plan:
        rng = ctx.rng_for("recording", speaker.name, transcription)
        high, low = int(rng.integers(0, 2**63)), int(rng.integers(0, 2**63))
        file_id = uuid.UUID(int=high << 64 | low, version=1)
        relative = f"wavs/speakers/{speaker.name}/{file_id}.wav"
        wav, info = dsp.record(rng, ctx.speak(request, RATE), RATE, snr_db=(15.0, 35.0))
        intent = {"action": action, "object": obj, "location": location}
        ctx.write_audio(
            relative,
            wav,
            RATE,
            text=transcription,
            speaker=speaker.name,
            render=[request],
            split=split,
            **intent,
            **info,
        )
        rows[split].append([relative, speaker.name, transcription, action, obj, location])
    for split, split_rows in rows.items():
        ctx.write_text(f"data/{split}_data.csv", _csv(split_rows))


def _plan(ctx: SynthContext, size: Size) -> list:
    """(split, speaker, command, request): train speakers say every command."""
    commands = COMMANDS[: size.commands]
    total = sum(size.speakers.values())
    alphabet = len(ID_ALPHABET)
    names = [
        "".join(ID_ALPHABET[int(i)] for i in ctx.rng.integers(0, alphabet, 16))
        for _ in range(total)
    ]
    speakers = iter(sample_speakers(ctx.rng, names))
    plan = []
    for split, count in size.speakers.items():
        for _ in range(count):
            speaker = next(speakers)
            said = commands
            if split != "train":
                said = [
                    commands[int(i)]
                    for i in ctx.rng.permutation(len(commands))[: size.eval_commands]
                ]
            for command in said:
                rng = ctx.rng_for("prosody", speaker.name, command[0])
                request = speaker.request(
                    command[0],
                    pitch_shift=int(rng.integers(-4, 5)),
                    speed_scale=rng.uniform(0.9, 1.1),
                )
                plan.append((split, speaker, command, request))
    return plan


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["", "path", "speakerId", "transcription", "action", "object", "location"])
    for index, row in enumerate(rows):
        writer.writerow([index, *row])
    return out.getvalue()
