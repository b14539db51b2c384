"""Reduced precision for the wav2vec 2.0 family: ``precision="bf16"|"fp16"`` autocasts inside
``Upstream.forward`` only, and every layer stays within REL_TOL of the fp32 run.

Metric: per hidden state, ||low - fp32|| / ||fp32|| (Frobenius norm over the valid frames of a
padded batch). On CPU, autocast runs conv1d / linear / matmul / attention in bf16; LayerNorm
keeps its input's dtype (so the residual stream is bf16), the first conv's GroupNorm runs in
float32 (MaskedGroupNorm casts), and ``Upstream.forward`` returns float32 states.
"""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from speechrep.cli import main
from speechrep.convert.native import NativeCheckpoint, save_native
from speechrep.upstream.load import load_upstream
from speechrep.upstream.wav2vec2 import HubertUpstream, Wav2Vec2Config, Wav2Vec2Upstream

REL_TOL = 0.02  # bf16 / fp16 vs fp32, every layer
TINY = {
    "conv_layers": ((32, 10, 5), (32, 3, 2), (32, 2, 2)),
    "num_layers": 2,
    "hidden_size": 64,
    "ffn_size": 128,
    "num_heads": 4,
    "pos_conv_kernel": 16,
    "pos_conv_groups": 4,
}
MODELS = {
    "wav2vec2": (Wav2Vec2Upstream, {}),
    "hubert": (HubertUpstream, {}),
    "wav2vec2-preln-layer": (
        Wav2Vec2Upstream,
        {"layer_norm_first": True, "extractor_mode": "layer_norm", "normalize_waveform": True},
    ),
}
LENGTHS = (4000, 2710)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """name -> folder of a random tiny model (norm weights/biases randomised too)."""
    folders = {}
    for seed, (name, (cls, overrides)) in enumerate(MODELS.items()):
        torch.manual_seed(seed)
        model = cls(Wav2Vec2Config(**TINY, **overrides))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
        native = NativeCheckpoint(cls.family, model.native_config(), model.state_dict())
        folders[name] = save_native(native, tmp_path_factory.mktemp(name) / "model")
    return folders


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    wavs = torch.zeros(len(LENGTHS), max(LENGTHS))
    for i, n in enumerate(LENGTHS):
        wavs[i, :n] = torch.randn(n, generator=gen)
    return wavs, torch.tensor(LENGTHS)


def relative_errors(low: torch.nn.Module, full: torch.nn.Module) -> list[float]:
    wavs, lens = batch()
    with torch.no_grad():
        a, b = low(wavs, lens), full(wavs, lens)
    assert a.lengths.tolist() == b.lengths.tolist()
    errors = []
    for x, y in zip(a.hidden_states, b.hidden_states, strict=True):
        assert x.dtype == torch.float32  # outputs come back in float32 whatever the precision
        valid = torch.arange(x.shape[1])[None, :] < a.lengths[:, None]  # (B, T)
        errors.append(float((x - y)[valid].norm() / y[valid].norm()))
    return errors


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("name", MODELS)
def test_reduced_precision_within_two_percent_per_layer(saved, name, precision):
    low = load_upstream(saved[name], precision=precision)
    full = load_upstream(saved[name])
    assert (low.precision, full.precision) == (precision, "fp32")
    errors = relative_errors(low, full)
    assert max(errors) <= REL_TOL, errors
    assert min(errors) > 1e-5, errors  # autocast really ran: not an fp32-vs-fp32 comparison


def test_perturbed_bf16_model_exceeds_tolerance(saved):
    low = load_upstream(saved["hubert"], precision="bf16")
    full = load_upstream(saved["hubert"])
    with torch.no_grad():
        low.feature_norm.weight.mul_(1.1)
    assert max(relative_errors(low, full)) > REL_TOL


def test_autocast_stays_inside_forward(saved):
    model = load_upstream(saved["wav2vec2"], precision="bf16")
    wavs, lens = batch()
    original = wavs.clone()
    with torch.no_grad():
        model(wavs, lens)
    assert not torch.is_autocast_enabled("cpu")
    assert torch.equal(wavs, original)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights are not cast
    with pytest.raises(ValueError, match="precision must be one of"):
        load_upstream(saved["wav2vec2"], precision="int8")


def test_extract_cli_uses_the_precision(saved, tmp_path):
    soundfile = pytest.importorskip("soundfile")
    wavs, lens = batch()
    soundfile.write(tmp_path / "a.wav", wavs[0, : lens[0]].numpy(), 16000, subtype="FLOAT")
    out: dict[str, torch.Tensor] = {}
    for precision in ("fp32", "bf16"):
        folder = tmp_path / precision
        args = ["extract", "--no-progress", "-u", str(saved["hubert"]), str(tmp_path / "a.wav")]
        assert main([*args, "-o", str(folder), "--precision", precision, "--device", "cpu"]) == 0
        with safe_open(str(folder / "a.safetensors"), framework="pt") as handle:
            assert handle.metadata()["precision"] == precision
            out[precision] = handle.get_tensor("layer_2")
    model = load_upstream(saved["hubert"], precision="bf16")
    with torch.no_grad():
        direct = model(wavs[:1, : lens[0]], lens[:1]).hidden_states[2][0]
    assert torch.allclose(out["bf16"], direct, rtol=0, atol=1e-6)
    assert not torch.allclose(out["fp32"], direct, rtol=0, atol=1e-6)  # fp32 differs: bf16 was used


def test_emulated_bf16_warns_on_cpu_only(monkeypatch):
    import warnings

    import speechrep.precision as precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(UserWarning, match="emulated"):
        precision.warn_if_emulated_bf16(torch.device("cpu"), "bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # twin: fp32, or a CPU with bf16, says nothing
        precision.warn_if_emulated_bf16(torch.device("cpu"), "fp32")
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
        precision.warn_if_emulated_bf16(torch.device("cpu"), "bf16")
