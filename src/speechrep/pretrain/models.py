"""Pretraining models: an upstream module (the very one ``load_upstream`` builds) plus what only
pretraining needs (a prediction head, a frozen teacher), with ``forward(batch) -> (loss, logs)``
for :class:`speechrep.train.Trainer`. Only ``self.upstream`` is exported after training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from speechrep.nn.bert import ACTIVATIONS, init_bert_weights
from speechrep.nn.quantize import code_perplexity
from speechrep.pretrain.data import WavBatch
from speechrep.pretrain.masking import MaskingConfig, alter
from speechrep.pretrain.objectives import (
    distillation,
    frame_reconstruction,
    future_prediction,
    masked_reconstruction,
    valid_mask,
)
from speechrep.upstream.base import Upstream
from speechrep.upstream.mockingjay import AcousticFrontEnd, FrontEndConfig, MockingjayUpstream

Logs = dict[str, torch.Tensor]


class SpecHead(nn.Module):
    """s3prl's TransformerSpecPredictionHead: dense -> activation -> LayerNorm -> output.

    (B, T, D) -> (B, T, F) predicted frames.
    """

    def __init__(
        self, hidden_size: int, output_size: int, activation: str, layer_norm_eps: float
    ) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = ACTIVATIONS[activation]
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.layer_norm(self.activation(self.dense(x))))


class MaskedAcousticModel(nn.Module):
    """Mockingjay / TERA / Audio ALBERT: reconstruct altered frames from their context.

    Args:
        upstream: the transformer upstream being trained.
        masking: the alterations (:mod:`speechrep.pretrain.masking`).
        loss: ``l1`` or ``mse`` on the altered elements.
        target: features to predict when they differ from the input (s3prl: ``audio.target``,
            e.g. a linear spectrum for Mockingjay's logMelLinear); None predicts the input.
    """

    def __init__(
        self,
        upstream: MockingjayUpstream,
        masking: MaskingConfig,
        loss: str = "l1",
        target: FrontEndConfig | None = None,
    ) -> None:
        super().__init__()
        self.upstream = upstream
        self.masking, self.loss_kind = masking, loss
        self.target_front_end = AcousticFrontEnd(target) if target is not None else None
        output = (target or upstream.config.features).num_features
        cfg = upstream.config
        self.head = SpecHead(cfg.hidden_size, output, cfg.activation, cfg.layer_norm_eps)
        self.head.apply(lambda m: init_bert_weights(m, cfg.initializer_range))

    def forward(self, batch: WavBatch) -> tuple[torch.Tensor, Logs]:
        feats, lens = self.upstream.front_end(batch.wavs, batch.wav_lens)  # (B, T, F), (B,)
        target = feats
        if self.target_front_end is not None:
            target, target_lens = self.target_front_end(batch.wavs, batch.wav_lens)
            if not torch.equal(target_lens.cpu(), lens.cpu()):
                raise ValueError(
                    "task.target features must have as many frames as the input features"
                )
        altered, label = alter(feats, lens.cpu(), self.masking)
        # The encoder runs whole sequences here (s3prl trains on un-chunked crops).
        last = self.upstream.encoder(altered, lens)[-1]  # (B, T, D)
        loss = masked_reconstruction(self.head(last), target, label, self.loss_kind)
        return loss, {"loss": loss.detach(), "num_frames": lens.sum()}


class PredictiveCodingModel(nn.Module):
    """APC / VQ-APC (predict frame t + ``n_future`` from frames <= t) and NPC (predict frame t
    from its masked neighbourhood); both L1 on valid frames, through the upstream's ``postnet``.
    """

    def __init__(self, upstream: Upstream, n_future: int = 0) -> None:
        super().__init__()
        self.upstream = upstream
        self.n_future = n_future  # 0: NPC (same-frame prediction)

    def forward(self, batch: WavBatch) -> tuple[torch.Tensor, Logs]:
        feats, lens = self.upstream.front_end(batch.wavs, batch.wav_lens)  # (B, T, F), (B,)
        states = self.upstream.encode(feats, lens)
        pred, onehots = self.upstream.predict(states[-1])  # (B, T, F)
        if self.n_future > 0:
            loss = future_prediction(pred, feats, lens, self.n_future)
        else:
            loss = frame_reconstruction(pred, feats, lens)
        logs: Logs = {"loss": loss.detach(), "num_frames": lens.sum()}
        if onehots:
            valid = valid_mask(lens, feats.shape[1], feats.device)
            logs["code_perplexity"] = torch.stack(
                [code_perplexity(o.detach(), valid) for o in onehots]
            ).mean()
        return loss, logs


class DistillationModel(nn.Module):
    """DistilHuBERT: the student's prediction heads regress chosen layers of a frozen teacher.

    Args:
        upstream: the student (its last ``len(teacher_layers)`` hidden states are the heads).
        teacher: any upstream; frozen and kept in eval mode.
        teacher_layers: teacher hidden-state indices the heads predict (s3prl: pred_layer_id).
        cosine_weight: weight of the -log sigmoid(cosine) term (s3prl: cosine_loss).
    """

    def __init__(
        self,
        upstream: Upstream,
        teacher: Upstream,
        teacher_layers: tuple[int, ...],
        cosine_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if teacher.downsample_rate != upstream.downsample_rate:
            raise ValueError(
                f"teacher frame rate ({teacher.downsample_rate} samples) differs from the "
                f"student's ({upstream.downsample_rate})"
            )
        width = getattr(upstream.config, "prediction_size", teacher.hidden_size)
        if teacher.hidden_size != width:
            raise ValueError(
                f"the teacher's hidden states are {teacher.hidden_size} wide; the student "
                f"predicts {width} (set model.prediction_size={teacher.hidden_size})"
            )
        bad = [i for i in teacher_layers if not -teacher.num_layers <= i < teacher.num_layers]
        if bad:
            raise ValueError(
                f"teacher_layers {bad} out of range: the teacher has "
                f"{teacher.num_layers} hidden states"
            )
        self.upstream = upstream
        self.teacher = teacher.requires_grad_(False).eval()
        self.teacher_layers = tuple(teacher_layers)
        self.cosine_weight = cosine_weight

    def train(self, mode: bool = True) -> DistillationModel:
        super().train(mode)
        self.teacher.eval()  # the teacher never drops out
        return self

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        # The frozen teacher is rebuilt from its source on resume; checkpoints hold the student.
        state = super().state_dict(*args, **kwargs)
        return type(state)((k, v) for k, v in state.items() if not k.startswith("teacher."))

    def load_state_dict(
        self, state: Mapping[str, torch.Tensor], strict: bool = True, assign: bool = False
    ) -> Any:
        own = self.teacher.state_dict()
        full = dict(state, **{f"teacher.{k}": v for k, v in own.items()})
        return super().load_state_dict(full, strict=strict, assign=assign)

    def forward(self, batch: WavBatch) -> tuple[torch.Tensor, Logs]:
        with torch.no_grad(), torch.autocast(batch.wavs.device.type, enabled=False):
            teacher = self.teacher(batch.wavs, batch.wav_lens)
        target = torch.stack(
            [teacher.hidden_states[i] for i in self.teacher_layers], dim=1
        )  # (B, N, T, D)
        student = self.upstream(batch.wavs, batch.wav_lens)
        pred = torch.stack(
            student.hidden_states[-len(self.teacher_layers) :], dim=1
        )  # (B, N, T, D)
        lens = student.lengths.to(pred.device)
        loss, l1, cos = distillation(pred, target.to(pred.device), lens, self.cosine_weight)
        return loss, {
            "loss": loss.detach(),
            "l1": l1.detach(),
            "cosine": cos.detach(),
            "num_frames": lens.sum(),
        }
