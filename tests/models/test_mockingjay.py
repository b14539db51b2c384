"""Mockingjay / TERA / Audio ALBERT: parity with s3prl's outputs, padded batches, pre-LN,
shared layers, legacy layouts, chunking of long inputs and training behaviour.

Tolerances: parity with s3prl <= 1e-4 absolute on every frame of every hidden state (measured
~1e-5); batch vs single <= 1e-5; re-loaded copies are bit-identical.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
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

from speechrep.audio.collate import pad_batch
from speechrep.audio.features import KaldiOptions
from speechrep.config import from_dict
from speechrep.convert.keymap import KeyMapError
from speechrep.convert.s3prl import front_end_from_audio
from speechrep.convert.safe_pickle import CheckpointError, safe_load
from speechrep.upstream.base import align_frames, frame_lengths
from speechrep.upstream.load import load_upstream
from speechrep.upstream.mockingjay import (
    AcousticFrontEnd,
    FrontEndConfig,
    MockingjayConfig,
    MockingjayUpstream,
)

PARITY_TOL = 1e-4
BATCH_TOL = 1e-5
FAMILIES = ("tera", "mockingjay", "audio_albert")


@pytest.mark.parametrize("name", FAMILIES)
def test_parity_with_s3prl_every_layer(name):
    up = load_upstream(REFERENCE / f"{name}.ckpt")
    assert up.family in FAMILIES
    assert reference_error(up, name) <= PARITY_TOL


@pytest.mark.parametrize("name", FAMILIES)
def test_parity_twin_perturbed_weight_fails(name):
    up = load_upstream(REFERENCE / f"{name}.ckpt")
    perturb(up, "encoder.input.projection.weight", 0.05, index=(0, 0))
    assert reference_error(up, name) > 1e-3


def test_family_labels():
    assert load_upstream(REFERENCE / "audio_albert.ckpt").family == "audio_albert"
    # s3prl's mockingjay fixture was pre-trained with frequency masking, which is what TERA adds.
    assert load_upstream(REFERENCE / "tera.ckpt").family == "tera"


@pytest.mark.parametrize("name", ["tera", "audio_albert"])
def test_padded_batch_equals_single(name):
    up = load_upstream(REFERENCE / f"{name}.ckpt")
    # loud padding: nothing may read it
    assert batch_vs_single(up, load_reference_wavs(), pad_value=3.0) <= BATCH_TOL
    # Twin: s3prl's own padded batch (its rule "a frame summing to 0 is padding" and its batch
    # statistics) is far from the single runs, so this check can tell the two apart.
    assert s3prl_batch_error(up, name, layer=1) > 1e-2


# ----------------------------------------------------------------------------- pre-LN / shared


def _tiny(pre_ln: bool = False, shared: bool = False, **kw) -> MockingjayConfig:
    return MockingjayConfig(
        hidden_size=32,
        num_layers=3,
        num_heads=4,
        intermediate_size=48,
        pre_layer_norm=pre_ln,
        share_layers=shared,
        **kw,
    )


def _s3prl_layer_names() -> list[tuple[str, tuple[int, ...]]]:
    d, f = 32, 48
    return [
        ("attention.self.query.weight", (d, d)),
        ("attention.self.query.bias", (d,)),
        ("attention.self.key.weight", (d, d)),
        ("attention.self.key.bias", (d,)),
        ("attention.self.value.weight", (d, d)),
        ("attention.self.value.bias", (d,)),
        ("attention.output.dense.weight", (d, d)),
        ("attention.output.dense.bias", (d,)),
        ("attention.output.LayerNorm.weight", (d,)),
        ("attention.output.LayerNorm.bias", (d,)),
        ("intermediate.dense.weight", (f, d)),
        ("intermediate.dense.bias", (f,)),
        ("output.dense.weight", (d, f)),
        ("output.dense.bias", (d,)),
        ("output.LayerNorm.weight", (d,)),
        ("output.LayerNorm.bias", (d,)),
    ]


def _s3prl_pre_ln_file(path: Path, num_layers: int = 3) -> dict:
    """A pre-LN s3prl checkpoint built from names alone (aliases included), random tensors."""
    g = torch.Generator().manual_seed(3)
    rand = lambda *shape: torch.randn(*shape, generator=g) * 0.3  # noqa: E731
    state = {
        "input_representations.spec_transform.weight": rand(32, 80),
        "input_representations.spec_transform.bias": rand(32),
        "input_representations.LayerNorm.weight": 1 + rand(32),
        "input_representations.LayerNorm.bias": rand(32),
    }
    for i in range(num_layers):
        for name, shape in _s3prl_layer_names():
            state[f"encoder.layer.{i}.{name}"] = (
                (1 + rand(*shape)) if "LayerNorm.weight" in name else rand(*shape)
            )
        for alias, twin in (
            ("attention.LayerNorm", "attention.output.LayerNorm"),
            ("LayerNorm", "output.LayerNorm"),
        ):
            for p in ("weight", "bias"):
                state[f"encoder.layer.{i}.{alias}.{p}"] = state[f"encoder.layer.{i}.{twin}.{p}"]
    for i in range(num_layers + 1):
        state[f"encoder.LayerNorm.{i}.weight"], state[f"encoder.LayerNorm.{i}.bias"] = (
            1 + rand(32),
            rand(32),
        )
    config = {
        "transformer": {
            "hidden_size": 32,
            "num_hidden_layers": num_layers,
            "num_attention_heads": 4,
            "intermediate_size": 48,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02,
            "layer_norm_eps": 1e-12,
            "share_layer": False,
            "pre_layer_norm": True,
        },
        "task": {"sequence_length": 1500},
        "audio": {
            "target_level": -25,
            "win_ms": 25,
            "hop_ms": 10,
            "n_freq": 201,
            "n_mels": 80,
            "input": {"feat_type": "mel", "channel": 0, "log": True, "delta": 0, "cmvn": True},
        },
    }
    payload = {"Transformer": state, "Config": {"runner": {}}, "Upstream_Config": config, "Step": 1}
    torch.save(payload, path)
    return payload


def _reference_pre_ln(
    state: dict, feats: torch.Tensor, num_layers: int, heads: int = 4
) -> list[torch.Tensor]:
    """s3prl's pre-LN equations written out on s3prl's key names (single utterance, no mask)."""

    def ln(x, p):
        u = x.mean(-1, keepdim=True)
        s = (x - u).pow(2).mean(-1, keepdim=True)
        return state[p + ".weight"] * (x - u) / torch.sqrt(s + 1e-12) + state[p + ".bias"]

    def lin(x, p):
        return x @ state[p + ".weight"].T + state[p + ".bias"]

    t, d = feats.shape[0], 32
    angle = np.array(
        [[pos / np.power(10000, 2 * (i // 2) / d) for i in range(d)] for pos in range(t)]
    )
    angle[:, 0::2], angle[:, 1::2] = np.sin(angle[:, 0::2]), np.cos(angle[:, 1::2])
    x = ln(
        lin(feats, "input_representations.spec_transform") + torch.FloatTensor(angle),
        "input_representations.LayerNorm",
    )
    hidden = [x]
    for i in range(num_layers):
        p = f"encoder.layer.{i}."
        h = ln(x, p + "attention.LayerNorm")
        q, k, v = (
            lin(h, p + f"attention.self.{n}").view(t, heads, -1).transpose(0, 1)
            for n in ("query", "key", "value")
        )
        probs = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d // heads), dim=-1)
        x = lin((probs @ v).transpose(0, 1).reshape(t, d), p + "attention.output.dense") + x
        h = torch.nn.functional.gelu(lin(ln(x, p + "LayerNorm"), p + "intermediate.dense"))
        x = lin(h, p + "output.dense") + x
        hidden.append(x)
    return [ln(h, f"encoder.LayerNorm.{i}") for i, h in enumerate(hidden)]


def test_pre_ln_file_matches_written_out_equations(tmp_path):
    payload = _s3prl_pre_ln_file(tmp_path / "preln.ckpt")
    up = load_upstream(tmp_path / "preln.ckpt")
    assert up.config.pre_layer_norm and up.num_layers == 4
    wav = torch.from_numpy(load_reference_wavs()[0][:8000])
    feats, lens = up.front_end(wav[None], torch.tensor([8000]))
    with torch.no_grad():
        ours = up.encode(feats, lens)
        ref = _reference_pre_ln(payload["Transformer"], feats[0], 3)
    errors = [float((a[0] - b).abs().max()) for a, b in zip(ours, ref, strict=True)]
    assert max(errors) <= 1e-4
    # Twin: swapping the two per-layer norms (an easy mapping mistake) must be caught.
    state = dict(payload["Transformer"])
    for p in ("weight", "bias"):
        a, b = "encoder.layer.1.attention.LayerNorm." + p, "encoder.layer.1.LayerNorm." + p
        state[a], state[b] = state[b], state[a]
    with torch.no_grad():
        swapped = _reference_pre_ln(state, feats[0], 3)
    assert float((ours[2][0] - swapped[2]).abs().max()) > 1e-3


def test_pre_ln_alias_must_equal_its_twin(tmp_path):
    payload = _s3prl_pre_ln_file(tmp_path / "preln.ckpt")
    payload["Transformer"]["encoder.layer.0.LayerNorm.bias"] = (
        payload["Transformer"]["encoder.layer.0.LayerNorm.bias"] + 1
    )
    torch.save(payload, tmp_path / "bad.ckpt")
    with pytest.raises(
        CheckpointError, match=r"bad\.ckpt: 'encoder\.layer\.0\.LayerNorm\.bias' should hold"
    ):
        load_upstream(tmp_path / "bad.ckpt")


def test_shared_layers_are_held_once():
    up = load_upstream(REFERENCE / "audio_albert.ckpt")
    keys = up.state_dict().keys()
    assert any(k.startswith("encoder.layers.0.") for k in keys)
    assert not any(k.startswith("encoder.layers.1.") for k in keys)
    assert up.encoder.num_layers == 3 and up.num_layers == 4


def test_shared_layer_copies_must_be_equal(tmp_path):
    payload = safe_load(REFERENCE / "audio_albert.ckpt")
    payload["Transformer"]["encoder.layer.2.output.dense.bias"] = (
        payload["Transformer"]["encoder.layer.2.output.dense.bias"] * 2
    )
    torch.save(payload, tmp_path / "albert.ckpt")
    with pytest.raises(
        CheckpointError, match="encoder.layer.2.output.dense.bias' should hold the same tensor"
    ):
        load_upstream(tmp_path / "albert.ckpt")


def test_legacy_config_layout_and_gamma_beta_names(tmp_path):
    payload = safe_load(REFERENCE / "tera.ckpt")
    old = {
        k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        ): v
        for k, v in payload["Transformer"].items()
    }
    legacy = {"Transformer": old, "Config": payload["Upstream_Config"], "Runner": payload["Config"]}
    torch.save(legacy, tmp_path / "legacy.ckpt")
    ours = load_upstream(tmp_path / "legacy.ckpt").state_dict()
    reference = load_upstream(REFERENCE / "tera.ckpt").state_dict()
    assert ours.keys() == reference.keys()
    assert all(torch.equal(ours[k], reference[k]) for k in ours)
    # Twin: without the renaming, the old names are unknown keys.
    legacy["Transformer"] = {k.replace("gamma", "scale"): v for k, v in old.items()}
    torch.save(legacy, tmp_path / "legacy2.ckpt")
    with pytest.raises(KeyMapError, match="unknown key"):
        load_upstream(tmp_path / "legacy2.ckpt")


# ----------------------------------------------------------------------------- front-ends


def _fbank_error(config: FrontEndConfig) -> float:
    """Largest |front-end - s3prl's fbank baseline| (Kaldi fbank 80 + 2 delta rounds + CMVN)."""
    front_end, ref = AcousticFrontEnd(config), np.load(REFERENCE / "fbank.outputs.npz")
    errors = []
    for i, wav in enumerate(load_reference_wavs()):
        n = torch.tensor([len(wav)])
        feats, lens = front_end(torch.from_numpy(wav)[None], n)
        aligned = align_frames(feats, lens, frame_lengths(n, 160))
        errors.append(float(np.abs(aligned.numpy() - ref[f"single_{i}_layer_0"]).max()))
    return max(errors)


def test_kaldi_audio_config_front_end_matches_s3prl_fbank():
    # The audio section of s3prl's TERA fbank config; s3prl's fbank baseline computes the same.
    audio = {
        "kaldi": {
            "feat_type": "fbank",
            "fbank": {
                "num_mel_bins": 80,
                "frame_length": 25.0,
                "frame_shift": 10.0,
                "use_log_fbank": True,
            },
        },
        "delta": {"order": 2, "win_length": 5},
        "cmvn": {"use_cmvn": True},
    }
    config = from_dict(FrontEndConfig, front_end_from_audio(audio, "cfg"))
    assert config.num_features == 240 and config.hop_length == 160
    # 1e-3: float32 log mel energies of near-silent bins, amplified by deltas and CMVN (values
    # up to ~4.5); the transformer outputs built on these features stay within 1e-4.
    assert _fbank_error(config) <= 1e-3
    # Twin: a different delta window must be seen.
    assert _fbank_error(dataclasses.replace(config, delta_win_length=7)) > 1e-2


def test_kaldi_delta_defaults_follow_s3prl():
    audio = {"kaldi": {"feat_type": "mfcc", "mfcc": {"num_ceps": 13}}, "cmvn": {"use_cmvn": False}}
    config = front_end_from_audio(audio, "cfg")
    assert (config["delta_order"], config["delta_win_length"], config["cmvn"]) == (2, 5, False)
    with pytest.raises(CheckpointError, match="cfg: missing config section 'audio.cmvn'"):
        front_end_from_audio({"kaldi": audio["kaldi"]}, "cfg")


# ----------------------------------------------------------------------------- chunking


def test_long_inputs_run_in_torch_chunk_pieces():
    torch.manual_seed(0)
    up = MockingjayUpstream(_tiny(max_frames=40)).eval()
    wavs = [torch.randn(16000) * 0.1, torch.randn(9000) * 0.1]
    with torch.no_grad():
        batch = up(*pad_batch(wavs, pad_value=3.0))  # loud padding: nothing may read it
        for i, wav in enumerate(wavs):
            feats, lens = up.front_end(wav[None], torch.tensor([wav.numel()]))
            t = feats.shape[1]  # 101 and 57 native frames -> 3 pieces of 34 and 2 of 29
            pieces = torch.chunk(feats, math.ceil(t / 40), dim=1)
            expected = [
                torch.cat(s, dim=1)
                for s in zip(
                    *(up.encoder(p, torch.tensor([p.shape[1]])) for p in pieces), strict=True
                )
            ]
            n = int(batch.lengths[i])
            for got, exp in zip(batch.hidden_states, expected, strict=True):
                assert float((got[i, :n] - exp[0, :n]).abs().max()) <= BATCH_TOL
        # Twin: the same input without pieces differs.
        whole = up.encoder(feats, lens)
    assert float((whole[-1][0, :n] - expected[-1][0, :n]).abs().max()) > 1e-3


# ----------------------------------------------------------------------------- training use


def test_training_mode_dropout_and_gradients():
    torch.manual_seed(0)
    up = MockingjayUpstream(_tiny(shared=True))
    wav, n = torch.randn(1, 8000) * 0.1, torch.tensor([8000])
    up.train()
    a, b = up(wav, n).hidden_states[-1], up(wav, n).hidden_states[-1]
    assert float((a - b).detach().abs().max()) > 1e-3  # dropout from the config is active
    feats, lens = up.front_end(wav, n)
    up.encode(feats, lens)[-1].pow(2).mean().backward()
    assert up.encoder.layers[0].attention.query.weight.grad.abs().sum() > 0
    up.eval()
    with torch.no_grad():
        assert torch.equal(up(wav, n).hidden_states[-1], up(wav, n).hidden_states[-1])


def test_config_errors():
    with pytest.raises(ValueError, match="not a multiple of num_heads"):
        MockingjayConfig(hidden_size=30, num_heads=4)
    with pytest.raises(ValueError, match="features.kind must be one of"):
        FrontEndConfig(kind="wav")
    with pytest.raises(ValueError, match="'kaldi' must be unset"):
        FrontEndConfig(kind="stft", kaldi=KaldiOptions())
