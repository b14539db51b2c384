"""``torchrun --nproc_per_node 2 -m speechrep pretrain ...`` on the CPU (gloo)."""

import json
import os
import subprocess
import sys

from speechrep.train import load_checkpoint, read_metrics
from speechrep.upstream.load import load_upstream


def test_two_process_cpu_run(audio_dir, tmp_path):
    expdir = tmp_path / "exp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "speechrep",
        "pretrain",
        "npc",
        "--data",
        str(audio_dir),
        "-o",
        str(expdir),
        "-c",
        "tiny",
        "--set",
        "train.total_steps=12",
        "--set",
        "train.save_every=6",
        "--set",
        "train.progress=false",
        "--set",
        "data.batch_size=2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('"method": "npc"') == 1  # one summary: rank 0 only

    results = json.loads((expdir / "results.json").read_text())
    assert results["world_size"] == 2 and results["steps"] == 12
    # 4 utterances / 2 per batch = 2 batches per epoch, one per rank: one update per epoch
    assert results["epoch"] == 11
    steps = [r["step"] for r in read_metrics(expdir / "metrics.jsonl")]
    assert steps == list(range(1, 13))  # written once, by rank 0
    state = load_checkpoint(expdir / "checkpoints" / "last.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2  # every rank's RNG is kept
    assert not torch_equal_rng(state["rng"])
    assert load_upstream(expdir).num_layers == 5


def torch_equal_rng(rngs) -> bool:
    return bool((rngs[0]["torch"] == rngs[1]["torch"]).all())
