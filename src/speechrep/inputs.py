"""Audio inputs of batch jobs: files, folders and list files -> utterances, cheap header
probing, and duration-budgeted batches over length-sorted utterances.

Used by ``speechrep extract``; feature caches of downstream tasks batch the same way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LIST_SUFFIXES = (".txt", ".lst")


@dataclass(frozen=True)
class Utterance:
    """One input file and where its features go (``rel`` relative to the output folder)."""

    path: Path
    rel: Path  # output path without suffix; its posix form is the utterance id
    seconds: float = 0.0  # from the file header, for batching
    sample_rate: int = 0  # the file's own rate (Hz)

    @property
    def id(self) -> str:
        return self.rel.as_posix()


def collect_inputs(inputs: Sequence[str | os.PathLike]) -> list[Utterance]:
    """Files, folders and list files -> utterances, sorted by id.

    Raises:
        FileNotFoundError: an input does not exist.
        ValueError: a folder holds no audio, or two inputs map to the same output.
    """
    from speechrep.audio import AUDIO_EXTENSIONS, find_audio_files

    utterances: list[Utterance] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files = find_audio_files(item)
            if not files:
                searched = " ".join(AUDIO_EXTENSIONS)
                raise ValueError(f"{item}: no audio files found (searched for {searched})")
            utterances += [Utterance(f, f.relative_to(item).with_suffix("")) for f in files]
        elif item.is_file() and item.suffix.lower() in LIST_SUFFIXES:
            files = read_list_file(item)
            root = _common_root(files, item.parent)
            utterances += [Utterance(f, f.relative_to(root).with_suffix("")) for f in files]
        elif item.is_file():
            utterances.append(Utterance(item, Path(item.stem)))
        else:
            raise FileNotFoundError(
                f"input not found: {item} (expected an audio file, folder or list)"
            )
    seen: dict[str, Path] = {}
    for utt in utterances:
        if utt.id in seen:
            raise ValueError(f"{seen[utt.id]} and {utt.path} would both be written as '{utt.id}'")
        seen[utt.id] = utt.path
    return sorted(utterances, key=lambda u: u.id)


def read_list_file(path: Path) -> list[Path]:
    """One audio path per line (blank lines and ``#`` comments skipped); relative to the list."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    files = [path.parent / line for line in lines if line and not line.startswith("#")]
    if not files:
        raise ValueError(f"{path}: list file names no audio files")
    # Entries may not exist: that is reported per file later, like any unreadable file.
    return [Path(os.path.normpath(f.absolute())) for f in files]


def _common_root(files: list[Path], default: Path) -> Path:
    default = Path(os.path.normpath(default.absolute()))
    if all(f.is_relative_to(default) for f in files):
        return default
    return Path(os.path.commonpath([f.parent for f in files]))


def probe(utterances: list[Utterance]) -> tuple[list[Utterance], list[tuple[str, str]]]:
    """Read each file's header (duration, rate) cheaply; files that fail it are failures."""
    import soundfile as sf

    good, failures = [], []
    for utt in utterances:
        if not utt.path.is_file():
            failures.append((str(utt.path), "file not found"))
            continue
        try:
            info = sf.info(str(utt.path))
        except Exception as err:  # libsndfile raises bare RuntimeErrors for bad headers
            failures.append((str(utt.path), f"cannot read audio ({str(err).strip()})"))
            continue
        if info.frames <= 0:
            failures.append((str(utt.path), "audio file holds no samples"))
            continue
        seconds = info.frames / info.samplerate
        good.append(Utterance(utt.path, utt.rel, seconds, int(info.samplerate)))
    return good, failures


def plan_batches(utterances: list[Utterance], batch_seconds: float) -> list[list[Utterance]]:
    """Longest first, each batch's padded size ``len * longest`` within ``batch_seconds``."""
    if batch_seconds <= 0:
        raise ValueError(f"batch_seconds must be > 0, found {batch_seconds}")
    ordered = sorted(utterances, key=lambda u: (-u.seconds, u.id))
    batches: list[list[Utterance]] = []
    for utt in ordered:
        # ordered is longest first, so a batch's first utterance sets its padded length
        if batches and (len(batches[-1]) + 1) * batches[-1][0].seconds <= batch_seconds:
            batches[-1].append(utt)
        else:
            batches.append([utt])
    return batches
