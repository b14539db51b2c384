"""The training loop on a toy regression model: logs, checkpoints, accumulation, exact resume."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from speechrep.train import (
    Hooks,
    OptimConfig,
    TrainConfig,
    TrainData,
    Trainer,
    load_checkpoint,
    read_metrics,
)
from speechrep.train.checkpoint import rng_state


class Points(Dataset):
    def __init__(self, n: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.01 * torch.randn(
            n, 1, generator=g
        )

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def collate(items):
    return {"x": torch.stack([x for x, _ in items]), "y": torch.stack([y for _, y in items])}


def shuffled_plan(n: int, batch: int):
    def plan(epoch: int) -> list[list[int]]:
        order = np.random.default_rng([7, epoch]).permutation(n).tolist()
        return [order[i : i + batch] for i in range(0, n, batch)]

    return plan


class Toy(nn.Module):
    def __init__(self, dropout: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1))
        self.poison_step: int | None = None
        self.calls = 0

    def forward(self, batch):
        self.calls += 1
        loss = (self.net(batch["x"]) - batch["y"]).pow(2).mean()
        if self.calls == self.poison_step:
            loss = loss * float("nan")
        return loss, {"num_examples": torch.tensor(len(batch["x"]))}


def make_trainer(
    expdir, *, steps=40, batch=8, accum=1, lr=5e-2, dropout=0.2, hooks=None, plan=None, **train
):
    torch.manual_seed(0)
    model = Toy(dropout)
    data = TrainData(Points(), plan or shuffled_plan(32, batch), collate)
    config = TrainConfig(
        total_steps=steps,
        grad_accum=accum,
        log_every=train.pop("log_every", 5),
        save_every=train.pop("save_every", 10),
        progress=False,
        device="cpu",
        **train,
    )
    optim = OptimConfig(lr=lr, warmup_proportion=0.1)
    run_config = {"train": {"total_steps": steps, "grad_accum": accum}, "optim": {"lr": lr}}
    return Trainer(model, data, config, optim, expdir, run_config=run_config, hooks=hooks)


def params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_fit_writes_the_run_directory(tmp_path):
    results = make_trainer(tmp_path, keep_checkpoints=2).fit()
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(5, 41, 5))
    assert {"loss", "lr", "grad_norm", "steps_per_s", "examples_per_s"} <= set(records[0])
    assert results["steps"] == 40 and results["last_loss"] < 0.2 * results["first_loss"]
    assert json.loads((tmp_path / "results.json").read_text())["steps"] == 40
    assert "total_steps: 40" in (tmp_path / "config.yaml").read_text()
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts == ["last.pt", "step_00000030.pt", "step_00000040.pt"]
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 40 and set(state["model"]) == {
        "net.0.weight",
        "net.0.bias",
        "net.3.weight",
        "net.3.bias",
    }


def test_gradient_accumulation_equals_one_big_batch(tmp_path):
    big = shuffled_plan(32, 8)

    def halves(epoch):
        return [b[i : i + 4] for b in big(epoch) for i in (0, 4)]

    one = make_trainer(tmp_path / "a", steps=12, dropout=0.0, plan=big)
    two = make_trainer(tmp_path / "b", steps=12, accum=2, dropout=0.0, plan=halves)
    one.fit(), two.fit()
    assert (params(one.model) - params(two.model)).abs().max() < 1e-6
    plain = make_trainer(tmp_path / "c", steps=12, dropout=0.0, plan=halves)  # no accumulation
    plain.fit()
    assert (params(one.model) - params(plain.model)).abs().max() > 1e-3


class Crash(RuntimeError):
    pass


def crash_at(step: int):
    def export(model, expdir):
        if load_checkpoint(expdir / "checkpoints" / "last.pt")["step"] == step:
            raise Crash(f"stopped after step {step}")

    return export


def test_resume_after_a_crash_is_exact(tmp_path):
    straight = make_trainer(tmp_path / "straight")
    straight.fit()
    with pytest.raises(Crash):
        make_trainer(tmp_path / "crashed", hooks=Hooks(export=crash_at(20))).fit()
    resumed = make_trainer(tmp_path / "crashed")
    resumed.fit()
    assert resumed.step == 40 and torch.equal(params(straight.model), params(resumed.model))
    steps = [r["step"] for r in read_metrics(tmp_path / "crashed" / "metrics.jsonl")]
    assert steps == list(range(5, 41, 5))

    # twin: the same resume with the RNG state swapped for another one must not match
    with pytest.raises(Crash):
        make_trainer(tmp_path / "other", hooks=Hooks(export=crash_at(20))).fit()
    last = tmp_path / "other" / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    torch.manual_seed(12345)
    state["rng"] = [rng_state()]
    torch.save(state, last)
    other = make_trainer(tmp_path / "other")
    other.fit()
    assert not torch.equal(params(straight.model), params(other.model))


def test_resume_with_another_config_is_refused(tmp_path):
    make_trainer(tmp_path, steps=10).fit()
    with pytest.raises(ValueError, match=r"optim\.lr: 0\.05 -> 0\.02"):
        make_trainer(tmp_path, steps=10, lr=2e-2).fit()
    longer = make_trainer(tmp_path, steps=20)  # a longer run may continue the same one
    assert longer.fit()["steps"] == 20


def test_evaluation_keeps_the_best_checkpoint(tmp_path):
    dev = Points(8)

    def evaluate(model):
        pred = model.net(dev.x)
        return {"dev_loss": float((pred - dev.y).pow(2).mean())}

    hooks = Hooks(evaluate=evaluate, best_metric="dev_loss", best_mode="min")
    results = make_trainer(tmp_path, steps=30, eval_every=10, hooks=hooks).fit()
    dev_records = read_metrics(tmp_path / "metrics.jsonl", split="dev")
    assert [r["step"] for r in dev_records] == [10, 20, 30]
    best = min(dev_records, key=lambda r: r["dev_loss"])
    assert results["best"]["step"] == best["step"]
    assert load_checkpoint(tmp_path / "checkpoints" / "best.pt")["step"] == best["step"]


def test_epochs_bf16_and_skipped_updates(tmp_path):
    trainer = make_trainer(tmp_path / "a", steps=0, epochs=2, precision="bf16")
    assert trainer.total_steps == 8  # 32 points / 8 per batch x 2 epochs
    assert np.isfinite(trainer.fit()["last_loss"])

    fp16 = make_trainer(tmp_path / "c", steps=6, precision="fp16")  # CPU fp16 + grad scaler
    results = fp16.fit()
    halvings = round(math.log2(65536.0 / fp16.scaler.get_scale()))  # one per overflowed step
    assert np.isfinite(results["last_loss"]) and results["skipped_updates"] == halvings > 0

    trainer = make_trainer(tmp_path / "b", steps=5, dropout=0.0)
    trainer.model.poison_step = 3
    before = []
    with pytest.warns(UserWarning, match="update skipped"):
        original = trainer._optimizer_step

        def record():
            before.append(params(trainer.model).clone())
            return original()

        trainer._optimizer_step = record
        results = trainer.fit()
    assert results["skipped_updates"] == 1
    assert torch.equal(before[2], before[3])  # update 3 changed nothing
    assert not torch.equal(before[1], before[2])


@pytest.mark.parametrize(
    "bad",
    [{"total_steps": 0}, {"total_steps": 5, "epochs": 2}, {"total_steps": 5, "precision": "fp8"}],
)
def test_bad_train_config_raises(bad):
    with pytest.raises(ValueError, match="train"):
        TrainConfig(**bad)
