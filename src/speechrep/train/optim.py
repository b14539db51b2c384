"""Optimizer and learning-rate schedule from a config.

s3prl's ``AdamW_with_schedule`` is AdamW with weight decay 0.01 on every weight except biases
and LayerNorm parameters, a linear warm-up over ``warmup_proportion`` of the updates and a
linear decay to 0; its ``Adam`` is plain Adam at a constant rate. Both are expressible here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("linear", "constant")


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer + schedule. Defaults are s3prl's ``AdamW_with_schedule``."""

    name: str = "adamw"  # s3prl: optimizer.name (AdamW_with_schedule -> adamw, Adam -> adam)
    lr: float = 2.0e-4  # s3prl: optimizer.lr (peak rate after warm-up)
    betas: tuple[float, float] = (0.9, 0.999)  # s3prl: optimizer.betas
    eps: float = 1.0e-8  # s3prl: optimizer.eps
    weight_decay: float = 0.01  # s3prl: get_grouped_parameters (0.01, none on bias/LayerNorm)
    decay_norm_and_bias: bool = False  # True also decays biases and normalisation weights
    schedule: str = "linear"  # linear warm-up then linear decay to 0 | constant after warm-up
    warmup_proportion: float = 0.07  # s3prl: optimizer.warmup_proportion (of all updates)
    warmup_steps: int = 0  # > 0 overrides warmup_proportion

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optim.name must be one of {list(OPTIMIZERS)}, found {self.name!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"optim.schedule must be one of {list(SCHEDULES)}, found {self.schedule!r}"
            )
        if self.lr <= 0 or not 0.0 <= self.warmup_proportion < 1.0 or self.warmup_steps < 0:
            raise ValueError(
                f"optim: need lr > 0, 0 <= warmup_proportion < 1 and warmup_steps >= 0, found "
                f"lr={self.lr}, warmup_proportion={self.warmup_proportion}, "
                f"warmup_steps={self.warmup_steps}"
            )


def _no_decay(name: str, param: nn.Parameter) -> bool:
    # 1-D tensors are biases and normalisation scales/shifts (s3prl matches 'bias'/'LayerNorm').
    return param.dim() <= 1 or name.endswith(".bias") or "LayerNorm" in name or "layer_norm" in name


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """The optimizer over ``model``'s trainable parameters (two groups: decayed / not)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable parameters")
    if config.decay_norm_and_bias or config.weight_decay == 0:
        groups = [{"params": [p for _, p in named], "weight_decay": config.weight_decay}]
    else:
        groups = [
            {
                "params": [p for n, p in named if not _no_decay(n, p)],
                "weight_decay": config.weight_decay,
            },
            {"params": [p for n, p in named if _no_decay(n, p)], "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
    cls = torch.optim.AdamW if config.name == "adamw" else torch.optim.Adam
    return cls(groups, lr=config.lr, betas=tuple(config.betas), eps=config.eps)


def warmup_steps(config: OptimConfig, total_steps: int) -> float:
    """Warm-up length in updates; fractional, as s3prl compares progress with the proportion."""
    return (
        float(config.warmup_steps)
        if config.warmup_steps > 0
        else config.warmup_proportion * total_steps
    )


def lr_factor(step: int, warmup: float, total_steps: int, schedule: str) -> float:
    """Multiplier of the peak rate for update ``step`` (0-based): ``(step + 1) / warmup`` while
    ``step + 1 < warmup``, then 1 (constant) or a linear decay reaching 0 at the last update.

    Example:
        >>> [round(lr_factor(s, 2, 6, "linear"), 2) for s in range(6)]
        [0.5, 1.0, 0.75, 0.5, 0.25, 0.0]
    """
    if step + 1 < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    return max(0.0, (total_steps - step - 1) / max(1.0, total_steps - warmup))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-update schedule (call ``scheduler.step()`` after each ``optimizer.step()``)."""
    warmup = warmup_steps(config, total_steps)

    def factor(step: int) -> float:
        return lr_factor(step, warmup, total_steps, config.schedule)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
