"""speechrep's own checkpoint format: a folder with ``config.json`` + ``model.safetensors``.

Loading it never unpickles anything. Every reader of a foreign format produces a
:class:`NativeCheckpoint`; ``speechrep convert`` writes it to disk with :func:`save_native`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from speechrep.convert.safe_pickle import CheckpointError

FORMAT_NAME = "speechrep-upstream"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
EXTRA_WEIGHTS_FILE = "extra.safetensors"  # tensors of ``extra`` (e.g. a pretraining head)


@dataclass
class NativeCheckpoint:
    """A model in speechrep's terms: family name, config dict (the family's dataclass fields)
    and a state_dict with speechrep's own key names."""

    family: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def is_native_dir(path: str | os.PathLike) -> bool:
    path = Path(path)
    if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        return False
    try:
        return json.loads((path / CONFIG_FILE).read_text()).get("format") == FORMAT_NAME
    except (ValueError, OSError):
        return False


def save_native(ckpt: NativeCheckpoint, out_dir: str | os.PathLike) -> Path:
    """Write ``out_dir/config.json`` + ``out_dir/model.safetensors`` atomically (whole folder).

    ``ckpt.extra`` is kept: its dicts of tensors in ``extra.safetensors``, the rest (JSON data)
    under ``"extra"`` in config.json.
    """
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        extra_json, extra_tensors = _split_extra(ckpt.extra)
        meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "family": ckpt.family,
                "config": ckpt.config, "source": ckpt.source, "extra": extra_json}
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        tensors = {k: v.detach().contiguous().clone() for k, v in ckpt.state_dict.items()}
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
        if extra_tensors:
            save_file(extra_tensors, str(tmp / EXTRA_WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out_dir


def read_native(path: str | os.PathLike) -> NativeCheckpoint:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        meta = json.loads((path / CONFIG_FILE).read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path / CONFIG_FILE}: unreadable speechrep config ({err})") from None
    for key in ("family", "config"):
        if key not in meta:
            raise CheckpointError(f"{path / CONFIG_FILE}: missing '{key}'")
    try:
        state = load_file(str(path / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path / WEIGHTS_FILE}: unreadable safetensors file ({err})") from None
    extra = dict(meta.get("extra") or {})
    if (path / EXTRA_WEIGHTS_FILE).is_file():
        try:
            tensors = load_file(str(path / EXTRA_WEIGHTS_FILE))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(
                f"{path / EXTRA_WEIGHTS_FILE}: unreadable safetensors file ({err})"
            ) from None
        for key, value in tensors.items():
            group, _, name = key.partition("/")
            extra.setdefault(group, {})[name] = value
    return NativeCheckpoint(meta["family"], meta["config"], state, source=str(path), extra=extra)


def _split_extra(extra: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``extra`` -> (JSON part for config.json, tensors as ``group/name`` for safetensors).

    A dict of tensors (e.g. ``SpecHead``) goes to the tensors; anything else that is not JSON
    data is left out with a warning.
    """
    as_json, tensors = {}, {}
    for group, value in extra.items():
        if isinstance(value, dict) and value and all(torch.is_tensor(v) for v in value.values()):
            for name, tensor in value.items():
                tensors[f"{group}/{name}"] = tensor.detach().contiguous().clone()
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            warnings.warn(
                f"checkpoint extra '{group}' is neither JSON data nor a dict of tensors: "
                "not written",
                stacklevel=3,
            )
            continue
        as_json[group] = value
    return as_json, tensors
