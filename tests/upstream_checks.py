"""Checks the upstream tests share: parity with s3prl's reference outputs, perturbed twins,
padded batches against single runs, tiny wav2vec 2.0-family models, transformers' key names.

The reference (tests/fixtures/reference, see REFERENCE.md there) holds s3prl 0.4.18's outputs
on three utterances: ``single_{i}_layer_{j}`` (1, T, D) is utterance i run alone (the ground
truth); ``batch_layer_{j}`` is s3prl's padded batch, known to be wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from speechrep.audio.collate import pad_batch
from speechrep.convert.keymap import load_strict

REFERENCE = Path(__file__).parent / "fixtures" / "reference"


def load_reference_wavs() -> list[np.ndarray]:
    """The three reference utterances, float32 (16000, 27200 and 40000 samples)."""
    data = np.load(REFERENCE / "inputs.npz")
    return [data[f"wav_{i}"] for i in range(3)]


def reference_error(model: nn.Module, outputs: str) -> float:
    """Largest |ours - s3prl| over every frame of every hidden state of each utterance run alone.

    ``outputs`` names ``<outputs>.outputs.npz``. On the way it asserts that the model returns as
    many hidden states as the reference holds (and as ``model.num_layers`` says), s3prl's frame
    counts and s3prl's shapes.
    """
    ref = np.load(REFERENCE / f"{outputs}.outputs.npz")
    num_states = sum(key.startswith("single_0_layer_") for key in ref.files)
    worst = 0.0
    with torch.no_grad():
        for i, wav in enumerate(load_reference_wavs()):
            out = model(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
            assert len(out.hidden_states) == model.num_layers == num_states, (outputs, i)
            assert out.lengths.tolist() == ref[f"single_{i}_lens_0"].tolist(), (outputs, i)
            for j, state in enumerate(out.hidden_states):
                expected = ref[f"single_{i}_layer_{j}"]
                assert state.shape == expected.shape, (outputs, i, j)
                worst = max(worst, float(np.abs(state.numpy() - expected).max()))
    return worst


def perturb(model: nn.Module, key: str, delta: float | None = None, index: Any = ...) -> None:
    """Add ``delta`` in place to ``model.state_dict()[key]`` (to ``[index]`` only, when given).

    ``delta`` None adds seeded Gaussian noise of std 0.05 instead.
    """
    with torch.no_grad():
        tensor = model.state_dict()[key][index]
        if delta is None:
            gen = torch.Generator().manual_seed(0)
            tensor.add_(torch.randn(tensor.shape, generator=gen) * 0.05)
        else:
            tensor.add_(delta)


def batch_vs_single(
    model: nn.Module,
    wavs: Sequence[np.ndarray | torch.Tensor],
    pad_value: float = 0.0,
    claim_full: bool = False,
) -> float:
    """Largest |padded batch - each utterance alone| over the valid frames of every hidden state.

    The padding holds ``pad_value``, which nothing may read. Asserts the batch's frame counts and
    zeros past each utterance's end. ``claim_full`` (for a twin) passes the padded length as every
    utterance's length, so the padding counts as signal.
    """
    x, lens = pad_batch(wavs, pad_value)
    worst = 0.0
    with torch.no_grad():
        batch = model(x, torch.full_like(lens, x.shape[1]) if claim_full else lens)
        for i in range(len(wavs)):
            alone = model(x[i : i + 1, : lens[i]], lens[i : i + 1])
            n = int(alone.lengths[0])
            assert claim_full or int(batch.lengths[i]) == n, i
            for b, a in zip(batch.hidden_states, alone.hidden_states, strict=True):
                worst = max(worst, float((b[i, :n] - a[0]).abs().max()))
                assert claim_full or b[i, n:].abs().sum() == 0, i  # past the end: zeros
    return worst


def s3prl_batch_error(model: nn.Module, outputs: str, layer: int) -> float:
    """Largest |s3prl's padded batch - ours alone| on reference utterance 0, hidden state ``layer``.

    s3prl's padded batch is known to differ from its single runs: a value far above a
    :func:`batch_vs_single` bound shows that bound can tell such a batch apart (a twin).
    """
    wav = load_reference_wavs()[0]
    with torch.no_grad():
        ours = model(torch.from_numpy(wav)[None], torch.tensor([len(wav)])).hidden_states[layer]
    theirs = np.load(REFERENCE / f"{outputs}.outputs.npz")[f"batch_layer_{layer}"]
    return float(np.abs(theirs[0, : ours.shape[1]] - ours[0].numpy()).max())


# ----------------------------------------------------------------------------- tiny models

TINY_CONV = ((16, 10, 5), (16, 3, 2), (16, 2, 2))  # stride 20, receptive field 30
# Encoder fields of a tiny Wav2Vec2Config / WavLMConfig / DistilHubertConfig.
TINY_ENCODER: dict[str, Any] = dict(
    conv_layers=TINY_CONV, num_layers=2, hidden_size=32, ffn_size=48, num_heads=4,
    pos_conv_kernel=6, pos_conv_groups=4,
)  # fmt: skip
# Large-style (pre-LN) wav2vec 2.0 / WavLM: LayerNorm extractor with conv biases.
LARGE_STYLE: dict[str, Any] = dict(
    extractor_mode="layer_norm", conv_bias=True, layer_norm_first=True
)
TINY_WAVS = [
    np.random.default_rng(i).normal(size=n).astype(np.float32) * 0.1
    for i, n in enumerate([430, 977, 1500])
]


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """Noise on every tensor, so unit LayerNorm weights or zero biases cannot hide a bug."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return model.eval()


# ----------------------------------------------------------------------------- transformers

# transformers' config of a tiny Large-style model: TINY_ENCODER with LARGE_STYLE, no dropout.
TINY_TRANSFORMERS: dict[str, Any] = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
    conv_dim=(16, 16, 16), conv_kernel=(10, 3, 2), conv_stride=(5, 2, 2), conv_bias=True,
    feat_extract_norm="layer", do_stable_layer_norm=True, num_conv_pos_embeddings=6,
    num_conv_pos_embedding_groups=4, hidden_dropout=0.0, attention_dropout=0.0,
    activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0, apply_spec_augment=False,
)  # fmt: skip
# transformers' wav2vec 2.0 / WavLM key names -> ours (the parts a tiny Large-style model has)
TRANSFORMERS_RULES = [
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


def from_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers state_dict renamed by TRANSFORMERS_RULES, less ``masked_spec_embed``."""
    out = {}
    for key, value in state.items():
        for pattern, target in TRANSFORMERS_RULES:
            key = re.sub(f"^{pattern}", target, key)
        out[key] = value
    del out["masked_spec_embed"]  # the mask embedding of pre-training
    return out


def transformers_error(
    model: nn.Module, hf_model: nn.Module, wav: np.ndarray, load: bool = True
) -> float:
    """Largest |ours - transformers| over every native hidden state of one utterance, after
    loading the transformers model's weights into ours when ``load``.

    transformers' ``hidden_states[:-1]`` are the layer inputs; its ``last_hidden_state`` is the
    encoder output after the final norm (newer versions leave that norm out of
    ``hidden_states``).
    """
    if load:
        load_strict(model, from_transformers(hf_model.state_dict()), where="transformers")
    x = torch.from_numpy(wav)[None]
    with torch.no_grad():
        ours, _ = model.forward_features(x, torch.tensor([len(wav)]))
        out = hf_model(x, output_hidden_states=True)
    theirs = [*out.hidden_states[:-1], out.last_hidden_state]
    assert len(ours) == len(theirs)
    return max(float((a - b).abs().max()) for a, b in zip(ours, theirs, strict=True))
