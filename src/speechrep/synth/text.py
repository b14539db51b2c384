"""What the synthetic talkers say: a small English grammar with parallel German.

Sentences are drawn from a few templates over a fixed vocabulary, so every word has a
known pronunciation (for the lexicon) and a known German translation (for CoVoST-style
speech translation). German nouns carry their gender for article/adjective agreement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (english, german, gender m/f/n)
NOUNS = (
    ("dog", "Hund", "m"),
    ("cat", "Katze", "f"),
    ("bird", "Vogel", "m"),
    ("horse", "Pferd", "n"),
    ("child", "Kind", "n"),
    ("man", "Mann", "m"),
    ("woman", "Frau", "f"),
    ("king", "König", "m"),
    ("queen", "Königin", "f"),
    ("baker", "Bäcker", "m"),
    ("doctor", "Arzt", "m"),
    ("teacher", "Lehrer", "m"),
    ("river", "Fluss", "m"),
    ("garden", "Garten", "m"),
    ("house", "Haus", "n"),
    ("forest", "Wald", "m"),
    ("city", "Stadt", "f"),
    ("village", "Dorf", "n"),
    ("window", "Fenster", "n"),
    ("door", "Tür", "f"),
    ("table", "Tisch", "m"),
    ("chair", "Stuhl", "m"),
    ("book", "Buch", "n"),
    ("letter", "Brief", "m"),
    ("song", "Lied", "n"),
    ("ship", "Schiff", "n"),
    ("bridge", "Brücke", "f"),
    ("apple", "Apfel", "m"),
    ("bread", "Brot", "n"),
    ("stone", "Stein", "m"),
    ("tree", "Baum", "m"),
    ("flower", "Blume", "f"),
)
ANIMATE = 12  # NOUNS[:ANIMATE] can be the subject of every verb
# (english, german stem): the stem takes -e / -en endings.
ADJECTIVES = (
    ("red", "rot"),
    ("blue", "blau"),
    ("green", "grün"),
    ("old", "alt"),
    ("young", "jung"),
    ("happy", "glücklich"),
    ("quiet", "still"),
    ("small", "klein"),
    ("big", "groß"),
    ("cold", "kalt"),
    ("warm", "warm"),
    ("bright", "hell"),
    ("heavy", "schwer"),
    ("strange", "seltsam"),
)
TRANSITIVE = (
    ("sees", "sieht"),
    ("finds", "findet"),
    ("takes", "nimmt"),
    ("holds", "hält"),
    ("carries", "trägt"),
    ("brings", "bringt"),
    ("watches", "beobachtet"),
    ("opens", "öffnet"),
    ("builds", "baut"),
    ("paints", "malt"),
    ("loves", "liebt"),
    ("needs", "braucht"),
    ("reads", "liest"),
    ("wants", "möchte"),
)
INTRANSITIVE = (
    ("sleeps", "schläft"),
    ("waits", "wartet"),
    ("smiles", "lächelt"),
    ("laughs", "lacht"),
    ("sings", "singt"),
    ("walks", "geht"),
    ("runs", "läuft"),
)
ADVERBS = (
    ("slowly", "langsam"),
    ("quickly", "schnell"),
    ("quietly", "leise"),
    ("often", "oft"),
    ("today", "heute"),
    ("here", "hier"),
    ("there", "dort"),
    ("always", "immer"),
    ("again", "wieder"),
)
ARTICLE = {
    ("nom", "m"): "der",
    ("nom", "f"): "die",
    ("nom", "n"): "das",
    ("acc", "m"): "den",
    ("acc", "f"): "die",
    ("acc", "n"): "das",
}

FINNISH = (
    "Tänään on kaunis päivä.",
    "Koira nukkuu talossa.",
    "Minä luen kirjaa.",
    "Kissa juo maitoa.",
    "Hän asuu kaupungissa.",
    "Me menemme kotiin.",
    "Aurinko paistaa kirkkaasti.",
    "Lapsi leikkii puutarhassa.",
)
MANDARIN = (
    "今天天气很好。",
    "我喜欢看书。",
    "小狗在睡觉。",
    "他们去学校。",
    "我们吃米饭。",
    "猫在桌子上。",
    "妈妈在做饭。",
    "这是我的朋友。",
)


@dataclass(frozen=True)
class Sentence:
    """An English sentence (lower case words, no punctuation) and its German translation."""

    words: tuple[str, ...]
    german: str

    @property
    def text(self) -> str:
        """Plain lower-case text, e.g. ``the red dog sees the cat``."""
        return " ".join(self.words)

    @property
    def written(self) -> str:
        """Written form: capitalised, with a full stop."""
        text = self.text
        return text[0].upper() + text[1:] + "."

    @property
    def upper(self) -> str:
        """LibriSpeech transcript form: upper case, no punctuation."""
        return self.text.upper()


def vocabulary() -> list[str]:
    """Every English word the grammar can produce (sorted)."""
    words = {"the"}
    for table in (NOUNS, ADJECTIVES, TRANSITIVE, INTRANSITIVE, ADVERBS):
        words.update(entry[0] for entry in table)
    return sorted(words)


def sentence(rng: np.random.Generator, min_words: int = 4, max_words: int = 12) -> Sentence:
    """One random sentence with ``min_words..max_words`` words (best effort)."""
    for _ in range(100):
        candidate = _draw(rng)
        if min_words <= len(candidate.words) <= max_words:
            return candidate
    return candidate


def sentences(
    rng: np.random.Generator, count: int, min_words: int = 4, max_words: int = 12
) -> list[Sentence]:
    """``count`` distinct sentences (distinct by text)."""
    found: dict[str, Sentence] = {}
    for _ in range(count * 50):
        s = sentence(rng, min_words, max_words)
        found.setdefault(s.text, s)
        if len(found) == count:
            return list(found.values())
    raise ValueError(f"could not draw {count} distinct sentences of {min_words}-{max_words} words")


def _pick(rng: np.random.Generator, table: tuple) -> tuple:
    return table[int(rng.integers(len(table)))]


def _noun_phrase(
    rng: np.random.Generator, case: str, with_adjective: bool
) -> tuple[list[str], str]:
    # Subjects are people and animals (they sing, read, walk); objects can be anything.
    en, de, gender = _pick(rng, NOUNS[:ANIMATE] if case == "nom" else NOUNS)
    article = ARTICLE[(case, gender)]
    if not with_adjective:
        return ["the", en], f"{article} {de}"
    adj_en, adj_de = _pick(rng, ADJECTIVES)
    # Weak declension after the definite article: -en only for masculine accusative.
    ending = "en" if (case, gender) == ("acc", "m") else "e"
    return ["the", adj_en, en], f"{article} {adj_de}{ending} {de}"


def _draw(rng: np.random.Generator) -> Sentence:
    template = int(rng.integers(4))
    subject_en, subject_de = _noun_phrase(rng, "nom", with_adjective=bool(rng.integers(2)))
    if template == 3:  # the (adj) noun sleeps (adverb)
        verb_en, verb_de = _pick(rng, INTRANSITIVE)
        words, german = [*subject_en, verb_en], f"{subject_de} {verb_de}"
    else:  # the (adj) noun sees the (adj) noun (adverb)
        verb_en, verb_de = _pick(rng, TRANSITIVE)
        object_en, object_de = _noun_phrase(rng, "acc", with_adjective=template == 2)
        words, german = [*subject_en, verb_en, *object_en], f"{subject_de} {verb_de} {object_de}"
    if template in (1, 3) or rng.random() < 0.3:
        adverb_en, adverb_de = _pick(rng, ADVERBS)
        words.append(adverb_en)
        german = f"{german} {adverb_de}"
    return Sentence(tuple(words), german[0].upper() + german[1:] + ".")
