"""``speechrep extract``: hidden states of many audio files, one ``.safetensors`` per utterance.

Inputs are audio files, folders (searched recursively by extension) or list files (``.txt``/
``.lst``, one path per line). Each utterance's output mirrors its path relative to its input
root: ``wavs/spk1/a.flac`` given as ``wavs`` becomes ``OUT/spk1/a.safetensors`` holding
``layer_<i>`` tensors (T, D) of exactly the utterance's valid frames. ``OUT/index.jsonl`` lists
every output. Outputs that already exist are skipped, so an interrupted run resumes; a bad file
is reported and the run goes on. Under ``torchrun`` the inputs are split across the ranks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speechrep.inputs import Utterance, collect_inputs, plan_batches, probe

if TYPE_CHECKING:
    import numpy as np

    from speechrep.upstream.base import Upstream

DTYPES = ("float32", "float16", "bfloat16")
INDEX_NAME = "index.jsonl"


@dataclass(frozen=True)
class ExtractOptions:
    """How :func:`extract` runs.

    Attributes:
        layers: hidden-state indices to save (negative counts from the end); None saves all.
        dtype: dtype of the saved tensors (``float32``, ``float16``, ``bfloat16``).
        batch_seconds: padded audio seconds per forward pass (``B * longest``).
        device: where the waveforms go; the upstream must already be there.
        label: recorded in each output (e.g. upstream name and checkpoint); an existing output
            with another label, layers or dtype is recomputed instead of skipped.
        progress: show a progress bar (rank 0 only).
    """

    layers: tuple[int, ...] | None = None
    dtype: str = "float32"
    batch_seconds: float = 60.0
    device: str = "cpu"
    label: str = ""
    progress: bool = True


@dataclass
class ExtractResult:
    """What a run did: ``index`` rows (this rank's, or all on rank 0) and failures (all ranks)."""

    index: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    written: int = 0
    skipped: int = 0


# ---------------------------------------------------------------- inputs


def parse_layers(text: str | None) -> tuple[int, ...] | None:
    """``"0,4,-1"`` -> (0, 4, -1); None or ``"all"`` -> None."""
    if text is None or text.strip() == "all":
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(
            f"--layers: expected comma-separated integers like 0,4,-1, found {text!r}"
        ) from None


def resolve_layers(layers: tuple[int, ...] | None, num_layers: int) -> list[int]:
    """Hidden-state indices as non-negative, de-duplicated, in the order given."""
    if layers is None:
        return list(range(num_layers))
    out: list[int] = []
    for index in layers:
        if not -num_layers <= index < num_layers:
            raise ValueError(
                f"layer {index} out of range: the upstream has {num_layers} hidden states"
            )
        if index % num_layers not in out:
            out.append(index % num_layers)
    return out


# ---------------------------------------------------------------- the work


def extract(
    upstream: Upstream,
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    options: ExtractOptions | None = None,
) -> ExtractResult:
    """Write ``layer_<i>`` (T, D) tensors of every input utterance to ``out_dir``.

    With a ``torch.distributed`` process group initialised, rank r takes every
    world-size-th utterance and rank 0 writes the merged ``index.jsonl``.

    Example:
        >>> up = speechrep.load_upstream("fbank")  # doctest: +SKIP
        >>> result = extract(up, ["wavs/"], "feats/", ExtractOptions(layers=(-1,)))  # doctest: +SKIP
        >>> result.failures  # doctest: +SKIP
        []
    """
    import torch.distributed as dist

    options = options or ExtractOptions()
    if options.dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, found {options.dtype!r}")
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    out_dir = Path(out_dir)
    layers = resolve_layers(options.layers, upstream.num_layers)
    signature = {
        "label": options.label,
        "layers": ",".join(map(str, layers)),
        "dtype": options.dtype,
        "precision": upstream.precision,
    }

    mine, failures = probe(collect_inputs(inputs)[rank::world])
    for path, reason in failures:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    result = ExtractResult(failures=failures)
    todo = []
    for utt in mine:
        entry = _existing_entry(out_dir / f"{utt.id}.safetensors", signature)
        if entry is None:
            todo.append(utt)
        else:
            result.index.append({**entry, "source": str(utt.path.absolute())})
            result.skipped += 1
    job = _Job(upstream, out_dir, layers, signature, options)
    for batch_entries, batch_failures in _run_batches(job, todo, rank):
        result.index += batch_entries
        result.failures += batch_failures
        result.written += len(batch_entries)
    if distributed:
        return _merge_ranks(result, out_dir, rank, world)
    result.index.sort(key=lambda e: e["id"])
    _write_index(out_dir / INDEX_NAME, result.index)
    return result


def _existing_entry(path: Path, signature: dict[str, str]) -> dict[str, Any] | None:
    """The index row stored in an earlier output, if it exists and matches this run."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception:  # an unreadable output is simply made again
        return None
    if any(meta.get(key) != value for key, value in signature.items()) or "index" not in meta:
        return None
    return json.loads(meta["index"])


@dataclass(frozen=True)
class _Job:
    """What every batch of one run shares."""

    upstream: Upstream
    out_dir: Path
    layers: list[int]  # hidden-state indices, non-negative
    signature: dict[str, str]  # stored in each output; decides whether it can be reused
    options: ExtractOptions


def _run_batches(
    job: _Job, todo: list[Utterance], rank: int
) -> Iterator[tuple[list[dict[str, Any]], list[tuple[str, str]]]]:
    """Forward each batch and write its outputs; audio of the next batch loads meanwhile."""
    from tqdm import tqdm

    batches = plan_batches(todo, job.options.batch_seconds) if todo else []
    show = job.options.progress and rank == 0
    bar = tqdm(total=len(todo), unit="utt", desc="extract", disable=not show)
    rate = job.upstream.sample_rate
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_load_batch, batches[0], rate) if batches else None
        for i, batch in enumerate(batches):
            loaded, failures = pending.result()
            if i + 1 < len(batches):
                pending = pool.submit(_load_batch, batches[i + 1], rate)
            entries, more = _forward_batch(job, loaded)
            for path, reason in failures + more:
                bar.write(f"skipped {path}: {reason}", file=sys.stderr)
            bar.update(len(batch))
            yield entries, failures + more
    bar.close()


def _load_batch(
    batch: list[Utterance], sample_rate: int
) -> tuple[list[tuple[Utterance, np.ndarray]], list[tuple[str, str]]]:
    from speechrep.audio import load_audio

    loaded, failures = [], []
    for utt in batch:
        try:
            loaded.append((utt, load_audio(utt.path, sample_rate)[0]))
        except (ValueError, FileNotFoundError) as err:  # AudioError is a ValueError
            failures.append((str(utt.path), _reason(err, utt.path)))
    return loaded, failures


def _forward_batch(
    job: _Job, loaded: list[tuple[Utterance, np.ndarray]]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """One forward pass; if it fails, each utterance alone so only the bad one is lost."""
    import torch

    from speechrep.audio import pad_batch

    if not loaded:
        return [], []
    try:
        wavs, wav_lens = pad_batch([wav for _, wav in loaded])
        with torch.inference_mode():
            out = job.upstream(wavs.to(job.options.device), wav_lens.to(job.options.device))
        states = [out.hidden_states[i] for i in job.layers]  # each (B, T, D)
        if not all(bool(torch.isfinite(s).all()) for s in states):
            raise ValueError("the upstream produced NaN or Inf features")
    except (ValueError, RuntimeError) as err:  # RuntimeError covers out-of-memory
        if len(loaded) == 1:
            return [], [(str(loaded[0][0].path), _reason(err, loaded[0][0].path))]
        entries, failures = [], []
        for one in loaded:
            e, f = _forward_batch(job, [one])
            entries, failures = entries + e, failures + f
        return entries, failures
    entries = []
    for b, (utt, _) in enumerate(loaded):
        frames = int(out.lengths[b])
        dtype = getattr(torch, job.options.dtype)
        tensors = {
            f"layer_{i}": s[b, :frames].to(dtype).cpu()
            for i, s in zip(job.layers, states, strict=True)
        }
        entries.append(_write_output(job, utt, tensors, frames))
    return entries, []


def _write_output(
    job: _Job, utt: Utterance, tensors: dict[str, Any], frames: int
) -> dict[str, Any]:
    from speechrep.fileio import save_safetensors_atomic

    entry = {
        "id": utt.id,
        "file": f"{utt.id}.safetensors",
        "source": str(utt.path.absolute()),
        "frames": frames,
        "seconds": round(utt.seconds, 4),
        "sample_rate": utt.sample_rate,
        "layers": job.layers,
    }
    metadata = {**job.signature, "index": json.dumps(entry)}
    save_safetensors_atomic(tensors, job.out_dir / entry["file"], metadata=metadata)
    return entry


def _reason(err: Exception, path: Path) -> str:
    text = str(err)
    prefix = f"{path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _write_index(path: Path, entries: list[dict[str, Any]]) -> None:
    from speechrep.fileio import write_text_atomic

    write_text_atomic(path, "".join(json.dumps(e) + "\n" for e in entries))


def _merge_ranks(result: ExtractResult, out_dir: Path, rank: int, world: int) -> ExtractResult:
    """Each rank writes its index part; after a barrier rank 0 merges them into index.jsonl."""
    import torch.distributed as dist

    _write_index(out_dir / f"index.rank{rank}.jsonl", result.index)
    print(
        f"rank {rank}/{world}: {result.written} written, {result.skipped} already there, "
        f"{len(result.failures)} failed"
    )
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, (result.failures, result.written, result.skipped))
    dist.barrier()
    result.failures = [f for failures, _, _ in gathered for f in failures]
    result.written = sum(w for _, w, _ in gathered)
    result.skipped = sum(s for _, _, s in gathered)
    if rank == 0:
        parts = [out_dir / f"index.rank{r}.jsonl" for r in range(world)]
        rows = [
            json.loads(line) for part in parts for line in part.read_text().splitlines() if line
        ]
        result.index = sorted(rows, key=lambda e: e["id"])
        _write_index(out_dir / INDEX_NAME, result.index)
        for part in parts:
            part.unlink()
    dist.barrier()  # nobody leaves before the index is complete
    return result


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="audio files, folders (recursive) or list files (.txt/.lst, one path a line)",
    )
    parser.add_argument(
        "-u",
        "--upstream",
        required=True,
        metavar="NAME",
        help="registered name (see `speechrep list`), checkpoint path or URL",
    )
    parser.add_argument("-k", "--ckpt", help="checkpoint for NAME (replaces the registered one)")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument("--layers", help="hidden-state indices to save, e.g. 0,4,-1 (default: all)")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "fp16"),
        help="autocast precision of the forward pass",
    )
    parser.add_argument(
        "--dtype", default="float32", choices=DTYPES, help="dtype of the saved tensors"
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        default=60.0,
        help="padded audio seconds per forward pass (default 60)",
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import speechrep
    from speechrep.train import distributed

    layers = parse_layers(args.layers)
    if args.batch_seconds <= 0:
        raise ValueError(f"--batch-seconds must be > 0, found {args.batch_seconds}")
    info, device = distributed.init_distributed(args.device or "auto")
    try:
        upstream = speechrep.load_upstream(
            args.upstream, ckpt=args.ckpt, precision=args.precision, device=device
        )
        label = args.upstream if args.ckpt is None else f"{args.upstream} {args.ckpt}"
        options = ExtractOptions(
            layers=layers,
            dtype=args.dtype,
            batch_seconds=args.batch_seconds,
            device=str(device),
            label=label,
            progress=not args.no_progress,
        )
        result = extract(upstream, args.inputs, args.out, options)
    finally:
        distributed.shutdown()
    return _report(result, Path(args.out), info.rank)


def _report(result: ExtractResult, out_dir: Path, rank: int) -> int:
    if rank != 0:
        return 1 if result.failures else 0
    print(
        f"{result.written} written, {result.skipped} already there, {len(result.failures)} failed "
        f"-> {out_dir}"
    )
    if not result.failures:
        return 0
    print(f"{len(result.failures)} file(s) failed:", file=sys.stderr)
    for path, reason in result.failures:
        print(f"  {path}: {reason}", file=sys.stderr)
    return 1
