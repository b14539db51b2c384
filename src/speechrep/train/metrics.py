"""Run logs: one JSON object per line in ``metrics.jsonl`` and, when the optional
``tensorboard`` package is installed, the same scalars as TensorBoard events."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Append scalars to ``<expdir>/metrics.jsonl`` (+ TensorBoard under ``<expdir>/tb``).

    A disabled logger (DDP ranks other than 0) does nothing.

    Example:
        >>> log = MetricsLogger("exp")  # doctest: +SKIP
        >>> log.log(10, {"loss": 0.5, "lr": 1e-4}, split="train")  # doctest: +SKIP
    """

    def __init__(
        self,
        expdir: str | os.PathLike,
        enabled: bool = True,
        tensorboard: bool = True,
        resume_step: int = 0,
    ) -> None:
        self.enabled = enabled
        self.path = Path(expdir) / "metrics.jsonl"
        self._writer = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._truncate(resume_step)
            if tensorboard:
                self._writer = _tensorboard_writer(Path(expdir) / "tb", resume_step)

    def _truncate(self, step: int) -> None:
        """Drop records past ``step``: a resumed run logs those steps again."""
        if not self.path.is_file():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
        if len(kept) != len(lines):
            from speechrep.fileio import write_text_atomic

            write_text_atomic(self.path, "".join(kept))

    def log(self, step: int, values: dict[str, Any], split: str = "train") -> None:
        if not self.enabled:
            return
        record = {"step": step, "split": split, **{k: _plain(v) for k, v in values.items()}}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self._writer.add_scalar(f"{split}/{key}", value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_metrics(path: str | os.PathLike, split: str | None = "train") -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (optionally one split only)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return [r for r in records if split is None or r.get("split") == split]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Inf
    return value


def _tensorboard_writer(logdir: Path, resume_step: int) -> Any:
    try:  # optional extra: skip quietly when tensorboard is not installed
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    # purge_step hides events a killed run wrote past its last checkpoint
    return SummaryWriter(log_dir=str(logdir), purge_step=resume_step or None)
