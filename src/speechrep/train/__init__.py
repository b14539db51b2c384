"""The one training loop (pretraining and downstream tasks share it) and its parts."""

from speechrep.train.checkpoint import CheckpointManager, load_checkpoint
from speechrep.train.config import Hooks, TrainConfig, TrainData
from speechrep.train.distributed import DistInfo, init_distributed
from speechrep.train.loop import Trainer
from speechrep.train.metrics import MetricsLogger, read_metrics
from speechrep.train.optim import OptimConfig, build_optimizer, build_scheduler

__all__ = [
    "CheckpointManager",
    "DistInfo",
    "Hooks",
    "MetricsLogger",
    "OptimConfig",
    "TrainConfig",
    "TrainData",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "init_distributed",
    "load_checkpoint",
    "read_metrics",
]
