import pytest
import torch
from torch import nn

from speechrep.train.optim import OptimConfig, build_optimizer, build_scheduler, lr_factor


def s3prl_warmup_linear(update: int, warmup: float, total: int) -> float:
    """s3prl's WarmupLinearSchedule, written from its formula: progress x = step / t_total
    with a 1-based step; x < warmup: x / warmup, else max((x - 1) / (warmup - 1), 0)."""
    x = (update + 1) / total
    return x / warmup if x < warmup else max((x - 1.0) / (warmup - 1.0), 0.0)


@pytest.mark.parametrize("total", [100, 37])
def test_linear_schedule_matches_s3prl_formula(total):
    config = OptimConfig(warmup_proportion=0.1)
    model = nn.Linear(2, 2)
    opt = build_optimizer(model, config)
    sched = build_scheduler(opt, config, total)
    ours, theirs = [], []
    for step in range(total):
        ours.append(opt.param_groups[0]["lr"] / config.lr)
        theirs.append(s3prl_warmup_linear(step, 0.1, total))
        opt.step()
        sched.step()
    assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) < 1e-9
    shifted = [s3prl_warmup_linear(s + 1, 0.1, total) for s in range(total)]  # off by one update
    assert max(abs(a - b) for a, b in zip(ours, shifted, strict=True)) > 1e-3


def test_constant_schedule_and_warmup_steps():
    assert [lr_factor(s, 0, 10, "constant") for s in range(3)] == [1.0, 1.0, 1.0]
    assert [lr_factor(s, 4, 10, "constant") for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert lr_factor(9, 2, 10, "linear") == 0.0


def test_no_weight_decay_on_bias_and_norm():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    opt = build_optimizer(model, OptimConfig(weight_decay=0.01))
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.01 and [p.shape for p in decayed["params"]] == [
        torch.Size([4, 3])
    ]
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 3
    assert isinstance(opt, torch.optim.AdamW)
    assert type(build_optimizer(model, OptimConfig(name="adam"))) is torch.optim.Adam


@pytest.mark.parametrize(
    "bad", [{"name": "sgd"}, {"schedule": "cosine"}, {"lr": 0.0}, {"warmup_proportion": 1.5}]
)
def test_bad_optim_config_raises(bad):
    with pytest.raises(ValueError, match="optim"):
        OptimConfig(**bad)
