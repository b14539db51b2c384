"""QUESST 2014 (query-by-example spoken term detection, SUPERB QbE), English subset.

Layout (``quesst14Database/``)::

    Audio/quesst14_<nnnnn>.wav                 search utterances, 8 kHz 16-bit like the real set
    dev_queries/quesst14_dev_<nnnn>.wav         spoken queries (isolated terms)
    eval_queries/quesst14_eval_<nnnn>.wav
    scoring/language_key_{utterances,dev,eval}.lst   "quesst14Database/<dir>/<file>.wav <language>"
    scoring/groundtruth_quesst14_{dev,eval}/quesst14.ecf.xml        the searched utterances
    scoring/groundtruth_quesst14_{dev,eval}/quesst14_{dev,eval}.tlist.xml   the query ids
    scoring/groundtruth_quesst14_{dev,eval}/quesst14_{dev,eval}.rttm
        "LEXEME <utterance> 1 <start s> <duration s> <query id> lex <NA> <NA> <NA>" per hit

Utterances are built from separately rendered words, so the time of every term is
known exactly. A few utterances are Czech (``czech`` in the language keys) to exercise
the English-only filter; they never contain a term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechrep.synth import dsp
from speechrep.synth.core import SynthContext
from speechrep.synth.espeak import SpeakRequest
from speechrep.synth.voices import Speaker, sample_speakers

RATE = 8000
TERMS = tuple(
    "garden village teacher window mountain sailor kitchen blanket rabbit basket "
    "candle ticket jacket monkey pencil castle".split()
)
FILLERS = tuple(
    "the a my his her old small red new big near under with and sees finds holds "
    "opens today again quickly is was there here by on in very good".split()
)
CZECH = (
    "dobrý den jak se máte",
    "dnes je hezky",
    "kde je nádraží",
    "děkuji mockrát",
    "to je můj dům",
    "pes spí na zahradě",
)
PREFIX = "quesst14Database"


@dataclass(frozen=True)
class Size:
    terms: dict  # split -> number of terms
    queries_per_term: int
    documents: int  # English search utterances
    czech_documents: int
    document_speakers: int
    query_speakers: int


SIZES = {
    "tiny": Size({"dev": 2, "eval": 2}, 1, 8, 1, 2, 2),
    "small": Size({"dev": 8, "eval": 8}, 2, 80, 6, 4, 4),
}


def build(ctx: SynthContext) -> None:
    """QUESST14 English-subset Audio/, dev_/eval_queries/ and scoring/ ground truth."""
    size = SIZES[ctx.size]
    names = [f"doc{i}" for i in range(size.document_speakers)] + [
        f"query{i}" for i in range(size.query_speakers)
    ]
    speakers = sample_speakers(ctx.rng, names)
    talkers, askers = speakers[: size.document_speakers], speakers[size.document_speakers :]
    chosen = [TERMS[int(i)] for i in ctx.rng.permutation(len(TERMS))[: sum(size.terms.values())]]
    terms = {"dev": chosen[: size.terms["dev"]], "eval": chosen[size.terms["dev"] :]}
    documents = _plan_documents(ctx, size, chosen, talkers)
    requests = [
        r for lang, words, speaker, _ in documents for r in _word_requests(words, speaker, lang)
    ]
    queries = {
        split: [
            (term, askers[(i + q) % len(askers)])
            for i, term in enumerate(terms[split])
            for q in range(size.queries_per_term)
        ]
        for split in terms
    }
    requests += [a.request(t) for split in queries for t, a in queries[split]]
    ctx.prefetch(requests, RATE)

    hits: dict[str, list[tuple[str, str, float, float]]] = {}  # term -> (doc, lang, start, dur)
    doc_lines, durations = [], {}
    for index, (language, words, speaker, term) in enumerate(documents, start=1):
        name = f"quesst14_{index:05d}"
        wav, spans = _document(ctx, name, words, speaker, language)
        ctx.write_audio(
            f"Audio/{name}.wav",
            wav,
            RATE,
            text=" ".join(words),
            speaker=speaker.name,
            render=_word_requests(words, speaker, language),
            language=language,
            word_times=[[w, round(s, 4), round(d, 4)] for w, s, d in spans],
        )
        doc_lines.append(
            f"{PREFIX}/Audio/{name}.wav {'nnenglish' if language == 'en' else language}\n"
        )
        durations[name] = len(wav) / RATE
        for word, start, duration in spans:
            if word == term:
                hits.setdefault(term, []).append((name, language, start, duration))
    ctx.write_text("scoring/language_key_utterances.lst", "".join(doc_lines))
    for split in ("dev", "eval"):
        _write_queries(ctx, split, queries[split], hits, durations)


def _plan_documents(ctx: SynthContext, size: Size, terms: list[str], talkers) -> list:
    documents = []  # (language, words, speaker, term or "")
    for i in range(size.documents):
        rng = ctx.rng_for("document", i)
        words = [FILLERS[int(j)] for j in rng.integers(0, len(FILLERS), int(rng.integers(4, 7)))]
        term = terms[i % len(terms)] if i % 3 != 2 else ""  # a third have no term at all
        if term:
            words.insert(int(rng.integers(0, len(words) + 1)), term)
        documents.append(("en", words, talkers[i % len(talkers)], term))
    for i in range(size.czech_documents):
        words = CZECH[i % len(CZECH)].split()
        documents.append(("czech", words, talkers[i % len(talkers)], ""))
    order = ctx.rng.permutation(len(documents))
    return [documents[int(i)] for i in order]


def _word_requests(words: list[str], speaker: Speaker, language: str) -> list[SpeakRequest]:
    """One request per word; Czech documents use the speaker's variant on espeak's cs voice."""
    voice = speaker.voice if language == "en" else "cs+" + speaker.voice.split("+")[1]
    return [SpeakRequest(w, voice, speaker.pitch, speaker.speed) for w in words]


def _document(ctx: SynthContext, name: str, words: list[str], speaker: Speaker, language: str):
    """Concatenate the words with short pauses; return audio and (word, start s, duration s)."""
    rng = ctx.rng_for("recording", name)
    pieces, spans, cursor = [], [], int(rng.uniform(0.2, 0.6) * RATE)
    pieces.append(np.zeros(cursor, dtype=np.float32))
    for word, request in zip(words, _word_requests(words, speaker, language), strict=True):
        audio = dsp.trim(ctx.speak(request, RATE), keep_seconds=0.0, sample_rate=RATE)
        spans.append((word, cursor / RATE, len(audio) / RATE))
        gap = int(rng.uniform(0.03, 0.12) * RATE)
        pieces += [audio, np.zeros(gap, dtype=np.float32)]
        cursor += len(audio) + gap
    pieces.append(np.zeros(int(rng.uniform(0.2, 0.5) * RATE), dtype=np.float32))
    clean = dsp.set_level(np.concatenate(pieces), float(rng.uniform(-26.0, -20.0)))
    kind = dsp.NOISE_KINDS[int(rng.integers(len(dsp.NOISE_KINDS)))]
    wav = dsp.add_noise(
        clean, dsp.noise(rng, kind, len(clean), RATE), float(rng.uniform(15.0, 30.0))
    )
    return dsp.peak_normalize(wav), spans


def _write_queries(ctx: SynthContext, split: str, queries, hits, durations) -> None:
    key_lines, terms_xml, rttm = [], [], []
    for index, (term, asker) in enumerate(queries, start=1):
        qid = f"quesst14_{split}_{index:04d}"
        request = asker.request(term)
        wav, info = dsp.record(
            ctx.rng_for("query", qid),
            ctx.speak(request, RATE),
            RATE,
            lead=(0.1, 0.3),
            tail=(0.1, 0.3),
            snr_db=(20.0, 35.0),
        )
        ctx.write_audio(
            f"{split}_queries/{qid}.wav",
            wav,
            RATE,
            text=term,
            speaker=asker.name,
            render=[request],
            language="en",
            **info,
        )
        key_lines.append(f"{PREFIX}/{split}_queries/{qid}.wav nnenglish\n")
        terms_xml.append(f'  <term termid="{qid}"><termtext>{qid}</termtext></term>\n')
        for doc, _, start, duration in hits.get(term, []):
            rttm.append(f"LEXEME {doc} 1 {start:.3f} {duration:.3f} {qid} lex <NA> <NA> <NA>\n")
    folder = f"scoring/groundtruth_quesst14_{split}"
    ctx.write_text(f"scoring/language_key_{split}.lst", "".join(key_lines))
    ctx.write_text(f"{folder}/quesst14_{split}.rttm", "".join(sorted(rttm)))
    ctx.write_text(
        f"{folder}/quesst14_{split}.tlist.xml",
        f'<termlist ecf_filename="quesst14.ecf.xml" version="1" language="multiple" '
        f'encoding="UTF-8">\n{"".join(terms_xml)}</termlist>\n',
    )
    excerpts = "".join(
        f'  <excerpt audio_filename="Audio/{doc}.wav" channel="1" tbeg="0.000" '
        f'dur="{dur:.3f}" source_type="splitcts"/>\n'
        for doc, dur in sorted(durations.items())
    )
    total = sum(durations.values())
    ctx.write_text(
        f"{folder}/quesst14.ecf.xml",
        f'<ecf source_signal_duration="{total:.3f}" language="multiple" version="1">\n'
        f"{excerpts}</ecf>\n",
    )
