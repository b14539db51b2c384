"""Pretraining throughput: steps/s, frames/s and peak memory of the real pretraining pipeline.

Each configuration (method x precision x scenario) runs ``speechrep.pretrain.run.pretrain`` in
its own process (so its peak RSS is its own) on synthetic audio written to a temporary folder,
with the method's s3prl default model and optimizer:

- ``short``: utterances of 2.5-7.7 s (uniform), length-bucketed batches;
- ``crop15``: utterances of 15-20 s, randomly cropped to 15 s (s3prl's sequence_length 1500).
- ``fixed5``: every utterance 5.1 s (the shape of s3prl's timing at ``--frames 510``).

A *step* is one optimizer update (``batch`` utterances x ``accum`` micro-batches); the first
``warmup`` steps are not timed. Peak memory is the process's maximum resident set size.

With ``--s3prl-root PATH`` (a checkout of s3prl, not installed and not shipped here) it
instead times s3prl's own TERA base modules (``s3prl/upstream/mockingjay/model.py``: encoder
and prediction head with s3prl's default config) on the same machine: micro-batches of
``--batch`` random 80-dim feature sequences, forward + L1 loss on 15 % of the frames +
backward + gradient clipping + AdamW. ``--frames N`` times ``--steps`` batches of N frames
after ``--warmup``; ``--frames short`` times the very utterance lengths the ``short`` scenario
writes (same ``--seed``, ``--batch``, ``--accum``, ``--steps``, ``--warmup``), sorted and cut
into padded micro-batches with an attention mask. That is the model step alone (no audio decoding or feature extraction), a lower bound on s3prl's time per
micro-batch.

Usage:
    python bench/pretrain_throughput.py                       # TERA base + APC, fp32 and bf16
    python bench/pretrain_throughput.py --methods tera --precisions fp32 --scenarios short \\
        --steps 1 --warmup 1 --accum 1                        # a short run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SCENARIOS = {
    "short": (2.5, 7.7, 0.0),
    "crop15": (15.0, 20.0, 15.0),
    "fixed5": (5.1, 5.1, 0.0),  # every utterance 5.1 s: s3prl's 8 x 510-frame shape, no padding
}  # min s, max s, crop s
DEFAULT_BATCH = {
    "tera": (8, 4),
    "mockingjay": (8, 4),
    "audio_albert": (32, 1),
    "apc": (32, 1),
    "vq_apc": (32, 1),
    "npc": (32, 1),
}  # s3prl: train_batch_size, accumulation


def audio_lengths(count: int, low: float, high: float, seed: int) -> list[int]:
    """Samples per synthetic utterance (uniform in [low, high] seconds)."""
    rng = np.random.default_rng(seed)
    return [int(rng.uniform(low, high) * 16000) for _ in range(count)]


def write_audio(root: Path, count: int, low: float, high: float, seed: int) -> None:
    import soundfile as sf

    rng = np.random.default_rng(seed + 1)
    for i, n in enumerate(audio_lengths(count, low, high, seed)):
        t = np.arange(n) / 16000
        wav = 0.1 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.02 * rng.standard_normal(n)
        sf.write(str(root / f"utt{i:04d}.wav"), wav.astype(np.float32), 16000)


def run_one(method: str, precision: str, scenario: str, args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from speechrep.pretrain.run import pretrain
    from speechrep.train import read_metrics

    batch, accum = DEFAULT_BATCH[method]
    batch, accum = args.batch or batch, args.accum or accum
    low, high, crop = SCENARIOS[scenario]
    steps = args.warmup + args.steps
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "audio"
        audio.mkdir()
        write_audio(audio, batch * accum * steps, low, high, args.seed)
        overrides = [
            f"data.batch_size={batch}",
            "data.num_workers=0",
            "data.min_seconds=0",
            f"data.crop_seconds={crop}",
            f"train.grad_accum={accum}",
            f"train.total_steps={steps}",
            "train.epochs=0",
            f"train.precision={precision}",
            "train.log_every=1",
            f"train.save_every={steps}",
            "train.progress=false",
            "train.device=cpu",
        ]
        if args.checkpointing:
            overrides.append(f"train.activation_checkpointing={args.checkpointing}")
        pretrain(method, audio, Path(tmp) / "exp", overrides=overrides)
        records = read_metrics(Path(tmp) / "exp" / "metrics.jsonl")[args.warmup :]
    seconds = [1.0 / r["steps_per_s"] for r in records]
    frames = [r["frames_per_s"] / r["steps_per_s"] for r in records]
    return {
        "method": method,
        "precision": precision,
        "scenario": scenario,
        "batch": batch,
        "accum": accum,
        "threads": args.threads,
        "checkpointing": args.checkpointing or "default",
        "load_before": Path("/proc/loadavg").read_text().split()[0],
        "timed_steps": len(records),
        "seconds_per_step": float(np.mean(seconds)),
        "steps_per_s": float(1.0 / np.mean(seconds)),
        "frames_per_s": float(np.sum(frames) / np.sum(seconds)),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,  # KiB on Linux
    }


S3PRL_TERA = {
    "hidden_size": 768,
    "num_hidden_layers": 3,
    "num_attention_heads": 12,
    "hidden_act": "gelu",
    "intermediate_size": 3072,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "share_layer": False,
    "pre_layer_norm": False,
}  # s3prl pretrain/tera/config_model.yaml


def s3prl_batches(frames: str, args: argparse.Namespace) -> list[list[int]]:
    """Frame counts per micro-batch: ``N`` -> warmup + steps batches of ``args.batch`` x N;
    a scenario name -> that scenario's utterances (as written by :func:`write_audio` for
    ``tera`` with this ``--batch``/``--accum``/``--steps``/``--warmup``), sorted by length and
    cut into micro-batches (s3prl buckets by length too)."""
    batch, accum = args.batch or 8, args.accum or 4
    if frames.isdigit():
        return [[int(frames)] * batch for _ in range(args.warmup + args.steps)]
    low, high, _ = SCENARIOS[frames]
    count = batch * accum * (args.warmup + args.steps)
    lengths = sorted(n // 160 + 1 for n in audio_lengths(count, low, high, args.seed))
    return [lengths[i : i + batch] for i in range(0, count, batch)]


def run_s3prl(root: Path, frames: str, args: argparse.Namespace) -> dict:
    """s3prl's TERA base step on each micro-batch of :func:`s3prl_batches` (see the module doc).

    Fixed shapes skip ``--warmup`` batches; a scenario runs its middle batch once untimed,
    then times every batch once.
    """
    import importlib.util
    import time

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    spec = importlib.util.spec_from_file_location(
        "s3prl_mockingjay_model", root / "s3prl" / "upstream" / "mockingjay" / "model.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.TransformerConfig(S3PRL_TERA)
    encoder = module.TransformerModel(config, input_dim=80)
    head = module.TransformerSpecPredictionHead(config, 80)
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=2e-4)
    batches = s3prl_batches(frames, args)
    skip = args.warmup if frames.isdigit() else 1
    if not frames.isdigit():
        batches = [batches[len(batches) // 2]] + batches

    def step(lengths: list[int]) -> float:
        longest = max(lengths)
        valid = (torch.arange(longest)[None, :] < torch.tensor(lengths)[:, None]).float()
        position = torch.arange(longest)[:, None] / torch.pow(
            10000, 2 * (torch.arange(768)[None, :] // 2) / 768
        )
        pos_enc = torch.where(torch.arange(768) % 2 == 0, position.sin(), position.cos())
        pos_enc = pos_enc.expand(len(lengths), longest, 768)
        feats = torch.randn(len(lengths), longest, 80) * valid[..., None]
        label = (torch.rand(len(lengths), longest) < 0.15) & valid.bool()
        start = time.perf_counter()
        hidden = encoder(feats, pos_enc, valid, output_all_encoded_layers=False)
        pred, _ = head(hidden[-1] if isinstance(hidden, list) else hidden)
        loss = (pred - feats).abs()[label].mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - start

    times = [step(lengths) for lengths in batches][skip:]
    return {
        "library": "s3prl",
        "batch": len(batches[0]),
        "frames": frames,
        "micro_batches": len(times),
        "mean_longest": float(np.mean([max(b) for b in batches[skip:]])),
        "seconds_per_micro_batch": float(np.mean(times)),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }


def main_s3prl(args: argparse.Namespace) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    for frames in args.frames.split(","):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--one-s3prl", frames]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"s3prl tera base {r['batch']} x {r['frames']} frames "
            f"({r['micro_batches']} micro-batches, mean longest {r['mean_longest']:.0f}): "
            f"{r['seconds_per_micro_batch']:.2f} s per micro-batch, "
            f"peak RSS {r['peak_rss_gb']:.2f} GB",
            flush=True,
        )
    print(f"machine: {machine()}; {args.threads} threads")
    return 0


def machine() -> str:
    import torch

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    flags = Path("/proc/cpuinfo").read_text()
    bf16 = "native bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "no native bf16"
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {torch.backends.cpu.get_cpu_capability()}, {bf16}; "
        f"torch {torch.__version__}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default="tera,apc")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument(
        "--scenarios", default="short,crop15", help="short (2.5-7.7 s), crop15 and/or fixed5 (all 5.1 s)"
    )
    parser.add_argument(
        "--steps", type=int, default=2, help="timed optimizer steps per configuration"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument(
        "--batch", type=int, default=0, help="utterances per micro-batch (0: s3prl's)"
    )
    parser.add_argument("--accum", type=int, default=0, help="micro-batches per step (0: s3prl's)")
    parser.add_argument(
        "--checkpointing", default="", help="none | attention | layers (default: the method's)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--s3prl-root", type=Path, help="time s3prl's TERA base instead")
    parser.add_argument(
        "--frames",
        default="510,1500,short",
        help="with --s3prl-root: frames per utterance, or a scenario (short) to time its batches",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # method:precision:scenario, in a child
    parser.add_argument("--one-s3prl", help=argparse.SUPPRESS)  # frames, in a child
    args = parser.parse_args()

    if args.one_s3prl:
        print(json.dumps(run_s3prl(args.s3prl_root, args.one_s3prl, args)))
        return 0
    if args.s3prl_root:
        return main_s3prl(args)

    if args.one:
        print(json.dumps(run_one(*args.one.split(":"), args)))
        return 0
    rows = []
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    for method in args.methods.split(","):
        scenarios = (
            args.scenarios.split(",")
            if method in ("tera", "mockingjay", "audio_albert")
            else ["short"]
        )
        for scenario in scenarios:
            for precision in args.precisions.split(","):
                cmd = [
                    sys.executable,
                    __file__,
                    *sys.argv[1:],
                    "--one",
                    f"{method}:{precision}:{scenario}",
                ]
                done = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    print(done.stderr[-2000:], file=sys.stderr)
                    return 1
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                print(
                    f"{method:6s} {scenario:6s} {precision:4s} batch {r['batch']}x{r['accum']}: "
                    f"{r['seconds_per_step']:7.2f} s/step  {r['steps_per_s']:.4f} steps/s  "
                    f"{r['frames_per_s']:8.0f} frames/s  peak RSS {r['peak_rss_gb']:.2f} GB",
                    flush=True,
                )
    print(f"machine: {machine()}; {args.threads} threads")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
