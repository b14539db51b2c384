"""Stacked unidirectional GRUs with residual connections (APC, VQ-APC)."""

from __future__ import annotations

import torch
from torch import nn


class ResidualGRUStack(nn.Module):
    """``num_layers`` single-layer GRUs; layer i > 0 adds its input to its output when ``residual``.

    Every GRU is causal (left to right), so a valid frame never depends on the padding that
    follows it: a padded batch gives each utterance's own outputs on its valid frames without
    packing. Frames past each length are set to 0 in the outputs.

    Args:
        input_size: features per input frame.
        hidden_size: GRU size of every layer.
        num_layers: how many GRUs.
        dropout: applied to every layer's output (before the residual), in training only.
        residual: add each layer's input to its output for layers 1.. (sizes match there).
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int, dropout: float, residual: bool
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, found {num_layers}")
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.GRU(size, hidden_size, batch_first=True) for size in sizes)
        self.dropout = nn.Dropout(dropout)
        self.residual = residual

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """x (B, T, input_size), lengths (B,) frames -> one (B, T, hidden_size) output per layer."""
        valid = (
            torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
        )[..., None]
        outputs = []
        for i, gru in enumerate(self.layers):
            y = self.dropout(gru(x)[0])
            if self.residual and i > 0:
                y = y + x
            x = y.masked_fill(~valid, 0.0)
            outputs.append(x)
        return outputs
