"""Pretraining methods: one entry per method in :data:`METHODS`, each with a frozen config
dataclass whose defaults are s3prl's published pretraining configs (``configs/pretrain/<name>.yaml``
spells the same values out) and a builder for its pretraining model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from speechrep.audio.features import KaldiOptions
from speechrep.nn.quantize import VqConfig
from speechrep.pretrain.data import DataConfig
from speechrep.pretrain.masking import MaskingConfig
from speechrep.pretrain.models import DistillationModel, MaskedAcousticModel, PredictiveCodingModel
from speechrep.train.config import TrainConfig
from speechrep.train.optim import OptimConfig
from speechrep.upstream.apc import ApcConfig, ApcUpstream, VqApcUpstream
from speechrep.upstream.distilhubert import DistilHubertConfig, DistilHubertUpstream
from speechrep.upstream.mockingjay import (
    AudioAlbertUpstream,
    FrontEndConfig,
    MockingjayConfig,
    MockingjayUpstream,
    TeraUpstream,
)
from speechrep.upstream.npc import NpcConfig, NpcUpstream

LOSSES = ("l1", "mse")


# ------------------------------------------------------------------ task configs
@dataclass(frozen=True)
class MaskedTask(MaskingConfig):
    """Masked acoustic modelling: the alterations plus the loss and its target."""

    loss: str = "l1"  # s3prl: task.loss (L1 | MSE)
    target: FrontEndConfig | None = None  # s3prl: audio.target when it differs from the input

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in LOSSES:
            raise ValueError(f"task.loss must be one of {list(LOSSES)}, found {self.loss!r}")


@dataclass(frozen=True)
class ApcTask:
    n_future: int = 5  # s3prl: task.n_future (predict the frame this many steps ahead)


@dataclass(frozen=True)
class DistillTask:
    """Which teacher the student distils (the layers are the student's ``model.teacher_layers``)."""

    teacher: str = "hubert_base"  # s3prl: teacher.model; any load_upstream name, path or URL
    teacher_ckpt: str | None = None  # explicit checkpoint for a registered teacher name
    cosine_weight: float = 1.0  # s3prl: distiller.cosine_loss (weight of -log sigmoid(cos))
    init_from_teacher: bool = True  # s3prl: init_teacher_conv_layers + init_teacher_encoder_layers


def _s3prl_runner(**changes: Any) -> TrainConfig:
    base = {
        "total_steps": 1_000_000,
        "grad_accum": 4,
        "grad_clip": 5.0,
        "log_every": 100,
        "save_every": 50_000,
        "keep_checkpoints": 5,
    }
    return TrainConfig(**{**base, **changes})


def _transformer_runner(**changes: Any) -> TrainConfig:
    """s3prl's runner; attention recomputed in backward (no (T, T) tensors kept, same maths)."""
    return _s3prl_runner(**{"activation_checkpointing": "attention", **changes})


def _adam(lr: float) -> OptimConfig:
    """s3prl's ``Adam``: plain Adam, constant rate."""
    return OptimConfig(
        name="adam", lr=lr, weight_decay=0.0, schedule="constant", warmup_proportion=0.0
    )


def mockingjay_features() -> FrontEndConfig:
    """s3prl's Mockingjay pretraining input: Kaldi fbank 80 + delta + delta-delta, CMVN (240)."""
    return FrontEndConfig(
        kind="fbank",
        kaldi=KaldiOptions(num_mel_bins=80),
        delta_order=2,
        delta_win_length=5,
        cmvn=True,
    )


# ------------------------------------------------------------------ method configs
@dataclass(frozen=True)
class MockingjayPretrainConfig:
    """s3prl pretrain/mockingjay: 3 x 768, fbank+deltas, time masking, batch 8 x 4."""

    model: MockingjayConfig = field(
        default_factory=lambda: MockingjayConfig(features=mockingjay_features())
    )
    task: MaskedTask = field(default_factory=lambda: MaskedTask(mask_frequency=0.0))
    data: DataConfig = field(default_factory=lambda: DataConfig(batch_size=8, min_seconds=2.0))
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=_transformer_runner)


@dataclass(frozen=True)
class TeraPretrainConfig:
    """s3prl pretrain/tera: 3 x 768, log-mel 80, time + frequency alteration, batch 8 x 4."""

    model: MockingjayConfig = field(default_factory=MockingjayConfig)
    task: MaskedTask = field(default_factory=lambda: MaskedTask(mask_frequency=0.2))
    data: DataConfig = field(default_factory=lambda: DataConfig(batch_size=8, min_seconds=2.0))
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=_transformer_runner)


@dataclass(frozen=True)
class AudioAlbertPretrainConfig:
    """s3prl pretrain/audio_albert: 3 layers x 768 sharing one set of weights, log-mel, batch 32."""

    model: MockingjayConfig = field(default_factory=lambda: MockingjayConfig(share_layers=True))
    task: MaskedTask = field(default_factory=lambda: MaskedTask(mask_frequency=0.0))
    data: DataConfig = field(default_factory=lambda: DataConfig(batch_size=32, min_seconds=2.0))
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=lambda: _transformer_runner(grad_accum=1))


@dataclass(frozen=True)
class ApcPretrainConfig:
    """s3prl pretrain/apc: 3 GRU layers x 512, fbank 80, 5 frames ahead, Adam 1e-4, 100 epochs."""

    model: ApcConfig = field(default_factory=ApcConfig)
    task: ApcTask = field(default_factory=ApcTask)
    data: DataConfig = field(default_factory=lambda: DataConfig(batch_size=32, min_seconds=3.2))
    optim: OptimConfig = field(default_factory=lambda: _adam(1e-4))
    train: TrainConfig = field(
        default_factory=lambda: _s3prl_runner(
            total_steps=0, epochs=100, grad_accum=1, save_every=2500
        )
    )


@dataclass(frozen=True)
class VqApcPretrainConfig(ApcPretrainConfig):
    """s3prl pretrain/vq_apc: APC with one 512-code Gumbel VQ group (temperature 0.5)."""

    model: ApcConfig = field(
        default_factory=lambda: ApcConfig(
            vq=VqConfig(codebook_sizes=(512,), code_dims=(512,), temperature=0.5)
        )
    )
    data: DataConfig = field(default_factory=lambda: DataConfig(batch_size=32, min_seconds=2.0))


@dataclass(frozen=True)
class NpcPretrainConfig:
    """s3prl pretrain/npc: 4 conv blocks x 512, kernel 15, mask 5, 4 x 64-code VQ, Adam 1e-3."""

    model: NpcConfig = field(
        default_factory=lambda: NpcConfig(
            vq=VqConfig(
                codebook_sizes=(64, 64, 64, 64), code_dims=(128, 128, 128, 128), temperature=1.0
            )
        )
    )
    data: DataConfig = field(default_factory=lambda: DataConfig(batch_size=32, min_seconds=2.0))
    optim: OptimConfig = field(default_factory=lambda: _adam(1e-3))
    train: TrainConfig = field(
        default_factory=lambda: _s3prl_runner(
            total_steps=0, epochs=100, grad_accum=1, save_every=2500
        )
    )


@dataclass(frozen=True)
class DistilHubertPretrainConfig:
    """s3prl pretrain/distiller: 2-layer student of HuBERT Base, heads for layers 4/8/12, fp16."""

    model: DistilHubertConfig = field(default_factory=DistilHubertConfig)
    task: DistillTask = field(default_factory=DistillTask)
    data: DataConfig = field(
        default_factory=lambda: DataConfig(batch_size=24, min_seconds=0.0, crop_seconds=15.625)
    )
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(betas=(0.9, 0.98), eps=1e-6))
    train: TrainConfig = field(
        default_factory=lambda: _s3prl_runner(
            total_steps=200_000,
            grad_accum=1,
            save_every=10_000,
            keep_checkpoints=10,
            precision="fp16",
        )
    )


# ------------------------------------------------------------------ builders
def _masked_builder(upstream_class: type[MockingjayUpstream]) -> Callable[[Any], nn.Module]:
    def build(config: Any) -> nn.Module:
        return MaskedAcousticModel(
            upstream_class(config.model), config.task, config.task.loss, config.task.target
        )

    return build


def _build_apc(config: ApcPretrainConfig) -> nn.Module:
    upstream = (VqApcUpstream if config.model.vq is not None else ApcUpstream)(config.model)
    return PredictiveCodingModel(upstream, n_future=config.task.n_future)


def _build_npc(config: NpcPretrainConfig) -> nn.Module:
    return PredictiveCodingModel(NpcUpstream(config.model), n_future=0)


def _build_distilhubert(config: DistilHubertPretrainConfig) -> nn.Module:
    from speechrep.upstream.load import load_upstream

    task = config.task
    teacher = load_upstream(task.teacher, ckpt=task.teacher_ckpt)
    student = DistilHubertUpstream(config.model)
    if task.init_from_teacher:
        init_student_from_teacher(student, teacher)
    return DistillationModel(student, teacher, config.model.teacher_layers, task.cosine_weight)


def init_student_from_teacher(student: DistilHubertUpstream, teacher: nn.Module) -> list[str]:
    """Copy the teacher's conv extractor, projection, positional conv and first layers into
    the student (s3prl's init_teacher_*), where names and shapes agree; return the copied keys."""
    layers = student.config.num_layers
    prefixes = (
        "feature_extractor.",
        "feature_projection.",
        "encoder.pos_conv.",
        *(f"encoder.layers.{i}." for i in range(layers)),
    )
    source = teacher.state_dict()
    own = student.state_dict()
    copied = {
        k: source[k]
        for k in own
        if k.startswith(prefixes) and k in source and source[k].shape == own[k].shape
    }
    if not copied:
        import warnings

        warnings.warn(
            "task.init_from_teacher: the teacher shares no weights of the student's shape; "
            "the student starts from random weights",
            stacklevel=2,
        )
    student.load_state_dict(copied, strict=False)
    return sorted(copied)


@dataclass(frozen=True)
class Method:
    """A pretraining method: its config dataclass and how to build its pretraining model."""

    name: str
    family: str  # the upstream family the result loads as
    description: str
    config_class: type
    build: Callable[[Any], nn.Module]


def _methods(*methods: Method) -> dict[str, Method]:
    return {m.name: m for m in methods}


METHODS: dict[str, Method] = _methods(
    Method(
        "mockingjay",
        "mockingjay",
        "masked acoustic modelling: reconstruct masked frames (L1)",
        MockingjayPretrainConfig,
        _masked_builder(MockingjayUpstream),
    ),
    Method(
        "tera",
        "tera",
        "time, frequency and magnitude alteration, L1 reconstruction",
        TeraPretrainConfig,
        _masked_builder(TeraUpstream),
    ),
    Method(
        "audio_albert",
        "audio_albert",
        "Mockingjay with one transformer layer shared across depth",
        AudioAlbertPretrainConfig,
        _masked_builder(AudioAlbertUpstream),
    ),
    Method(
        "apc",
        "apc",
        "autoregressive predictive coding: predict the frame n steps ahead (L1)",
        ApcPretrainConfig,
        _build_apc,
    ),
    Method(
        "vq_apc",
        "vq_apc",
        "APC with Gumbel-softmax vector quantisation before the prediction",
        VqApcPretrainConfig,
        _build_apc,
    ),
    Method(
        "npc",
        "npc",
        "non-autoregressive predictive coding: masked-convolution reconstruction (L1)",
        NpcPretrainConfig,
        _build_npc,
    ),
    Method(
        "distilhubert",
        "distilhubert",
        "layer-wise distillation of a frozen teacher (L1 + cosine)",
        DistilHubertPretrainConfig,
        _build_distilhubert,
    ),
)


def get_method(name: str) -> Method:
    """The method called ``name``; raises ``ValueError`` listing the known ones."""
    if name not in METHODS:
        raise ValueError(
            f"unknown pretraining method '{name}'; known methods: {', '.join(sorted(METHODS))}"
        )
    return METHODS[name]
