"""NPC: parity with s3prl's outputs, stored conv masks, and padded batches that (unlike s3prl's)
equal each utterance alone.

Tolerances: parity with s3prl <= 1e-4 absolute on every frame of every hidden state (measured
~1e-5); batch vs single <= 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from speechrep.convert.safe_pickle import safe_load
from speechrep.nn.quantize import VqConfig
from speechrep.upstream.load import load_upstream
from speechrep.upstream.npc import NpcConfig, NpcUpstream, masked_batch_norm

REF = Path(__file__).parents[1] / "fixtures" / "reference"
PARITY_TOL = 1e-4
BATCH_TOL = 1e-5


def _wavs() -> list[torch.Tensor]:
    data = np.load(REF / "inputs.npz")
    return [torch.from_numpy(data[f"wav_{i}"]) for i in range(3)]


def _max_error(up: torch.nn.Module) -> float:
    ref = np.load(REF / "npc.outputs.npz")
    worst = 0.0
    for i, wav in enumerate(_wavs()):
        with torch.no_grad():
            out = up(wav[None], torch.tensor([wav.numel()]))
        assert len(out.hidden_states) == 7 == up.num_layers  # 2 * blocks + 1
        for j, state in enumerate(out.hidden_states):
            expected = ref[f"single_{i}_layer_{j}"]
            assert state.shape == expected.shape
            worst = max(worst, float(np.abs(state.numpy() - expected).max()))
    return worst


def test_parity_with_s3prl_every_layer():
    up = load_upstream(REF / "npc.ckpt")
    assert up.family == "npc" and not up.training
    assert _max_error(up) <= PARITY_TOL


def test_parity_twin_perturbed_running_stat_fails():
    up = load_upstream(REF / "npc.ckpt")
    with torch.no_grad():
        up.blocks[0].bn1.running_mean[3] += 0.5
    assert _max_error(up) > 1e-3


def test_stored_conv_mask_is_used(tmp_path):
    payload = safe_load(REF / "npc.ckpt")
    stored = payload["model"]["masked_convs.1.conv_mask"]
    up = load_upstream(REF / "npc.ckpt")
    assert torch.equal(up.masked_convs[1].conv_mask, stored)
    assert int((stored[0, 0] == 0).sum()) == 5 + 2 * 2  # block i masks mask_size + 2 (i + 1) taps
    payload["model"]["masked_convs.1.conv_mask"] = torch.ones_like(stored)
    torch.save(payload, tmp_path / "npc_unmasked.ckpt")
    changed = load_upstream(tmp_path / "npc_unmasked.ckpt")
    assert torch.equal(changed.masked_convs[1].conv_mask, torch.ones_like(stored))
    wav = _wavs()[0][None]
    n = torch.tensor([wav.shape[1]])
    with torch.no_grad():
        a, b = up(wav, n).hidden_states, changed(wav, n).hidden_states
    assert torch.equal(a[1], b[1]) and float((a[3] - b[3]).abs().max()) > 1e-3


def _garbage_padded_batch(wavs):
    lens = torch.tensor([w.numel() for w in wavs])
    batch = torch.full((len(wavs), int(lens.max())), 4.0)
    for i, w in enumerate(wavs):
        batch[i, : w.numel()] = w
    return batch, lens


def test_padded_batch_equals_single():
    up = load_upstream(REF / "npc.ckpt")
    wavs = _wavs()
    with torch.no_grad():
        batch = up(*_garbage_padded_batch(wavs))
        singles = [up(w[None], torch.tensor([w.numel()])) for w in wavs]
    worst = 0.0
    for i, single in enumerate(singles):
        n = int(single.lengths[0])
        for b, s in zip(batch.hidden_states, single.hidden_states, strict=True):
            worst = max(worst, float((b[i, :n] - s[0]).abs().max()))
            assert b[i, n:].abs().sum() == 0
    assert worst <= BATCH_TOL
    # Twin: s3prl's own batch lets the padding reach the last ~11 valid frames.
    ref = np.load(REF / "npc.outputs.npz")
    s3prl_last = ref["batch_layer_6"][0, :100]
    assert np.abs(s3prl_last - singles[0].hidden_states[6][0].numpy()).max() > 1e-2


def test_padding_never_reaches_valid_frames_through_the_receptive_field():
    # 4 blocks with kernel 15: a frame sees 1 + 4 * 2 + 14 frames around it; long padding of
    # garbage features must still change nothing.
    torch.manual_seed(0)
    up = NpcUpstream(NpcConfig(hidden_size=16, num_blocks=4, kernel_size=15, mask_size=5)).eval()
    feats = torch.randn(2, 60, 80)
    feats[1, 20:] = 7.0
    with torch.no_grad():
        batch = up.encode(feats, torch.tensor([60, 20]))
        alone = up.encode(feats[1:, :20], torch.tensor([20]))
        leaky = up.encode(feats[1:], torch.tensor([60]))  # twin: garbage counted as frames
    assert all(
        float((b[1, :20] - a[0]).abs().max()) <= BATCH_TOL
        for b, a in zip(batch, alone, strict=True)
    )
    assert float((leaky[-1][0, :20] - alone[-1][0]).abs().max()) > 1e-3


def test_masked_batch_norm_uses_valid_frames_in_training():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm1d(4).train()
    reference = torch.nn.BatchNorm1d(4).train()
    x = torch.randn(2, 4, 9)
    valid = torch.tensor([[True] * 9, [True] * 5 + [False] * 4])
    with torch.no_grad():  # running statistics still update
        out = masked_batch_norm(bn, x, valid)
        frames = torch.cat([x[0].T, x[1, :, :5].T])  # the 14 valid frames
        expected = reference(frames)
    assert float((out[0].T - expected[:9]).abs().max()) <= 1e-5
    assert float((bn.running_mean - reference.running_mean).abs().max()) <= 1e-6
    assert out[1, :, 5:].abs().sum() == 0
    # Twin: plain BatchNorm over the padded batch has different statistics.
    plain = torch.nn.BatchNorm1d(4).train()(x).detach()
    assert float((plain[0] - out[0]).abs().max()) > 1e-3


def test_disable_cross_layer_vq_and_bottleneck_variants():
    cfg = NpcConfig(
        hidden_size=16,
        num_blocks=3,
        kernel_size=11,
        mask_size=3,
        disable_cross_layer=True,
        vq=VqConfig((8, 8), (8, 8), 1.0),
    )
    up = NpcUpstream(cfg).eval()
    assert up.num_layers == 3 + 1 + 1 and up.masked_convs[0] is None
    feats = torch.randn(1, 30, 80)
    states = up.encode(feats, torch.tensor([30]))
    assert len(states) == up.num_layers and torch.equal(states[-1], states[-2])
    pred, onehots = up.predict(states[-1])
    assert pred.shape == (1, 30, 80) and len(onehots) == 2
    ae = NpcUpstream(
        NpcConfig(hidden_size=16, num_blocks=1, kernel_size=5, mask_size=1, bottleneck_size=4)
    )
    assert ae.predict(torch.randn(1, 3, 16))[0].shape == (1, 3, 80)
    with pytest.raises(ValueError, match="must stay below kernel_size"):
        NpcConfig(kernel_size=9, mask_size=5, num_blocks=2)
