"""A pretraining process killed with SIGKILL part-way resumes to the parameters of an
uninterrupted run (bit for bit on the same machine)."""

import os
import signal
import subprocess
import sys
import time

import torch

from speechrep.cli import main
from speechrep.train import load_checkpoint, read_metrics

STEPS = 24
# tera tiny with dropout on: resuming must restore the masking, noise and dropout draws.
SETTINGS = [
    f"train.total_steps={STEPS}",
    "train.save_every=4",
    "train.progress=false",
    "model.hidden_dropout=0.1",
    "model.attention_dropout=0.1",
]

# The same CLI, each optimizer update slowed down so the test can kill it between checkpoints.
SLOW = """
import sys, time
import speechrep.train.loop as loop
step = loop.Trainer._optimizer_step
def slow(self):
    time.sleep(0.25)
    return step(self)
loop.Trainer._optimizer_step = slow
from speechrep.cli import main
sys.exit(main(sys.argv[1:]))
"""


def command(audio_dir, expdir, *extra):
    args = ["pretrain", "tera", "--data", str(audio_dir), "-o", str(expdir), "-c", "tiny"]
    for setting in SETTINGS:
        args += ["--set", setting]
    return [*args, *extra]


def env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def weights(expdir) -> dict[str, torch.Tensor]:
    return load_checkpoint(expdir / "checkpoints" / "last.pt")["model"]


def test_sigkill_then_resume_matches_an_uninterrupted_run(audio_dir, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    torch.set_num_threads(1)  # as the subprocesses (OMP_NUM_THREADS=1)
    assert main(command(audio_dir, straight)) == 0  # the uninterrupted run, in this process

    proc = subprocess.Popen([sys.executable, "-c", SLOW, *command(audio_dir, killed)], env=env())
    marker = killed / "checkpoints" / "step_00000008.pt"
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.4)  # one more update in flight or done but not saved
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = load_checkpoint(killed / "checkpoints" / "last.pt")["step"]
    assert 8 <= saved < STEPS and not (killed / "results.json").exists()

    subprocess.run(
        [sys.executable, "-m", "speechrep", *command(audio_dir, killed, "--resume")],
        env=env(),
        check=True,
    )
    a, b = weights(straight), weights(killed)
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst == 0.0, f"resumed run differs by {worst}"
    assert [r["step"] for r in read_metrics(killed / "metrics.jsonl")] == list(range(1, STEPS + 1))

    # twin: the checkpoint the resume started from is NOT the end state
    early = load_checkpoint(killed / "checkpoints" / f"step_{saved:08d}.pt")["model"]
    assert max(float((a[k].float() - early[k].float()).abs().max()) for k in a) > 1e-4
