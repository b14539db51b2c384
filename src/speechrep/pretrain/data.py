"""Unlabelled audio for pretraining: a folder (or list file) of audio, length-bucketed batches.

Every file's length is read from its header once (``scan_audio``); a file whose header cannot
be read is reported with a warning naming it and skipped. Batches group utterances of similar
length (sorted inside shuffled pools) and are capped both in utterances and in padded seconds,
so a batch of short utterances holds more of them. The whole plan is a pure function of
``(seed, epoch)``: random crops included, which is what makes a resumed run exact.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from speechrep.audio import AUDIO_EXTENSIONS, AudioError, find_audio_files, load_audio, pad_batch
from speechrep.fileio import write_text_atomic


@dataclass(frozen=True)
class DataConfig:
    """Which utterances, how they are cut and batched."""

    batch_size: int = 8  # s3prl: datarc.train_batch_size (most utterances in one batch)
    max_batch_seconds: float = 0.0  # padded seconds per batch (count x longest); 0 = no cap
    min_seconds: float = (
        2.0  # s3prl: datarc.max_timestep < 0 (frames/100): shorter ones are dropped
    )
    max_seconds: float = 0.0  # s3prl: datarc.max_timestep > 0: longer ones are dropped; 0 = keep
    crop_seconds: float = 15.0  # s3prl: task.sequence_length; longer utterances get a random crop
    sample_rate: int = 16000
    num_workers: int = 2  # s3prl: datarc.num_workers
    bucket_pool: int = 100  # batches' worth of utterances sorted together (more = tighter buckets)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.bucket_pool < 1 or self.num_workers < 0:
            raise ValueError("data: batch_size and bucket_pool must be >= 1, num_workers >= 0")
        if min(self.max_batch_seconds, self.min_seconds, self.max_seconds, self.crop_seconds) < 0:
            raise ValueError("data: durations must be >= 0")


@dataclass(frozen=True)
class AudioItem:
    path: str
    num_samples: int  # at the configured sample rate


@dataclass
class WavBatch:
    """A padded batch: wavs (B, S) float32, wav_lens (B,) int64 samples."""

    wavs: torch.Tensor
    wav_lens: torch.Tensor


def _list_sources(source: Path) -> list[Path]:
    if source.is_dir():
        return find_audio_files(source)
    lines = source.read_text(encoding="utf-8").splitlines()
    entries = [
        line.split("\t")[0].strip() for line in lines if line.strip() and not line.startswith("#")
    ]
    return [p if p.is_absolute() else source.parent / p for p in map(Path, entries)]


def scan_audio(source: str | os.PathLike, sample_rate: int = 16000) -> list[AudioItem]:
    """Every readable audio file under a folder, or listed (one path a line) in a text file.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: no readable audio file was found.
    """
    import soundfile as sf

    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"audio data not found: {source}")
    items = []
    for path in _list_sources(source):
        try:
            info = sf.info(str(path))
            if info.frames <= 0:
                raise AudioError("no samples")
        except Exception as err:  # libsndfile raises bare RuntimeErrors; name the file and go on
            warnings.warn(f"skipping unreadable audio file {path}: {err}", stacklevel=2)
            continue
        items.append(AudioItem(str(path), round(info.frames * sample_rate / info.samplerate)))
    if not items:
        what = "folder" if source.is_dir() else "list file"
        raise ValueError(
            f"{source}: no readable audio in this {what} (looked for {', '.join(AUDIO_EXTENSIONS)})"
        )
    return items


def write_manifest(path: str | os.PathLike, items: list[AudioItem], source: str = "") -> None:
    """``# source: <where the audio came from>``, then ``path<TAB>num_samples`` per line
    (reused on resume: the same data, the same order)."""
    lines = [f"# source: {source}\n"] + [f"{it.path}\t{it.num_samples}\n" for it in items]
    write_text_atomic(path, "".join(lines))


def read_manifest(path: str | os.PathLike) -> tuple[list[AudioItem], str]:
    """(items, source) of a manifest written by :func:`write_manifest`."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    source = next(
        (line[len("# source: ") :] for line in lines if line.startswith("# source: ")), ""
    )
    rows = [line.split("\t") for line in lines if line and not line.startswith("#")]
    return [AudioItem(p, int(n)) for p, n in rows], source


def select(items: list[AudioItem], config: DataConfig) -> list[AudioItem]:
    """Drop utterances outside ``[min_seconds, max_seconds]``; raise if none is left."""
    low = config.min_seconds * config.sample_rate
    high = config.max_seconds * config.sample_rate if config.max_seconds > 0 else float("inf")
    kept = [it for it in items if low <= it.num_samples <= high]
    if not kept:
        raise ValueError(
            f"none of the {len(items)} audio files lasts between "
            f"data.min_seconds={config.min_seconds} "
            f"and data.max_seconds={config.max_seconds or 'inf'} seconds"
        )
    return kept


class AudioDataset(Dataset):
    """``dataset[(index, crop_seed)]`` -> float32 waveform, randomly cropped to ``crop_seconds``.

    Returns None (after a warning naming the file) when the file cannot be decoded.
    """

    def __init__(self, items: list[AudioItem], config: DataConfig) -> None:
        self.items = items
        self.sample_rate = config.sample_rate
        self.crop = round(config.crop_seconds * config.sample_rate)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, int]) -> np.ndarray | None:
        index, seed = key
        path = self.items[index].path
        try:
            wav, _ = load_audio(path, self.sample_rate)
        except (AudioError, FileNotFoundError) as err:
            warnings.warn(f"skipping audio file that failed to decode: {err}", stacklevel=2)
            return None
        if self.crop and len(wav) > self.crop:
            start = int(np.random.default_rng(seed).integers(0, len(wav) - self.crop + 1))
            wav = wav[start : start + self.crop]
        return wav


def collate_wavs(wavs: list[np.ndarray | None]) -> WavBatch:
    """Pad a batch; an undecodable file is replaced by another utterance of the same batch
    (so every DDP rank still runs the same number of steps)."""
    good = [w for w in wavs if w is not None]
    if not good:
        raise ValueError("every audio file of a batch failed to decode (see the warnings above)")
    filled = [w if w is not None else good[i % len(good)] for i, w in enumerate(wavs)]
    padded, lens = pad_batch(filled)
    return WavBatch(padded, lens)


class BucketPlan:
    """``plan(epoch)`` -> this rank's batches of ``(index, crop_seed)`` keys.

    Utterances are shuffled, sorted by (cropped) length inside pools of
    ``bucket_pool * batch_size``, cut into batches of at most ``batch_size`` utterances and
    ``max_batch_seconds`` padded seconds, and the batches are shuffled. With ``world_size``
    ranks, batch ``i`` goes to rank ``i % world_size`` (the remainder is dropped so every rank
    runs the same number of steps).
    """

    def __init__(
        self, lengths: list[int], config: DataConfig, seed: int, rank: int = 0, world_size: int = 1
    ):
        crop = round(config.crop_seconds * config.sample_rate) or None
        self.lengths = np.minimum(
            np.asarray(lengths, dtype=np.int64), crop or np.iinfo(np.int64).max
        )
        self.config, self.seed, self.rank, self.world_size = config, seed, rank, world_size
        self.cap = round(config.max_batch_seconds * config.sample_rate)

    @lru_cache(maxsize=2)  # noqa: B019 - a plan lives as long as its run
    def __call__(self, epoch: int) -> list[list[tuple[int, int]]]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        crop_seeds = rng.integers(0, 2**31 - 1, size=len(self.lengths))
        pool = self.config.bucket_pool * self.config.batch_size
        batches: list[list[int]] = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            batches += self._cut(chunk[np.argsort(self.lengths[chunk], kind="stable")])
        batches = [batches[i] for i in rng.permutation(len(batches))]
        usable = len(batches) - len(batches) % self.world_size
        if usable == 0:
            raise ValueError(
                f"{len(batches)} batch(es) of data for {self.world_size} processes; need more audio"
            )
        return [
            [(i, int(crop_seeds[i])) for i in b]
            for b in batches[self.rank : usable : self.world_size]
        ]

    def _cut(self, ordered: np.ndarray) -> list[list[int]]:
        batches, current = [], []
        for index in ordered.tolist():  # ascending lengths: the newest item is the longest
            too_long = self.cap and (len(current) + 1) * int(self.lengths[index]) > self.cap
            if current and (len(current) == self.config.batch_size or too_long):
                batches.append(current)
                current = []
            current.append(index)
        return batches + ([current] if current else [])
