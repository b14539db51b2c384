"""Readers for the wav2vec 2.0 family's checkpoint files -> :class:`NativeCheckpoint`.

- s3prl "converted" (``task_cfg`` + ``model_cfg`` + ``model_weight``): wav2vec 2.0, HuBERT
  (also ``dictionaries_symbols``), data2vec (``model_weight["_ema"]`` present).
- fairseq originals (``model`` + ``cfg`` with ``model``/``task`` sections, plain dict or omegaconf
  turned plain by ``safe_load``; or the 2020 ``args`` Namespace, flat) for the same three.
- original WavLM (``cfg`` flat + ``model``).
- s3prl DistilHuBERT (``Distiller`` + ``Config["distiller"]``).

Configs are mapped field by field onto speechrep's dataclasses (defaults for missing fields are
fairseq's / WavLM's / s3prl's own); weights go through strict rule tables where training-only
tensors (quantizer, projection heads, label embeddings, EMA teacher) are dropped by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from speechrep.config import to_dict
from speechrep.convert.keymap import KeyMapError, Rule, rename_keys
from speechrep.convert.native import NativeCheckpoint
from speechrep.convert.safe_pickle import CheckpointError
from speechrep.nn.conv import parse_conv_layers
from speechrep.upstream.distilhubert import DistilHubertConfig
from speechrep.upstream.wav2vec2 import Wav2Vec2Config
from speechrep.upstream.wavlm import WavLMConfig

# fairseq cfg.model._name / args.arch -> family
MODEL_NAMES = {"wav2vec2": "wav2vec2", "hubert": "hubert", "data2vec_audio": "data2vec"}

# fmt: off
EXTRACTOR_RULES: list[Rule] = [
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"feature_extractor.layers.\1.conv.\2"),
    # layer_norm mode: a norm in every layer (inside a Sequential); group_norm mode: layer 0 only
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)", r"feature_extractor.layers.\1.norm.\2"),
    (r"feature_extractor\.conv_layers\.0\.2\.(weight|bias)", r"feature_extractor.layers.0.norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_projection.\1"),
]
FEATURE_NORM_RULES: list[Rule] = [(r"layer_norm\.(weight|bias)", r"feature_norm.\1")]
ENCODER_RULES: list[Rule] = [
    (r"encoder\.pos_conv\.0\.(weight_g|weight_v|bias)", r"encoder.pos_conv.\1"),
    (r"encoder\.pos_conv\.0\.parametrizations\.weight\.original0", "encoder.pos_conv.weight_g"),
    (r"encoder\.pos_conv\.0\.parametrizations\.weight\.original1", "encoder.pos_conv.weight_v"),
    (r"encoder\.pos_conv\.(\d+)\.0\.(weight|bias)", r"encoder.pos_conv.layers.\1.\2"),  # depth > 1
    (r"encoder\.layers\.(\d+)\.self_attn\.([qkv]_proj|out_proj)\.(weight|bias)", r"encoder.layers.\1.attention.\2.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.attention_norm.\2"),
    (r"encoder\.layers\.(\d+)\.(fc1|fc2)\.(weight|bias)", r"encoder.layers.\1.feed_forward.\2.\3"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_norm.\2"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
]
WAVLM_RULES: list[Rule] = [
    (r"encoder\.layers\.0\.self_attn\.relative_attention_bias\.weight", "encoder.relative_position_bias.embedding.weight"),
    (r"encoder\.layers\.(\d+)\.self_attn\.grep_linear\.(weight|bias)", r"encoder.layers.\1.attention.gate_proj.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn\.grep_a", r"encoder.layers.\1.attention.gate_const"),
]
HEAD_RULES: list[Rule] = [
    (r"output_layer\.0\.(weight|bias)", r"heads.proj.\1"),
    (r"output_layer\.2\.(weight|bias)", r"heads.\1"),
]
# Pre-training-only tensors, dropped by name (anything else unknown is an error).
TRAINING_ONLY: dict[str, tuple[str, ...]] = {
    "wav2vec2": ("mask_emb", r"quantizer\..+", r"project_q\..+", r"final_proj\..+", r"target_glu\..+"),
    "hubert": ("mask_emb", "label_embs_concat", r"final_proj\..+", r"target_glu\..+"),
    "data2vec": ("mask_emb", "_ema", r"final_proj\..+"),
    "wavlm": ("mask_emb",),
    "distilhubert": (),
}
# fmt: on


def rules_for(family: str) -> list[Rule]:
    """The complete rule table of a family (renames, then training-only drops)."""
    rules = EXTRACTOR_RULES + ENCODER_RULES
    if family == "distilhubert":
        rules = rules + HEAD_RULES
    else:
        rules = rules + FEATURE_NORM_RULES + (WAVLM_RULES if family == "wavlm" else [])
    return rules + [(pattern, None) for pattern in TRAINING_ONLY[family]]


# speechrep field <- (fairseq key, fairseq default when a config leaves the key out).
# Defaults are those of fairseq's Wav2Vec2Config (s3prl's copies and WavLMConfig agree); s3prl's
# DistillerConfig uses the same keys for its encoder (DISTILLER_FIELDS).
ENCODER_FIELDS: dict[str, tuple[str, Any]] = {
    "num_layers": ("encoder_layers", 12),
    "hidden_size": ("encoder_embed_dim", 768),
    "ffn_size": ("encoder_ffn_embed_dim", 3072),
    "num_heads": ("encoder_attention_heads", 12),
    "activation": ("activation_fn", "gelu"),
    "layer_norm_first": ("layer_norm_first", False),
    "pos_conv_kernel": ("conv_pos", 128),
    "pos_conv_groups": ("conv_pos_groups", 16),
    "dropout": ("dropout", 0.1),
    "attention_dropout": ("attention_dropout", 0.1),
    "activation_dropout": ("activation_dropout", 0.0),
    "layerdrop": ("encoder_layerdrop", 0.0),
}
WAV2VEC2_FIELDS: dict[str, tuple[str, Any]] = {
    **ENCODER_FIELDS,
    "conv_bias": ("conv_bias", False),
    "pos_conv_depth": ("pos_conv_depth", 1),
    "feature_dropout": ("dropout_input", 0.0),
    "mask_prob": ("mask_prob", 0.65),
    "mask_length": ("mask_length", 10),
}
DEFAULT_CONV_LAYERS = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"
EXTRACTOR_MODES = {"default": "group_norm", "layer_norm": "layer_norm"}


def _require(cond: bool, where: Path | str, message: str) -> None:
    if not cond:
        raise CheckpointError(f"{where}: {message}")


def _mapping(value: Any, where: Path | str, name: str) -> dict[str, Any]:
    _require(
        isinstance(value, dict), where, f"'{name}' must be a dict, found {type(value).__name__}"
    )
    return value


def _build_config(cls: type, where: Path | str, fields: dict[str, Any]) -> dict[str, Any]:
    try:
        return to_dict(cls(**fields))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{where}: unsupported model config: {err}") from None


def _conv_fields(mode: Any, spec: Any, where: Path | str) -> dict[str, Any]:
    _require(mode in EXTRACTOR_MODES, where, f"unknown extractor_mode {mode!r}")
    try:
        layers = parse_conv_layers(str(spec))
    except ValueError as err:
        raise CheckpointError(f"{where}: {err}") from None
    return {"conv_layers": layers, "extractor_mode": EXTRACTOR_MODES[mode]}


def _wav2vec2_fields(
    model: dict[str, Any], task: dict[str, Any], family: str, where: Path | str
) -> dict[str, Any]:
    """fairseq model/task config (or one flat 2020 ``args``) -> Wav2Vec2Config fields."""
    layer_type = model.get("layer_type", "transformer")
    _require(layer_type == "transformer", where, f"layer_type {layer_type!r} is not supported")
    _require(not model.get("quantize_input", False), where, "quantize_input is not supported")
    _require(
        model.get("crop_seq_to_multiple", 1) == 1, where, "crop_seq_to_multiple is not supported"
    )
    fields = {ours: model.get(key, default) for ours, (key, default) in WAV2VEC2_FIELDS.items()}
    conv = _conv_fields(
        model.get("extractor_mode", "default"),
        model.get("conv_feature_layers", DEFAULT_CONV_LAYERS),
        where,
    )
    return {
        **fields,
        **conv,
        # data2vec always has post_extract_proj; the others only where the widths differ
        "feature_projection": family == "data2vec"
        or conv["conv_layers"][-1][0] != fields["hidden_size"],
        "normalize_waveform": bool(task.get("normalize", False)),
        "sample_rate": int(task.get("sample_rate", 16000)),
    }


def _weights(state: Any, family: str, where: Path | str, name: str) -> dict[str, torch.Tensor]:
    """Rename a foreign state_dict by the family's rule table; kept values must be tensors."""
    state = _mapping(state, where, name)
    if any(str(k).startswith("w2v_encoder.") for k in state):
        raise CheckpointError(
            f"{where}: a fine-tuned (CTC/seq2seq) fairseq model; only pre-trained ones are supported"
        )
    try:
        out = rename_keys(state, rules_for(family), where=str(where))
    except KeyMapError as err:
        raise KeyMapError(f"{err} (expected a {family} checkpoint)") from None
    bad = [k for k, v in out.items() if not isinstance(v, torch.Tensor)]
    _require(not bad, where, f"non-tensor weight(s): {bad[:5]}")
    return out


def _native(
    family: str, config: dict[str, Any], state: dict[str, torch.Tensor], path: Path | str, fmt: str
) -> NativeCheckpoint:
    return NativeCheckpoint(family, config, state, source=str(path), extra={"format": fmt})


def read_s3prl_converted(payload: dict[str, Any], path: Path | str) -> NativeCheckpoint:
    """s3prl's fairseq-free wav2vec 2.0 / HuBERT / data2vec file.

    Layout: ``task_cfg``, ``model_cfg``, ``model_weight`` (+ ``dictionaries_symbols`` for HuBERT).
    """
    task = _mapping(payload["task_cfg"], path, "task_cfg")
    model = _mapping(payload["model_cfg"], path, "model_cfg")
    weights = _mapping(payload["model_weight"], path, "model_weight")
    name = model.get("_name")
    if name is None:  # older converted files: tell the families apart by what only they carry
        name = "data2vec_audio" if "_ema" in weights else "wav2vec2"
        name = "hubert" if "dictionaries_symbols" in payload else name
    _require(
        name in MODEL_NAMES, path, f"model_cfg._name {name!r} is not one of {sorted(MODEL_NAMES)}"
    )
    family = MODEL_NAMES[name]
    if family == "hubert":
        _check_hubert(payload, model, weights, path)
    if family == "data2vec":
        _require("_ema" in weights, path, "data2vec model_weight lacks '_ema' (s3prl requires it)")
    config = _build_config(Wav2Vec2Config, path, _wav2vec2_fields(model, task, family, path))
    return _native(
        family, config, _weights(weights, family, path, "model_weight"), path, "s3prl-converted"
    )


def _check_hubert(
    payload: dict[str, Any], model: dict[str, Any], weights: dict[str, Any], path: Path | str
) -> None:
    symbols = payload.get("dictionaries_symbols")
    _require(
        isinstance(symbols, list),
        path,
        "HuBERT checkpoint lacks 'dictionaries_symbols' (s3prl requires it)",
    )
    _require("label_rate" in model, path, "HuBERT model_cfg lacks 'label_rate' (s3prl requires it)")
    embs = weights.get("label_embs_concat")
    if isinstance(embs, torch.Tensor) and all(isinstance(s, list) for s in symbols):
        rows = sum(len(s) for s in symbols)
        _require(
            embs.shape[0] == rows,
            path,
            f"label_embs_concat has {embs.shape[0]} rows, dictionaries {rows} symbols",
        )


def read_fairseq_or_wavlm(payload: dict[str, Any], path: Path | str) -> NativeCheckpoint:
    """A fairseq training checkpoint (``cfg`` sections, or the 2020 flat ``args``) or an original
    WavLM file (``cfg`` flat)."""
    cfg = payload.get("cfg")
    if isinstance(cfg, dict) and not isinstance(cfg.get("model"), dict):
        return _read_wavlm(cfg, payload["model"], path)
    if isinstance(cfg, dict):
        model = _mapping(cfg["model"], path, "cfg.model")
        task = _mapping(cfg.get("task") or {}, path, "cfg.task")
        name = model.get("_name")
    else:
        args = _mapping(payload.get("args"), path, "args")
        model = task = args  # 2020 layout: one flat namespace
        name = args.get("arch")
    _require(
        name in MODEL_NAMES, path, f"fairseq model {name!r} is not one of {sorted(MODEL_NAMES)}"
    )
    family = MODEL_NAMES[name]
    config = _build_config(Wav2Vec2Config, path, _wav2vec2_fields(model, task, family, path))
    return _native(
        family, config, _weights(payload["model"], family, path, "model"), path, "fairseq"
    )


def _read_wavlm(cfg: dict[str, Any], state: Any, path: Path | str) -> NativeCheckpoint:
    _require("encoder_layers" in cfg or "conv_feature_layers" in cfg, path, "cfg is not WavLM's")
    fields = _wav2vec2_fields(cfg, cfg, "wavlm", path)  # WavLM keeps normalize in the same cfg
    fields.update(
        relative_position_embedding=bool(cfg.get("relative_position_embedding", False)),
        num_buckets=cfg.get("num_buckets", 320),
        max_distance=cfg.get("max_distance", 1280),
        gated_relative_position=bool(cfg.get("gru_rel_pos", False)),
    )
    config = _build_config(WavLMConfig, path, fields)
    return _native("wavlm", config, _weights(state, "wavlm", path, "model"), path, "wavlm")


# speechrep field <- (s3prl Config["distiller"] key, s3prl DistillerConfig default): fairseq's
# encoder keys and defaults but two, and the prediction heads.
DISTILLER_FIELDS: dict[str, tuple[str, Any]] = {
    **ENCODER_FIELDS,
    "num_layers": ("encoder_layers", 1),
    "activation_dropout": ("activation_dropout", 0.1),
    "num_prediction_heads": ("n_tasks", 12),
    "prediction_size": ("final_dim", 768),
    "feature_grad_mult": ("feature_grad_mult", 1.0),
}
# s3prl options with one supported value (the released DistilHuBERT's).
DISTILLER_FIXED = {
    "task_emb_type": "expand-last",
    "out_layer_type": "expand-last",
    "attention_type": "original",
}


def read_distiller(payload: dict[str, Any], path: Path | str) -> NativeCheckpoint:
    """s3prl's DistilHuBERT checkpoint (``Distiller`` state_dict + ``Config["distiller"]``)."""
    d = _mapping(
        _mapping(payload.get("Config"), path, "Config").get("distiller"), path, "Config.distiller"
    )
    for key, want in DISTILLER_FIXED.items():
        _require(d.get(key, want) == want, path, f"distiller {key} {d.get(key)!r} is not supported")
    fields = {ours: d.get(key, default) for ours, (key, default) in DISTILLER_FIELDS.items()}
    _require(fields["num_layers"] > 0, path, "a distiller without encoder layers is not supported")
    inter_dim = d.get("out_layer_inter_dim", -1)
    fields.update(
        _conv_fields(
            d.get("extractor_mode", "default"),
            d.get("extractor_conv_feature_layers", DEFAULT_CONV_LAYERS),
            path,
        ),
        head_hidden_size=inter_dim if inter_dim > 0 else None,
        teacher_layers=tuple(d.get("pred_layer_id", range(1, fields["num_prediction_heads"] + 1))),
    )
    config = _build_config(DistilHubertConfig, path, fields)
    state = dict(_mapping(payload["Distiller"], path, "Distiller"))
    if "output_layer.2.layer.weight" in state:  # one head: s3prl's SplitLinear is a plain Linear
        state["output_layer.2.weight"] = state.pop("output_layer.2.layer.weight").t()[None]
        state["output_layer.2.bias"] = state.pop("output_layer.2.layer.bias").reshape(1, 1, 1, -1)
    state = _weights(state, "distilhubert", path, "Distiller")
    return _native("distilhubert", config, state, path, "s3prl-distiller")
