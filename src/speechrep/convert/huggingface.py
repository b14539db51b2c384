"""HuggingFace ``transformers`` folders -> :class:`NativeCheckpoint`.

A folder with ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``, read through
the restricted unpickler; sharded ``*.index.json`` files too) holding a ``Wav2Vec2Model``,
``HubertModel``, ``WavLMModel`` or ``Data2VecAudioModel``. Checkpoints of the task/pre-training
classes (``...ForPreTraining``, ``...ForCTC``, ``...ForSequenceClassification``, ...) keep the
base model under a ``wav2vec2.`` / ``hubert.`` / ``wavlm.`` / ``data2vec_audio.`` prefix; their
heads (quantizer, ``project_q``/``project_hid``, ``lm_head``, classifier, ...) and the mask
embedding are dropped by name. Any other key is an error naming it.

``config.json`` is mapped field by field onto speechrep's config (a missing field takes the
``transformers`` default of that model type); a setting that would change the computation and
that speechrep does not implement (adapters, a non-GELU feature activation, HuBERT's
positional BatchNorm, ...) raises :class:`CheckpointError`.

Waveform normalisation lives in HF's feature extractor, not in the model: ``do_normalize`` of
``preprocessor_config.json`` is used when the file exists. Without it, the model family's usual
setting is assumed: normalised for the LayerNorm conv extractor (``feat_extract_norm="layer"``:
wav2vec 2.0 Large-LV60 / XLS-R, HuBERT Large, WavLM Large, data2vec), not for the GroupNorm one
(wav2vec 2.0 / HuBERT Base, WavLM Base/Base+), as the original fairseq/WavLM recipes train them.
speechrep normalises like fairseq (``(x - mean) / sqrt(var + 1e-5)``); HF's feature extractor
adds 1e-7 instead, which differs by < 0.1 % for audio louder than -40 dBFS RMS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from speechrep.config import to_dict
from speechrep.convert.keymap import KeyMapError, Rule, rename_keys
from speechrep.convert.native import NativeCheckpoint
from speechrep.convert.safe_pickle import CheckpointError, safe_load
from speechrep.upstream.wav2vec2 import Wav2Vec2Config
from speechrep.upstream.wavlm import WavLMConfig

CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # preferred first
INDEX_SUFFIX = ".index.json"  # sharded weights: {"weight_map": {key: shard file}}

# HF model_type -> speechrep family; the base-model prefix of the task classes' keys.
MODEL_TYPES = {
    "wav2vec2": "wav2vec2",
    "hubert": "hubert",
    "wavlm": "wavlm",
    "data2vec-audio": "data2vec",
}
PREFIXES = {
    "wav2vec2": "wav2vec2.",
    "hubert": "hubert.",
    "wavlm": "wavlm.",
    "data2vec": "data2vec_audio.",
}

# transformers' defaults for the config fields read here (Wav2Vec2Config; the others agree
# except where FAMILY_DEFAULTS says otherwise).
HF_DEFAULTS: dict[str, Any] = {
    "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_bias": False,
    "feat_extract_norm": "group",
    "feat_extract_activation": "gelu",
    "do_stable_layer_norm": False,
    "num_hidden_layers": 12,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.1,
    "layerdrop": 0.1,
    "feat_proj_dropout": 0.0,
    "mask_time_prob": 0.05,
    "mask_time_length": 10,
    "add_adapter": False,
    "adapter_attn_dim": None,
    "feat_proj_layer_norm": True,  # HuBERT
    "conv_pos_batch_norm": False,  # HuBERT
}
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "wavlm": {"num_buckets": 320, "max_bucket_distance": 800},
    # data2vec: num_conv_pos_embeddings is the number of stacked positional convs
    "data2vec": {
        "num_conv_pos_embeddings": 5,
        "conv_pos_kernel_size": 19,
        "feat_extract_norm": "layer",
    },
}
# HF activation names (ACT2FN) -> speechrep's (nn/transformer.py ACTIVATIONS).
ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_accurate",  # all four: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))
    "gelu_fast": "gelu_accurate",
    "gelu_accurate": "gelu_accurate",
    "gelu_pytorch_tanh": "gelu_accurate",
    "relu": "relu",
    "tanh": "tanh",
    "swish": "swish",
    "silu": "swish",
    "linear": "linear",
}
EXTRACTOR_MODES = {"group": "group_norm", "layer": "layer_norm"}

# fmt: off
BASE_RULES: list[Rule] = [
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.(weight|bias)", r"feature_extractor.layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(weight|bias)", r"feature_extractor.layers.\1.norm.\2"),
    (r"feature_projection\.layer_norm\.(weight|bias)", r"feature_norm.\1"),
    (r"feature_projection\.projection\.(weight|bias)", r"feature_projection.\1"),
    # weight norm: torch.nn.utils.weight_norm (old files) or its parametrization (newer ones)
    (r"encoder\.pos_conv_embed\.conv\.(weight_g|weight_v|bias)", r"encoder.pos_conv.\1"),
    (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0", "encoder.pos_conv.weight_g"),
    (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1", "encoder.pos_conv.weight_v"),
    (r"encoder\.pos_conv_embed\.layers\.(\d+)\.conv\.(weight|bias)", r"encoder.pos_conv.layers.\1.\2"),  # data2vec
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.attention\.([qkv]_proj|out_proj)\.(weight|bias)", r"encoder.layers.\1.attention.\2.\3"),
    (r"encoder\.layers\.(\d+)\.layer_norm\.(weight|bias)", r"encoder.layers.\1.attention_norm.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.(weight|bias)", r"encoder.layers.\1.feed_forward.fc1.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.output_dense\.(weight|bias)", r"encoder.layers.\1.feed_forward.fc2.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_norm.\2"),
    (r"masked_spec_embed", None),  # training only: the learned mask vector
]
WAVLM_RULES: list[Rule] = [
    (r"encoder\.layers\.0\.attention\.rel_attn_embed\.weight", "encoder.relative_position_bias.embedding.weight"),
    (r"encoder\.layers\.(\d+)\.attention\.gru_rel_pos_linear\.(weight|bias)", r"encoder.layers.\1.attention.gate_proj.\2"),
    (r"encoder\.layers\.(\d+)\.attention\.gru_rel_pos_const", r"encoder.layers.\1.attention.gate_const"),
]
# Outside the base-model prefix: pre-training and task heads, all dropped by name.
HEAD_RULES: list[Rule] = [
    (r"quantizer\..+", None),  # ForPreTraining: Gumbel codebook
    (r"project_q\..+", None),
    (r"project_hid\..+", None),
    (r"lm_head\..+", None),  # ForCTC
    (r"projector\..+", None),  # ForSequenceClassification / ForXVector
    (r"classifier\..+", None),  # ForSequenceClassification / ForAudioFrameClassification
    (r"layer_weights", None),  # use_weighted_layer_sum
    (r"tdnn\.\d+\.kernel\.(weight|bias)", None),  # ForXVector
    (r"feature_extractor\.(weight|bias)", None),  # ForXVector's embedding layer (not the conv stack)
    (r"objective\.weight", None),  # ForXVector's AM-softmax
]
# fmt: on


def _require(cond: bool, where: Path | str, message: str) -> None:
    if not cond:
        raise CheckpointError(f"{where}: {message}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable JSON ({err})") from None
    _require(isinstance(data, dict), path, f"expected a JSON object, found {type(data).__name__}")
    return data


def _weight_file(path: Path) -> Path | None:
    for name in WEIGHT_FILES:
        for candidate in (path / name, path / (name + INDEX_SUFFIX)):
            if candidate.is_file():
                return candidate
    return None


def is_hf_dir(path: str | os.PathLike) -> bool:
    """True for a folder with a ``config.json`` naming a ``model_type`` and HF weight files."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file() or _weight_file(path) is None:
        return False
    try:
        return isinstance(json.loads((path / CONFIG_FILE).read_text()).get("model_type"), str)
    except (OSError, ValueError, AttributeError):
        return False


def read_hf_dir(path: str | os.PathLike) -> NativeCheckpoint:
    """Read a HuggingFace wav2vec 2.0 / HuBERT / WavLM / data2vec-audio folder.

    Raises:
        FileNotFoundError: no ``config.json`` or no weight file in ``path``.
        CheckpointError: an unsupported model type or setting, or unreadable files.
        KeyMapError: weights the model does not have (the message lists them).

    Example:
        >>> native = read_hf_dir("hubert-base-ls960")  # doctest: +SKIP
        >>> native.family, native.config["num_layers"]  # doctest: +SKIP
        ('hubert', 12)
    """
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{path}: no {CONFIG_FILE} (expected a HuggingFace model folder)")
    hf = _read_json(path / CONFIG_FILE)
    model_type = hf.get("model_type")
    _require(
        model_type in MODEL_TYPES,
        path / CONFIG_FILE,
        f"model_type {model_type!r} is not supported; expected one of {sorted(MODEL_TYPES)}",
    )
    family = MODEL_TYPES[model_type]
    weights = _weight_file(path)
    if weights is None:
        raise FileNotFoundError(f"{path}: no weights; expected one of {list(WEIGHT_FILES)}")
    try:
        fields = config_fields(hf, family, path / CONFIG_FILE)
    except CheckpointError:
        raise
    except (TypeError, ValueError) as err:  # e.g. a string where a number belongs
        raise CheckpointError(f"{path / CONFIG_FILE}: malformed config ({err})") from None
    fields.update(waveform_fields(path, fields["extractor_mode"]))
    config_class = WavLMConfig if family == "wavlm" else Wav2Vec2Config
    try:
        config = to_dict(config_class(**fields))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path / CONFIG_FILE}: unsupported model config: {err}") from None
    state = convert_state_dict(load_weights(weights), family, str(weights))
    extra = {
        "format": "huggingface",
        "model_type": model_type,
        "architectures": hf.get("architectures"),
    }
    return NativeCheckpoint(family, config, state, source=str(path), extra=extra)


def _setting(hf: dict[str, Any], family: str, key: str) -> Any:
    if key in hf:
        return hf[key]
    return FAMILY_DEFAULTS.get(family, {}).get(key, HF_DEFAULTS.get(key))


def _check_unsupported(get: Callable[[str], Any], family: str, where: Path) -> None:
    """Raise on HF settings that change the computation in ways speechrep does not implement."""
    _require(
        not get("add_adapter"),
        where,
        "add_adapter (conv adapter after the encoder) is not supported",
    )
    _require(
        get("adapter_attn_dim") is None,
        where,
        "adapter_attn_dim (attention adapters) is not supported",
    )
    activation = get("feat_extract_activation")
    _require(
        activation == "gelu",
        where,
        f"feat_extract_activation {activation!r} is not supported (only 'gelu')",
    )
    if family == "hubert":
        _require(get("feat_proj_layer_norm"), where, "feat_proj_layer_norm false is not supported")
        _require(not get("conv_pos_batch_norm"), where, "conv_pos_batch_norm is not supported")
    if family == "data2vec":
        depth, kernel = get("num_conv_pos_embeddings"), get("conv_pos_kernel_size")
        _require(
            depth >= 2,
            where,
            f"data2vec needs num_conv_pos_embeddings >= 2 positional conv layers, found {depth}",
        )
        _require(kernel >= 3, where, f"data2vec needs conv_pos_kernel_size >= 3, found {kernel}")


def config_fields(hf: dict[str, Any], family: str, where: Path) -> dict[str, Any]:
    """HF ``config.json`` -> speechrep config fields (waveform settings excluded)."""

    def get(key: str) -> Any:
        return _setting(hf, family, key)

    _check_unsupported(get, family, where)
    dims, kernels, strides = get("conv_dim"), get("conv_kernel"), get("conv_stride")
    _require(
        len(dims) == len(kernels) == len(strides) == hf.get("num_feat_extract_layers", len(dims)),
        where,
        f"conv_dim/conv_kernel/conv_stride lengths differ: {len(dims)}, {len(kernels)}, {len(strides)}",
    )
    norm, act = get("feat_extract_norm"), get("hidden_act")
    _require(
        norm in EXTRACTOR_MODES,
        where,
        f"feat_extract_norm {norm!r} is not one of {sorted(EXTRACTOR_MODES)}",
    )
    _require(act in ACTIVATIONS, where, f"hidden_act {act!r} is not one of {sorted(ACTIVATIONS)}")
    fields: dict[str, Any] = {
        "conv_layers": tuple(zip(dims, kernels, strides, strict=True)),
        "extractor_mode": EXTRACTOR_MODES[norm],
        "conv_bias": bool(get("conv_bias")),
        "feature_projection": True,  # HF always projects the conv features
        "num_layers": get("num_hidden_layers"),
        "hidden_size": get("hidden_size"),
        "ffn_size": get("intermediate_size"),
        "num_heads": get("num_attention_heads"),
        "activation": ACTIVATIONS[act],
        "layer_norm_first": family != "data2vec" and bool(get("do_stable_layer_norm")),
        "layer_norm_eps": float(get("layer_norm_eps")),
        "pos_conv_kernel": get("num_conv_pos_embeddings"),
        "pos_conv_groups": get("num_conv_pos_embedding_groups"),
        "dropout": get("hidden_dropout"),
        "attention_dropout": get("attention_dropout"),
        "activation_dropout": get("activation_dropout"),
        "layerdrop": get("layerdrop"),
        "feature_dropout": get("feat_proj_dropout"),
        "mask_prob": get("mask_time_prob"),
        "mask_length": get("mask_time_length"),
    }
    return {**fields, **_family_fields(get, family)}


def _family_fields(get: Callable[[str], Any], family: str) -> dict[str, Any]:
    if family == "data2vec":
        # speechrep's stacked conv uses kernel max(3, conv_pos // depth): conv_pos = kernel * depth
        depth = get("num_conv_pos_embeddings")
        return {"pos_conv_depth": depth, "pos_conv_kernel": get("conv_pos_kernel_size") * depth}
    if family == "wavlm":  # HF's WavLM always has the gated relative position bias
        return {
            "relative_position_embedding": True,
            "gated_relative_position": True,
            "num_buckets": get("num_buckets"),
            "max_distance": get("max_bucket_distance"),
        }
    return {}


def waveform_fields(path: Path, extractor_mode: str) -> dict[str, Any]:
    """``normalize_waveform`` / ``sample_rate`` from ``preprocessor_config.json`` (see module doc)."""
    pre = path / PREPROCESSOR_FILE
    if not pre.is_file():
        return {"normalize_waveform": extractor_mode == "layer_norm", "sample_rate": 16000}
    data = _read_json(pre)
    kind = data.get("feature_extractor_type", "Wav2Vec2FeatureExtractor")
    _require(
        kind == "Wav2Vec2FeatureExtractor",
        pre,
        f"feature_extractor_type {kind!r} is not supported (expected raw-waveform 'Wav2Vec2FeatureExtractor')",
    )
    _require(
        data.get("feature_size", 1) == 1,
        pre,
        f"feature_size {data.get('feature_size')} is not 1 (mono)",
    )
    return {
        "normalize_waveform": bool(data.get("do_normalize", True)),  # HF's default: True
        "sample_rate": int(data.get("sampling_rate", 16000)),
    }


def load_weights(file: Path) -> dict[str, torch.Tensor]:
    """One weight file, or every shard an ``*.index.json`` names -> {key: tensor}."""
    if file.name.endswith(INDEX_SUFFIX):
        index = _read_json(file).get("weight_map")
        _require(isinstance(index, dict), file, "missing 'weight_map'")
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(index.values())):
            _require(Path(shard).name == shard, file, f"shard name {shard!r} leaves the folder")
            state.update(load_weights(file.parent / shard))
        return state
    if file.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(file))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{file}: unreadable safetensors file ({err})") from None
    state = safe_load(file)
    _require(isinstance(state, dict), file, f"expected a state_dict, found {type(state).__name__}")
    bad = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    _require(not bad, file, f"non-tensor entries: {bad[:5]}")
    return dict(state)


def convert_state_dict(
    state: dict[str, torch.Tensor], family: str, where: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """HF keys (base model, or a task model with its prefix) -> speechrep keys.

    Heads outside the prefix go through ``HEAD_RULES`` (dropped); any unknown key raises.
    """
    prefix = PREFIXES[family]
    base_rules = BASE_RULES + (WAVLM_RULES if family == "wavlm" else [])
    if any(key.startswith(prefix) for key in state):
        base = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        heads = {k: v for k, v in state.items() if not k.startswith(prefix)}
        rename_keys(heads, HEAD_RULES, where=f"{where} (outside '{prefix}')")
    else:
        base = state
    try:
        return rename_keys(base, base_rules, where=where)
    except KeyMapError as err:
        raise KeyMapError(f"{err} (expected a HuggingFace {family} model)") from None
