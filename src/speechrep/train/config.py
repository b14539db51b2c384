"""What the training loop is given: how to train (``TrainConfig``), where batches come from
(``TrainData``), run-specific behaviour (``Hooks``), and which config changes a resumed run
tolerates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

PRECISION_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

# Settings that may change between a run and its resumption (they do not change the maths).
RESUMABLE_CHANGES = frozenset(
    {
        "train.total_steps",
        "train.epochs",
        "train.log_every",
        "train.save_every",
        "train.eval_every",
        "train.keep_checkpoints",
        "train.progress",
        "train.device",
        "data.num_workers",
        "train.activation_checkpointing",
    }
)


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Defaults follow s3prl's pretraining runner."""

    total_steps: int = 0  # s3prl: runner.total_steps (optimizer updates); 0 = derive from epochs
    epochs: int = 0  # s3prl: runner.n_epochs; used only when total_steps is 0
    grad_accum: int = 1  # s3prl: runner.gradient_accumulate_steps
    grad_clip: float = 5.0  # s3prl: runner.gradient_clipping (max global L2 norm; 0 = off)
    precision: str = "fp32"  # fp32 | bf16 | fp16 autocast (s3prl: runner.fp16)
    # Recompute activations in backward instead of storing them, in every module that has an
    # ``activation_checkpointing`` switch: none | attention | layers (see speechrep.nn.bert);
    # same maths, less memory, some extra compute.
    activation_checkpointing: str = "none"
    log_every: int = 50  # s3prl: runner.log_step (updates)
    save_every: int = 10000  # s3prl: runner.save_step (updates)
    keep_checkpoints: int = 5  # s3prl: runner.max_keep (periodic copies besides last.pt)
    eval_every: int = 0  # updates between evaluations (0 = only at the end, when there is one)
    seed: int = 1337  # s3prl: --seed
    device: str = "auto"  # auto | cpu | cuda
    find_unused_parameters: bool = False  # DDP: parameters without a gradient in some steps
    progress: bool = True  # tqdm progress bar on rank 0

    def __post_init__(self) -> None:
        if (self.total_steps > 0) == (self.epochs > 0):
            raise ValueError(
                f"train: set exactly one of total_steps or epochs (> 0), found "
                f"total_steps={self.total_steps}, epochs={self.epochs}"
            )
        if self.precision not in PRECISION_DTYPES:
            raise ValueError(
                f"train.precision must be one of {sorted(PRECISION_DTYPES)}, "
                f"found {self.precision!r}"
            )
        if self.activation_checkpointing not in ("none", "attention", "layers"):
            raise ValueError(
                "train.activation_checkpointing must be one of none, attention, layers, "
                f"found {self.activation_checkpointing!r}"
            )
        if self.grad_accum < 1 or self.log_every < 1 or self.save_every < 1:
            raise ValueError("train: grad_accum, log_every and save_every must be >= 1")


@dataclass
class TrainData:
    """Where batches come from.

    Attributes:
        dataset: ``dataset[key]`` -> one example, for each key a plan names.
        plan: ``plan(epoch)`` -> this rank's batches for that epoch, each a list of keys;
            deterministic in ``epoch``.
        collate: list of examples -> one batch (tensors are moved to the device by the loop).
        num_workers: DataLoader worker processes.
    """

    dataset: Dataset
    plan: Callable[[int], list[list[Any]]]
    collate: Callable[[list[Any]], Any]
    num_workers: int = 0


@dataclass
class Hooks:
    """Optional run-specific behaviour (all called on rank 0 only).

    Attributes:
        export: ``export(model, expdir)`` at every checkpoint (e.g. write ``upstream/``).
        evaluate: ``evaluate(model) -> metrics`` in eval mode under ``torch.no_grad``.
        best_metric / best_mode: which evaluate metric picks ``best.pt`` and whether
            ``min`` or ``max`` is better.
        results: extra entries for ``results.json``.
    """

    export: Callable[[nn.Module, Path], None] | None = None
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None
    best_metric: str | None = None
    best_mode: str = "min"
    results: dict[str, Any] = field(default_factory=dict)


def move_to(batch: Any, device: torch.device) -> Any:
    """Recursively move the tensors of a batch (dicts, lists, tuples, dataclasses) to ``device``."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    if hasattr(batch, "__dataclass_fields__"):
        return type(batch)(
            **{k: move_to(getattr(batch, k), device) for k in batch.__dataclass_fields__}
        )
    return batch


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        out.update(flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return out


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Keys (dotted) whose values differ between two resolved configs, minus harmless ones."""
    a, b = flatten(saved), flatten(current)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys]
