"""wav2vec 2.0 / HuBERT / data2vec: s3prl parity, padded batches, variants the fixtures lack.

Parity: every hidden state of every single-utterance output, all frames, against s3prl 0.4.18
(tests/fixtures/reference), at TOL absolute in fp32. Each parity check has a perturbed twin.
"""

from __future__ import annotations

import pytest
import torch
from upstream_checks import (
    LARGE_STYLE,
    REFERENCE,
    TINY_ENCODER,
    TINY_TRANSFORMERS,
    TINY_WAVS,
    batch_vs_single,
    load_reference_wavs,
    perturb,
    randomized,
    reference_error,
    transformers_error,
)

from speechrep.audio.collate import pad_batch
from speechrep.convert.native import NativeCheckpoint
from speechrep.upstream.base import frame_lengths
from speechrep.upstream.load import build_upstream, load_upstream
from speechrep.upstream.wav2vec2 import Wav2Vec2Config, Wav2Vec2Upstream

TOL = 1e-4  # fp32 absolute
FAMILIES = ["wav2vec2", "hubert", "data2vec"]


@pytest.mark.parametrize("family", FAMILIES)
def test_matches_s3prl_on_single_utterances(family):
    model = load_upstream(family, ckpt=REFERENCE / f"{family}.pt")
    assert type(model).family == family
    assert reference_error(model, family) <= TOL


@pytest.mark.parametrize(
    ("family", "key"),
    [
        ("wav2vec2", "feature_extractor.layers.0.norm.bias"),
        ("hubert", "encoder.pos_conv.weight_g"),
        ("data2vec", "encoder.pos_conv.layers.4.weight"),
    ],
)
def test_perturbed_weight_breaks_parity(family, key):
    model = load_upstream(family, ckpt=REFERENCE / f"{family}.pt")
    perturb(model, key)
    assert reference_error(model, family) > TOL


@pytest.mark.parametrize("family", FAMILIES)
def test_padded_batch_equals_single_runs(family):
    model = load_upstream(family, ckpt=REFERENCE / f"{family}.pt")
    assert batch_vs_single(model, load_reference_wavs()) <= TOL
    # twin: the same batch without its lengths (padding taken for signal) differs
    assert batch_vs_single(model, load_reference_wavs(), claim_full=True) > TOL


def test_padding_content_is_ignored():
    model = load_upstream("wav2vec2", ckpt=REFERENCE / "wav2vec2.pt")
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
    return Wav2Vec2Config(**{**TINY_ENCODER, **overrides})


VARIANTS = {
    "group_norm_post_ln": {},
    "layer_norm_pre_ln_conv_bias": LARGE_STYLE,
    "stacked_pos_conv_even_kernel": dict(
        extractor_mode="layer_norm", pos_conv_depth=2, pos_conv_kernel=8
    ),
    "stacked_pos_conv_no_projection": dict(pos_conv_depth=3, pos_conv_kernel=9, hidden_size=16),
    "normalized_pre_ln_odd_kernel": dict(
        normalize_waveform=True, layer_norm_first=True, pos_conv_kernel=5
    ),
}


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
def test_pre_ln_layer_norm_extractor_matches_transformers():
    transformers = pytest.importorskip("transformers")
    hf_model = randomized(
        transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**TINY_TRANSFORMERS))
    )
    model = Wav2Vec2Upstream(tiny_config(**LARGE_STYLE)).eval()
    assert transformers_error(model, hf_model, TINY_WAVS[2]) <= TOL
    perturb(model, "encoder.layer_norm.weight")  # twin: the final norm matters
    x = torch.from_numpy(TINY_WAVS[2])[None]
    with torch.no_grad():
        last = model.forward_features(x, torch.tensor([x.shape[1]]))[0][-1]
        expected = hf_model(x).last_hidden_state
    assert (last - expected).abs().max() > TOL


def test_build_upstream_takes_the_checkpoint_tensors_without_random_init(monkeypatch):
    import speechrep.upstream.load as load

    model = randomized(Wav2Vec2Upstream(tiny_config()))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    native = NativeCheckpoint("wav2vec2", model.native_config(), state)
    built = build_upstream(native)
    key = "encoder.layers.0.feed_forward.fc1.weight"
    assert built.state_dict()[key].data_ptr() == state[key].data_ptr()  # no second copy
    assert not any(t.is_meta for t in (*built.parameters(), *built.buffers()))
    # twin: a model that cannot be built on the meta device is built and filled by copying
    monkeypatch.setattr(load, "_build_on_meta", lambda cls, config: None)
    copied = build_upstream(native)
    assert copied.state_dict()[key].data_ptr() != state[key].data_ptr()
    assert torch.equal(copied.state_dict()[key], built.state_dict()[key])


def test_tied_parameters_are_not_built_on_meta():
    import speechrep.upstream.load as load

    class Tied(Wav2Vec2Upstream):
        def __init__(self, config):
            super().__init__(config)
            layers = self.encoder.layers
            layers[1].feed_forward.fc1.weight = layers[0].feed_forward.fc1.weight

    assert load._build_on_meta(Wav2Vec2Upstream, tiny_config()) is not None
    assert load._build_on_meta(Tied, tiny_config()) is None
