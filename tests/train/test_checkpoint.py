import random

import numpy as np
import pytest
import torch

from speechrep.train.checkpoint import CheckpointManager, load_checkpoint, rng_state, set_rng_state


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_rng_state_roundtrip_through_a_safe_checkpoint(tmp_path):
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    manager = CheckpointManager(tmp_path)
    manager.save({"rng": rng_state()}, step=1)
    expected = draws()
    assert draws() != expected  # the generators moved on
    set_rng_state(load_checkpoint(manager.last)["rng"])  # weights_only load
    assert draws() == expected


def test_periodic_checkpoints_keep_the_newest(tmp_path):
    manager = CheckpointManager(tmp_path / "ckpt", keep=2)
    for step in (5, 10, 15, 20):
        manager.save({"step": step, "w": torch.full((2,), float(step))}, step, periodic=True)
    manager.save({"step": 22}, 22, periodic=False)
    assert [p.name for p in manager.periodic()] == ["step_00000015.pt", "step_00000020.pt"]
    assert load_checkpoint(manager.periodic()[-1])["w"].tolist() == [20.0, 20.0]
    assert load_checkpoint(manager.last)["step"] == 22


def test_unreadable_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="last.pt"):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
