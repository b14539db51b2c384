"""Upstream inference throughput: speechrep vs HuggingFace ``transformers`` on the same weights.

A random wav2vec 2.0 Base-size model (12 layers, 768 wide, the Base conv stack with GroupNorm,
as HuBERT Base) is built with ``transformers``, saved with ``save_pretrained`` and read into
speechrep through :func:`speechrep.convert.huggingface.read_hf_dir`, so both hold identical
weights (checked: every hidden state agrees). Both return every hidden state.

Scenarios (CPU, ``--threads`` intra-op threads, default 2):
  a        8 utterances x 10 s, one batch.
  b-bucket 64 utterances, lengths uniform in 2-20 s, batched by a padded-duration budget
           (``n * longest <= 80 s``) in length order (speechrep.extract.plan_batches).
  b-naive  the same utterances and budget in random order.
speechrep runs in fp32 and bf16 autocast; transformers in fp32, with an ``attention_mask`` (as a
user batching padded audio would). Throughput = seconds of real audio / wall seconds (best of
``--repeats``). Each configuration runs in a fresh subprocess, whose peak resident memory
(``ru_maxrss``) is reported along with its resident memory after loading the model.

Usage:
  python bench/upstream_throughput.py            # full run (about 20 minutes on 2 shared cores)
  python bench/upstream_throughput.py --quick    # smaller inputs, a few minutes
Results go to bench/out/upstream_throughput.json and a markdown summary to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SAMPLE_RATE = 16000
BASE_CONFIG = {
    "num_hidden_layers": 12,
    "hidden_size": 768,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "layerdrop": 0.0,
    "mask_time_prob": 0.0,
}
# (utterances, seconds or (low, high), padded budget in seconds) per scenario family
SIZES = {
    "full": {"a": (8, 10.0), "b": (64, (2.0, 20.0), 80.0)},
    "quick": {"a": (2, 3.0), "b": (24, (0.5, 3.0), 9.0)},
}
TARGETS = {"fp32": 1.0, "bf16": 1.7, "bucket": 1.3, "bf16_rel_error": 0.02}


# ---------------------------------------------------------------- scenarios


def plan(lengths: list[float], budget: float, order: str, seed: int = 0) -> list[list[int]]:
    """Batches of utterance indices, each with ``len(batch) * longest <= budget`` seconds."""
    if order == "bucket":  # the project's own planner (longest first)
        from speechrep.extract import Utterance, plan_batches

        utts = [Utterance(Path(f"{i}"), Path(f"{i:04d}"), s) for i, s in enumerate(lengths)]
        return [[int(u.path.name) for u in batch] for batch in plan_batches(utts, budget)]
    indices = list(range(len(lengths)))
    random.Random(seed).shuffle(indices)
    batches: list[list[int]] = []
    for i in indices:
        if (
            batches
            and (len(batches[-1]) + 1) * max(lengths[j] for j in batches[-1] + [i]) <= budget
        ):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def scenarios(size: str) -> dict[str, dict[str, Any]]:
    """name -> {"lengths": seconds per utterance, "batches": index lists}."""
    n_a, sec_a = SIZES[size]["a"]
    n_b, (low, high), budget = SIZES[size]["b"]
    rng = random.Random(1234)
    mixed = [round(rng.uniform(low, high), 3) for _ in range(n_b)]
    return {
        "a": {"lengths": [sec_a] * n_a, "batches": [list(range(n_a))]},
        "b-bucket": {"lengths": mixed, "batches": plan(mixed, budget, "bucket")},
        "b-naive": {"lengths": mixed, "batches": plan(mixed, budget, "naive")},
    }


# ---------------------------------------------------------------- worker (one configuration)


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak() -> bool:
    """Reset the kernel's resident high-water mark (VmHWM) so it covers inference only."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_since_reset_mb() -> float | None:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def _waveforms(lengths: list[float], seed: int = 0) -> list[Any]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(int(s * SAMPLE_RATE), generator=gen) for s in lengths]


def _pad(wavs: list[Any]) -> tuple[Any, Any]:
    import torch

    lens = torch.tensor([w.numel() for w in wavs])
    batch = torch.zeros(len(wavs), int(lens.max()))
    for i, w in enumerate(wavs):
        batch[i, : w.numel()] = w
    return batch, lens


def load_runner(impl: str, precision: str, model_dir: Path) -> Any:
    """A function: list of 1-D waveforms -> tuple of hidden states (B, T, D)."""
    import torch

    if impl == "speechrep":
        from speechrep import load_upstream

        upstream = load_upstream(model_dir, precision=precision)

        def run(wavs: list[Any]) -> Any:
            return upstream(*_pad(wavs)).hidden_states

        return run
    from transformers import Wav2Vec2Model

    if precision != "fp32":
        raise ValueError("transformers runs in fp32 only here")
    model = Wav2Vec2Model.from_pretrained(model_dir).eval()

    def run_hf(wavs: list[Any]) -> Any:
        batch, lens = _pad(wavs)
        mask = (torch.arange(batch.shape[1])[None, :] < lens[:, None]).long()
        return model(batch, attention_mask=mask, output_hidden_states=True).hidden_states

    return run_hf


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(spec["threads"])
    run = load_runner(spec["impl"], spec["precision"], Path(spec["model_dir"]))
    loaded = _rss_mb()
    load_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reset = _reset_peak()
    scenario = scenarios(spec["size"])[spec["scenario"]]
    wavs = _waveforms(scenario["lengths"])
    times, cpu_times = [], []
    load_before = os.getloadavg()[0]
    with torch.inference_mode():
        run(_waveforms([1.0, 0.7], seed=1))  # warm-up: allocator, kernels, lazy init
        for _ in range(spec["repeats"]):
            start, cpu_start = time.perf_counter(), time.process_time()
            for batch in scenario["batches"]:
                run([wavs[i] for i in batch])
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    audio = sum(scenario["lengths"])
    return {
        **spec,
        "audio_seconds": audio,
        "wall_seconds": min(times),
        "all_wall_seconds": times,
        "throughput": audio / min(times),
        "cpu_seconds": cpu_times[times.index(min(times))],  # process CPU time of that pass
        "load_average": [load_before, os.getloadavg()[0]],  # 1-min load, before / after
        "num_batches": len(scenario["batches"]),
        "padded_seconds": sum(
            len(b) * max(scenario["lengths"][i] for i in b) for b in scenario["batches"]
        ),
        "loaded_rss_mb": loaded,  # resident after loading the model
        "load_peak_rss_mb": load_peak,  # high-water mark while loading
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # whole process
        "inference_peak_rss_mb": _peak_since_reset_mb() if reset else None,
    }


def accuracy(spec: dict[str, Any]) -> dict[str, Any]:
    """Per-layer errors on one utterance: speechrep fp32 vs HF fp32 (max abs) and speechrep bf16
    vs both (relative Frobenius); and |padded batch - alone| on valid frames for each library."""
    import torch

    torch.set_num_threads(spec["threads"])
    model_dir = Path(spec["model_dir"])
    hf = load_runner("hf", "fp32", model_dir)
    ours = load_runner("speechrep", "fp32", model_dir)
    ours_bf16 = load_runner("speechrep", "bf16", model_dir)
    wav = _waveforms([spec["seconds"]], seed=2)
    with torch.inference_mode():
        ref, full, low = hf(wav), ours(wav), ours_bf16(wav)
    n = ref[0].shape[1]  # HF's native frames; speechrep repeats the last one

    def rel(a: Any, b: Any) -> float:
        return float((a[:, :n] - b[:, :n]).norm() / b[:, :n].norm())

    pair = _waveforms([spec["seconds"], spec["seconds"] / 2], seed=3)
    with torch.inference_mode():
        batch = {"hf": hf(pair), "speechrep": ours(pair)}
        alone = {"hf": hf(pair[1:]), "speechrep": ours(pair[1:])}
    padded_error = {}
    for name in batch:
        m = alone[name][0].shape[1]
        padded_error[name] = max(
            float((b[1:, :m] - a[:, :m]).abs().max())
            for b, a in zip(batch[name], alone[name], strict=True)
        )
    return {
        "seconds": spec["seconds"],
        "fp32_max_abs_vs_hf": [
            float((a[:, :n] - b).abs().max()) for a, b in zip(full, ref, strict=True)
        ],
        "bf16_rel_vs_fp32": [rel(a, b) for a, b in zip(low, full, strict=True)],
        "bf16_rel_vs_hf_fp32": [rel(a, b) for a, b in zip(low, ref, strict=True)],
        "padded_batch_max_abs_vs_alone": padded_error,
    }


# ---------------------------------------------------------------- driver


def build_model(model_dir: Path) -> None:
    """Random wav2vec 2.0 Base (HF init, seed 0) + a preprocessor config without normalisation."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    if (model_dir / "model.safetensors").is_file():
        return
    torch.manual_seed(0)
    model = Wav2Vec2Model(Wav2Vec2Config(**BASE_CONFIG))
    model.save_pretrained(model_dir)
    Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=True).save_pretrained(
        model_dir
    )


def in_subprocess(mode: str, spec: dict[str, Any], threads: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TRANSFORMERS_VERBOSITY": "error",
        "TQDM_DISABLE": "1",
    }
    cmd = [sys.executable, __file__, f"--{mode}", json.dumps(spec)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    import torch

    model = platform.processor()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "bf16_native": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "python": platform.python_version(),
    }


def configurations(bf16_scenarios: list[str], hf_naive: bool) -> list[tuple[str, str, str]]:
    """(scenario, impl, precision), HF and speechrep interleaved so drifting load hits both."""
    runs = []
    for scenario in ("a", "b-bucket", "b-naive"):
        if scenario != "b-naive" or hf_naive:
            runs.append((scenario, "hf", "fp32"))
        runs.append((scenario, "speechrep", "fp32"))
        if scenario in bf16_scenarios:
            runs.append((scenario, "speechrep", "bf16"))
    return runs


def summarize(results: list[dict[str, Any]], acc: dict[str, Any]) -> str:
    by = {(r["scenario"], r["impl"], r["precision"]): r for r in results}
    lines = [
        "| scenario | library | precision | audio s | batches | wall s | audio s / s | vs HF fp32 "
        "| audio s / CPU s | RSS MB: loaded / load peak / inference peak |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (scenario, impl, precision), r in by.items():
        hf = by.get((scenario, "hf", "fp32"))
        ratio = f"{r['throughput'] / hf['throughput']:.2f}x" if hf else "-"
        lines.append(
            f"| {scenario} | {impl} | {precision} | {r['audio_seconds']:.0f} | {r['num_batches']} | "
            f"{r['wall_seconds']:.1f} | {r['throughput']:.2f} | {ratio} | "
            f"{r['audio_seconds'] / r['cpu_seconds']:.2f} | "
            f"{r['loaded_rss_mb']:.0f} / {r['load_peak_rss_mb']:.0f} / {r['inference_peak_rss_mb'] or 0:.0f} |"
        )
    checks = []
    for scenario in ("a", "b-bucket"):
        for precision, target in (("fp32", TARGETS["fp32"]), ("bf16", TARGETS["bf16"])):
            ours, hf = by.get((scenario, "speechrep", precision)), by.get((scenario, "hf", "fp32"))
            if ours and hf:
                ratio = ours["throughput"] / hf["throughput"]
                checks.append(
                    f"{scenario} speechrep {precision} / HF fp32 = {ratio:.2f} (target >= {target}): "
                    + ("met" if ratio >= target else "MISSED")
                )
    for impl in ("speechrep", "hf"):
        bucket, naive = by.get(("b-bucket", impl, "fp32")), by.get(("b-naive", impl, "fp32"))
        if bucket and naive:
            ratio = bucket["throughput"] / naive["throughput"]
            extra = f" (target >= {TARGETS['bucket']}): " + (
                "met" if ratio >= TARGETS["bucket"] else "MISSED"
            )
            checks.append(
                f"{impl} fp32 length-bucketed / naive = {ratio:.2f}"
                + (extra if impl == "speechrep" else "")
            )
    worst = max(acc["bf16_rel_vs_fp32"])
    checks.append(
        f"bf16 relative error, worst layer = {worst:.4f} (target <= {TARGETS['bf16_rel_error']}): "
        + ("met" if worst <= TARGETS["bf16_rel_error"] else "MISSED")
    )
    fmt = ", ".join
    accuracy_lines = [
        f"- speechrep fp32 vs HF fp32, max |diff| per layer ({acc['seconds']} s utterance): "
        f"{fmt(f'{e:.1e}' for e in acc['fp32_max_abs_vs_hf'])}",
        f"- speechrep bf16 vs speechrep fp32, relative error per layer: {fmt(f'{e:.4f}' for e in acc['bf16_rel_vs_fp32'])}",
        f"- speechrep bf16 vs HF fp32, relative error per layer: {fmt(f'{e:.4f}' for e in acc['bf16_rel_vs_hf_fp32'])}",
        "- padded batch vs the same utterance alone, max |diff| over valid frames: "
        + fmt(f"{k} {v:.1e}" for k, v in acc["padded_batch_max_abs_vs_alone"].items()),
    ]
    return "\n".join(lines + [""] + [f"- {c}" for c in checks] + accuracy_lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs (a few minutes)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed passes per configuration; best counts"
    )
    parser.add_argument(
        "--bf16-scenarios",
        default="a",
        help="scenarios that also run speechrep in bf16: comma list of a, b-bucket, "
        "b-naive; '' for none (default a: bf16 is slow on CPUs without native bf16)",
    )
    parser.add_argument(
        "--hf-naive", action="store_true", help="also time transformers on b-naive (slowest run)"
    )
    parser.add_argument("--model-dir", type=Path, default=OUT / "hf_wav2vec2_base_random")
    parser.add_argument("--out", type=Path, default=OUT / "upstream_throughput.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--accuracy", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker or args.accuracy:
        result = (
            worker(json.loads(args.worker)) if args.worker else accuracy(json.loads(args.accuracy))
        )
        print(json.dumps(result))
        return 0
    size = "quick" if args.quick else "full"
    build_model(args.model_dir)
    base = {"model_dir": str(args.model_dir), "threads": args.threads, "size": size}
    acc = in_subprocess("accuracy", {**base, "seconds": 4.0 if args.quick else 10.0}, args.threads)
    results = []
    bf16_scenarios = [s for s in args.bf16_scenarios.split(",") if s]
    for scenario, impl, precision in configurations(bf16_scenarios, args.hf_naive or args.quick):
        spec = {
            **base,
            "scenario": scenario,
            "impl": impl,
            "precision": precision,
            "repeats": args.repeats,
        }
        results.append(in_subprocess("worker", spec, args.threads))
        r = results[-1]
        print(
            f"{scenario:9s} {impl:9s} {precision}: {r['throughput']:6.2f} audio s/s, "
            f"inference peak {r['inference_peak_rss_mb'] or 0:.0f} MB",
            file=sys.stderr,
            flush=True,
        )
    report = {
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "size": size,
        "accuracy": acc,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(summarize(results, acc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
