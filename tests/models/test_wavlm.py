"""WavLM: s3prl parity (gated relative position bias), padded batches, Large-style variant."""

from __future__ import annotations

import pytest
import torch
from upstream_checks import (
    LARGE_STYLE,
    TINY_ENCODER,
    TINY_TRANSFORMERS,
    TINY_WAVS,
    batch_vs_single,
    randomized,
    reference_error,
    transformers_error,
)

from speechrep.convert.native import NativeCheckpoint
from speechrep.nn.relative_attention import GatedRelativeAttention
from speechrep.nn.transformer import SelfAttention
from speechrep.upstream.load import build_upstream, load_upstream
from speechrep.upstream.wavlm import WavLMConfig, WavLMUpstream

TOL = 1e-4  # fp32 absolute


def tiny_config(**overrides) -> WavLMConfig:
    relative = dict(
        relative_position_embedding=True,
        num_buckets=16,
        max_distance=40,
        gated_relative_position=True,
    )
    return WavLMConfig(**{**TINY_ENCODER, **relative, **overrides})


def test_matches_s3prl_on_single_utterances(reference_dir):
    model = load_upstream("wavlm", ckpt=reference_dir / "wavlm.pt")
    assert isinstance(model, WavLMUpstream)
    assert all(
        isinstance(layer.attention, GatedRelativeAttention) for layer in model.encoder.layers
    )
    assert model.num_layers == 3
    assert reference_error(model, "wavlm") <= TOL


def test_perturbed_position_bias_breaks_parity(reference_dir):
    # The fixture's bias table is small (|w| < 0.07): its outputs move by only ~1e-5 when
    # the gates change, so the gating itself is checked against transformers below.
    model = load_upstream("wavlm", ckpt=reference_dir / "wavlm.pt")
    with torch.no_grad():
        model.encoder.relative_position_bias.embedding.weight.mul_(3.0)
    assert reference_error(model, "wavlm") > TOL


def test_padded_batch_equals_single_runs(reference_dir, reference_wavs):
    model = load_upstream("wavlm", ckpt=reference_dir / "wavlm.pt")
    assert batch_vs_single(model, reference_wavs) <= TOL
    assert batch_vs_single(model, reference_wavs, claim_full=True) > TOL  # twin


@pytest.mark.parametrize(
    "overrides",
    [
        LARGE_STYLE,
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


def test_large_style_matches_transformers():
    transformers = pytest.importorskip("transformers")
    hf_config = transformers.WavLMConfig(
        **TINY_TRANSFORMERS, num_buckets=16, max_bucket_distance=40
    )
    hf_model = randomized(transformers.WavLMModel(hf_config))
    with torch.no_grad():  # a bias large enough that bucketing and gating show in the output
        hf_model.encoder.layers[0].attention.rel_attn_embed.weight.normal_(0.0, 3.0)
        for layer in hf_model.encoder.layers:
            layer.attention.gru_rel_pos_const.uniform_(0.0, 2.0)
            layer.attention.gru_rel_pos_linear.weight.normal_(0.0, 1.0)
    model = WavLMUpstream(tiny_config(**LARGE_STYLE)).eval()
    assert transformers_error(model, hf_model, TINY_WAVS[2]) <= TOL
    # twins: other bucket borders; another gate constant in the last layer
    other_buckets = WavLMUpstream(tiny_config(**LARGE_STYLE, max_distance=30)).eval()
    assert transformers_error(other_buckets, hf_model, TINY_WAVS[2]) > TOL
    with torch.no_grad():
        hf_model.encoder.layers[1].attention.gru_rel_pos_const.add_(0.5)
    assert transformers_error(model, hf_model, TINY_WAVS[2], load=False) > TOL
    assert transformers_error(model, hf_model, TINY_WAVS[2]) <= TOL
