"""Synthetic speech corpora written in each real dataset's published on-disk layout.

``speechrep synth CORPUS -o DIR`` (or :func:`synthesize`) renders speech with the
espeak-ng formant synthesiser — speakers are accent × voice variant × pitch × speed —
adds generated background noise, and writes the files, folder structure and metadata
(split lists, transcripts, label files) exactly where and how the real corpus has them.
The real dataset readers can then be run end to end without downloading anything.

These corpora are for smoke tests, demos and benchmarks of the machinery. They are
learnable (the labels match the audio) but tiny and unnatural: numbers measured on
them are not research results and say nothing about performance on the real data.

Everything is a deterministic function of (corpus, size, seed): the same call writes
byte-identical files (Libri2Mix's metadata CSVs hold absolute paths, as the real ones
do, so for ``librimix`` the output folder is part of the content too). Every corpus
root also holds ``synth_manifest.jsonl`` (one line per audio file: the text spoken,
the speaker, how it was rendered, the labels) and ``README.synth.txt``.

Example:
    >>> from speechrep.synth import synthesize
    >>> root = synthesize("speech_commands", "/tmp/ks", size="tiny", seed=0)  # doctest: +SKIP
    >>> sorted(p.name for p in root.iterdir())  # doctest: +SKIP
    ['README.synth.txt', 'speech_commands_test_set_v0.01', 'speech_commands_v0.01', ...]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from speechrep.synth import (
    audio_folder,
    common_voice,
    fluent_speech_commands,
    iemocap,
    librimix,
    librispeech,
    quesst14,
    snips,
    speech_commands,
    vcc2020,
    voicebank,
    voxceleb1,
)
from speechrep.synth.core import MANIFEST, SIZES, SynthContext, build_corpus
from speechrep.synth.espeak import EspeakError, speak

# name -> builder(ctx). Each builder's docstring's first line describes the corpus.
CORPORA: dict[str, Callable[[SynthContext], None]] = {
    "speech_commands": speech_commands.build,
    "librispeech": librispeech.build,
    "voxceleb1": voxceleb1.build,
    "fluent_speech_commands": fluent_speech_commands.build,
    "iemocap": iemocap.build,
    "snips": snips.build,
    "quesst14": quesst14.build,
    "librimix": librimix.build,
    "voicebank": voicebank.build,
    "common_voice": common_voice.build,
    "covost2": common_voice.build,
    "vcc2020": vcc2020.build,
    "audio_folder": audio_folder.build,
}


def describe(corpus: str) -> str:
    """One line saying what ``corpus`` contains."""
    doc = CORPORA[corpus].__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else corpus


def synthesize(
    corpus: str,
    out_dir: str | os.PathLike,
    size: str = "tiny",
    seed: int = 0,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Write a synthetic ``corpus`` into ``out_dir`` and return its absolute path.

    Args:
        corpus: a key of :data:`CORPORA` (``speechrep synth --help`` lists them).
        out_dir: the corpus root to create; must not exist or be empty (unless ``force``).
        size: ``"tiny"`` (seconds; for tests) or ``"small"`` (a demo that shows learning).
        seed: every random choice derives from it; same seed, same bytes.
        force: replace a non-empty ``out_dir`` (only once the new corpus is complete).
        progress: show a progress bar on stderr.

    Raises:
        ValueError: unknown corpus/size, or ``out_dir`` is not empty.
        EspeakError: espeak-ng is not installed (the message says how to install it).

    Example:
        >>> synthesize("librispeech", "data/LibriSpeech", size="small")  # doctest: +SKIP
        PosixPath('/abs/data/LibriSpeech')
    """
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; expected one of {', '.join(CORPORA)}")
    return build_corpus(
        corpus, CORPORA[corpus], out_dir, size, seed, force=force, progress=progress
    )


__all__ = ["CORPORA", "MANIFEST", "SIZES", "EspeakError", "describe", "speak", "synthesize"]
