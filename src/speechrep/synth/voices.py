"""Synthetic speakers: an espeak accent × voice variant × base pitch × base speed.

Variants change the formant frequencies, breathiness and pitch contour; together with
the accent, pitch and speed they give voices that a speaker-identification model can
tell apart. Only natural-sounding variants are used (no whisper/robot/croak voices).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechrep.synth.espeak import SpeakRequest

ENGLISH_ACCENTS = tuple(
    "en-us en-gb en-gb-scotland en-gb-x-rp en-gb-x-gbclan en-gb-x-gbcwmd en-029 en-us-nyc".split()
)
MALE_VARIANTS = tuple(
    "m1 m2 m3 m4 m5 m6 m7 m8 adam Alex Andy benjamin caleb david ed edward john max "
    "Michael Mike norbert paul rob robert travis victor zac Lee".split()
)
FEMALE_VARIANTS = tuple(
    "f1 f2 f3 f4 f5 Alicia Andrea Annie anika aunty belinda linda steph steph2 steph3".split()
)


@dataclass(frozen=True)
class Speaker:
    """One synthetic talker. ``voice`` is the espeak voice string (accent+variant)."""

    name: str
    voice: str
    gender: str  # "M" or "F"
    pitch: int  # base pitch 0..99
    speed: int  # base words per minute

    def request(
        self,
        text: str,
        pitch_shift: int = 0,
        speed_scale: float = 1.0,
        amplitude: int = 100,
        intonation: str = "medium",
    ) -> SpeakRequest:
        """A rendering of ``text`` by this speaker, optionally with a prosody change."""
        pitch = int(np.clip(self.pitch + pitch_shift, 0, 99))
        speed = int(np.clip(round(self.speed * speed_scale), 80, 450))
        return SpeakRequest(text, self.voice, pitch, speed, int(amplitude), intonation)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "voice": self.voice,
            "gender": self.gender,
            "pitch": self.pitch,
            "speed": self.speed,
        }


def sample_speakers(
    rng: np.random.Generator,
    names: list[str],
    genders: list[str] | None = None,
    accents: tuple[str, ...] = ENGLISH_ACCENTS,
    speed_range: tuple[int, int] = (145, 200),
) -> list[Speaker]:
    """Distinct speakers, one per name.

    Args:
        rng: the corpus' generator (consumed deterministically).
        names: speaker ids in the corpus' own naming (``"id10001"``, ``"p226"``).
        genders: "M"/"F" per name; ``None`` alternates F, M, F, ...
        accents: espeak accents to draw from (``("en-us",)`` keeps one pronunciation).
        speed_range: base speaking rate range in words per minute.

    Returns:
        One :class:`Speaker` per name; no two share (accent, variant, pitch).
    """
    if genders is None:
        genders = ["F" if i % 2 == 0 else "M" for i in range(len(names))]
    if len(genders) != len(names):
        raise ValueError(f"sample_speakers: {len(names)} names but {len(genders)} genders")
    pools = {g: _combinations(rng, accents, g) for g in ("M", "F")}
    taken = {"M": 0, "F": 0}
    speakers = []
    for name, gender in zip(names, genders, strict=True):
        if gender not in pools:
            raise ValueError(f"sample_speakers: gender must be 'M' or 'F', got {gender!r}")
        pool = pools[gender]
        if taken[gender] >= len(pool):
            raise ValueError(f"sample_speakers: more than {len(pool)} {gender} speakers requested")
        accent, variant, pitch = pool[taken[gender]]
        taken[gender] += 1
        speed = int(rng.integers(speed_range[0], speed_range[1] + 1))
        speakers.append(Speaker(name, f"{accent}+{variant}", gender, pitch, speed))
    return speakers


def _combinations(rng: np.random.Generator, accents: tuple[str, ...], gender: str) -> list:
    variants = FEMALE_VARIANTS if gender == "F" else MALE_VARIANTS
    # Pitch bands keep two speakers with the same variant audibly apart.
    bands = (30, 45, 60, 75) if gender == "F" else (20, 35, 50, 65)
    combos = [(a, v, b) for b in bands for v in variants for a in accents]
    order = rng.permutation(len(combos))
    # Prefer a new variant for each speaker before reusing one with another accent/pitch.
    seen: set[str] = set()
    first, rest = [], []
    for i in order:
        accent, variant, band = combos[i]
        (rest if variant in seen else first).append(
            (accent, variant, band + int(rng.integers(-4, 5)))
        )
        seen.add(variant)
    return first + rest
