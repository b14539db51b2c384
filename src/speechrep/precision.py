"""Mixed precision on the CPU: whether bf16 runs natively, and the warning when it does not."""

from __future__ import annotations

import functools
import warnings

import torch


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when oneDNN has bf16 kernels for this CPU (AVX512-BF16 or AMX); True if unknown."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True  # unknown: do not warn


def warn_if_emulated_bf16(device: torch.device, precision: str, stacklevel: int = 2) -> None:
    """Warn that bf16 is slower than fp32 on a CPU without native bf16 instructions."""
    if device.type == "cpu" and precision == "bf16" and not cpu_has_native_bf16():
        warnings.warn(
            "bf16 on a CPU without native bf16 instructions is slower than fp32 "
            "(emulated); use fp32 here",
            stacklevel=stacklevel + 1,
        )
