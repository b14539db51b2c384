"""torch.hub entry points: one per registered upstream name.

Example:
    >>> import torch
    >>> up = torch.hub.load("path/to/speechrep", "fbank", source="local")  # doctest: +SKIP
    >>> up = torch.hub.load("path/to/speechrep", "hubert", source="local", ckpt="my.pt")  # doctest: +SKIP

Every name in ``speechrep.upstream.registry.UPSTREAMS`` is an entry point. torch.hub finds
entry points with ``dir(module)`` and ``getattr(module, name)``, so this module answers both
from the registry (``__dir__`` and ``__getattr__``) instead of defining one function per name.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

# Checked by torch.hub before an entry point is called (import names, not package names).
dependencies = ["torch", "numpy", "soundfile", "soxr", "safetensors", "yaml"]

if importlib.util.find_spec("speechrep") is None:  # a plain checkout, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from speechrep.upstream import Upstream, load_upstream  # noqa: E402
from speechrep.upstream.registry import UPSTREAMS  # noqa: E402


def _entry_point(name: str) -> Callable[..., Upstream]:
    info = UPSTREAMS[name]

    def load(
        ckpt: str | None = None,
        *,
        precision: str = "fp32",
        device: str = "cpu",
        trainable: bool = False,
    ) -> Upstream:
        return load_upstream(
            name, ckpt=ckpt, precision=precision, device=device, trainable=trainable
        )

    load.__name__ = load.__qualname__ = name
    load.__doc__ = (
        f"{info.description} (family '{info.family}').\n\n"
        "Args:\n"
        "    ckpt: a local checkpoint file/folder or URL replacing the registered weights.\n"
        "    precision: fp32 (default), bf16 or fp16 autocast.\n"
        "    device: where to put the model.\n"
        "    trainable: False (default) gives a frozen eval-mode model.\n"
    )
    return load


def __getattr__(name: str) -> Callable[..., Upstream]:
    if name in UPSTREAMS:
        return _entry_point(name)
    raise AttributeError(f"hubconf has no entry point '{name}'; known: {sorted(UPSTREAMS)}")


def __dir__() -> list[str]:
    return sorted(["dependencies", *UPSTREAMS])
