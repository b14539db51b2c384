"""Padding a list of waveforms into a batch with exact lengths."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def pad_batch(
    wavs: Sequence[np.ndarray | torch.Tensor], pad_value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D waveforms.

    Returns:
        ``(wavs (B, S_max) float32, wav_lens (B,) int64 samples)``.

    Example:
        >>> w, n = pad_batch([np.ones(3, np.float32), np.ones(5, np.float32)])
        >>> w.shape, n.tolist()
        (torch.Size([2, 5]), [3, 5])
    """
    if len(wavs) == 0:
        raise ValueError("pad_batch needs at least one waveform")
    tensors = [torch.as_tensor(np.asarray(w) if not torch.is_tensor(w) else w, dtype=torch.float32) for w in wavs]
    for i, t in enumerate(tensors):
        if t.dim() != 1:
            raise ValueError(f"waveform {i}: expected shape (S,), found {tuple(t.shape)}")
    lens = torch.tensor([t.numel() for t in tensors], dtype=torch.long)
    out = torch.full((len(tensors), int(lens.max())), pad_value, dtype=torch.float32)
    for i, t in enumerate(tensors):
        out[i, : t.numel()] = t
    return out, lens


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool mask, True on valid positions."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
