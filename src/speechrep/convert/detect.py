"""Which format is this checkpoint? Path in, :class:`NativeCheckpoint` out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from speechrep.convert.native import NativeCheckpoint, is_native_dir, read_native
from speechrep.convert.safe_pickle import CheckpointError, safe_load

SUPPORTED = (
    "speechrep native folder (config.json + model.safetensors); "
    "HuggingFace folder (config.json + model.safetensors/pytorch_model.bin); "
    "s3prl Mockingjay/TERA/Audio ALBERT (.ckpt with Transformer + Config); "
    "s3prl APC/VQ-APC/NPC (config + model); s3prl converted wav2vec2/HuBERT/data2vec "
    "(task_cfg + model_cfg + model_weight); s3prl DistilHuBERT (Distiller + Config); "
    "original WavLM (cfg + model); fairseq (cfg or args + model)"
)


def read_checkpoint(path: str | os.PathLike) -> NativeCheckpoint:
    """Read any supported checkpoint (file or folder) into speechrep's terms.

    Raises:
        FileNotFoundError: nothing at ``path``.
        CheckpointError: an unknown, truncated or inconsistent checkpoint (message names the file).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        return _read_dir(path)
    if path.suffix == ".safetensors" or path.name == "config.json":
        return _read_dir(path.parent)
    payload = safe_load(path)
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, found {type(payload).__name__}")
    return _read_payload(payload, path)


def _read_dir(path: Path) -> NativeCheckpoint:
    if is_native_dir(path):
        return read_native(path)
    if is_native_dir(path / "upstream"):  # a pretraining experiment directory
        return read_native(path / "upstream")
    from speechrep.convert import huggingface

    if huggingface.is_hf_dir(path):
        return huggingface.read_hf_dir(path)
    raise CheckpointError(f"{path}: folder is not a checkpoint; expected one of: {SUPPORTED}")


def _read_payload(payload: dict[str, Any], path: Path) -> NativeCheckpoint:
    from speechrep.convert import fairseq, s3prl

    keys = set(payload)
    if "Transformer" in keys and ("Upstream_Config" in keys or "Config" in keys):
        return s3prl.read_mockingjay(payload, path)
    if "Distiller" in keys:
        return fairseq.read_distiller(payload, path)
    if {"config", "model"} <= keys and isinstance(payload["config"], dict) and "model" in payload["config"]:
        return s3prl.read_apc_npc(payload, path)
    if {"task_cfg", "model_cfg", "model_weight"} <= keys:
        return fairseq.read_s3prl_converted(payload, path)
    if "model" in keys and ("cfg" in keys or "args" in keys):
        return fairseq.read_fairseq_or_wavlm(payload, path)
    raise CheckpointError(
        f"{path}: unknown checkpoint format (top-level keys: {sorted(map(str, keys))[:12]}); "
        f"expected one of: {SUPPORTED}"
    )
