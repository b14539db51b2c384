"""Training checkpoints: everything needed to continue a run bit for bit.

A checkpoint is a plain dict of tensors and plain data (read back with ``weights_only=True``,
so loading one never runs pickled code): model, optimizer, scheduler and grad-scaler state,
the step/epoch/batch position and the python/numpy/torch RNG states of every rank.
``last.pt`` is rewritten at every save; ``step_<N>.pt`` copies are kept ``keep`` deep.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechrep.fileio import torch_save_atomic

LAST = "last.pt"
BEST = "best.pt"
_PERIODIC = re.compile(r"step_(\d+)\.pt")


def rng_state() -> dict[str, Any]:
    """The global RNG states (python, numpy, torch CPU and CUDA) as plain data + tensors."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": npy["bit_generator"],
            "state": {"key": npy["key"].numpy().astype(np.uint32), "pos": npy["pos"]},
            "has_gauss": npy["has_gauss"],
            "gauss": npy["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training checkpoint written by :class:`CheckpointManager` (safe: weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated file, foreign pickle: name the file, no traceback
        raise ValueError(f"{path}: unreadable training checkpoint ({err})") from None


class CheckpointManager:
    """Writes ``last.pt`` atomically and keeps the newest ``keep`` periodic copies.

    Example:
        >>> manager = CheckpointManager("exp/checkpoints", keep=2)  # doctest: +SKIP
        >>> manager.save({"step": 10, ...}, step=10, periodic=True)  # doctest: +SKIP
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 5) -> None:
        self.directory = Path(directory)
        self.keep = keep

    @property
    def last(self) -> Path:
        return self.directory / LAST

    def exists(self) -> bool:
        return self.last.is_file()

    def save(self, state: dict[str, Any], step: int, periodic: bool = False) -> Path:
        torch_save_atomic(state, self.last)
        if periodic and self.keep > 0:
            target = self.directory / f"step_{step:08d}.pt"
            _link_or_copy(self.last, target)
            self._prune()
        return self.last

    def save_best(self, state: dict[str, Any]) -> Path:
        torch_save_atomic(state, self.directory / BEST)
        return self.directory / BEST

    def periodic(self) -> list[Path]:
        found = [
            (int(m.group(1)), p)
            for p in self.directory.glob("step_*.pt")
            if (m := _PERIODIC.fullmatch(p.name))
        ]
        return [p for _, p in sorted(found)]

    def _prune(self) -> None:
        for old in self.periodic()[: -self.keep]:
            old.unlink(missing_ok=True)


def _link_or_copy(source: Path, target: Path) -> None:
    # A hard link shares the bytes just written; last.pt is later replaced by rename, not edited.
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
