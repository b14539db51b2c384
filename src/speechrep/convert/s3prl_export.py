"""speechrep native -> s3prl's own checkpoint layouts (the inverse of :mod:`.s3prl`).

:func:`export_s3prl` writes Mockingjay / TERA / Audio ALBERT files (``Transformer`` +
``Upstream_Config``) and APC / VQ-APC / NPC files (``config`` + ``model``) that s3prl's own
loaders read; the export rule tables live beside the import ones in :mod:`.s3prl`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from speechrep.audio.features import KaldiOptions
from speechrep.config import to_dict
from speechrep.convert.keymap import KeyMapError, rename_keys
from speechrep.convert.native import NativeCheckpoint
from speechrep.convert.s3prl import (
    _APC_PARAS,
    _KALDI_RENAMES,
    _NPC_PARAS,
    _TASK_DEFAULTS,
    APC_EXPORT_RULES,
    APC_FAMILIES,
    KALDI_ARGS,
    MOCKINGJAY_EXPORT_RULES,
    MOCKINGJAY_FAMILIES,
    NPC_EXPORT_RULES,
    PRE_LN_ALIASES,
)
from speechrep.fileio import torch_save_atomic

# --------------------------------------------------------------------------- front-end sections


def _kaldi_args(kind: str, kaldi: dict[str, Any], where: str) -> dict[str, Any]:
    """KaldiOptions dict -> torchaudio keyword arguments for s3prl (framing + non-default ones)."""
    if float(kaldi["sample_rate"]) != 16000:
        raise ValueError(
            f"{where}: s3prl computes Kaldi features at 16 kHz only, found {kaldi['sample_rate']}"
        )
    defaults = to_dict(KaldiOptions())
    keep = {"frame_length_ms", "frame_shift_ms", "num_mel_bins" if kind == "fbank" else "num_ceps"}
    args = {}
    for key, value in kaldi.items():
        if key in KALDI_ARGS[kind] and (key in keep or value != defaults[key]):
            args[_KALDI_RENAMES.get(key, key)] = value
    return args


def audio_from_front_end(
    features: dict[str, Any], where: str, target: Any = None
) -> dict[str, Any]:
    """FrontEndConfig dict -> s3prl's Mockingjay-family ``audio`` section."""
    kind = features["kind"]
    if kind != "stft":
        return {
            "kaldi": {"feat_type": kind, kind: _kaldi_args(kind, features["kaldi"], where)},
            "delta": {"order": features["delta_order"], "win_length": features["delta_win_length"]},
            "cmvn": {"use_cmvn": features["cmvn"]},
        }
    stft = features["stft"]
    if stft["target_level"] is None or features["delta_win_length"] != 5 or stft["eps"] != 1e-10:
        raise ValueError(
            f"{where}: s3prl's on-the-fly features always use a target_level, delta window 5 "
            "and eps 1e-10; this front-end cannot be written in s3prl's layout"
        )
    input_feat = {
        "feat_type": stft["feat_type"],
        "channel": 0,
        "log": stft["log"],
        "delta": features["delta_order"],
        "cmvn": features["cmvn"],
    }
    audio = {
        "target_level": stft["target_level"],
        "sample_rate": stft["sample_rate"],
        "win_ms": stft["win_ms"],
        "hop_ms": stft["hop_ms"],
        "n_freq": stft["n_freq"],
        "n_mels": stft["n_mels"],
        "input": input_feat,
    }
    if isinstance(target, dict):
        audio["target"] = target
    return audio


def data_audio_from_front_end(features: dict[str, Any], where: str) -> dict[str, Any]:
    """FrontEndConfig dict -> APC/NPC ``data.audio``."""
    kaldi = features.get("kaldi") or {}
    if (
        features["kind"] != "fbank"
        or kaldi.get("window_type") != "hamming"
        or features["delta_order"] != 0
    ):
        raise ValueError(
            f"{where}: s3prl's APC/NPC read Kaldi fbank with a Hamming window and no deltas; "
            f"found kind={features['kind']!r}, deltas={features['delta_order']}"
        )
    args = _kaldi_args("fbank", kaldi, where)
    args.pop("window_type")  # s3prl passes the Hamming window itself
    num_mel_bins = args.pop("num_mel_bins")
    return {
        "feat_type": "fbank",
        "feat_dim": num_mel_bins,
        **args,
        "decode_wav": False,
        "cmvn": features["cmvn"],
    }


# --------------------------------------------------------------------------- Mockingjay family


def _export_mockingjay(native: NativeCheckpoint, where: str) -> dict[str, Any]:
    c = native.config
    state = rename_keys(native.state_dict, MOCKINGJAY_EXPORT_RULES, where=where)
    layer_keys = [k for k in state if k.startswith("encoder.layer.")]
    if c["share_layers"]:  # s3prl lists the shared layer under every index
        for key in [k for k in layer_keys if k.startswith("encoder.layer.0.")]:
            for i in range(1, c["num_layers"]):
                state[key.replace("encoder.layer.0.", f"encoder.layer.{i}.", 1)] = state[key]
    if c["pre_layer_norm"]:  # s3prl lists each pre-LN norm under a second name
        for key in [k for k in state if k.startswith("encoder.layer.")]:
            _, _, index, rest = key.split(".", 3)
            for alias, name in PRE_LN_ALIASES.items():
                if rest.startswith(name):
                    state[f"encoder.layer.{index}.{alias}{rest[len(name) :]}"] = state[key]
    transformer = {
        "hidden_size": c["hidden_size"],
        "num_hidden_layers": c["num_layers"],
        "num_attention_heads": c["num_heads"],
        "intermediate_size": c["intermediate_size"],
        "hidden_act": c["activation"],
        "hidden_dropout_prob": c["hidden_dropout"],
        "attention_probs_dropout_prob": c["attention_dropout"],
        "initializer_range": c["initializer_range"],
        "layer_norm_eps": c["layer_norm_eps"],
        "share_layer": c["share_layers"],
        "pre_layer_norm": c["pre_layer_norm"],
        "input_dim": -1,
    }
    task = {
        **_TASK_DEFAULTS,
        "mask_frequency": 0.2 if native.family == "tera" else 0.0,
        **(native.extra.get("task") or {}),
        "sequence_length": c["max_frames"],
        "position_encoding_size": c["hidden_size"],
    }
    out = {
        "Transformer": state,
        "Config": {},
        "Step": 0,
        "Upstream_Config": {
            "transformer": transformer,
            "task": task,
            "audio": audio_from_front_end(c["features"], where, native.extra.get("target")),
        },
    }
    if isinstance(native.extra.get("SpecHead"), dict):
        out["SpecHead"] = native.extra["SpecHead"]
    return out


# --------------------------------------------------------------------------- APC / VQ-APC / NPC


def _export_apc_npc(native: NativeCheckpoint, where: str) -> dict[str, Any]:
    c = native.config
    names, rules = (
        (_NPC_PARAS, NPC_EXPORT_RULES) if native.family == "npc" else (_APC_PARAS, APC_EXPORT_RULES)
    )
    paras = {theirs: c[ours] for ours, theirs in names.items() if c.get(ours) is not None}
    if c.get("vq") is not None:
        vq = c["vq"]
        paras["vq"] = {
            "codebook_size": list(vq["codebook_sizes"]),
            "code_dim": list(vq["code_dims"]),
            "gumbel_temperature": vq["temperature"],
        }
    config: dict[str, Any] = {
        "model": {"paras": paras},
        "data": {"audio": data_audio_from_front_end(c["features"], where)},
    }
    if isinstance(native.extra.get("task"), dict):
        config["task"] = native.extra["task"]
    return {"config": config, "model": rename_keys(native.state_dict, rules, where=where)}


# --------------------------------------------------------------------------- writing


def export_s3prl(native: NativeCheckpoint, dst_path: str | os.PathLike) -> Path:
    """Write ``native`` as the checkpoint file s3prl's own loader reads (``torch.save``, atomic).

    Mockingjay / TERA / Audio ALBERT: ``Transformer``, ``Config``, ``Upstream_Config``, ``Step``
    (+ ``SpecHead`` when ``native.extra`` carries it). APC / VQ-APC / NPC: ``config`` + ``model``.
    The file holds only containers, numbers, strings and tensors (``weights_only`` loads it).

    Raises:
        ValueError: a family s3prl has no own layout for, or settings its layout cannot express.
    """
    where = f"{dst_path} (from {native.source or native.family})"
    try:
        if native.family in MOCKINGJAY_FAMILIES:
            payload = _export_mockingjay(native, where)
        elif native.family in (*APC_FAMILIES, "npc"):
            payload = _export_apc_npc(native, where)
        else:
            raise ValueError(
                f"{where}: s3prl has no own checkpoint layout for family '{native.family}'; "
                f"supported: {sorted((*MOCKINGJAY_FAMILIES, *APC_FAMILIES, 'npc'))}"
            )
    except KeyMapError as err:
        raise ValueError(
            f"{where}: weights do not fit the '{native.family}' layout: {err}"
        ) from None
    payload = _detach(payload)
    torch_save_atomic(payload, dst_path)
    return Path(dst_path)


def _detach(obj: Any, seen: dict[int, torch.Tensor] | None = None) -> Any:
    """Plain CPU copies; a tensor listed under several names stays one shared storage."""
    seen = {} if seen is None else seen
    if torch.is_tensor(obj):
        if id(obj) not in seen:
            seen[id(obj)] = obj.detach().cpu().contiguous().clone()
        return seen[id(obj)]
    if isinstance(obj, dict):
        return {k: _detach(v, seen) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_detach(v, seen) for v in obj]
    return obj
