"""DistilHuBERT: s3prl parity (features, layers, heads), padded batches, the student for training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speechrep.audio.collate import pad_batch
from speechrep.convert.detect import read_checkpoint
from speechrep.convert.native import NativeCheckpoint
from speechrep.convert.safe_pickle import CheckpointError, safe_load
from speechrep.upstream.distilhubert import DistilHubertConfig, DistilHubertUpstream
from speechrep.upstream.load import build_upstream, load_upstream
from speechrep.upstream.wav2vec2 import HubertUpstream, Wav2Vec2Config

TOL = 1e-4  # fp32 absolute
TINY_CONV = ((16, 10, 5), (16, 3, 2), (16, 2, 2))  # stride 20
TINY_WAVS = [
    np.random.default_rng(i).normal(size=n).astype(np.float32) * 0.1
    for i, n in enumerate([430, 977, 1500])
]


def error_vs_s3prl(model: torch.nn.Module, reference_dir, wavs) -> float:
    """Largest |ours - s3prl| over all 6 hidden states of every single-utterance run."""
    ref = np.load(reference_dir / "distiller.outputs.npz")
    worst = 0.0
    with torch.no_grad():
        for i, wav in enumerate(wavs):
            out = model(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
            assert len(out.hidden_states) == model.num_layers == 6
            for j, state in enumerate(out.hidden_states):
                expected = ref[f"single_{i}_layer_{j}"]
                assert state.shape == expected.shape, (i, j)
                worst = max(worst, float(np.abs(state.numpy() - expected).max()))
    return worst


def batch_vs_single(model: torch.nn.Module, wavs, claim_full: bool = False) -> float:
    x, lens = pad_batch(wavs)
    with torch.no_grad():
        batch = model(x, torch.full_like(lens, x.shape[1]) if claim_full else lens)
        worst = 0.0
        for i in range(len(wavs)):
            alone = model(x[i : i + 1, : lens[i]], lens[i : i + 1])
            t = alone.hidden_states[0].shape[1]
            for b, a in zip(batch.hidden_states, alone.hidden_states, strict=True):
                worst = max(worst, float((b[i, :t] - a[0]).abs().max()))
    return worst


def tiny_config(**overrides) -> DistilHubertConfig:
    fields = dict(
        conv_layers=TINY_CONV, num_layers=2, hidden_size=32, ffn_size=48, num_heads=4,
        pos_conv_kernel=6, pos_conv_groups=4, num_prediction_heads=3, prediction_size=24,
    )  # fmt: skip
    return DistilHubertConfig(**{**fields, **overrides})


def randomized(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return model.eval()


def test_matches_s3prl_on_single_utterances(reference_dir, reference_wavs):
    model = load_upstream("distilhubert", ckpt=reference_dir / "distiller.ckpt")
    assert isinstance(model, DistilHubertUpstream)
    assert model.config.teacher_layers == (4, 8, 12)
    assert error_vs_s3prl(model, reference_dir, reference_wavs) <= TOL


@pytest.mark.parametrize("key", ["heads.weight", "heads.proj.bias", "feature_projection.weight"])
def test_perturbed_weight_breaks_parity(reference_dir, reference_wavs, key):
    model = load_upstream("distilhubert", ckpt=reference_dir / "distiller.ckpt")
    with torch.no_grad():
        model.state_dict()[key].add_(0.05)
    assert error_vs_s3prl(model, reference_dir, reference_wavs) > TOL


def test_padded_batch_equals_single_runs(reference_dir, reference_wavs):
    model = load_upstream("distilhubert", ckpt=reference_dir / "distiller.ckpt")
    assert batch_vs_single(model, reference_wavs) <= TOL
    assert batch_vs_single(model, reference_wavs, claim_full=True) > TOL  # twin


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        dict(layer_norm_first=True, extractor_mode="layer_norm", head_hidden_size=20),
        dict(hidden_size=16, num_heads=2, num_prediction_heads=1, teacher_layers=(12,)),
    ],
)
def test_variants_load_run_and_batch_consistently(overrides):
    model = randomized(DistilHubertUpstream(tiny_config(**overrides)))
    loaded = build_upstream(
        NativeCheckpoint("distilhubert", model.native_config(), model.state_dict())
    ).eval()
    x = torch.from_numpy(TINY_WAVS[2])[None]
    n = torch.tensor([x.shape[1]])
    with torch.no_grad():
        ours, theirs = model(x, n), loaded(x, n)
    assert len(ours.hidden_states) == model.num_layers == 1 + 2 + model.config.num_prediction_heads
    for a, b in zip(ours.hidden_states, theirs.hidden_states, strict=True):
        assert torch.equal(a, b)
    assert batch_vs_single(model, TINY_WAVS) <= TOL
    assert batch_vs_single(model, TINY_WAVS, claim_full=True) > TOL


def test_student_forward_for_distillation_training():
    model = randomized(DistilHubertUpstream(tiny_config())).train()
    x, lens = pad_batch(TINY_WAVS)
    out = model.forward_student(x, lens)
    frames = out.lengths.tolist()
    expected = [len(w) for w in TINY_WAVS]
    for _, kernel, stride in TINY_CONV:  # floor((n - kernel) / stride) + 1 per layer
        expected = [(n - kernel) // stride + 1 for n in expected]
    assert frames == expected
    t = out.features.shape[1]
    assert out.features.shape == (3, t, 32) and out.features[0, frames[0] :].abs().max() == 0
    assert len(out.layer_outputs) == 2 and all(h.shape == (3, t, 32) for h in out.layer_outputs)
    assert out.predictions.shape == (3, 3, t, 24)
    target = torch.randn_like(out.predictions)
    loss = F.l1_loss(out.predictions, target)
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_feature_grad_mult_scales_only_the_conv_gradient():
    x, lens = pad_batch(TINY_WAVS)
    grads = {}
    for mult in (1.0, 0.1):
        torch.manual_seed(0)  # the same weights for both
        model = randomized(DistilHubertUpstream(tiny_config(feature_grad_mult=mult)))  # eval mode
        model.forward_student(x, lens).predictions.square().mean().backward()
        grads[mult] = (model.feature_extractor.layers[0].conv.weight.grad, model.heads.weight.grad)
    conv, scaled_conv = grads[1.0][0], grads[0.1][0]
    assert (scaled_conv - 0.1 * conv).abs().max() <= 1e-4 * conv.abs().max()
    assert (scaled_conv - conv).abs().max() > 0.5 * conv.abs().max()  # twin: not the plain gradient
    assert torch.equal(grads[0.1][1], grads[1.0][1])  # after the conv stack: untouched


def test_single_head_checkpoint_uses_a_plain_linear(reference_dir, tmp_path):
    """s3prl stores one head's SplitLinear as ``output_layer.2.layer`` (a Linear, (P, H))."""
    payload = safe_load(reference_dir / "distiller.ckpt")
    payload["Config"]["distiller"].update(n_tasks=1, pred_layer_id=[12])
    state = payload["Distiller"]
    gen = torch.Generator().manual_seed(0)
    state["output_layer.0.weight"] = torch.randn(64, 64, generator=gen) * 0.1
    state["output_layer.0.bias"] = torch.randn(64, generator=gen) * 0.1
    del state["output_layer.2.weight"], state["output_layer.2.bias"]
    w, b = torch.randn(64, 64, generator=gen) * 0.1, torch.randn(64, generator=gen) * 0.1
    state["output_layer.2.layer.weight"], state["output_layer.2.layer.bias"] = w, b
    torch.save(payload, tmp_path / "one_head.ckpt")
    model = build_upstream(read_checkpoint(tmp_path / "one_head.ckpt")).eval()
    x = torch.from_numpy(TINY_WAVS[2])[None]
    with torch.no_grad():
        states, _ = model.forward_features(x, torch.tensor([x.shape[1]]))
        hidden = states[2]  # post-LN: the last layer output is the heads' input
        inner = F.gelu(
            F.linear(hidden, state["output_layer.0.weight"], state["output_layer.0.bias"])
        )
        assert (states[3] - F.linear(inner, w, b)).abs().max() <= TOL
        assert (states[3] - F.linear(inner, w.t(), b)).abs().max() > TOL  # twin: untransposed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task_emb_type": "add"}, "task_emb_type"),
        ({"attention_type": "sparse"}, "attention_type"),
        ({"encoder_layers": 0}, "without encoder layers"),
        ({"extractor_conv_feature_layers": "[(32, 10, 5)] * os.system('x')"}, "conv layer spec"),
    ],
)
def test_unsupported_distiller_config_is_a_clear_error(reference_dir, tmp_path, change, message):
    payload = safe_load(reference_dir / "distiller.ckpt")
    payload["Config"]["distiller"].update(change)
    torch.save(payload, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match=f"bad.ckpt: .*{message}"):
        read_checkpoint(tmp_path / "bad.ckpt")


def test_student_starts_from_the_teacher():
    teacher = HubertUpstream(
        Wav2Vec2Config(
            conv_layers=TINY_CONV, num_layers=4, hidden_size=32, ffn_size=48, num_heads=4,
            pos_conv_kernel=6, pos_conv_groups=4,
        )
    )  # fmt: skip
    student = DistilHubertUpstream(tiny_config())
    shared = [k for k in student.state_dict() if not k.startswith("heads.")]

    def same() -> bool:
        theirs = teacher.state_dict()
        return all(torch.equal(student.state_dict()[k], theirs[k]) for k in shared)

    assert not same()  # twin: a fresh student differs
    student.init_from_teacher(teacher)
    assert same()
