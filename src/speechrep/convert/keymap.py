"""The one strict engine that renames checkpoint keys.

A rule table is data: an ordered list of ``(source regex, target template)``; the first
rule whose regex fully matches a key renames it (``\\1`` etc. refer to groups). A target of
``None`` drops the key, which is only allowed for keys a table lists as training-only.
Every source key must match a rule and every target key must be filled; shapes are checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch

Rule = tuple[str, str | None]


class KeyMapError(ValueError):
    """Checkpoint keys that do not fit the model: the message lists them."""


def _fmt(keys: Sequence[str], limit: int = 12) -> str:
    keys = sorted(keys)
    more = f" ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def rename_keys(
    state: Mapping[str, torch.Tensor], rules: Sequence[Rule], where: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """Apply ``rules`` to every key; raise on a key no rule knows or on two keys to one target."""
    compiled = [(re.compile(src), dst) for src, dst in rules]
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        for pattern, target in compiled:
            match = pattern.fullmatch(key)
            if match is None:
                continue
            if target is not None:
                new = match.expand(target)
                if new in out:
                    raise KeyMapError(f"{where}: keys map twice onto '{new}'")
                out[new] = value
            break
        else:
            unknown.append(key)
    if unknown:
        raise KeyMapError(f"{where}: unknown key(s): {_fmt(unknown)}")
    return out


def load_strict(
    module: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    where: str = "checkpoint",
    assign: bool = False,
) -> None:
    """Copy ``state`` into ``module``; every target filled, shapes equal, nothing left over.

    ``assign``: the module's tensors *become* ``state``'s (cast to the module's dtypes where they
    differ; a storage shared by several keys is copied per key), so a module built on the meta
    device is filled without a second copy of the weights.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing key(s): {_fmt(missing)}")
        if extra:
            parts.append(f"unexpected key(s): {_fmt(extra)}")
        raise KeyMapError(f"{where}: " + "; ".join(parts))
    bad = [
        f"{k} {tuple(state[k].shape)} (model expects {tuple(own[k].shape)})"
        for k in own
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if bad:
        raise KeyMapError(f"{where}: shape mismatch: {_fmt(bad, 6)}")
    if not assign:
        module.load_state_dict(dict(state), strict=True)
        return
    seen: set[int] = set()
    tensors = {}
    for key, value in state.items():
        value = value.to(own[key].dtype).contiguous()
        ptr = value.untyped_storage().data_ptr()
        tensors[key] = value.clone() if ptr in seen else value
        seen.add(ptr)
    module.load_state_dict(tensors, strict=True, assign=True)
