"""Parity with HuggingFace ``transformers``: tiny random HF models -> save_pretrained -> speechrep.

Every parameter of the HF model is randomised (norm weights and biases included) before it is
saved, so a dropped, swapped or default-initialised tensor cannot match by accident. Each case
runs one utterance (HF's GroupNorm ignores padding, so padded batches are not comparable) and
compares every hidden state on the frames HF produces, at TOL absolute in fp32. Each case has a
twin that perturbs one tensor of the loaded speechrep model and must fail.

Hidden-state convention: HF's ``hidden_states[0]`` is the input of encoder layer 0 (after the
positional conv, and for post-LN after the encoder LayerNorm), then one state per layer. For
pre-LN (``do_stable_layer_norm``) speechrep's (and s3prl's) last state is the output of the
encoder's final LayerNorm, which is HF's ``last_hidden_state``; transformers 4.x also returned it
as ``hidden_states[-1]``, transformers 5 returns the un-normed value there. So the reference is
``hidden_states[:-1] + (last_hidden_state,)``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from speechrep.upstream.load import load_upstream

transformers = pytest.importorskip("transformers")

TOL = 1e-4  # fp32, absolute, every hidden state
NUM_SAMPLES = 3210  # 160 native frames with CONV; speechrep gives (n - 1) // 20 + 1 = 161
CONV = {"conv_dim": (16, 16, 16), "conv_kernel": (10, 3, 2), "conv_stride": (5, 2, 2)}
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "num_conv_pos_embeddings": 8,
    "num_conv_pos_embedding_groups": 4,
    "layerdrop": 0.0,
    **CONV,
}
QUANTIZER = {"codevector_dim": 16, "proj_codevector_dim": 16, "num_codevectors_per_group": 4}

# name -> (HF class, config class, config overrides, do_normalize, speechrep key the twin perturbs)
CASES = {
    "wav2vec2-postln-group": (
        "Wav2Vec2ForPreTraining",
        "Wav2Vec2Config",
        QUANTIZER,
        False,
        "feature_extractor.layers.0.norm.bias",
    ),
    "wav2vec2-preln-layer": (
        "Wav2Vec2ForCTC",
        "Wav2Vec2Config",
        {
            "feat_extract_norm": "layer",
            "do_stable_layer_norm": True,
            "conv_bias": True,
            "num_conv_pos_embeddings": 7,
        },
        True,
        "encoder.layer_norm.weight",  # only the last state depends on it
    ),
    "wav2vec2-postln-layer": (
        "Wav2Vec2Model",
        "Wav2Vec2Config",
        {"feat_extract_norm": "layer", "hidden_act": "gelu_new"},
        True,
        "feature_extractor.layers.2.norm.weight",
    ),
    "wav2vec2-preln-group": (
        "Wav2Vec2Model",
        "Wav2Vec2Config",
        {"do_stable_layer_norm": True},
        False,
        "encoder.pos_conv.weight_g",
    ),
    "hubert": ("HubertForCTC", "HubertConfig", {}, False, "feature_norm.bias"),
    "wavlm": (
        "WavLMModel",
        "WavLMConfig",
        {"num_buckets": 32, "max_bucket_distance": 64},
        False,
        "encoder.relative_position_bias.embedding.weight",
    ),
    "wavlm-preln-layer": (
        "WavLMForCTC",
        "WavLMConfig",
        {
            "do_stable_layer_norm": True,
            "feat_extract_norm": "layer",
            "num_buckets": 32,
            "max_bucket_distance": 64,
        },
        True,
        "encoder.layers.0.attention.gate_proj.weight",
    ),
    "data2vec-audio": (
        "Data2VecAudioModel",
        "Data2VecAudioConfig",
        {"num_conv_pos_embeddings": 3, "conv_pos_kernel_size": 5},
        True,
        "encoder.pos_conv.layers.1.weight",
    ),
}


def randomize_(model: torch.nn.Module, seed: int) -> None:
    """Add N(0, 0.1) noise to every parameter (norm weights, biases, weight-norm g included).

    WavLM's relative position table gets N(0, 1) instead (trained tables are that large), so
    that the per-layer gates visibly change the output.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 1.0 if "rel_attn_embed" in name else 0.1
            p.add_(scale * torch.randn(p.shape, generator=gen))


def build_hf_folder(name: str, folder: Path) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Save a random HF model of case ``name`` into ``folder``; return (base model, feature extractor)."""
    model_class, config_class, overrides, normalize, _ = CASES[name]
    config = getattr(transformers, config_class)(**{**TINY, **overrides})
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(config).eval()
    randomize_(model, seed=sum(map(ord, name)))
    model.save_pretrained(folder)
    extractor = transformers.Wav2Vec2FeatureExtractor(do_normalize=normalize)
    extractor.save_pretrained(folder)
    return model.base_model, extractor


def utterance() -> torch.Tensor:
    """The one waveform every case runs: (NUM_SAMPLES,) float, unit variance."""
    return torch.randn(NUM_SAMPLES, generator=torch.Generator().manual_seed(7))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """name -> (HF reference states, loaded speechrep model); built once per case."""
    cache: dict[str, tuple[list[torch.Tensor], torch.nn.Module]] = {}

    def get(name: str) -> tuple[list[torch.Tensor], torch.nn.Module]:
        if name not in cache:
            folder = tmp_path_factory.mktemp(name)
            hf, extractor = build_hf_folder(name, folder)
            wav = utterance()
            inputs = extractor(wav.numpy(), sampling_rate=16000, return_tensors="pt").input_values
            with torch.no_grad():
                out = hf(inputs.float(), output_hidden_states=True)
            cache[name] = ([*out.hidden_states[:-1], out.last_hidden_state], load_upstream(folder))
        return cache[name]

    return get


def state_errors(reference: list[torch.Tensor], model: torch.nn.Module) -> list[float]:
    """|speechrep - HF| max per hidden state, on HF's native frames."""
    wav = utterance()
    with torch.no_grad():
        out = model(wav[None], torch.tensor([NUM_SAMPLES]))
    assert len(out.hidden_states) == len(reference) == model.num_layers
    assert out.lengths.tolist() == [(NUM_SAMPLES - 1) // model.downsample_rate + 1]
    errors = []
    for ours, ref in zip(out.hidden_states, reference, strict=True):
        native = ref.shape[1]
        assert ours.shape[1] == native + 1  # the last native frame, repeated once
        assert torch.equal(ours[:, native], ours[:, native - 1])
        errors.append(float((ours[:, :native] - ref).abs().max()))
    return errors


@pytest.mark.parametrize("name", CASES)
def test_hidden_states_match_transformers(built, name):
    reference, model = built(name)
    errors = state_errors(reference, model)
    assert max(errors) <= TOL, errors


@pytest.mark.parametrize("name", CASES)
def test_perturbed_weight_breaks_parity(built, name):
    reference, model = built(name)
    key = CASES[name][4]
    saved = model.state_dict()[key].clone()
    try:
        with torch.no_grad():
            noise = torch.randn(saved.shape, generator=torch.Generator().manual_seed(3))
            model.state_dict()[key].add_(0.05 * noise)
        assert max(state_errors(reference, model)) > 10 * TOL
    finally:
        with torch.no_grad():
            model.state_dict()[key].copy_(saved)
