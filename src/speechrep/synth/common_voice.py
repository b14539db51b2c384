"""Common Voice (English) with CoVoST 2 en→de translations (SUPERB ST; OOD-ASR).

Layout (a Common Voice release folder such as ``cv-corpus-7.0-2021-07-21/``)::

    en/clips/common_voice_en_<n>.mp3        48 kHz mono MP3, like the real clips
    en/{train,dev,test,validated}.tsv       client_id path sentence up_votes down_votes
                                            age gender accent locale segment
    en/{invalidated,other}.tsv              same header (empty here)
    covost_tsv/covost_v2.en_de.tsv          path translation split  (the CoVoST release file)
    covost_tsv/covost_v2.en_de.{train,dev,test}.tsv   path sentence translation client_id
                                            (what CoVoST's get_covost_splits.py writes)

Speakers do not overlap between train, dev and test. German translations come from the
parallel grammar in :mod:`speechrep.synth.text`.
"""

from __future__ import annotations

from dataclasses import dataclass

from speechrep.synth import dsp, text
from speechrep.synth.core import SynthContext
from speechrep.synth.voices import sample_speakers

RATE = 48000
CV_COLUMNS = tuple(
    "client_id path sentence up_votes down_votes age gender accent locale segment".split()
)
ACCENTS = {
    "en-us": "us",
    "en-us-nyc": "us",
    "en-gb": "england",
    "en-gb-x-rp": "england",
    "en-gb-x-gbclan": "england",
    "en-gb-x-gbcwmd": "england",
    "en-gb-scotland": "scotland",
    "en-029": "bermuda",
}
AGES = ("teens", "twenties", "thirties", "fourties", "fifties", "sixties")


@dataclass(frozen=True)
class Size:
    speakers: dict  # split -> speakers
    clips: dict  # split -> clips per speaker


SIZES = {
    "tiny": Size({"train": 3, "dev": 1, "test": 1}, {"train": 2, "dev": 2, "test": 2}),
    "small": Size({"train": 20, "dev": 4, "test": 4}, {"train": 8, "dev": 5, "test": 5}),
}


def build(ctx: SynthContext) -> None:
    """Common Voice en clips + TSVs, with CoVoST 2 en->de translation TSVs."""
    plan = _plan(ctx, SIZES[ctx.size])
    ctx.prefetch((p[-1] for p in plan), RATE)
    tables: dict[str, list[list[str]]] = {"train": [], "dev": [], "test": []}
    for split, speaker, clip, said, request in plan:
        rng = ctx.rng_for("recording", clip)
        speech = ctx.speak(request, RATE)
        wav, info = dsp.record(
            rng, speech, RATE, lead=(0.3, 1.0), tail=(0.2, 0.8), snr_db=(12.0, 35.0)
        )
        ctx.write_audio(
            f"en/clips/{clip}",
            wav,
            RATE,
            text=said.written,
            speaker=speaker.name,
            render=[request],
            split=split,
            translation=said.german,
            **info,
        )
        profile = ctx.rng_for("profile", speaker.name)
        votes = str(2 + int(profile.integers(3)))
        age = AGES[int(profile.integers(len(AGES)))]
        gender = "female" if speaker.gender == "F" else "male"
        accent = ACCENTS[speaker.voice.split("+")[0]]
        row = [speaker.name, clip, said.written, votes, "0", age, gender, accent, "en", ""]
        tables[split].append(row + [said.german])  # the translation rides along for CoVoST
    _write_tables(ctx, tables)


def _plan(ctx: SynthContext, size: Size) -> list:
    """(split, speaker, clip file name, sentence, request) for every clip."""
    total = sum(size.speakers.values())
    client_ids = [
        "".join(f"{int(b):02x}" for b in ctx.rng.integers(0, 256, 64)) for _ in range(total)
    ]
    speakers = iter(sample_speakers(ctx.rng, client_ids))
    count = sum(size.speakers[s] * size.clips[s] for s in size.clips)
    numbers = iter(int(n) + 10**7 for n in ctx.rng.choice(9 * 10**7, size=count, replace=False))
    plan = []
    for split, num_speakers in size.speakers.items():
        for _ in range(num_speakers):
            speaker = next(speakers)
            for n in range(size.clips[split]):
                rng = ctx.rng_for("text", speaker.name, n)
                said = text.sentence(rng, 4, 8)
                request = speaker.request(said.written, speed_scale=rng.uniform(0.9, 1.1))
                plan.append((split, speaker, f"common_voice_en_{next(numbers)}.mp3", said, request))
    return plan


def _write_tables(ctx: SynthContext, tables: dict[str, list[list[str]]]) -> None:
    splits = ("train", "dev", "test")
    for split in splits:
        ctx.write_text(f"en/{split}.tsv", _tsv(CV_COLUMNS, [r[:-1] for r in tables[split]]))
    validated = [r[:-1] for split in splits for r in tables[split]]
    ctx.write_text("en/validated.tsv", _tsv(CV_COLUMNS, validated))
    for name in ("invalidated", "other"):
        ctx.write_text(f"en/{name}.tsv", _tsv(CV_COLUMNS, []))
    release = [[r[1], r[-1], split] for split in splits for r in tables[split]]
    ctx.write_text(
        "covost_tsv/covost_v2.en_de.tsv", _tsv(("path", "translation", "split"), release)
    )
    for split in splits:
        rows = [[r[1], r[2], r[-1], r[0]] for r in tables[split]]
        header = ("path", "sentence", "translation", "client_id")
        ctx.write_text(f"covost_tsv/covost_v2.en_de.{split}.tsv", _tsv(header, rows))


def _tsv(header, rows) -> str:
    return "\t".join(header) + "\n" + "".join("\t".join(row) + "\n" for row in rows)
