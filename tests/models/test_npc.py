"""NPC: parity with s3prl's outputs, stored conv masks, and padded batches that (unlike s3prl's)
equal each utterance alone.

Tolerances: parity with s3prl <= 1e-4 absolute on every frame of every hidden state (measured
~1e-5); batch vs single <= 1e-5.
"""

from __future__ import annotations

import pytest
import torch
from upstream_checks import (
    REFERENCE,
    batch_vs_single,
    load_reference_wavs,
    perturb,
    reference_error,
    s3prl_batch_error,
)

from speechrep.convert.safe_pickle import safe_load
from speechrep.nn.quantize import VqConfig
from speechrep.upstream.load import load_upstream
from speechrep.upstream.npc import NpcConfig, NpcUpstream, masked_batch_norm

PARITY_TOL = 1e-4
BATCH_TOL = 1e-5


def test_parity_with_s3prl_every_layer():
    up = load_upstream(REFERENCE / "npc.ckpt")
    assert up.family == "npc" and not up.training
    assert up.num_layers == 7  # 2 * blocks + 1
    assert reference_error(up, "npc") <= PARITY_TOL


def test_parity_twin_perturbed_running_stat_fails():
    up = load_upstream(REFERENCE / "npc.ckpt")
    perturb(up, "blocks.0.bn1.running_mean", 0.5, index=3)
    assert reference_error(up, "npc") > 1e-3


def test_stored_conv_mask_is_used(tmp_path):
    payload = safe_load(REFERENCE / "npc.ckpt")
    stored = payload["model"]["masked_convs.1.conv_mask"]
    up = load_upstream(REFERENCE / "npc.ckpt")
    assert torch.equal(up.masked_convs[1].conv_mask, stored)
    assert int((stored[0, 0] == 0).sum()) == 5 + 2 * 2  # block i masks mask_size + 2 (i + 1) taps
    payload["model"]["masked_convs.1.conv_mask"] = torch.ones_like(stored)
    torch.save(payload, tmp_path / "npc_unmasked.ckpt")
    changed = load_upstream(tmp_path / "npc_unmasked.ckpt")
    assert torch.equal(changed.masked_convs[1].conv_mask, torch.ones_like(stored))
    wav = torch.from_numpy(load_reference_wavs()[0])[None]
    n = torch.tensor([wav.shape[1]])
    with torch.no_grad():
        a, b = up(wav, n).hidden_states, changed(wav, n).hidden_states
    assert torch.equal(a[1], b[1]) and float((a[3] - b[3]).abs().max()) > 1e-3


def test_padded_batch_equals_single():
    up = load_upstream(REFERENCE / "npc.ckpt")
    assert batch_vs_single(up, load_reference_wavs(), pad_value=4.0) <= BATCH_TOL
    # Twin: s3prl's own batch lets the padding reach the last ~11 valid frames.
    assert s3prl_batch_error(up, "npc", layer=6) > 1e-2


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
