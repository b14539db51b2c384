"""The machinery every corpus builder shares: seeded randomness, a memoised and parallel
espeak-ng front end, file writers that record a manifest, and the all-or-nothing
output directory."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from speechrep.synth.dsp import write_audio
from speechrep.synth.espeak import SpeakRequest, espeak_path, espeak_version
from speechrep.synth.espeak import render as render_request

SIZES = ("tiny", "small")
MANIFEST = "synth_manifest.jsonl"
README = "README.synth.txt"


class SynthContext:
    """State of one corpus build: where files go, the seed, and the synthesis cache.

    Builders write every file through :meth:`write_audio` / :meth:`write_text` with a
    path relative to the corpus root. Audio entries are recorded in the manifest
    (``synth_manifest.jsonl``): the text spoken, by whom, and how it was rendered, so
    tests can check each label against the audio.
    """

    def __init__(
        self,
        corpus: str,
        root: Path,
        final_root: Path,
        size: str,
        seed: int,
        progress: bool = False,
    ) -> None:
        self.corpus = corpus
        self.root = root  # where files are written now (a temporary directory)
        self.final_root = final_root  # where they will live (metadata with absolute paths)
        self.size = size
        self.seed = seed
        self.progress = progress
        self.rng = self.rng_for("plan")
        self._cache: dict[tuple[SpeakRequest, int], np.ndarray] = {}
        self._manifest: dict[str, dict] = {}
        self.espeak_calls = 0

    def rng_for(self, *key: object) -> np.random.Generator:
        """A generator that depends only on the seed, the corpus and ``key``."""
        name = "/".join(str(k) for k in (self.corpus, *key))
        return np.random.default_rng([self.seed, zlib.crc32(name.encode("utf-8"))])

    def prefetch(self, requests: Iterable[SpeakRequest], sample_rate: int = 16000) -> None:
        """Render all not-yet-cached ``requests`` with a few espeak-ng processes at once."""
        todo = list(dict.fromkeys(r for r in requests if (r, sample_rate) not in self._cache))
        if not todo:
            return
        workers = max(1, min(4, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = pool.map(lambda r: render_request(r, sample_rate), todo)
            if self.progress:
                from tqdm import tqdm

                results = tqdm(
                    results,
                    total=len(todo),
                    desc=f"espeak-ng {self.corpus}",
                    unit="utt",
                    file=sys.stderr,
                )
            for request, wav in zip(todo, results, strict=True):
                self._store(request, sample_rate, wav)

    def speak(self, request: SpeakRequest, sample_rate: int = 16000) -> np.ndarray:
        """The rendering of ``request`` (cached; the returned array is read-only)."""
        key = (request, sample_rate)
        if key not in self._cache:
            self._store(request, sample_rate, render_request(request, sample_rate))
        return self._cache[key]

    def _store(self, request: SpeakRequest, sample_rate: int, wav: np.ndarray) -> None:
        wav = np.asarray(wav, dtype=np.float32)
        wav.setflags(write=False)
        self._cache[(request, sample_rate)] = wav
        self.espeak_calls += 1

    def path(self, relative: str) -> Path:
        """Absolute path under the (temporary) root; parent folders are created."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def final_path(self, relative: str) -> str:
        """The absolute path ``relative`` will have once the corpus is in place."""
        return str(self.final_root / relative)

    def write_audio(
        self,
        relative: str,
        wav: np.ndarray,
        sample_rate: int = 16000,
        *,
        text: str = "",
        speaker: str = "",
        render: list[SpeakRequest] | None = None,
        **labels: object,
    ) -> None:
        """Write an audio file and record it in the manifest.

        Args:
            relative: path under the corpus root; the suffix picks the format.
            wav: (S,) float samples in [-1, 1].
            text: the words spoken ("" for noise / mixtures).
            speaker: the speaker id as the corpus names it.
            render: the espeak requests whose audio this file contains (in time order).
            labels: any other ground truth (emotion, intent, snr_db, ...).
        """
        if relative in self._manifest:
            raise AssertionError(f"{relative} written twice")
        write_audio(self.path(relative), wav, sample_rate)
        entry = {
            "path": relative,
            "sample_rate": sample_rate,
            "num_samples": int(len(wav)),
            "text": text,
            "speaker": speaker,
            "render": [r.as_dict() for r in (render or [])],
        }
        entry.update({k: _plain(v) for k, v in labels.items()})
        self._manifest[relative] = entry

    def write_text(self, relative: str, text: str) -> None:
        """Write a UTF-8 text file (``\\n`` line ends)."""
        with open(self.path(relative), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)

    def finish(self) -> None:
        """Write the manifest and the README that marks the corpus as synthetic."""
        lines = [
            json.dumps(self._manifest[k], sort_keys=True, ensure_ascii=False) + "\n"
            for k in sorted(self._manifest)
        ]
        self.write_text(MANIFEST, "".join(lines))
        self.write_text(
            README,
            (
                f"Synthetic '{self.corpus}' corpus written by `speechrep synth` "
                f"(size={self.size}, seed={self.seed}) with {espeak_version()}.\n"
                "Speech is espeak-ng formant synthesis in the real corpus' on-disk layout.\n"
                "For smoke tests and demos only: numbers measured on it are not research results.\n"
                f"{MANIFEST} lists every audio file with the text spoken and how it was rendered.\n"
            ),
        )


def _plain(value: object) -> object:
    """JSON-friendly labels: numpy scalars to Python, floats rounded for stable text."""
    if isinstance(value, (np.floating, float)):
        return round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def build_corpus(
    corpus: str,
    build: Callable[[SynthContext], None],
    out_dir: str | os.PathLike,
    size: str,
    seed: int,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Run ``build`` into a temporary folder beside ``out_dir`` and rename it into place.

    An interrupted or failed build leaves nothing behind. An existing non-empty
    ``out_dir`` is refused unless ``force`` (then it is replaced only after success).
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory; expected a new or empty folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ValueError(
            f"{out}: folder exists and is not empty; choose a new folder or pass --force"
        )
    espeak_path()  # fail early with the install hint
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        context = SynthContext(corpus, tmp, out, size, seed, progress)
        build(context)
        context.finish()
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _move_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.rename(tmp, out)
        return
    old = out.parent / f".{out.name}.replaced-{os.getpid()}-{secrets.token_hex(4)}"
    os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
