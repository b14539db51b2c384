"""``speechrep pretrain``: method + audio folder -> an experiment directory that loads directly.

EXPDIR holds ``config.yaml`` (the resolved config), ``data.tsv`` (the utterances used, reused
on resume), ``metrics.jsonl`` (+ TensorBoard events), ``checkpoints/`` (``last.pt`` and
periodic copies), ``upstream/`` (the trained upstream, speechrep-native, rewritten at every
checkpoint: ``speechrep.load_upstream(EXPDIR)`` reads it) and ``results.json``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from torch import nn

from speechrep.config import from_dict, load_yaml, merge, parse_overrides, to_dict
from speechrep.convert.native import NativeCheckpoint, save_native
from speechrep.pretrain.data import (
    AudioDataset,
    BucketPlan,
    DataConfig,
    collate_wavs,
    read_manifest,
    scan_audio,
    select,
    write_manifest,
)
from speechrep.pretrain.methods import Method, get_method
from speechrep.pretrain.models import SpecHead
from speechrep.train import distributed as D
from speechrep.train.checkpoint import seed_everything
from speechrep.train.config import Hooks, TrainData
from speechrep.train.loop import Trainer

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "pretrain"  # package data
MANIFEST = "data.tsv"


def find_config(method: str, name: str) -> Path:
    """A config path, or a name in ``configs/pretrain``: ``tera_tiny``, or ``tiny`` meaning
    ``<method>_tiny``."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (CONFIG_DIR / f"{name}.yaml", CONFIG_DIR / f"{method}_{name}.yaml"):
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")) if CONFIG_DIR.is_dir() else []
    raise FileNotFoundError(
        f"config not found: {name} (not a file; shipped configs: {', '.join(known) or 'none'})"
    )


def load_method_config(
    method: Method, config: str | os.PathLike | None = None, overrides: list[str] = ()
) -> Any:
    """The method's defaults <- YAML file <- ``key=value`` overrides (unknown keys raise)."""
    data = to_dict(method.config_class())
    where = method.config_class.__name__
    if config is not None:
        path = find_config(method.name, str(config))
        data, where = merge(data, load_yaml(path)), str(path)
    data = merge(data, parse_overrides(list(overrides)))
    return from_dict(method.config_class, data, where=where)


def export_upstream(model: nn.Module, expdir: Path) -> None:
    """Write the pretraining model's upstream as ``expdir/upstream`` (speechrep-native)."""
    up = model.upstream
    extra = {}
    if isinstance(getattr(model, "head", None), SpecHead):
        # s3prl's TransformerSpecPredictionHead names, so `convert --to s3prl` can write it
        extra["SpecHead"] = {
            key.replace("layer_norm.", "LayerNorm.", 1): value
            for key, value in model.head.state_dict().items()
        }
    native = NativeCheckpoint(up.family, up.native_config(), up.state_dict(), str(expdir), extra)
    save_native(native, expdir / "upstream")


def _items(data_source: Path, expdir: Path, config: DataConfig, dist: D.DistInfo) -> list:
    manifest, source = expdir / MANIFEST, str(data_source.resolve())
    if dist.is_main and not manifest.is_file():
        write_manifest(manifest, scan_audio(data_source, config.sample_rate), source)
    D.barrier(dist)
    items, listed = read_manifest(manifest)
    if dist.is_main and listed != source:
        warnings.warn(
            f"{manifest} lists the audio of {listed}: the run goes on with that list, "
            f"not with {source}",
            stacklevel=2,
        )
    return select(items, config)


def pretrain(
    method_name: str,
    data_source: str | os.PathLike,
    expdir: str | os.PathLike,
    config: str | os.PathLike | None = None,
    overrides: list[str] = (),
    resume: bool = False,
) -> dict[str, Any]:
    """Pretrain ``method_name`` on the audio under ``data_source`` into ``expdir``.

    Re-running with the same ``expdir`` continues from its last checkpoint (``resume=True``
    additionally requires one). Returns the results dict (also ``expdir/results.json``).

    Example:
        >>> pretrain("tera", "wavs/", "exp/tera", config="tiny")  # doctest: +SKIP
        >>> speechrep.load_upstream("exp/tera").num_layers  # doctest: +SKIP
    """
    method = get_method(method_name)
    cfg = load_method_config(method, config, overrides)
    expdir = Path(expdir)
    if resume and not (expdir / "checkpoints" / "last.pt").is_file():
        raise FileNotFoundError(
            f"nothing to resume: {expdir / 'checkpoints' / 'last.pt'} does not exist"
        )
    if not Path(data_source).exists() and not (expdir / MANIFEST).is_file():
        raise FileNotFoundError(f"audio data not found: {data_source}")
    dist, device = D.init_distributed(cfg.train.device)
    try:
        if dist.is_main:
            expdir.mkdir(parents=True, exist_ok=True)
        items = _items(Path(data_source), expdir, cfg.data, dist)
        seed_everything(cfg.train.seed)  # the same initial weights on every rank
        model = method.build(cfg)
        plan = BucketPlan(
            [it.num_samples for it in items], cfg.data, cfg.train.seed, dist.rank, dist.world_size
        )
        data = TrainData(AudioDataset(items, cfg.data), plan, collate_wavs, cfg.data.num_workers)
        hooks = Hooks(
            export=export_upstream,
            results={
                "method": method.name,
                "family": model.upstream.family,
                "utterances": len(items),
                "upstream": str(expdir / "upstream"),
                "num_layers": model.upstream.num_layers,
            },
        )
        run_config = {"method": method.name, **to_dict(cfg)}
        trainer = Trainer(
            model,
            data,
            cfg.train,
            cfg.optim,
            expdir,
            run_config=run_config,
            hooks=hooks,
            dist_info=dist,
            device=device,
        )
        return trainer.fit()
    finally:
        D.shutdown()
