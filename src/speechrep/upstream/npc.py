"""NPC (non-autoregressive predictive coding): conv blocks plus masked convolutions.

Hidden states (as s3prl, in call order): for each block i, the ConvBlock output then its
masked-conv output; last, the sum of the masked-conv outputs (taken before any VQ/bottleneck).

Padding: s3prl's convolutions see the batch padding, which BatchNorm makes non-zero, so the
last valid frames of shorter utterances change with the batch. Here every conv input is zero
past its utterance's length — exactly the zero padding a lone utterance gets — so a padded
batch equals each utterance alone. In training, BatchNorm statistics use valid frames only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from speechrep.nn.quantize import GroupVectorQuantizer, VqConfig
from speechrep.upstream.apc import kaldi_fbank_front_end
from speechrep.upstream.base import Upstream
from speechrep.upstream.mockingjay import AcousticFrontEnd, FrontEndConfig

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def masked_batch_norm(bn: nn.BatchNorm1d, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """BatchNorm over valid frames only; x (B, C, T), valid (B, T) bool; padded frames -> 0."""
    if not bn.training:
        return bn(x) * valid[:, None, :]  # running statistics: frame by frame
    frames = x.transpose(1, 2)[valid]  # (N, C)
    out = x.new_zeros(x.shape[0], x.shape[2], x.shape[1])  # (B, T, C)
    out[valid] = bn(frames)
    return out.transpose(1, 2)


class ConvBlock(nn.Module):
    """conv(k=3) -> BN -> act -> 1x1 conv -> BN -> dropout (-> + input) -> act."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        residual: bool,
        dropout: float,
        batch_norm: bool,
        activation: str,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, found {activation!r}"
            )
        self.residual = residual
        self.conv = nn.Conv1d(input_size, hidden_size, kernel_size=3, padding=1)
        self.linear = nn.Conv1d(hidden_size, hidden_size, kernel_size=1)
        self.bn1 = nn.BatchNorm1d(hidden_size) if batch_norm else None
        self.bn2 = nn.BatchNorm1d(hidden_size) if batch_norm else None
        self.act = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, T) zero past each length, valid (B, T) -> (B, H, T) zero past each length."""
        out = self.conv(x)
        out = masked_batch_norm(self.bn1, out, valid) if self.bn1 is not None else out
        out = self.linear(self.act(out))
        out = masked_batch_norm(self.bn2, out, valid) if self.bn2 is not None else out
        out = self.dropout(out)
        out = out + x if self.residual else out
        return self.act(out) * valid[:, None, :]


class MaskedConv(nn.Module):
    """Conv with its kernel centre (``mask_size`` taps) zeroed, then tanh: no frame sees itself.

    The mask is a buffer (s3prl stores it in checkpoints; a loaded one is used as stored).
    """

    def __init__(self, hidden_size: int, kernel_size: int, mask_size: int) -> None:
        super().__init__()
        if not 0 < mask_size < kernel_size:
            raise ValueError(
                f"masked conv: mask size {mask_size} must be in 1..{kernel_size - 1}"
            )
        self.conv = nn.Conv1d(hidden_size, hidden_size, kernel_size, padding=(kernel_size - 1) // 2)
        head = (kernel_size - mask_size) // 2
        mask = torch.ones_like(self.conv.weight)
        mask[:, :, head : head + mask_size] = 0
        self.register_buffer("conv_mask", mask)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x (B, H, T) zero past each length -> (B, T, H) zero past each length."""
        out = nn.functional.conv1d(
            x, self.conv.weight * self.conv_mask, self.conv.bias, padding=self.conv.padding
        )
        return torch.tanh(out).transpose(1, 2) * valid[:, :, None]


@dataclass(frozen=True)
class NpcConfig:
    """Blocks, masks, optional VQ/bottleneck and features (defaults = s3prl's NPC config)."""

    hidden_size: int = 512  # s3prl: model.paras.hidden_size
    num_blocks: int = 4  # s3prl: model.paras.n_blocks
    kernel_size: int = 15  # s3prl: model.paras.kernel_size (masked convs)
    mask_size: int = 5  # s3prl: model.paras.mask_size; block i masks mask_size + 2 (i + 1) taps
    dropout: float = 0.1  # s3prl: model.paras.dropout
    residual: bool = True  # s3prl: model.paras.residual (blocks 1..)
    batch_norm: bool = True  # s3prl: model.paras.batch_norm
    activation: str = "relu"  # s3prl: model.paras.activate (relu | tanh)
    disable_cross_layer: bool = (
        False  # s3prl: model.paras.disable_cross_layer (masked conv on last block only)
    )
    vq: VqConfig | None = None  # s3prl: model.paras.vq
    bottleneck_size: int | None = None  # s3prl: model.paras.dim_bottleneck
    features: FrontEndConfig = field(default_factory=kaldi_fbank_front_end)  # s3prl: data.audio

    def __post_init__(self) -> None:
        if self.kernel_size % 2 == 0 or self.mask_size % 2 == 0 or self.num_blocks < 1:
            raise ValueError(
                f"need odd kernel_size/mask_size and num_blocks >= 1, found "
                f"{self.kernel_size}/{self.mask_size}/{self.num_blocks}"
            )
        if self.mask_size + 2 * self.num_blocks >= self.kernel_size:
            raise ValueError(
                f"mask_size {self.mask_size} + 2 * num_blocks {self.num_blocks} must stay "
                f"below kernel_size {self.kernel_size}"
            )
        if self.vq is not None and sum(self.vq.code_dims) != self.hidden_size:
            raise ValueError(
                f"vq.code_dims {list(self.vq.code_dims)} must sum to hidden_size {self.hidden_size}"
            )
        if self.vq is not None and self.bottleneck_size is not None:
            raise ValueError("vq and bottleneck_size cannot both be set")

    def has_masked_conv(self, block: int) -> bool:
        return not self.disable_cross_layer or block == self.num_blocks - 1


class NpcUpstream(Upstream):
    """NPC upstream.

    Attributes:
        blocks, masked_convs: the model; ``masked_convs[i]`` is None where disabled.
        quantizer / bottleneck, postnet: the pre-training prediction (:meth:`predict`).

    Example:
        >>> cfg = NpcConfig(hidden_size=16, num_blocks=2, kernel_size=9, mask_size=3)
        >>> up = NpcUpstream(cfg).eval()
        >>> out = up(torch.randn(2, 16000), torch.tensor([16000, 8000]))
        >>> len(out.hidden_states), out.hidden_states[0].shape, out.lengths.tolist()
        (5, torch.Size([2, 100, 16]), [100, 50])
    """

    family = "npc"
    config_class = NpcConfig

    def __init__(self, config: NpcConfig) -> None:
        super().__init__(config)
        c = config
        self.sample_rate = 16000
        self.downsample_rate = c.features.hop_length
        self.hidden_size = c.hidden_size
        self.num_layers = c.num_blocks + sum(map(c.has_masked_conv, range(c.num_blocks))) + 1
        input_dim = c.features.num_features
        self.front_end = AcousticFrontEnd(c.features)
        self.blocks = nn.ModuleList(
            ConvBlock(
                input_dim if i == 0 else c.hidden_size,
                c.hidden_size,
                c.residual and i > 0,
                c.dropout,
                c.batch_norm,
                c.activation,
            )
            for i in range(c.num_blocks)
        )
        self.masked_convs = nn.ModuleList(
            MaskedConv(c.hidden_size, c.kernel_size, c.mask_size + 2 * (i + 1))
            if c.has_masked_conv(i)
            else None
            for i in range(c.num_blocks)
        )
        self.quantizer = None
        if c.vq is not None:
            self.quantizer = GroupVectorQuantizer(
                c.vq.codebook_sizes, c.vq.code_dims, c.vq.temperature
            )
        self.bottleneck = None
        if c.bottleneck_size is not None:
            self.bottleneck = nn.Linear(c.hidden_size, c.bottleneck_size, bias=False)
        self.postnet = nn.Linear(c.bottleneck_size or c.hidden_size, input_dim)

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """feats (B, T, F), lengths (B,) -> hidden states (B, T, H) in call order; the last is
        the summed masked-conv feature the prediction reads."""
        valid = (
            torch.arange(feats.shape[1], device=feats.device)[None, :]
            < lengths.to(feats.device)[:, None]
        )
        x = (feats * valid[:, :, None]).transpose(1, 2)  # (B, T, F) -> (B, F, T), padding zeroed
        states, total = [], None
        for block, masked in zip(self.blocks, self.masked_convs, strict=True):
            x = block(x, valid)  # (B, H, T)
            states.append(x.transpose(1, 2))
            if masked is not None:
                states.append(masked(x, valid))
                total = states[-1] if total is None else total + states[-1]
        return states + [total]

    def predict(self, feature: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Summed masked feature (B, T, H) -> (predicted frames (B, T, F), VQ one-hots or [])."""
        if self.quantizer is not None:
            _, onehots, codes = self.quantizer(feature)
            return self.postnet(codes), onehots
        if self.bottleneck is not None:
            feature = self.bottleneck(feature)
        return self.postnet(feature), []

    def forward_features(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        feats, lens = self.front_end(wavs, wav_lens)
        return self.encode(feats, lens), lens
