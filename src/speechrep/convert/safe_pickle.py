"""Loading pickled checkpoints without running pickled code.

``torch.load`` gets our own unpickler: tensors, plain containers and a short allow-list of
config classes come out; every other global is refused with its name. The config classes
(argparse.Namespace, omegaconf containers, fairseq's Dictionary, old optimizer objects) are
rebuilt as inert stand-ins and turned into plain dicts/lists by :func:`to_plain`.
"""

from __future__ import annotations

import collections
import os
import pickle
import typing
import zipfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: the message names the file and the problem."""


class StandIn:
    """An inert object for an allow-listed class: it only stores the pickled state."""

    qualname = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.qualname} stand-in>"


def _stand_in(qualname: str) -> type:
    return type(qualname.rsplit(".", 1)[-1], (StandIn,), {"qualname": qualname})


# Classes that real checkpoints pickle next to the weights. None of them run code here.
_STAND_INS = {
    name: _stand_in(name)
    for name in (
        "argparse.Namespace",
        "omegaconf.dictconfig.DictConfig",
        "omegaconf.listconfig.ListConfig",
        "omegaconf.base.ContainerMetadata",
        "omegaconf.base.Metadata",
        "omegaconf.nodes.AnyNode",
        "omegaconf.nodes.StringNode",
        "omegaconf.nodes.IntegerNode",
        "omegaconf.nodes.FloatNode",
        "omegaconf.nodes.BooleanNode",
        "omegaconf.nodes.EnumNode",
        "omegaconf.nodes.ValueNode",
        "fairseq.data.dictionary.Dictionary",
        "enum.Enum",
    )
}
# Module prefixes whose classes are optimizer/scheduler objects in very old s3prl files.
_STAND_IN_MODULES = ("optimizers", "s3prl.optimizers", "fairseq.dataclass.constants")

_SAFE_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "set"): set,
    ("builtins", "tuple"): tuple,
    ("builtins", "int"): int,
    ("builtins", "float"): float,
    ("builtins", "str"): str,
    ("builtins", "bool"): bool,
    ("builtins", "bytes"): bytes,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("typing", "Any"): typing.Any,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch", "Size"): torch.Size,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("numpy.core.multiarray", "scalar"): None,  # filled lazily below (numpy scalars in old metrics)
    ("numpy", "dtype"): None,
}


def _numpy_global(module: str, name: str) -> Any:
    import numpy as np

    if (module, name) == ("numpy", "dtype"):
        return np.dtype
    return np.core.multiarray.scalar if hasattr(np, "core") else np._core.multiarray.scalar


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # protocol 2 writes Python 2 names for builtins
            module, name = "builtins", {"long": "int", "unicode": "str"}.get(name, name)
        key = (module, name)
        if key in _SAFE_GLOBALS:
            found = _SAFE_GLOBALS[key]
            return found if found is not None else _numpy_global(module, name)
        if module.startswith("torch") and name.endswith("Storage"):
            return getattr(torch, name)  # typed storages, e.g. torch.FloatStorage
        if module == "torch" and name in {"float32", "float16", "bfloat16", "float64", "int64", "int32"}:
            return getattr(torch, name)
        qualname = f"{module}.{name}"
        if qualname in _STAND_INS:
            return _STAND_INS[qualname]
        if module in _STAND_IN_MODULES or module.startswith(tuple(m + "." for m in _STAND_IN_MODULES)):
            return _stand_in(qualname)
        raise pickle.UnpicklingError(
            f"refusing to load global '{qualname}': it is not a tensor, container or known config class"
        )


class _PickleModule:
    """What ``torch.load(pickle_module=...)`` needs: an Unpickler and ``load``."""

    Unpickler = _RestrictedUnpickler
    __name__ = "speechrep_safe_pickle"

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return _RestrictedUnpickler(file, **kwargs).load()


def safe_load(path: str | os.PathLike) -> Any:
    """Read a ``torch.save`` file on CPU through the restricted unpickler; return plain data.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: truncated/corrupt file or a pickled global outside the allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: checkpoint file is empty")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_PickleModule)
    except pickle.UnpicklingError as err:
        if str(err).startswith("refusing"):
            raise CheckpointError(f"{path}: {err}") from None
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {err}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as err:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {err}"
        ) from None
    return to_plain(obj)


def to_plain(obj: Any) -> Any:
    """Stand-ins -> dicts/lists; omegaconf nodes -> their values; OrderedDict kept for state_dicts."""
    if isinstance(obj, StandIn):
        return _plain_stand_in(obj)
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, to_plain(v)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj) if isinstance(obj, list) else tuple(to_plain(v) for v in obj)
    return obj


def _plain_stand_in(obj: StandIn) -> Any:
    name = obj.qualname
    state = obj.state
    if name.startswith("omegaconf."):
        # DictConfig/ListConfig keep their children in ``_content``; leaf nodes in ``_val``.
        if isinstance(state, dict) and "_content" in state:
            return to_plain(state["_content"])
        if isinstance(state, dict) and "_val" in state:
            return to_plain(state["_val"])
        return None
    if isinstance(state, dict):
        return {k: to_plain(v) for k, v in state.items()}
    if state is None and obj.args:
        return to_plain(list(obj.args))
    return to_plain(state)
