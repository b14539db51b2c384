"""wav2vec 2.0 / HuBERT / data2vec: s3prl parity, padded batches, variants the fixtures lack.

Parity: every hidden state of every single-utterance output, all frames, against s3prl 0.4.18
(tests/fixtures/reference), at TOL absolute in fp32. Each parity check has a perturbed twin.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from speechrep.audio.collate import pad_batch
from speechrep.convert.keymap import load_strict
from speechrep.convert.native import NativeCheckpoint
from speechrep.upstream.base import frame_lengths
from speechrep.upstream.load import build_upstream, load_upstream
from speechrep.upstream.wav2vec2 import Wav2Vec2Config, Wav2Vec2Upstream

REF = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
TOL = 1e-4  # fp32 absolute
FAMILIES = ["wav2vec2", "hubert", "data2vec"]
TINY_CONV = ((16, 10, 5), (16, 3, 2), (16, 2, 2))  # stride 20, receptive field 30


def load_reference_wavs() -> list[np.ndarray]:
    data = np.load(REF / "inputs.npz")
    return [data[f"wav_{i}"] for i in range(3)]


def error_vs_s3prl(model: torch.nn.Module, outputs: str) -> float:
    """Largest |ours - s3prl| over every hidden state of every single-utterance run."""
    ref = np.load(REF / f"{outputs}.outputs.npz")
    worst = 0.0
    with torch.no_grad():
        for i, wav in enumerate(load_reference_wavs()):
            out = model(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
            assert len(out.hidden_states) == model.num_layers
            assert out.lengths.tolist() == ref[f"single_{i}_lens_0"].tolist()
            for j, state in enumerate(out.hidden_states):
                expected = ref[f"single_{i}_layer_{j}"]
                assert state.shape == expected.shape, (i, j)
                worst = max(worst, float(np.abs(state.numpy() - expected).max()))
    return worst


def batch_vs_single(
    model: torch.nn.Module, wavs: list[np.ndarray], claim_full: bool = False
) -> float:
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
                if not claim_full:
                    assert b.shape[1] == t or b[i, t:].abs().max() == 0  # past the end: zeros
    return worst


def perturb(model: torch.nn.Module, key: str, scale: float = 0.05) -> None:
    with torch.no_grad():
        tensor = model.state_dict()[key]
        tensor.add_(torch.randn(tensor.shape, generator=torch.Generator().manual_seed(0)) * scale)


@pytest.mark.parametrize("family", FAMILIES)
def test_matches_s3prl_on_single_utterances(family):
    model = load_upstream(family, ckpt=REF / f"{family}.pt")
    assert type(model).family == family
    assert error_vs_s3prl(model, family) <= TOL


@pytest.mark.parametrize(
    ("family", "key"),
    [
        ("wav2vec2", "feature_extractor.layers.0.norm.bias"),
        ("hubert", "encoder.pos_conv.weight_g"),
        ("data2vec", "encoder.pos_conv.layers.4.weight"),
    ],
)
def test_perturbed_weight_breaks_parity(family, key):
    model = load_upstream(family, ckpt=REF / f"{family}.pt")
    perturb(model, key)
    assert error_vs_s3prl(model, family) > TOL


@pytest.mark.parametrize("family", FAMILIES)
def test_padded_batch_equals_single_runs(family):
    model = load_upstream(family, ckpt=REF / f"{family}.pt")
    assert batch_vs_single(model, load_reference_wavs()) <= TOL
    # twin: the same batch without its lengths (padding taken for signal) differs
    assert batch_vs_single(model, load_reference_wavs(), claim_full=True) > TOL


def test_padding_content_is_ignored():
    model = load_upstream("wav2vec2", ckpt=REF / "wav2vec2.pt")
    x, lens = pad_batch(load_reference_wavs())
    noisy = x.clone()
    noisy[0, lens[0] :] = torch.randn(x.shape[1] - int(lens[0]))
    with torch.no_grad():
        clean_out, noisy_out = model(x, lens), model(noisy, lens)
        for a, b in zip(clean_out.hidden_states, noisy_out.hidden_states, strict=True):
            assert torch.equal(a, b)
        x[0, 100] += 0.5  # twin: a valid sample does matter
        changed = model(x, lens).hidden_states[-1]
    assert (changed[0] - clean_out.hidden_states[-1][0]).abs().max() > 1e-3


def tiny_config(**overrides) -> Wav2Vec2Config:
    fields = dict(
        conv_layers=TINY_CONV, num_layers=2, hidden_size=32, ffn_size=48, num_heads=4,
        pos_conv_kernel=6, pos_conv_groups=4,
    )  # fmt: skip
    return Wav2Vec2Config(**{**fields, **overrides})


def randomized(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Noise on every tensor, so unit LayerNorm weights or zero biases cannot hide a bug."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return model.eval()


VARIANTS = {
    "group_norm_post_ln": {},
    "layer_norm_pre_ln_conv_bias": dict(
        extractor_mode="layer_norm", layer_norm_first=True, conv_bias=True
    ),
    "stacked_pos_conv_even_kernel": dict(
        extractor_mode="layer_norm", pos_conv_depth=2, pos_conv_kernel=8
    ),
    "stacked_pos_conv_no_projection": dict(pos_conv_depth=3, pos_conv_kernel=9, hidden_size=16),
    "normalized_pre_ln_odd_kernel": dict(
        normalize_waveform=True, layer_norm_first=True, pos_conv_kernel=5
    ),
}
TINY_WAVS = [
    np.random.default_rng(i).normal(size=n).astype(np.float32) * 0.1
    for i, n in enumerate([430, 977, 1500])
]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variants_load_run_and_batch_consistently(variant):
    overrides = VARIANTS[variant]
    if overrides.get("hidden_size") == 16:
        overrides = {**overrides, "feature_projection": False, "num_heads": 2}
    model = randomized(Wav2Vec2Upstream(tiny_config(**overrides)))
    native = NativeCheckpoint("wav2vec2", model.native_config(), model.state_dict())
    loaded = build_upstream(native).eval()
    x, lens = pad_batch(TINY_WAVS)
    with torch.no_grad():
        ours, theirs = model(x, lens), loaded(x, lens)
    assert len(ours.hidden_states) == 3
    assert ours.lengths.tolist() == frame_lengths(lens, 20).tolist()
    for a, b in zip(ours.hidden_states, theirs.hidden_states, strict=True):
        assert torch.equal(a, b)
    assert batch_vs_single(model, TINY_WAVS) <= TOL
    assert batch_vs_single(model, TINY_WAVS, claim_full=True) > TOL


def test_waveform_normalisation_follows_the_config():
    wav = TINY_WAVS[1]
    for normalize in (True, False):
        model = randomized(Wav2Vec2Upstream(tiny_config(normalize_waveform=normalize)))
        with torch.no_grad():
            out = model(torch.from_numpy(wav)[None], torch.tensor([len(wav)])).hidden_states[-1]
            louder = model(torch.from_numpy(wav * 3)[None], torch.tensor([len(wav)])).hidden_states[
                -1
            ]
        # normalised input is scale-free; without normalisation (the twin) the scale shows
        assert ((out - louder).abs().max() <= TOL) == normalize


def test_dropout_only_in_training():
    model = randomized(Wav2Vec2Upstream(tiny_config(dropout=0.3, attention_dropout=0.3)))
    x = torch.from_numpy(TINY_WAVS[2])[None]
    n = torch.tensor([x.shape[1]])
    with torch.no_grad():
        assert torch.equal(model(x, n).hidden_states[-1], model(x, n).hidden_states[-1])
        model.train()
        assert not torch.equal(model(x, n).hidden_states[-1], model(x, n).hidden_states[-1])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(extractor_mode="default"), "extractor_mode"),
        (dict(activation="gelu2"), "activation"),
        (dict(num_heads=5), "num_heads"),
        (dict(feature_projection=False), "feature_projection"),
        (dict(conv_layers=((16, 10, 0),)), "conv_layers"),
    ],
)
def test_bad_config_raises(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_too_short_input_raises_clearly():
    model = Wav2Vec2Upstream(tiny_config()).eval()
    with pytest.raises(ValueError, match="utterance 1 has 29 samples: too short .* at least 30"):
        model(torch.zeros(2, 100), torch.tensor([100, 29]))


# HuggingFace transformers as an independent reference for pre-LN + LayerNorm extractor.
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
    (
        r"encoder\.layers\.(\d+)\.attention\.gru_rel_pos_linear\.",
        r"encoder.layers.\1.attention.gate_proj.",
    ),
    (
        r"encoder\.layers\.(\d+)\.attention\.gru_rel_pos_const",
        r"encoder.layers.\1.attention.gate_const",
    ),
    (
        r"encoder\.layers\.0\.attention\.rel_attn_embed\.",
        "encoder.relative_position_bias.embedding.",
    ),
]


def from_hf(hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in hf_state.items():
        if key == "masked_spec_embed":
            continue
        for pattern, target in HF_RULES:
            key = re.sub(f"^{pattern}", target, key)
        out[key] = value
    return out


def hf_native_states(model: torch.nn.Module, hf_model: torch.nn.Module, wav: np.ndarray) -> float:
    """Largest |ours - HF| over every hidden state (native frames) of one utterance.

    HF's ``hidden_states[:-1]`` are the layer inputs; its ``last_hidden_state`` is the encoder
    output after the final norm (newer transformers leave that norm out of ``hidden_states``).
    """
    load_strict(model, from_hf(hf_model.state_dict()), where="hf")
    x = torch.from_numpy(wav)[None]
    with torch.no_grad():
        ours, _ = model.forward_features(x, torch.tensor([len(wav)]))
        out = hf_model(x, output_hidden_states=True)
    theirs = [*out.hidden_states[:-1], out.last_hidden_state]
    assert len(ours) == len(theirs)
    return max(float((a - b).abs().max()) for a, b in zip(ours, theirs, strict=True))


def test_pre_ln_layer_norm_extractor_matches_transformers():
    transformers = pytest.importorskip("transformers")
    hf_config = transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
        conv_dim=(16, 16, 16), conv_kernel=(10, 3, 2), conv_stride=(5, 2, 2), conv_bias=True,
        feat_extract_norm="layer", do_stable_layer_norm=True, num_conv_pos_embeddings=6,
        num_conv_pos_embedding_groups=4, hidden_dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0, apply_spec_augment=False,
    )  # fmt: skip
    hf_model = randomized(transformers.Wav2Vec2Model(hf_config))
    model = Wav2Vec2Upstream(
        tiny_config(extractor_mode="layer_norm", conv_bias=True, layer_norm_first=True)
    ).eval()
    assert hf_native_states(model, hf_model, TINY_WAVS[2]) <= TOL
    perturb(model, "encoder.layer_norm.weight")  # twin: the final norm matters
    x = torch.from_numpy(TINY_WAVS[2])[None]
    with torch.no_grad():
        last = model.forward_features(x, torch.tensor([x.shape[1]]))[0][-1]
        expected = hf_model(x).last_hidden_state
    assert (last - expected).abs().max() > TOL
