"""Name, path, URL or HuggingFace folder -> a ready :class:`Upstream`."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch

from speechrep.config import from_dict
from speechrep.convert.keymap import load_strict
from speechrep.convert.native import NativeCheckpoint
from speechrep.upstream.base import PRECISIONS, Upstream
from speechrep.upstream.download import fetch
from speechrep.upstream.registry import UPSTREAMS, UpstreamInfo, get_info

# family -> "module:Class". Families that share a class differ in their config/class attribute.
FAMILY_CLASSES: dict[str, str] = {
    "spectral": "speechrep.upstream.spectral:SpectralUpstream",
    "wav2vec2": "speechrep.upstream.wav2vec2:Wav2Vec2Upstream",
    "hubert": "speechrep.upstream.wav2vec2:HubertUpstream",
    "data2vec": "speechrep.upstream.wav2vec2:Data2VecUpstream",
    "wavlm": "speechrep.upstream.wavlm:WavLMUpstream",
    "distilhubert": "speechrep.upstream.distilhubert:DistilHubertUpstream",
    "mockingjay": "speechrep.upstream.mockingjay:MockingjayUpstream",
    "tera": "speechrep.upstream.mockingjay:TeraUpstream",
    "audio_albert": "speechrep.upstream.mockingjay:AudioAlbertUpstream",
    "apc": "speechrep.upstream.apc:ApcUpstream",
    "vq_apc": "speechrep.upstream.apc:VqApcUpstream",
    "npc": "speechrep.upstream.npc:NpcUpstream",
}

# Families a file may hold when the user asked for another (same architecture, other name).
COMPATIBLE_FAMILIES = {
    "wav2vec2": {"wav2vec2", "hubert", "data2vec"},
    "hubert": {"hubert", "wav2vec2"},
    "data2vec": {"data2vec"},
    "mockingjay": {"mockingjay", "tera", "audio_albert"},
    "tera": {"mockingjay", "tera", "audio_albert"},
    "audio_albert": {"mockingjay", "tera", "audio_albert"},
    "apc": {"apc", "vq_apc"},
    "vq_apc": {"apc", "vq_apc"},
}


def family_class(family: str) -> type[Upstream]:
    if family not in FAMILY_CLASSES:
        raise ValueError(f"unknown upstream family '{family}'; known: {sorted(FAMILY_CLASSES)}")
    module, cls = FAMILY_CLASSES[family].split(":")
    return getattr(importlib.import_module(module), cls)


def build_upstream(ckpt: NativeCheckpoint) -> Upstream:
    """Build the family's model from a config dict and load its weights strictly.

    The model is first built on the meta device and handed the checkpoint's tensors (no random
    initialisation, no second copy of the weights); a model that cannot be built that way (a
    tensor computed at construction, a non-persistent buffer, tied parameters) is built on the
    CPU and the weights are copied in. On the meta path the model's tensors *are*
    ``ckpt.state_dict``'s (cast where the dtype differs): pass tensors nothing else will modify.
    """
    cls = family_class(ckpt.family)
    config = from_dict(cls.config_class, ckpt.config, where=f"{ckpt.source or ckpt.family} config")
    where = ckpt.source or ckpt.family
    model = _build_on_meta(cls, config)
    if model is not None:
        load_strict(model, ckpt.state_dict, where=where, assign=True)
        if not any(t.is_meta for t in (*model.parameters(), *model.buffers())):
            return model
    model = cls(config)
    load_strict(model, ckpt.state_dict, where=where)
    return model


def _build_on_meta(cls: type[Upstream], config: object) -> Upstream | None:
    """``cls(config)`` with every tensor on the meta device, or None where that cannot work."""
    try:
        with torch.device("meta"):
            model = cls(config)
    except Exception:  # construction computes with tensor values: build it for real instead
        return None
    named = list(model.named_parameters(remove_duplicate=False))
    if len(named) != len({id(p) for _, p in named}):  # tied parameters: assign would untie them
        return None
    return model


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _read(path_or_url: str | os.PathLike, info: UpstreamInfo | None = None) -> NativeCheckpoint:
    from speechrep.convert.detect import read_checkpoint

    text = str(path_or_url)
    path = fetch(text, info.sha256 if info else None, info.name if info else None) if _is_url(text) else Path(text)
    return read_checkpoint(path)


def load_upstream(
    name_or_path: str | os.PathLike,
    ckpt: str | os.PathLike | None = None,
    *,
    precision: str = "fp32",
    device: str = "cpu",
    trainable: bool = False,
) -> Upstream:
    """Load an upstream by registered name, checkpoint path/URL or HuggingFace folder.

    Args:
        name_or_path: a name from :func:`list_upstreams`, a checkpoint file/folder, or a URL.
        ckpt: an explicit checkpoint for a registered name; it is never ignored and replaces
            the registered default. Its family must fit the name's family.
        precision: ``fp32`` (default), ``bf16`` or ``fp16`` autocast inside ``forward``.
        device: where to put the model.
        trainable: False (default) gives an eval-mode model with frozen parameters.

    Example:
        >>> up = load_upstream("fbank")
        >>> up.num_layers, up.hidden_size, up.downsample_rate
        (1, 240, 160)
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, found {precision!r}")
    name = str(name_or_path)
    if name in UPSTREAMS:
        info = get_info(name)
        if ckpt is not None:
            native = _read(ckpt)
            _check_family(info.family, native, str(ckpt))
        elif info.url is not None:
            native = _read(info.url, info)
        else:
            cls = family_class(info.family)
            model = cls(from_dict(cls.config_class, info.config, where=name))
            return _finish(model, precision, device, trainable)
        model = build_upstream(native)
    elif ckpt is not None:
        raise ValueError(f"unknown upstream '{name}' given with ckpt={ckpt}; use a registered name or family")
    elif _is_url(name) or Path(name).exists():
        model = build_upstream(_read(name))
    else:
        get_info(name)  # raises with suggestions
        raise AssertionError("unreachable")
    return _finish(model, precision, device, trainable)


def _check_family(expected: str, native: NativeCheckpoint, where: str) -> None:
    allowed = COMPATIBLE_FAMILIES.get(expected, {expected})
    if native.family not in allowed:
        raise ValueError(f"{where}: holds a '{native.family}' model, not a '{expected}' model")


def _finish(model: Upstream, precision: str, device: str, trainable: bool) -> Upstream:
    model.precision = precision
    model.to(device)
    model.train(trainable)
    model.requires_grad_(trainable)
    return model


def list_upstreams() -> list[UpstreamInfo]:
    """Every registered upstream, in registry order."""
    return list(UPSTREAMS.values())
