"""A LibriSpeech-format lexicon (``WORD<TAB>AH0 B AW1 T``) built from espeak-ng phonemes.

espeak-ng's en-us IPA is mapped onto the 39-phone ARPAbet set with stress digits on
vowels (0 none, 1 primary, 2 secondary): the phone set of ``librispeech-lexicon.txt``.
"""

from __future__ import annotations

from speechrep.synth.espeak import phonemize

# IPA token (stress marks removed) -> ARPAbet phones; the first vowel takes the stress digit.
IPA_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # monophthongs
    "ə": ("AH",),
    "ɐ": ("AH",),
    "ʌ": ("AH",),
    "ɪ": ("IH",),
    "ᵻ": ("IH",),
    "i": ("IY",),
    "iː": ("IY",),
    "ɛ": ("EH",),
    "e": ("EH",),
    "æ": ("AE",),
    "a": ("AE",),
    "ɑ": ("AA",),
    "ɑː": ("AA",),
    "ɒ": ("AA",),
    "ɔ": ("AO",),
    "ɔː": ("AO",),
    "oː": ("AO",),
    "ʊ": ("UH",),
    "u": ("UW",),
    "uː": ("UW",),
    "ɚ": ("ER",),
    "ɜː": ("ER",),
    "ɝ": ("ER",),
    "ɜ": ("ER",),
    # diphthongs
    "eɪ": ("EY",),
    "aɪ": ("AY",),
    "ɔɪ": ("OY",),
    "aʊ": ("AW",),
    "oʊ": ("OW",),
    "əʊ": ("OW",),
    # r-coloured and vowel sequences espeak writes as one token
    "ɑːɹ": ("AA", "R"),
    "ɔːɹ": ("AO", "R"),
    "oːɹ": ("AO", "R"),
    "ɛɹ": ("EH", "R"),
    "ɪɹ": ("IH", "R"),
    "ʊɹ": ("UH", "R"),
    "aɪɚ": ("AY", "ER0"),
    "aɪə": ("AY", "AH0"),
    "aʊɚ": ("AW", "ER0"),
    "iə": ("IY", "AH0"),
    "əl": ("AH", "L"),
    "ɚɹ": ("ER", "R"),
    # consonants
    "p": ("P",),
    "b": ("B",),
    "t": ("T",),
    "d": ("D",),
    "k": ("K",),
    "ɡ": ("G",),
    "g": ("G",),
    "f": ("F",),
    "v": ("V",),
    "θ": ("TH",),
    "ð": ("DH",),
    "s": ("S",),
    "z": ("Z",),
    "ʃ": ("SH",),
    "ʒ": ("ZH",),
    "h": ("HH",),
    "m": ("M",),
    "n": ("N",),
    "ŋ": ("NG",),
    "l": ("L",),
    "ɹ": ("R",),
    "r": ("R",),
    "w": ("W",),
    "j": ("Y",),
    "tʃ": ("CH",),
    "dʒ": ("JH",),
    "ɾ": ("T",),
    "ʔ": ("T",),
    "x": ("K",),
    "n̩": ("AH0", "N"),
    "l̩": ("AH0", "L"),
}
VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
STRESS_MARKS = {"ˈ": "1", "ˌ": "2"}


def ipa_to_arpabet(tokens: list[str], word: str = "") -> list[str]:
    """ARPAbet phones with stress digits for espeak IPA tokens (from ``phonemize``).

    Raises:
        ValueError: a token has no ARPAbet equivalent (names the word and token).
    """
    phones: list[str] = []
    pending = "0"  # stress for the next vowel
    for token in tokens:
        bare = token
        while bare and bare[0] in STRESS_MARKS:
            pending = STRESS_MARKS[bare[0]]
            bare = bare[1:]
        if not bare:
            continue
        if bare not in IPA_TO_ARPABET:
            raise ValueError(f"no ARPAbet phone for espeak phoneme {bare!r} in word {word!r}")
        for phone in IPA_TO_ARPABET[bare]:
            if phone in VOWELS:
                phones.append(phone + pending)
                pending = "0"
            else:
                phones.append(phone)
    return phones


def build_lexicon(words: list[str], voice: str = "en-us") -> dict[str, list[str]]:
    """Map each word (upper-cased) to its ARPAbet pronunciation (one espeak-ng call)."""
    unique = sorted({w.lower() for w in words})
    return {
        w.upper(): ipa_to_arpabet(tokens, w)
        for w, tokens in zip(unique, phonemize(unique, voice), strict=True)
    }


def format_lexicon(lexicon: dict[str, list[str]]) -> str:
    """LibriSpeech lexicon text: one ``WORD<TAB>PHONES`` line per word, sorted by word."""
    return "".join(f"{word}\t{' '.join(phones)}\n" for word, phones in sorted(lexicon.items()))
