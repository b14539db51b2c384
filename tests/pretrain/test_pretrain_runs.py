"""Every method: a tiny run on a handful of synthetic utterances lowers its loss clearly, and
the experiment directory loads as an upstream with the right hidden states."""

import numpy as np
import pytest
import torch

from speechrep.audio import load_audio, pad_batch
from speechrep.pretrain.data import scan_audio
from speechrep.pretrain.methods import METHODS
from speechrep.pretrain.run import pretrain
from speechrep.train import load_checkpoint, read_metrics
from speechrep.upstream.load import load_upstream

# Mean loss over the last eighth of the steps / mean over the first eighth must be at most
# this. Measured on this corpus: mockingjay 0.76, tera 0.69, audio_albert 0.70, apc 0.47,
# vq_apc 0.79, npc 0.71, distilhubert 0.61 (VQ bottlenecks and Kaldi features learn slower).
MAX_LOSS_RATIO = {
    "mockingjay": 0.85,
    "tera": 0.8,
    "audio_albert": 0.8,
    "apc": 0.6,
    "vq_apc": 0.85,
    "npc": 0.8,
    "distilhubert": 0.75,
}

# Hidden states of each tiny model, as s3prl counts them: transformer L + 1; APC 3; NPC
# 2 per block + 1; DistilHuBERT 1 + layers + heads.
HIDDEN_STATES = {
    "mockingjay": 3,
    "tera": 3,
    "audio_albert": 3,
    "apc": 3,
    "vq_apc": 3,
    "npc": 5,
    "distilhubert": 5,
}


def loss_ratio(expdir) -> float:
    losses = [r["loss"] for r in read_metrics(expdir / "metrics.jsonl")]
    k = max(3, len(losses) // 8)
    return float(np.mean(losses[-k:]) / np.mean(losses[:k]))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_tiny_pretraining_learns_and_loads(name, audio_dir, tiny_teacher, tmp_path):
    overrides = ["train.progress=false"]
    if name == "distilhubert":
        overrides.append(f"task.teacher={tiny_teacher}")
    results = pretrain(name, audio_dir, tmp_path, config="tiny", overrides=overrides)
    assert results["method"] == name and results["steps"] == len(
        read_metrics(tmp_path / "metrics.jsonl")
    )
    assert loss_ratio(tmp_path) <= MAX_LOSS_RATIO[name]

    up = load_upstream(tmp_path)  # finds tmp_path/upstream
    assert up.family == METHODS[name].family and up.num_layers == HIDDEN_STATES[name]
    wavs, lens = pad_batch([load_audio(it.path)[0] for it in scan_audio(audio_dir)[:2]])
    out = up(wavs, lens)
    assert len(out.hidden_states) == HIDDEN_STATES[name]
    assert all(torch.isfinite(h).all() for h in out.hidden_states)

    # the exported weights are the trained ones from the last checkpoint, not a fresh model
    trained = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["model"]
    for key, value in up.state_dict().items():
        assert torch.equal(value, trained[f"upstream.{key}"]), key
    torch.manual_seed(0)
    initial = type(up)(up.config).state_dict()
    assert any(
        not torch.equal(initial[k], v) for k, v in up.state_dict().items() if v.is_floating_point()
    )


def test_tiny_tera_learns_under_bf16_autocast(audio_dir, tmp_path):
    """The mixed-precision path (bf16 autocast, chunked attention with CPU drop masks); the
    exported s3prl file carries the trained prediction head under s3prl's names."""
    from speechrep.convert.cli import convert
    from speechrep.convert.safe_pickle import safe_load

    overrides = ["train.progress=false", "train.precision=bf16", "model.attention_dropout=0.1"]
    pretrain("tera", audio_dir, tmp_path / "exp", config="tiny", overrides=overrides)
    assert loss_ratio(tmp_path / "exp") <= MAX_LOSS_RATIO["tera"]

    convert(tmp_path / "exp", tmp_path / "tera.ckpt", to="s3prl")
    head = safe_load(tmp_path / "tera.ckpt")["SpecHead"]
    trained = load_checkpoint(tmp_path / "exp" / "checkpoints" / "last.pt")["model"]
    names = {"dense.weight", "dense.bias", "LayerNorm.weight", "LayerNorm.bias"}
    assert names | {"output.weight", "output.bias"} == head.keys()
    for key, value in head.items():
        assert torch.equal(value, trained["head." + key.replace("LayerNorm.", "layer_norm.")])
