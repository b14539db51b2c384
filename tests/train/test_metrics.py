import sys
import types

from speechrep.train.metrics import MetricsLogger, read_metrics


def test_tensorboard_events_when_the_package_is_there(tmp_path, monkeypatch):
    calls = []

    class Writer:
        def __init__(self, log_dir, purge_step=None):
            calls.append(("open", log_dir, purge_step))

        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

        def close(self):
            calls.append("close")

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = Writer
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    log = MetricsLogger(tmp_path, resume_step=7)
    log.log(8, {"loss": 0.5, "note": "text"}, split="dev")
    log.close()
    assert calls == [("open", str(tmp_path / "tb"), 7), ("dev/loss", 0.5, 8), "close"]
    assert read_metrics(tmp_path / "metrics.jsonl", split="dev") == [
        {"step": 8, "split": "dev", "loss": 0.5, "note": "text"}
    ]


def test_without_tensorboard_only_jsonl(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    log = MetricsLogger(tmp_path)
    log.log(1, {"loss": float("nan")})
    log.close()
    assert not (tmp_path / "tb").exists()
    assert read_metrics(tmp_path / "metrics.jsonl")[0]["loss"] == "nan"  # JSON has no NaN


def test_resumed_logger_drops_steps_past_the_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    first = MetricsLogger(tmp_path)
    for step in range(1, 6):
        first.log(step, {"loss": 1.0 / step})
    MetricsLogger(tmp_path, resume_step=3).log(4, {"loss": 9.0})
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [(r["step"], r["loss"]) for r in records] == [(1, 1.0), (2, 0.5), (3, 1 / 3), (4, 9.0)]
    MetricsLogger(tmp_path, enabled=False, resume_step=1)  # other ranks never touch the file
    assert len(read_metrics(tmp_path / "metrics.jsonl")) == 4
