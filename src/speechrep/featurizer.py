"""Softmax-weighted sum of an upstream's hidden states (SUPERB's featurizer)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from speechrep.upstream.base import UpstreamOutput


class Featurizer(nn.Module):
    """Combine the selected hidden layers into one feature sequence.

    Args:
        num_layers: how many hidden states the upstream returns (``up.num_layers``).
        layers: indices to use (negative counts from the end); None uses all.
        layer_norm: normalise each layer over its feature dim (no affine) before the sum.

    Example:
        >>> feat = Featurizer(3)
        >>> out = UpstreamOutput(tuple(torch.ones(2, 5, 4) * i for i in range(3)), torch.tensor([5, 3]))
        >>> x, n = feat(out)
        >>> x.shape, round(float(x[0, 0, 0]), 4), n.tolist()   # equal weights: mean of 0, 1, 2
        (torch.Size([2, 5, 4]), 1.0, [5, 3])
    """

    def __init__(self, num_layers: int, layers: Sequence[int] | None = None, layer_norm: bool = False) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, found {num_layers}")
        chosen = list(range(num_layers)) if layers is None else [int(i) for i in layers]
        for i in chosen:
            if not -num_layers <= i < num_layers:
                raise ValueError(f"layer {i} out of range for an upstream with {num_layers} hidden states")
        chosen = [i % num_layers for i in chosen]
        if len(set(chosen)) != len(chosen) or not chosen:
            raise ValueError(f"layers must be distinct and non-empty, found {list(layers or [])}")
        self.num_layers = num_layers
        self.layers = chosen
        self.layer_norm = layer_norm
        # Zero logits = equal weights at the start, as in SUPERB.
        self.weights = nn.Parameter(torch.zeros(len(chosen))) if len(chosen) > 1 else None

    def layer_weights(self) -> torch.Tensor:
        """(L,) probabilities over the selected layers."""
        if self.weights is None:
            return torch.ones(1)
        return F.softmax(self.weights, dim=0)

    def forward(self, out: UpstreamOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """UpstreamOutput -> ``(feats (B, T, D), lengths (B,))``."""
        if len(out.hidden_states) != self.num_layers:
            raise ValueError(
                f"featurizer built for {self.num_layers} hidden states, upstream gave {len(out.hidden_states)}"
            )
        states = [out.hidden_states[i] for i in self.layers]
        if self.layer_norm:
            states = [F.layer_norm(s, s.shape[-1:]) for s in states]
        if self.weights is None:
            return states[0], out.lengths
        stacked = torch.stack(states, dim=0)  # (L, B, T, D)
        weights = self.layer_weights().to(stacked.dtype)
        return torch.einsum("l,lbtd->btd", weights, stacked), out.lengths
