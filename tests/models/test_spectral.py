"""The parameter-free baselines against s3prl 0.4.18 (tests/fixtures/reference) and on padded batches.

Parity tolerance: 1e-3 absolute on the CMVN'd features (unit variance), on ALL frames of each
utterance run alone. The reference itself carries float32 rounding of about 1e-4 to 4e-4 on the
lowest FFT bins (tiny power after pre-emphasis, then log and CMVN), which a float64 run shows.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from upstream_checks import REFERENCE, batch_vs_single, reference_error

from speechrep import load_upstream
from speechrep.audio import pad_batch
from speechrep.audio.features import cmvn
from speechrep.upstream.registry import get_info
from speechrep.upstream.spectral import SpectralConfig, SpectralUpstream

BASELINES = ["fbank", "fbank_no_cmvn", "mfcc", "spectrogram", "mel", "linear"]
WITH_REFERENCE = ["fbank", "mfcc", "spectrogram", "mel", "linear"]
TOLERANCE = 1e-3
# One option changed per baseline: each must move the output past the tolerance.
PERTURBED = {
    "fbank": {"kind": "fbank", "frame_length_ms": 24.0},
    "mfcc": {"kind": "mfcc", "mfcc_mel_bins": 24},
    "spectrogram": {"kind": "spectrogram", "frame_length_ms": 24.0},
    "mel": {"kind": "mel", "num_mel_bins": 80, "frame_length_ms": 24.0},
    "linear": {"kind": "linear", "frame_length_ms": 24.0},
}


def _run(up: SpectralUpstream, wav: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(wav)[None]
    with torch.no_grad():
        out = up(x, torch.tensor([x.shape[1]]))
    assert out.lengths.tolist() == [(len(wav) - 1) // 160 + 1]
    return out.hidden_states[0][0].numpy()


@pytest.mark.parametrize("name", WITH_REFERENCE)
def test_matches_s3prl_on_every_frame(name):
    assert reference_error(load_upstream(name), name) <= TOLERANCE


@pytest.mark.parametrize("name", WITH_REFERENCE)
def test_perturbed_option_breaks_parity(name, reference_wavs):
    ref = np.load(REFERENCE / f"{name}.outputs.npz")
    up = SpectralUpstream(SpectralConfig(**PERTURBED[name]))
    expected = ref["single_1_layer_0"][0]
    ours = _run(up, reference_wavs[1])
    assert ours.shape == expected.shape
    assert float(np.abs(ours - expected).max()) > 10 * TOLERANCE


@pytest.mark.parametrize("name", WITH_REFERENCE)
def test_perturbed_input_breaks_parity(name, reference_wavs):
    ref = np.load(REFERENCE / f"{name}.outputs.npz")
    wav = reference_wavs[0].copy()
    wav[8000:8400] *= 1.5  # a 25 ms stretch 3.5 dB louder
    ours = _run(load_upstream(name), wav)
    assert float(np.abs(ours - ref["single_0_layer_0"][0]).max()) > 10 * TOLERANCE


@pytest.mark.parametrize("name", BASELINES)
def test_padded_batch_equals_each_utterance_alone(name, reference_wavs):
    up = load_upstream(name)
    ordered = [reference_wavs[i] for i in (1, 2, 0)]  # longest in the middle
    # loud padding: nothing may read it
    assert batch_vs_single(up, ordered, pad_value=0.5) < 1e-5
    out = up(*pad_batch(ordered))
    assert out.lengths.tolist() == [(len(w) - 1) // 160 + 1 for w in ordered]


@pytest.mark.parametrize("name", BASELINES)
def test_load_upstream_sizes_known_without_running(name):
    up = load_upstream(name)
    info = get_info(name)
    assert (up.num_layers, up.hidden_size, up.downsample_rate) == (1, info.hidden_size, 160)
    assert up.sample_rate == 16000 and len(list(up.parameters())) == 0
    out = up(torch.randn(2, 16000) * 0.1, torch.tensor([16000, 8000]))
    assert len(out.hidden_states) == 1
    assert out.hidden_states[0].shape == (2, 100, up.hidden_size)
    assert out.lengths.tolist() == [100, 50]


def test_fbank_no_cmvn_is_fbank_before_cmvn(reference_wavs):
    x = torch.from_numpy(reference_wavs[0])[None]
    n = torch.tensor([x.shape[1]])
    raw, raw_lens = load_upstream("fbank_no_cmvn").forward_features(x, n)
    normed, _ = load_upstream("fbank").forward_features(x, n)
    assert torch.allclose(cmvn(raw[0], raw_lens), normed[0], atol=1e-5)
    assert (raw[0] - normed[0]).abs().max() > 1.0


def test_precision_does_not_change_features(reference_wavs):
    x = torch.from_numpy(reference_wavs[0])[None]
    n = torch.tensor([x.shape[1]])
    fp32 = load_upstream("mel")(x, n).hidden_states[0]
    bf16 = load_upstream("mel", precision="bf16")(x, n).hidden_states[0]
    assert bf16.dtype == torch.float32 and torch.equal(fp32, bf16)


def test_config_options_and_errors():
    assert SpectralUpstream(SpectralConfig(kind="mel", delta_order=2)).hidden_size == 240
    assert SpectralUpstream(SpectralConfig(kind="linear", n_freq=257)).hidden_size == 257
    up = SpectralUpstream(SpectralConfig(kind="fbank", frame_shift_ms=20.0, num_mel_bins=40))
    assert (up.hidden_size, up.downsample_rate) == (120, 320)
    assert up.native_config()["kind"] == "fbank"
    with pytest.raises(ValueError, match="kind must be one of"):
        SpectralConfig(kind="mfcc2")
    with pytest.raises(ValueError, match="too short"):
        load_upstream("fbank")(torch.randn(1, 399), torch.tensor([399]))
