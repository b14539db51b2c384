"""Audio SNIPS as prepared for SUPERB slot filling (SF).

Layout (``SNIPS/``, after s3prl's preparation of the AWS noisy-SLU release)::

    {train,valid,test}/<Speaker>-snips-<split>-<n>.wav        16 kHz, 16-bit
    all.iob.snips.txt   "<Speaker>-snips-<split>-<n> BOS TEXT EOS\\tO <slot per word> <Intent>"
    slots.txt           "O" first, then slot names by decreasing frequency, no final newline

Speakers carry the 16 Amazon Polly names of the real corpus; SUPERB's split assigns
whole speakers to train (8), valid (4) and test (4). Every speaker of a split reads the
same sentences, as in the real release. Words outside a slot are tagged ``O``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechrep.synth import dsp
from speechrep.synth.core import SynthContext
from speechrep.synth.voices import sample_speakers

RATE = 16000
SPLIT_SPEAKERS = {
    "train": ("Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli"),
    "valid": ("Aditi", "Amy", "Geraint", "Nicole"),
    "test": ("Brian", "Emma", "Raveena", "Russell"),
}
MALE = {"Joey", "Justin", "Matthew", "Geraint", "Brian", "Russell"}

# intent -> templates; {slot} fills from SLOT_VALUES[slot] (several words keep one tag).
TEMPLATES = {
    "AddToPlaylist": (
        "add {artist} to my {playlist} playlist",
        "put this {music_item} on {playlist}",
    ),
    "BookRestaurant": (
        "book a table for {party_size_number} in {city}",
        "reserve a {restaurant_type} for {party_size_number} people",
    ),
    "GetWeather": (
        "what is the weather in {city} {timeRange}",
        "will it be {condition_description} in {city}",
    ),
    "PlayMusic": ("play {artist} on {service}", "play some {genre} music"),
    "RateBook": (
        "rate this {object_type} {rating_value} out of {best_rating}",
        "give {object_name} {rating_value} stars",
    ),
    "SearchCreativeWork": (
        "find the {object_type} {object_name}",
        "show me the {object_type} {object_name}",
    ),
    "SearchScreeningEvent": (
        "find movie times for {movie_name}",
        "what films are showing {timeRange}",
    ),
}
SLOT_VALUES = {
    "artist": ("adele", "the beatles", "miles davis", "taylor swift"),
    "playlist": ("road trip", "morning coffee", "workout", "chill evening"),
    "music_item": ("song", "track", "album"),
    "party_size_number": ("two", "four", "six"),
    "city": ("paris", "london", "boston", "tokyo"),
    "restaurant_type": ("restaurant", "bistro", "pizzeria"),
    "timeRange": ("tomorrow", "tonight", "this weekend"),
    "condition_description": ("rainy", "sunny", "windy"),
    "service": ("spotify", "youtube", "deezer"),
    "genre": ("jazz", "rock", "pop", "blues"),
    "object_type": ("book", "novel", "album"),
    "rating_value": ("one", "three", "five"),
    "best_rating": ("five", "six"),
    "object_name": ("the silent river", "winter garden", "the old ship"),
    "movie_name": ("the lost city", "summer nights", "the blue door"),
}


@dataclass(frozen=True)
class Size:
    sentences: dict  # split -> sentences read by each speaker of that split


SIZES = {
    "tiny": Size({"train": 3, "valid": 2, "test": 2}),
    "small": Size({"train": 42, "valid": 10, "test": 10}),
}


def build(ctx: SynthContext) -> None:
    """Audio SNIPS {train,valid,test}/*.wav + all.iob.snips.txt + slots.txt (slot filling)."""
    size = SIZES[ctx.size]
    names = [n for split in ("train", "valid", "test") for n in SPLIT_SPEAKERS[split]]
    speakers = dict(
        zip(
            names,
            sample_speakers(ctx.rng, names, genders=["M" if n in MALE else "F" for n in names]),
            strict=True,
        )
    )
    plan, lines, slot_counts = [], [], {"O": 0}
    for split in ("train", "valid", "test"):
        for n in range(size.sentences[split]):
            intent = tuple(TEMPLATES)[n % len(TEMPLATES)]
            words, tags = _sentence(ctx.rng_for("text", split, n), intent)
            for tag in tags:
                slot_counts[tag] = slot_counts.get(tag, 0) + 1
            for name in SPLIT_SPEAKERS[split]:
                uid = f"{name}-snips-{split}-{n}"
                rng = ctx.rng_for("prosody", uid)
                request = speakers[name].request(
                    " ".join(words), pitch_shift=int(rng.integers(-3, 4))
                )
                plan.append((split, uid, name, words, tags, intent, request))
                upper = " ".join(words).upper()
                lines.append(f"{uid} BOS {upper} EOS\tO {' '.join(tags)} {intent}\n")
    ctx.prefetch(p[-1] for p in plan)
    for split, uid, name, words, tags, intent, request in plan:
        wav, info = dsp.record(
            ctx.rng_for("recording", uid), ctx.speak(request, RATE), RATE, snr_db=(20.0, 40.0)
        )
        ctx.write_audio(
            f"{split}/{uid}.wav",
            wav,
            RATE,
            text=" ".join(words).upper(),
            speaker=name,
            render=[request],
            split=split,
            intent=intent,
            slots=" ".join(tags),
            **info,
        )
    ctx.write_text("all.iob.snips.txt", "".join(lines))
    # slots.txt: "O" (the most frequent tag) first, then by decreasing count; no trailing newline.
    ordered = sorted(slot_counts, key=lambda s: (s != "O", -slot_counts[s], s))
    ctx.write_text("slots.txt", "\n".join(ordered))


def _sentence(rng: np.random.Generator, intent: str) -> tuple[list[str], list[str]]:
    """(words, per-word slot tags) for one filled template of ``intent``."""
    templates = TEMPLATES[intent]
    words, tags = [], []
    for token in templates[int(rng.integers(len(templates)))].split():
        if token.startswith("{"):
            slot = token.strip("{}")
            values = SLOT_VALUES[slot]
            value = values[int(rng.integers(len(values)))].split()
            words += value
            tags += [slot] * len(value)
        else:
            words.append(token)
            tags.append("O")
    return words, tags
