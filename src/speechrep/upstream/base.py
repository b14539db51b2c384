"""The upstream contract every model family implements.

Frame convention (the same for every family): an utterance of ``n`` samples has
``(n - 1) // downsample_rate + 1`` valid frames, as in s3prl. Where a model natively
yields fewer frames (Kaldi ``snip_edges`` framing, the wav2vec 2.0 conv stack), the
last native frame is repeated up to that count; where it yields more (centred STFT),
the extra frames are dropped. This is applied per utterance, so a padded batch gives
exactly the frames each utterance gives alone; frames past an utterance's length are 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from speechrep.precision import warn_if_emulated_bf16

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class UpstreamOutput:
    """What an upstream returns.

    Attributes:
        hidden_states: one (B, T, D) float tensor per layer, nearest the input first.
        lengths: (B,) int64 valid frames per utterance.
    """

    hidden_states: tuple[torch.Tensor, ...]
    lengths: torch.Tensor


def frame_lengths(wav_lens: torch.Tensor, downsample_rate: int) -> torch.Tensor:
    """Valid frames per utterance: ``(n - 1) // downsample_rate + 1`` (0 for empty input)."""
    return torch.where(wav_lens > 0, (wav_lens - 1) // downsample_rate + 1, 0)


def align_frames(state: torch.Tensor, native_lens: torch.Tensor, target_lens: torch.Tensor) -> torch.Tensor:
    """Repeat each utterance's last native frame up to its target length; zero the rest.

    (B, T_native, D) -> (B, max(target_lens), D).
    """
    total = int(target_lens.max())
    t = torch.arange(total, device=state.device)[None, :]  # (1, T)
    last = (native_lens.to(state.device) - 1).clamp(min=0)[:, None]  # (B, 1)
    index = torch.minimum(t, last).clamp(max=state.shape[1] - 1)  # (B, T)
    out = torch.gather(state, 1, index[:, :, None].expand(-1, -1, state.shape[2]))
    valid = t < target_lens.to(state.device)[:, None]
    return out.masked_fill_(~valid[:, :, None], 0.0)  # ``out`` is gather's fresh copy


class Upstream(nn.Module):
    """Base class: waveforms in, every hidden layer out.

    Subclasses set ``family``, ``config_class`` and, in ``__init__(config)``, the
    attributes ``sample_rate``, ``downsample_rate``, ``hidden_size``, ``num_layers``;
    they implement :meth:`forward_features`.

    Example:
        >>> up = speechrep.load_upstream("fbank")  # doctest: +SKIP
        >>> out = up(torch.zeros(2, 16000), torch.tensor([16000, 8000]))  # doctest: +SKIP
        >>> out.hidden_states[0].shape, out.lengths.tolist()  # doctest: +SKIP
        (torch.Size([2, 100, 240]), [100, 50])
    """

    family: ClassVar[str] = ""
    config_class: ClassVar[type] = type(None)

    sample_rate: int
    downsample_rate: int
    hidden_size: int
    num_layers: int

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.precision = "fp32"

    def forward_features(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Model-native hidden states (each (B, T', D)) and native frame counts (B,)."""
        raise NotImplementedError

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> UpstreamOutput:
        """Args: wavs (B, S) float at ``sample_rate``, zero-padded; wav_lens (B,) samples."""
        wav_lens = self._check_input(wavs, wav_lens)
        with self._autocast(wavs.device):
            states, native_lens = self.forward_features(wavs, wav_lens)
        target = frame_lengths(wav_lens, self.downsample_rate).to(wavs.device)
        too_short = (native_lens.to(target.device) <= 0) & (target > 0)
        if too_short.any():
            i = int(too_short.nonzero()[0])
            raise ValueError(
                f"utterance {i} has {int(wav_lens[i])} samples: too short for upstream "
                f"'{self.family}' (it yields no frame)"
            )
        hidden = tuple(align_frames(s.float(), native_lens, target) for s in states)
        return UpstreamOutput(hidden_states=hidden, lengths=target.cpu())

    def _check_input(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> torch.Tensor:
        if wavs.dim() != 2:
            raise ValueError(f"wavs: expected shape (B, S), found {tuple(wavs.shape)}")
        wav_lens = torch.as_tensor(wav_lens, dtype=torch.long).cpu()
        if wav_lens.shape != (wavs.shape[0],):
            raise ValueError(f"wav_lens: expected shape ({wavs.shape[0]},), found {tuple(wav_lens.shape)}")
        if (wav_lens > wavs.shape[1]).any() or (wav_lens <= 0).any():
            raise ValueError(
                f"wav_lens must be in 1..{wavs.shape[1]} (the padded length), found {wav_lens.tolist()}"
            )
        return wav_lens

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, found {self.precision!r}")
        if self.precision == "fp32":
            return contextlib.nullcontext()
        warn_if_emulated_bf16(device, self.precision, stacklevel=3)
        return torch.autocast(device_type=device.type, dtype=PRECISIONS[self.precision])

    def native_config(self) -> dict[str, Any]:
        """The JSON-able config that rebuilds this model (``speechrep`` native format)."""
        from speechrep.config import to_dict

        return to_dict(self.config) if dataclasses.is_dataclass(self.config) else dict(self.config)

    def extra_repr(self) -> str:
        return (
            f"family={self.family}, layers={self.num_layers}, hidden={self.hidden_size}, "
            f"rate={self.sample_rate}, downsample={self.downsample_rate}"
        )
