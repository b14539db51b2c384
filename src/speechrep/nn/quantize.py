"""Gumbel-softmax vector quantisation (VQ-APC, NPC).

A code is picked from linear logits: the argmax at inference, a straight-through hard
Gumbel-softmax sample in training; the one-hot choice selects a row of the codebook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class VqConfig:
    """Grouped Gumbel VQ on the last features (VQ-APC, NPC)."""

    codebook_sizes: tuple[int, ...] = (128,)  # s3prl: vq.codebook_size
    code_dims: tuple[int, ...] = (512,)  # s3prl: vq.code_dim; they sum to the quantised features
    temperature: float = 0.5  # s3prl: vq.gumbel_temperature

    def __post_init__(self) -> None:
        if len(self.codebook_sizes) != len(self.code_dims) or not self.code_dims:
            raise ValueError(
                f"vq: codebook_sizes {list(self.codebook_sizes)} and code_dims "
                f"{list(self.code_dims)} "
                "must be non-empty lists of the same length"
            )


class VectorQuantizer(nn.Module):
    """One codebook.

    Args:
        input_size: features per frame going in.
        codebook_size: number of codes (C).
        code_dim: size of each code (E).
        temperature: Gumbel-softmax temperature used in training.  # s3prl: gumbel_temperature
    """

    def __init__(
        self, input_size: int, codebook_size: int, code_dim: int, temperature: float
    ) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.temperature = temperature
        self.logits = nn.Linear(input_size, codebook_size)  # s3prl: vq_logits
        self.codebook = nn.Linear(codebook_size, code_dim, bias=False)  # s3prl: codebook_CxE

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, I) -> (logits (B, T, C), one-hot choice (B, T, C), codes (B, T, E))."""
        logits = self.logits(x)
        if self.training:
            # Straight-through: forward is one-hot, gradient flows through the soft sample.
            onehot = F.gumbel_softmax(logits, tau=self.temperature, hard=True, dim=-1)
        else:
            onehot = F.one_hot(logits.argmax(dim=-1), self.codebook_size).to(logits.dtype)
        return logits, onehot, self.codebook(onehot)


class GroupVectorQuantizer(nn.Module):
    """Split the feature dim into groups and quantise each with its own codebook.

    Args:
        codebook_sizes: codes per group.   # s3prl: vq.codebook_size
        code_dims: features per group; they must sum to the input size.   # s3prl: vq.code_dim
        temperature: Gumbel-softmax temperature.   # s3prl: vq.gumbel_temperature
    """

    def __init__(
        self, codebook_sizes: Sequence[int], code_dims: Sequence[int], temperature: float
    ) -> None:
        super().__init__()
        VqConfig(tuple(codebook_sizes), tuple(code_dims), temperature)  # validates
        self.code_dims = [int(d) for d in code_dims]
        self.groups = nn.ModuleList(
            VectorQuantizer(d, c, d, temperature)
            for c, d in zip(codebook_sizes, code_dims, strict=True)
        )

    def forward(
        self, x: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """x (B, T, D = sum(code_dims)) -> (logits per group, one-hots, codes (B, T, D))."""
        if x.shape[-1] != sum(self.code_dims):
            raise ValueError(f"vq: expected {sum(self.code_dims)} features, found {x.shape[-1]}")
        outs = [
            q(part) for q, part in zip(self.groups, x.split(self.code_dims, dim=-1), strict=True)
        ]
        logits, onehots, codes = zip(*outs, strict=True)
        return list(logits), list(onehots), torch.cat(codes, dim=-1)


def code_perplexity(onehot: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """2 ** entropy (bits) of the mean code usage; onehot (B, T, C), mask (B, T) True on valid."""
    flat = onehot.reshape(-1, onehot.shape[-1]) if mask is None else onehot[mask]
    usage = flat.detach().float().mean(dim=0)
    return torch.exp2(-(usage * torch.log2(usage + 1e-10)).sum())
