"""WavLM: s3prl parity (gated relative position bias), padded batches, Large-style variant."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from speechrep.audio.collate import pad_batch
from speechrep.convert.keymap import load_strict
from speechrep.convert.native import NativeCheckpoint
from speechrep.nn.relative_attention import GatedRelativeAttention
from speechrep.nn.transformer import SelfAttention
from speechrep.upstream.load import build_upstream, load_upstream
from speechrep.upstream.wavlm import WavLMConfig, WavLMUpstream

TOL = 1e-4  # fp32 absolute
TINY_CONV = ((16, 10, 5), (16, 3, 2), (16, 2, 2))  # stride 20, receptive field 30
TINY_WAVS = [
    np.random.default_rng(i).normal(size=n).astype(np.float32) * 0.1
    for i, n in enumerate([430, 977, 1500])
]


def error_vs_s3prl(model: torch.nn.Module, reference_dir, wavs) -> float:
    """Largest |ours - s3prl| over every hidden state of every single-utterance run."""
    ref = np.load(reference_dir / "wavlm.outputs.npz")
    worst = 0.0
    with torch.no_grad():
        for i, wav in enumerate(wavs):
            out = model(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
            assert len(out.hidden_states) == model.num_layers == 3
            for j, state in enumerate(out.hidden_states):
                expected = ref[f"single_{i}_layer_{j}"]
                assert state.shape == expected.shape, (i, j)
                worst = max(worst, float(np.abs(state.numpy() - expected).max()))
    return worst


def batch_vs_single(model: torch.nn.Module, wavs, claim_full: bool = False) -> float:
    """Largest |batch - single| on valid frames; ``claim_full`` lies that no row is padded."""
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


def randomized(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return model.eval()


def tiny_config(**overrides) -> WavLMConfig:
    fields = dict(
        conv_layers=TINY_CONV, num_layers=2, hidden_size=32, ffn_size=48, num_heads=4,
        pos_conv_kernel=6, pos_conv_groups=4, relative_position_embedding=True, num_buckets=16,
        max_distance=40, gated_relative_position=True,
    )  # fmt: skip
    return WavLMConfig(**{**fields, **overrides})


def test_matches_s3prl_on_single_utterances(reference_dir, reference_wavs):
    model = load_upstream("wavlm", ckpt=reference_dir / "wavlm.pt")
    assert isinstance(model, WavLMUpstream)
    assert all(
        isinstance(layer.attention, GatedRelativeAttention) for layer in model.encoder.layers
    )
    assert error_vs_s3prl(model, reference_dir, reference_wavs) <= TOL


def test_perturbed_position_bias_breaks_parity(reference_dir, reference_wavs):
    # The fixture's bias table is small (|w| < 0.07): its outputs move by only ~1e-5 when
    # the gates change, so the gating itself is checked against transformers below.
    model = load_upstream("wavlm", ckpt=reference_dir / "wavlm.pt")
    with torch.no_grad():
        model.encoder.relative_position_bias.embedding.weight.mul_(3.0)
    assert error_vs_s3prl(model, reference_dir, reference_wavs) > TOL


def test_padded_batch_equals_single_runs(reference_dir, reference_wavs):
    model = load_upstream("wavlm", ckpt=reference_dir / "wavlm.pt")
    assert batch_vs_single(model, reference_wavs) <= TOL
    assert batch_vs_single(model, reference_wavs, claim_full=True) > TOL  # twin


@pytest.mark.parametrize(
    "overrides",
    [
        dict(layer_norm_first=True, extractor_mode="layer_norm", conv_bias=True),  # Large style
        dict(gated_relative_position=False),
        dict(
            relative_position_embedding=False,
            gated_relative_position=False,
            normalize_waveform=True,
        ),
    ],
)
def test_variants_load_run_and_batch_consistently(overrides):
    model = randomized(WavLMUpstream(tiny_config(**overrides)))
    gated = tiny_config(**overrides).gated_relative_position
    attention = GatedRelativeAttention if gated else SelfAttention
    assert all(type(layer.attention) is attention for layer in model.encoder.layers)
    loaded = build_upstream(
        NativeCheckpoint("wavlm", model.native_config(), model.state_dict())
    ).eval()
    x = torch.from_numpy(TINY_WAVS[1])[None]
    n = torch.tensor([x.shape[1]])
    with torch.no_grad():
        assert torch.equal(model(x, n).hidden_states[-1], loaded(x, n).hidden_states[-1])
    assert batch_vs_single(model, TINY_WAVS) <= TOL
    assert batch_vs_single(model, TINY_WAVS, claim_full=True) > TOL


def test_gated_bias_needs_the_bias():
    with pytest.raises(
        ValueError, match="gated_relative_position needs relative_position_embedding"
    ):
        tiny_config(relative_position_embedding=False)
    with pytest.raises(ValueError, match="pos_conv_depth"):
        tiny_config(pos_conv_depth=2)


# transformers' WavLM key names -> ours (the parts a Large-style tiny model has)
HF_RULES = [
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.layers.\1.conv."),
    (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.", r"feature_extractor.layers.\1.norm."),
    (r"feature_projection\.layer_norm\.", "feature_norm."),
    (r"feature_projection\.projection\.", "feature_projection."),
    (
        r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0",
        "encoder.pos_conv.weight_g",
    ),
    (
        r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1",
        "encoder.pos_conv.weight_v",
    ),
    (r"encoder\.pos_conv_embed\.conv\.bias", "encoder.pos_conv.bias"),
    (
        r"encoder\.layers\.0\.attention\.rel_attn_embed\.",
        "encoder.relative_position_bias.embedding.",
    ),
    (
        r"encoder\.layers\.(\d+)\.attention\.gru_rel_pos_linear\.",
        r"encoder.layers.\1.attention.gate_proj.",
    ),
    (
        r"encoder\.layers\.(\d+)\.attention\.gru_rel_pos_const",
        r"encoder.layers.\1.attention.gate_const",
    ),
    (r"encoder\.layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.attention_norm."),
    (
        r"encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.",
        r"encoder.layers.\1.feed_forward.fc1.",
    ),
    (
        r"encoder\.layers\.(\d+)\.feed_forward\.output_dense\.",
        r"encoder.layers.\1.feed_forward.fc2.",
    ),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.final_norm."),
]


def hf_error(
    model: torch.nn.Module, hf_model: torch.nn.Module, wav: np.ndarray, load: bool = True
) -> float:
    """Largest |ours - HF| over all native hidden states (after loading HF's weights when ``load``).

    HF's ``hidden_states[:-1]`` are the layer inputs; ``last_hidden_state`` is the output after
    the final norm (newer transformers leave that norm out of ``hidden_states``).
    """
    state = {}
    for key, value in hf_model.state_dict().items():
        for pattern, target in HF_RULES:
            key = re.sub(f"^{pattern}", target, key)
        state[key] = value
    state.pop("masked_spec_embed")
    if load:
        load_strict(model, state, where="transformers WavLM")
    x = torch.from_numpy(wav)[None]
    with torch.no_grad():
        ours, _ = model.forward_features(x, torch.tensor([len(wav)]))
        out = hf_model(x, output_hidden_states=True)
    theirs = [*out.hidden_states[:-1], out.last_hidden_state]
    assert len(ours) == len(theirs)
    return max(float((a - b).abs().max()) for a, b in zip(ours, theirs, strict=True))


def test_large_style_matches_transformers():
    transformers = pytest.importorskip("transformers")
    hf_config = transformers.WavLMConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
        conv_dim=(16, 16, 16), conv_kernel=(10, 3, 2), conv_stride=(5, 2, 2), conv_bias=True,
        feat_extract_norm="layer", do_stable_layer_norm=True, num_conv_pos_embeddings=6,
        num_conv_pos_embedding_groups=4, num_buckets=16, max_bucket_distance=40, hidden_dropout=0.0,
        attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0,
        apply_spec_augment=False,
    )  # fmt: skip
    hf_model = randomized(transformers.WavLMModel(hf_config))
    with torch.no_grad():  # a bias large enough that bucketing and gating show in the output
        hf_model.encoder.layers[0].attention.rel_attn_embed.weight.normal_(0.0, 3.0)
        for layer in hf_model.encoder.layers:
            layer.attention.gru_rel_pos_const.uniform_(0.0, 2.0)
            layer.attention.gru_rel_pos_linear.weight.normal_(0.0, 1.0)
    large = dict(layer_norm_first=True, extractor_mode="layer_norm", conv_bias=True)
    model = WavLMUpstream(tiny_config(**large)).eval()
    assert hf_error(model, hf_model, TINY_WAVS[2]) <= TOL
    # twins: other bucket borders; another gate constant in the last layer
    other_buckets = WavLMUpstream(tiny_config(**large, max_distance=30)).eval()
    assert hf_error(other_buckets, hf_model, TINY_WAVS[2]) > TOL
    with torch.no_grad():
        hf_model.encoder.layers[1].attention.gru_rel_pos_const.add_(0.5)
    assert hf_error(model, hf_model, TINY_WAVS[2], load=False) > TOL
    assert hf_error(model, hf_model, TINY_WAVS[2]) <= TOL
