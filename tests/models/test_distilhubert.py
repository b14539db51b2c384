"""DistilHuBERT: s3prl parity (features, layers, heads), padded batches, the student for training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from upstream_checks import (
    TINY_CONV,
    TINY_ENCODER,
    TINY_WAVS,
    batch_vs_single,
    perturb,
    randomized,
    reference_error,
)

from speechrep.audio.collate import pad_batch
from speechrep.convert.detect import read_checkpoint
from speechrep.convert.native import NativeCheckpoint
from speechrep.convert.safe_pickle import CheckpointError, safe_load
from speechrep.upstream.distilhubert import DistilHubertConfig, DistilHubertUpstream
from speechrep.upstream.load import build_upstream, load_upstream
from speechrep.upstream.wav2vec2 import HubertUpstream, Wav2Vec2Config

TOL = 1e-4  # fp32 absolute


def tiny_config(**overrides) -> DistilHubertConfig:
    heads = dict(num_prediction_heads=3, prediction_size=24)
    return DistilHubertConfig(**{**TINY_ENCODER, **heads, **overrides})


def test_matches_s3prl_on_single_utterances(reference_dir):
    model = load_upstream("distilhubert", ckpt=reference_dir / "distiller.ckpt")
    assert isinstance(model, DistilHubertUpstream)
    assert model.config.teacher_layers == (4, 8, 12) and model.num_layers == 6
    assert reference_error(model, "distiller") <= TOL


@pytest.mark.parametrize("key", ["heads.weight", "heads.proj.bias", "feature_projection.weight"])
def test_perturbed_weight_breaks_parity(reference_dir, key):
    model = load_upstream("distilhubert", ckpt=reference_dir / "distiller.ckpt")
    perturb(model, key, 0.05)
    assert reference_error(model, "distiller") > TOL


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
    teacher = HubertUpstream(Wav2Vec2Config(**{**TINY_ENCODER, "num_layers": 4}))
    student = DistilHubertUpstream(tiny_config())
    shared = [k for k in student.state_dict() if not k.startswith("heads.")]

    def same() -> bool:
        theirs = teacher.state_dict()
        return all(torch.equal(student.state_dict()[k], theirs[k]) for k in shared)

    assert not same()  # twin: a fresh student differs
    student.init_from_teacher(teacher)
    assert same()
