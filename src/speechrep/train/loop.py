"""The one training loop, shared by pretraining and the downstream tasks.

The model is any ``nn.Module`` whose ``forward(batch)`` returns ``(loss, logs)``: a scalar
loss tensor and a dict of scalars to log (keys starting with ``num_`` are counts: summed,
and turned into per-second rates). The loop owns everything else: device placement,
AMP autocast, gradient accumulation and clipping, the optimizer and its schedule,
JSONL/TensorBoard logs, a progress bar, evaluation with a ``best`` checkpoint, atomic
``last``/periodic checkpoints, exact resume and DDP (``torchrun``; rank 0 writes).

Data order is part of the resumable state: ``TrainData.plan(epoch)`` must return the
same batches for the same epoch every time (seeded by epoch), so a resumed run skips
exactly the batches already consumed.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from speechrep.fileio import write_json_atomic, write_text_atomic
from speechrep.precision import warn_if_emulated_bf16
from speechrep.train import distributed as D
from speechrep.train.checkpoint import (
    CheckpointManager,
    load_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
)
from speechrep.train.config import (
    PRECISION_DTYPES,
    Hooks,
    TrainConfig,
    TrainData,
    config_differences,
    move_to,
)
from speechrep.train.metrics import MetricsLogger
from speechrep.train.optim import OptimConfig, build_optimizer, build_scheduler


class _Window:
    """Running sums of logged scalars between two log points."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.updates = 0
        self.start = time.perf_counter()

    def add(self, logs: dict[str, float]) -> None:
        for k, v in logs.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.updates += 1

    def summary(self) -> dict[str, float]:
        seconds = max(time.perf_counter() - self.start, 1e-9)
        out = {"steps_per_s": self.updates / seconds}
        for k, v in self.sums.items():
            if k.startswith("num_"):
                out[k[4:] + "_per_s"] = v / seconds
            else:
                out[k] = v / max(self.updates, 1)
        return out


class Trainer:
    """Train ``model`` on ``data`` into ``expdir``; ``fit()`` resumes from ``last.pt`` if present.

    Example:
        >>> config = TrainConfig(total_steps=100)
        >>> trainer = Trainer(model, data, config, OptimConfig(), "exp")  # doctest: +SKIP
        >>> results = trainer.fit()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        data: TrainData,
        config: TrainConfig,
        optim: OptimConfig,
        expdir: str | Path,
        *,
        run_config: dict[str, Any] | None = None,
        hooks: Hooks | None = None,
        dist_info: D.DistInfo | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.config, self.optim_config, self.data = config, optim, data
        self.expdir = Path(expdir)
        self.run_config = run_config or {}
        self.hooks = hooks or Hooks()
        self.dist = dist_info or D.DistInfo()
        self.device = device or D.pick_device(config.device)
        seed_everything(config.seed + self.dist.rank)
        self.model = model.to(self.device)
        set_activation_checkpointing(self.model, config.activation_checkpointing)
        self.ddp = self._wrap(self.model)
        self.total_steps = self._total_steps()
        self.optimizer = build_optimizer(self.model, optim)
        self.scheduler = build_scheduler(self.optimizer, optim, self.total_steps)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        warn_if_emulated_bf16(self.device, config.precision)
        self.checkpoints = CheckpointManager(
            self.expdir / "checkpoints", keep=config.keep_checkpoints
        )
        self.step = self.epoch = self.batch_index = 0
        self.history: dict[str, Any] = {
            "first_loss": None,
            "last_loss": None,
            "train_seconds": 0.0,
            "skipped_updates": 0,
            "best": None,
        }

    # ---------------------------------------------------------------- setup
    def _wrap(self, model: nn.Module) -> nn.Module:
        if not self.dist.enabled:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=self.config.find_unused_parameters
        )

    def _total_steps(self) -> int:
        if self.config.total_steps > 0:
            return self.config.total_steps
        per_epoch = len(self.data.plan(0)) // self.config.grad_accum
        if per_epoch < 1:
            raise ValueError(
                f"an epoch holds fewer batches than train.grad_accum={self.config.grad_accum}"
            )
        return per_epoch * self.config.epochs

    def _loader(self, batches: list[list[Any]]) -> DataLoader:
        # A private generator keeps DataLoader's worker seeding off the global RNG, which
        # must only advance with the model's own draws (masking, dropout) for exact resume.
        generator = torch.Generator().manual_seed(self.config.seed * 1000 + self.epoch)
        return DataLoader(
            self.data.dataset,
            batch_sampler=batches,
            collate_fn=self.data.collate,
            num_workers=self.data.num_workers,
            generator=generator,
            pin_memory=self.device.type == "cuda",
        )

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": "speechrep-train",
            "step": self.step,
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "world_size": self.dist.world_size,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": dict(self.history),
            "config": self.run_config,
        }

    def resume(self) -> bool:
        """Load ``last.pt`` when it exists; return whether a run was resumed."""
        if not self.checkpoints.exists():
            return False
        state = load_checkpoint(self.checkpoints.last)
        diffs = config_differences(state.get("config", {}), self.run_config)
        if diffs:
            raise ValueError(
                f"{self.checkpoints.last}: the run there used another config ({'; '.join(diffs)}); "
                "use a new output directory or the same settings"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.history = state["step"], state["epoch"], dict(state["history"])
        # Batches are rank-local: rescale the position if the number of ranks changed.
        consumed = state["batch_index"] * state["world_size"]
        self.batch_index = consumed // self.dist.world_size
        rngs = state["rng"]
        if len(rngs) == self.dist.world_size:
            set_rng_state(rngs[self.dist.rank])
        else:
            warnings.warn(
                f"resuming on {self.dist.world_size} ranks a run saved on {len(rngs)}: "
                "random draws will differ from an uninterrupted run",
                stacklevel=2,
            )
            seed_everything(self.config.seed + self.dist.rank + self.step)
        return True

    def save(self) -> None:
        rngs = D.gather_objects(rng_state(), self.dist)
        if self.dist.is_main:
            state = self.state_dict()
            state["rng"] = rngs
            periodic = self.step % self.config.save_every == 0
            self.checkpoints.save(state, self.step, periodic=periodic)
            if self.hooks.export is not None:
                self.hooks.export(self.model, self.expdir)
        D.barrier(self.dist)

    # ---------------------------------------------------------------- loop
    def fit(self) -> dict[str, Any]:
        """Train to ``total_steps`` (resuming if possible); return the results dict."""
        self.resume()
        if self.dist.is_main:
            import yaml

            write_text_atomic(
                self.expdir / "config.yaml", yaml.safe_dump(self.run_config, sort_keys=False)
            )
        logger = MetricsLogger(self.expdir, enabled=self.dist.is_main, resume_step=self.step)
        bar = _progress(self.total_steps, self.step, self.dist.is_main and self.config.progress)
        self.ddp.train()
        window, started = _Window(), time.perf_counter()
        try:
            for logs in self._updates():
                window.add(logs)
                bar.update(1)
                if self.step % self.config.log_every == 0 or self.step == self.total_steps:
                    self._log(window, logger, bar)
                    window = _Window()
                if self.config.eval_every and self.step % self.config.eval_every == 0:
                    self._evaluate(logger)
                if self.step % self.config.save_every == 0 or self.step == self.total_steps:
                    self.history["train_seconds"] += time.perf_counter() - started
                    started = time.perf_counter()
                    self.save()
        finally:
            bar.close()
        if self.hooks.evaluate is not None and not self.config.eval_every:
            self._evaluate(logger)
        logger.close()
        return self._finish()

    def _updates(self) -> Iterator[dict[str, float]]:
        """Run micro-batches; yield the averaged logs after each optimizer update."""
        accum, sums, micro = self.config.grad_accum, {}, 0
        while self.step < self.total_steps:
            batches = self.data.plan(self.epoch)
            if not batches:
                raise ValueError(f"epoch {self.epoch}: the data plan holds no batch")
            for batch in self._loader(batches[self.batch_index :]):
                self.batch_index += 1
                micro += 1
                sync = micro == accum
                for k, v in self._forward_backward(batch, accum, sync).items():
                    sums[k] = sums.get(k, 0.0) + v
                if sync:
                    sums["grad_norm"] = self._optimizer_step()
                    yield {
                        k: (v if k.startswith("num_") or k == "grad_norm" else v / accum)
                        for k, v in sums.items()
                    }
                    sums, micro = {}, 0
                    if self.step >= self.total_steps:
                        return
            self.epoch, self.batch_index = self.epoch + 1, 0

    def _forward_backward(self, batch: Any, accum: int, sync: bool) -> dict[str, float]:
        batch = move_to(batch, self.device)
        dtype = PRECISION_DTYPES[self.config.precision]
        no_sync = self.ddp.no_sync() if self.dist.enabled and not sync else contextlib.nullcontext()
        with no_sync:
            with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
                loss, logs = self.ddp(batch)
            self.scaler.scale(loss.float() / accum).backward()
        out = {k: float(v) for k, v in logs.items()}
        out.setdefault("loss", float(loss.detach()))
        return out

    def _optimizer_step(self) -> float:
        self.scaler.unscale_(self.optimizer)
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = self.config.grad_clip if self.config.grad_clip > 0 else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm)) if params else 0.0
        if self.scaler.is_enabled():
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)  # skips the update itself when a gradient is inf/NaN
            self.scaler.update()
            self.history["skipped_updates"] += int(self.scaler.get_scale() < scale)
        elif math.isfinite(norm):
            self.optimizer.step()
        else:
            self.history["skipped_updates"] += 1
            warnings.warn(
                f"step {self.step + 1}: gradient norm is {norm}; update skipped", stacklevel=2
            )
        with warnings.catch_warnings():  # the schedule advances on skipped updates too (s3prl)
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler")
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return norm

    # ---------------------------------------------------------------- reporting
    def _log(self, window: _Window, logger: MetricsLogger, bar: Any) -> None:
        values = D.mean_over_ranks(window.summary(), self.dist, self.device)
        for key in [k for k in values if k.endswith("_per_s") and k != "steps_per_s"]:
            values[key] *= self.dist.world_size  # rates of counts add up over ranks
        values["lr"] = self.scheduler.get_last_lr()[0]
        values["epoch"] = self.epoch
        if "loss" in values:
            if self.history["first_loss"] is None:
                self.history["first_loss"] = values["loss"]
            self.history["last_loss"] = values["loss"]
            bar.set_postfix(loss=f"{values['loss']:.4f}")
        logger.log(self.step, values, split="train")

    def _evaluate(self, logger: MetricsLogger) -> None:
        if self.hooks.evaluate is None:
            return
        if self.dist.is_main:
            self.model.eval()
            with torch.no_grad():
                metrics = self.hooks.evaluate(self.model)
            self.model.train()
            logger.log(self.step, metrics, split="dev")
            self._track_best(metrics)
        D.barrier(self.dist)

    def _track_best(self, metrics: dict[str, float]) -> None:
        name = self.hooks.best_metric
        if name is None:
            return
        if name not in metrics:
            raise ValueError(
                f"best_metric '{name}' is not among the evaluation metrics {sorted(metrics)}"
            )
        best = self.history["best"]
        sign = 1.0 if self.hooks.best_mode == "min" else -1.0
        if best is None or sign * metrics[name] < sign * best["metrics"][name]:
            self.history["best"] = {"step": self.step, "metrics": dict(metrics)}
            self.checkpoints.save_best(
                {
                    "step": self.step,
                    "metrics": dict(metrics),
                    "model": self.model.state_dict(),
                    "config": self.run_config,
                }
            )

    def _finish(self) -> dict[str, Any]:
        seconds = self.history["train_seconds"]
        results = {
            "steps": self.step,
            "epoch": self.epoch,
            "world_size": self.dist.world_size,
            "first_loss": self.history["first_loss"],
            "last_loss": self.history["last_loss"],
            "skipped_updates": self.history["skipped_updates"],
            "train_seconds": round(seconds, 3),
            "best": self.history["best"],
            **self.hooks.results,
        }
        if self.dist.is_main:
            write_json_atomic(self.expdir / "results.json", results)
        return results


def set_activation_checkpointing(model: nn.Module, mode: str) -> int:
    """Set ``activation_checkpointing`` (none | attention | layers) on every sub-module that has
    it; returns how many."""
    found = [m for m in model.modules() if hasattr(m, "activation_checkpointing")]
    for module in found:
        module.activation_checkpointing = mode
    return len(found)


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        disable=not enabled,
        desc="train",
        unit="step",
        dynamic_ncols=True,
    )
