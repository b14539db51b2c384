"""s3prl's own checkpoint layouts <-> speechrep native.

Reading: Mockingjay / TERA / Audio ALBERT files (``Transformer`` + ``Upstream_Config``, or the
legacy ``Config`` holding ``transformer``) and APC / VQ-APC / NPC files (``config`` + ``model``).
Writing (the same layouts, for s3prl's loaders) is in :mod:`speechrep.convert.s3prl_export`.
Key renames are rule tables (s3prl regex -> speechrep template, and back), both here.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from speechrep.audio.features import KaldiOptions, StftOptions
from speechrep.config import from_dict, to_dict
from speechrep.convert.keymap import Rule, rename_keys
from speechrep.convert.native import NativeCheckpoint
from speechrep.convert.safe_pickle import CheckpointError

MOCKINGJAY_FAMILIES = ("mockingjay", "tera", "audio_albert")
APC_FAMILIES = ("apc", "vq_apc")

_L = r"encoder\.layer\.(\d+)\."
MOCKINGJAY_RULES: list[Rule] = [
    (r"input_representations\.spec_transform\.(weight|bias)", r"encoder.input.projection.\1"),
    (r"input_representations\.LayerNorm\.(weight|bias)", r"encoder.input.layer_norm.\1"),
    (
        _L + r"attention\.self\.(query|key|value)\.(weight|bias)",
        r"encoder.layers.\1.attention.\2.\3",
    ),
    (_L + r"attention\.output\.dense\.(weight|bias)", r"encoder.layers.\1.attention.out.\2"),
    (_L + r"attention\.output\.LayerNorm\.(weight|bias)", r"encoder.layers.\1.attention_norm.\2"),
    (_L + r"intermediate\.dense\.(weight|bias)", r"encoder.layers.\1.feed_forward.intermediate.\2"),
    (_L + r"output\.dense\.(weight|bias)", r"encoder.layers.\1.feed_forward.output.\2"),
    (_L + r"output\.LayerNorm\.(weight|bias)", r"encoder.layers.\1.feed_forward_norm.\2"),
    (r"encoder\.LayerNorm\.(\d+)\.(weight|bias)", r"encoder.state_norms.\1.\2"),
]
_N = r"encoder\.layers\.(\d+)\."
MOCKINGJAY_EXPORT_RULES: list[Rule] = [
    (r"encoder\.input\.projection\.(weight|bias)", r"input_representations.spec_transform.\1"),
    (r"encoder\.input\.layer_norm\.(weight|bias)", r"input_representations.LayerNorm.\1"),
    (_N + r"attention\.(query|key|value)\.(weight|bias)", r"encoder.layer.\1.attention.self.\2.\3"),
    (_N + r"attention\.out\.(weight|bias)", r"encoder.layer.\1.attention.output.dense.\2"),
    (_N + r"attention_norm\.(weight|bias)", r"encoder.layer.\1.attention.output.LayerNorm.\2"),
    (_N + r"feed_forward\.intermediate\.(weight|bias)", r"encoder.layer.\1.intermediate.dense.\2"),
    (_N + r"feed_forward\.output\.(weight|bias)", r"encoder.layer.\1.output.dense.\2"),
    (_N + r"feed_forward_norm\.(weight|bias)", r"encoder.layer.\1.output.LayerNorm.\2"),
    (r"encoder\.state_norms\.(\d+)\.(weight|bias)", r"encoder.LayerNorm.\1.\2"),
]
# Pre-LN s3prl layers register their norms under two names each (same tensors).
PRE_LN_ALIASES = {
    "attention.LayerNorm.": "attention.output.LayerNorm.",
    "LayerNorm.": "output.LayerNorm.",
}

_GRU = r"(weight_ih_l0|weight_hh_l0|bias_ih_l0|bias_hh_l0)"
_VQ_RULES: list[Rule] = [
    (r"vq_layers\.(\d+)\.vq_logits\.(weight|bias)", r"quantizer.groups.\1.logits.\2"),
    (r"vq_layers\.(\d+)\.codebook_CxE\.weight", r"quantizer.groups.\1.codebook.weight"),
    (r"postnet\.(weight|bias)", r"postnet.\1"),
]
_VQ_EXPORT_RULES: list[Rule] = [
    (r"quantizer\.groups\.(\d+)\.logits\.(weight|bias)", r"vq_layers.\1.vq_logits.\2"),
    (r"quantizer\.groups\.(\d+)\.codebook\.weight", r"vq_layers.\1.codebook_CxE.weight"),
    (r"postnet\.(weight|bias)", r"postnet.\1"),
]
APC_RULES: list[Rule] = [(r"rnn_layers\.(\d+)\." + _GRU, r"rnn.layers.\1.\2"), *_VQ_RULES]
APC_EXPORT_RULES: list[Rule] = [
    (r"rnn\.layers\.(\d+)\." + _GRU, r"rnn_layers.\1.\2"),
    *_VQ_EXPORT_RULES,
]
_BLOCK = (
    r"(blocks\.\d+\.(?:conv|linear)\.(?:weight|bias)|blocks\.\d+\.bn[12]\.\w+"
    r"|masked_convs\.\d+\.conv_mask|masked_convs\.\d+\.conv\.(?:weight|bias))"
)
NPC_RULES: list[Rule] = [
    (_BLOCK, r"\1"),
    (r"ae_bottleneck\.weight", "bottleneck.weight"),
    *_VQ_RULES,
]
NPC_EXPORT_RULES: list[Rule] = [
    (_BLOCK, r"\1"),
    (r"bottleneck\.weight", "ae_bottleneck.weight"),
    *_VQ_EXPORT_RULES,
]

# torchaudio.compliance.kaldi keyword names <-> KaldiOptions fields
_KALDI_RENAMES = {
    "frame_length_ms": "frame_length",
    "frame_shift_ms": "frame_shift",
    "preemphasis": "preemphasis_coefficient",
}
_KALDI_COMMON = set(
    "blackman_coeff dither energy_floor frame_length_ms frame_shift_ms min_duration preemphasis "
    "raw_energy remove_dc_offset round_to_power_of_two snip_edges subtract_mean window_type".split()
)
_KALDI_MEL = {"high_freq", "htk_compat", "low_freq", "num_mel_bins", "use_energy"}
KALDI_ARGS = {
    "spectrogram": _KALDI_COMMON,
    "fbank": _KALDI_COMMON | _KALDI_MEL | {"use_log_fbank", "use_power"},
    "mfcc": _KALDI_COMMON | _KALDI_MEL | {"num_ceps", "cepstral_lifter"},
}
# s3prl's TERA/Mockingjay pre-training task defaults (pretrain/*/config_model.yaml).
_TASK_DEFAULTS = {
    "loss": "L1",
    "mask_proportion": 0.15,
    "mask_consecutive_min": 7,
    "mask_consecutive_max": 7,
    "mask_allow_overlap": True,
    "mask_bucket_ratio": 1.5,
    "noise_proportion": 0.0,
}


def _fail(path: Any, message: str) -> CheckpointError:
    return CheckpointError(f"{path}: {message}")


def _section(parent: Any, key: str, where: str, path: Any) -> dict[str, Any]:
    if not isinstance(parent, dict) or not isinstance(parent.get(key), dict):
        raise _fail(path, f"missing config section '{where}{key}'")
    return parent[key]


def _get(section: dict[str, Any], key: str, where: str, path: Any) -> Any:
    if key not in section:
        raise _fail(path, f"config section '{where}' lacks '{key}'")
    return section[key]


def _tensors(obj: Any, name: str, path: Any) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise _fail(
            path, f"'{name}' must be a state_dict (a dict of tensors), found {type(obj).__name__}"
        )
    return dict(obj)


def _build(config_class: type, data: dict[str, Any], path: Any) -> dict[str, Any]:
    """Validate a config dict through its dataclass; return the dataclass's plain dict."""
    try:
        return to_dict(from_dict(config_class, data, where=f"{path} config"))
    except ValueError as err:
        raise _fail(path, f"invalid model config: {err}") from None


# --------------------------------------------------------------------------- front-ends


def _kaldi_options(args: dict[str, Any], path: Any, **forced: Any) -> dict[str, Any]:
    try:
        return to_dict(KaldiOptions.from_kaldi_args(args, sample_frequency=16000, **forced))
    except (ValueError, TypeError) as err:
        raise _fail(path, f"Kaldi feature options: {err}") from None


def front_end_from_audio(audio: dict[str, Any], path: Any) -> dict[str, Any]:
    """s3prl's Mockingjay-family ``audio`` section -> FrontEndConfig dict."""
    if "kaldi" in audio:
        kaldi = _section(audio, "kaldi", "audio.", path)
        kind = kaldi.get("feat_type", "fbank")
        if kind not in KALDI_ARGS:
            raise _fail(
                path, f"audio.kaldi.feat_type must be one of {sorted(KALDI_ARGS)}, found {kind!r}"
            )
        delta = audio.get("delta", {})  # s3prl: a missing section means 2 rounds, window 5
        use_cmvn = _get(_section(audio, "cmvn", "audio.", path), "use_cmvn", "audio.cmvn", path)
        return {
            "kind": kind,
            "kaldi": _kaldi_options(_section(kaldi, kind, "audio.kaldi.", path), path),
            "delta_order": int(delta.get("order", 2)),
            "delta_win_length": int(delta.get("win_length", 5)),
            "cmvn": bool(use_cmvn),
        }
    feat = _section(audio, "input", "audio.", path)
    feat_type = feat.get("feat_type")
    if feat_type not in ("mel", "linear"):
        raise _fail(path, f"audio.input.feat_type must be 'mel' or 'linear', found {feat_type!r}")
    try:
        stft = StftOptions(
            feat_type=feat_type,
            sample_rate=int(audio.get("sample_rate", 16000)),
            win_ms=float(audio.get("win_ms", 25)),
            hop_ms=float(audio.get("hop_ms", 10)),
            n_freq=int(audio.get("n_freq", 201)),
            n_mels=int(audio.get("n_mels", 40)),  # OnlinePreprocessor's default
            log=bool(feat.get("log", False)),
            target_level=float(_get(audio, "target_level", "audio", path)),
            eps=float(audio.get("eps", 1e-10)),
        )
    except (TypeError, ValueError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise _fail(path, f"audio: invalid on-the-fly feature options: {err}") from None
    return {
        "kind": "stft",
        "stft": to_dict(stft),
        "delta_order": int(feat.get("delta", 0)),
        "delta_win_length": 5,
        "cmvn": bool(feat.get("cmvn", False)),
    }


def front_end_from_data_audio(audio: dict[str, Any], path: Any) -> dict[str, Any]:
    """APC/NPC ``data.audio`` -> FrontEndConfig dict (Kaldi fbank, Hamming window, CMVN)."""
    rest = dict(audio)
    feat_type = rest.pop("feat_type", None)
    if feat_type != "fbank":
        raise _fail(path, f"data.audio.feat_type must be 'fbank', found {feat_type!r}")
    num_mel_bins = _get(rest, "feat_dim", "data.audio", path)
    rest.pop("feat_dim")
    rest.pop("decode_wav", None)
    use_cmvn = rest.pop("cmvn", True)
    kaldi = _kaldi_options(rest, path, num_mel_bins=int(num_mel_bins), window_type="hamming")
    return {
        "kind": "fbank",
        "kaldi": kaldi,
        "delta_order": 0,
        "delta_win_length": 5,
        "cmvn": bool(use_cmvn),
    }


# --------------------------------------------------------------------------- Mockingjay family


def _upstream_config(payload: dict[str, Any], path: Any) -> dict[str, Any]:
    """Legacy files keep the upstream config in ``Config``; newer ones in ``Upstream_Config``."""
    for key in ("Config", "Upstream_Config"):
        if isinstance(payload.get(key), dict) and isinstance(payload[key].get("transformer"), dict):
            return payload[key]
    raise _fail(
        path, "missing config section 'transformer' (looked in 'Config' and 'Upstream_Config')"
    )


def _mockingjay_state(
    state: dict[str, torch.Tensor], num_layers: int, shared: bool, path: Any
) -> dict[str, torch.Tensor]:
    """Old gamma/beta -> weight/bias; drop the duplicate names of pre-LN norms / shared layers."""
    state = {k.replace("gamma", "weight").replace("beta", "bias"): v for k, v in state.items()}
    out = {}
    for key, value in state.items():
        if not key.startswith("encoder.layer."):
            out[key] = value
            continue
        _, _, index, rest = key.split(".", 3)
        alias = next((a for a in PRE_LN_ALIASES if rest.startswith(a)), None)
        if alias is not None:  # a pre-LN alias: must equal the tensor it names
            _check_same(
                state,
                key,
                f"encoder.layer.{index}.{PRE_LN_ALIASES[alias]}{rest[len(alias) :]}",
                path,
            )
        elif shared and int(index) > 0:  # ALBERT: every listed copy is the one shared layer
            _check_same(state, key, f"encoder.layer.0.{rest}", path)
        elif int(index) >= num_layers:
            raise _fail(path, f"'{key}' names layer {index} but the config has {num_layers} layers")
        else:
            out[key] = value
    return out


def _check_same(state: dict[str, torch.Tensor], key: str, twin: str, path: Any) -> None:
    if (
        twin not in state
        or state[twin].shape != state[key].shape
        or not torch.equal(state[twin], state[key])
    ):
        raise _fail(
            path, f"'{key}' should hold the same tensor as '{twin}' (shared/aliased weights)"
        )


def mockingjay_family(transformer: dict[str, Any], task: dict[str, Any]) -> str:
    """audio_albert for shared layers; tera when pre-trained with frequency masking or noise."""
    if bool(transformer.get("share_layer", False)):
        return "audio_albert"
    alters = (
        float(task.get("mask_frequency", 0) or 0) > 0
        or float(task.get("noise_proportion", 0) or 0) > 0
    )
    return "tera" if alters else "mockingjay"


def read_mockingjay(payload: dict[str, Any], path: str | os.PathLike) -> NativeCheckpoint:
    """An s3prl Mockingjay / TERA / Audio ALBERT checkpoint -> :class:`NativeCheckpoint`.

    Raises:
        CheckpointError: a missing/invalid config section or weights that do not fit it.
    """
    from speechrep.upstream.mockingjay import MockingjayConfig

    upstream = _upstream_config(payload, path)
    t = upstream["transformer"]
    task = upstream.get("task") if isinstance(upstream.get("task"), dict) else {}
    if "audio" not in upstream:
        raise _fail(
            path,
            "missing config section 'audio': the upstream computes its own features "
            "(files for pre-extracted features are not supported)",
        )
    fields = {
        "hidden_size": "hidden_size",
        "num_layers": "num_hidden_layers",
        "num_heads": "num_attention_heads",
        "intermediate_size": "intermediate_size",
        "activation": "hidden_act",
        "hidden_dropout": "hidden_dropout_prob",
        "attention_dropout": "attention_probs_dropout_prob",
        "initializer_range": "initializer_range",
        "layer_norm_eps": "layer_norm_eps",
        "share_layers": "share_layer",
        "pre_layer_norm": "pre_layer_norm",
    }
    data: dict[str, Any] = {
        ours: _get(t, theirs, "transformer", path) for ours, theirs in fields.items()
    }
    data["max_frames"] = int(task.get("sequence_length", 0) or 0)
    data["features"] = front_end_from_audio(_section(upstream, "audio", "", path), path)
    config = _build(MockingjayConfig, data, path)
    state = _mockingjay_state(
        _tensors(payload.get("Transformer"), "Transformer", path),
        config["num_layers"],
        config["share_layers"],
        path,
    )
    extra: dict[str, Any] = {"task": task, "target": upstream["audio"].get("target")}
    if isinstance(payload.get("SpecHead"), dict):
        extra["SpecHead"] = _tensors(payload["SpecHead"], "SpecHead", path)
    return NativeCheckpoint(
        mockingjay_family(t, task),
        config,
        rename_keys(state, MOCKINGJAY_RULES, where=str(path)),
        str(path),
        extra,
    )


# --------------------------------------------------------------------------- APC / VQ-APC / NPC

_APC_PARAS = {
    "num_layers": "num_layers",
    "hidden_size": "hidden_size",
    "dropout": "dropout",
    "residual": "residual",
}
_NPC_PARAS = {
    "hidden_size": "hidden_size",
    "num_blocks": "n_blocks",
    "kernel_size": "kernel_size",
    "mask_size": "mask_size",
    "dropout": "dropout",
    "residual": "residual",
    "batch_norm": "batch_norm",
    "activation": "activate",
    "disable_cross_layer": "disable_cross_layer",
    "bottleneck_size": "dim_bottleneck",
}
_NPC_REQUIRED = ("hidden_size", "n_blocks", "kernel_size", "mask_size", "dropout", "residual")


def _vq_from_paras(vq: Any, path: Any) -> dict[str, Any] | None:
    if vq is None:
        return None
    if not isinstance(vq, dict):
        raise _fail(path, f"model.paras.vq must be a mapping, found {type(vq).__name__}")
    return {
        "codebook_sizes": list(_get(vq, "codebook_size", "model.paras.vq", path)),
        "code_dims": list(_get(vq, "code_dim", "model.paras.vq", path)),
        "temperature": float(_get(vq, "gumbel_temperature", "model.paras.vq", path)),
    }


def read_apc_npc(payload: dict[str, Any], path: str | os.PathLike) -> NativeCheckpoint:
    """An s3prl APC / VQ-APC / NPC file (``config`` + ``model``) -> :class:`NativeCheckpoint`."""
    from speechrep.upstream.apc import ApcConfig
    from speechrep.upstream.npc import NpcConfig

    config = payload["config"]
    paras = dict(_section(_section(config, "model", "", path), "paras", "model.", path))
    features = front_end_from_data_audio(
        _section(_section(config, "data", "", path), "audio", "data.", path), path
    )
    vq = _vq_from_paras(paras.pop("vq", None), path)
    if "n_blocks" in paras or "kernel_size" in paras:
        family, config_class, names, rules = "npc", NpcConfig, _NPC_PARAS, NPC_RULES
        for key in _NPC_REQUIRED:
            _get(paras, key, "model.paras", path)
    else:
        family, config_class, names, rules = (
            ("vq_apc" if vq else "apc"),
            ApcConfig,
            _APC_PARAS,
            APC_RULES,
        )
        for key in _APC_PARAS.values():
            _get(paras, key, "model.paras", path)
    theirs = {v: k for k, v in names.items()}
    unknown = sorted(set(paras) - set(theirs))
    if unknown:
        raise _fail(
            path, f"model.paras has unknown key(s) {unknown}; known: {sorted(theirs) + ['vq']}"
        )
    data = {theirs[k]: v for k, v in paras.items()} | {"vq": vq, "features": features}
    native_config = _build(config_class, data, path)
    state = rename_keys(_tensors(payload.get("model"), "model", path), rules, where=str(path))
    extra = {"task": config["task"]} if isinstance(config.get("task"), dict) else {}
    return NativeCheckpoint(family, native_config, state, str(path), extra)
