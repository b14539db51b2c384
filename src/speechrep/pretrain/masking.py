"""Input alterations of masked acoustic modelling (Mockingjay, TERA, Audio ALBERT).

Three alterations, each switchable (s3prl's ``task`` keys):

- time: ``mask_proportion`` of each utterance's frames, in spans of ``mask_consecutive``
  frames; per utterance the chosen spans are zeroed (80%), replaced by other spans of the
  same utterance (10%) or left as they are (10%), as s3prl draws it;
- frequency: one band of 0..``mask_frequency`` x F consecutive bins zeroed on every frame;
- magnitude: with probability ``noise_proportion`` Gaussian noise (std ``noise_std``) added to
  the utterance's valid frames.

The loss is taken on the time-masked frames and the frequency-masked bins (``label``).
Random draws use the global torch RNG (saved in checkpoints, so resumed runs draw the same).
Lengths are exact: nothing is ever chosen past an utterance's last valid frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MaskingConfig:
    """Which alterations, and how much (defaults = s3prl's TERA ``task`` config)."""

    mask_proportion: float = 0.15  # s3prl: task.mask_proportion (0 = no time alteration)
    mask_consecutive_min: int = 7  # s3prl: task.mask_consecutive_min (frames per span)
    mask_consecutive_max: int = 7  # s3prl: task.mask_consecutive_max
    mask_allow_overlap: bool = True  # s3prl: task.mask_allow_overlap
    mask_bucket_ratio: float = 1.5  # s3prl: task.mask_bucket_ratio (only without overlap)
    zero_probability: float = 0.8  # BERT: chosen spans zeroed ...
    random_probability: float = 0.1  # ... replaced by random spans; the rest stay unchanged
    mask_frequency: float = 0.2  # s3prl: task.mask_frequency (largest band, share of bins; 0 = off)
    noise_proportion: float = 0.0  # s3prl: task.noise_proportion (0 = no magnitude alteration)
    noise_std: float = 0.2  # s3prl: Normal(0, 0.2) in task.py

    def __post_init__(self) -> None:
        if not 0 < self.mask_consecutive_min <= self.mask_consecutive_max:
            raise ValueError("task: need 0 < mask_consecutive_min <= mask_consecutive_max")
        for name in ("mask_proportion", "mask_frequency", "noise_proportion"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"task.{name} must be in [0, 1], found {getattr(self, name)}")
        if self.zero_probability + self.random_probability > 1.0:
            raise ValueError("task: zero_probability + random_probability must be <= 1")


def span_starts(length: int, span: int, config: MaskingConfig) -> torch.Tensor:
    """Start frames of the masked spans of one utterance of ``length`` frames.

    ``round(length * mask_proportion / span)`` distinct starts in ``[0, length - span - 1]``
    (s3prl's range); without overlap, starts sit on a grid ``round(span * bucket_ratio)`` apart.
    """
    last = max(length - span - 1, 0)
    count = round(length * config.mask_proportion / span)
    if config.mask_allow_overlap:
        return torch.randperm(last + 1)[:count]
    grid = max(1, round(span * config.mask_bucket_ratio))
    offset = int(torch.randint(0, min(span, last) + 1, ()))
    starts = torch.arange(offset, last + 1, grid)
    return starts[torch.randperm(len(starts))[:count]]


def spans_to_frames(starts: torch.Tensor, span: int, length: int) -> torch.Tensor:
    """(N,) starts -> (N * span,) frame indices, clipped to the utterance."""
    frames = (starts[:, None] + torch.arange(span)[None, :]).reshape(-1)
    return frames.clamp(max=max(length - 1, 0))


def alter_time(
    feats: torch.Tensor, lengths: torch.Tensor, config: MaskingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """feats (B, T, F) -> (altered copy, chosen frames (B, T) bool)."""
    out, chosen = feats.clone(), torch.zeros(feats.shape[:2], dtype=torch.bool)
    if config.mask_proportion == 0:
        return out, chosen.to(feats.device)
    for b, length in enumerate(lengths.tolist()):
        span = int(torch.randint(config.mask_consecutive_min, config.mask_consecutive_max + 1, ()))
        starts = span_starts(length, span, config)
        if len(starts) == 0:
            continue
        frames = spans_to_frames(starts, span, length)
        chosen[b, frames] = True
        dice = float(torch.rand(()))
        index = frames.to(feats.device)
        if dice < config.zero_probability:
            out[b, index] = 0.0
        elif dice < config.zero_probability + config.random_probability:
            others = torch.randperm(max(length - span - 1, 0) + 1)[: len(starts)]
            source = spans_to_frames(others, span, length).to(feats.device)
            out[b, index[: len(source)]] = feats[b, source]
    return out, chosen.to(feats.device)


def mask_frequency(
    feats: torch.Tensor, lengths: torch.Tensor, max_proportion: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero one random band of bins per utterance: (altered (B, T, F), chosen bins (B, F) bool)."""
    num_bins = feats.shape[2]
    chosen = torch.zeros(feats.shape[0], num_bins, dtype=torch.bool)
    for b in range(feats.shape[0]):
        width = int(torch.randint(0, int(num_bins * max_proportion) + 1, ()))
        start = int(torch.randint(0, num_bins - width + 1, ()))
        chosen[b, start : start + width] = True
    chosen = chosen.to(feats.device)
    return feats.masked_fill(chosen[:, None, :], 0.0), chosen


def add_noise(
    feats: torch.Tensor, lengths: torch.Tensor, proportion: float, std: float
) -> torch.Tensor:
    """With probability ``proportion`` per utterance, add N(0, std) to its valid frames."""
    hit = (torch.rand(feats.shape[0]) < proportion).to(feats.device)
    if not hit.any():
        return feats
    valid = (
        torch.arange(feats.shape[1], device=feats.device)[None, :]
        < lengths.to(feats.device)[:, None]
    )
    noise = torch.randn(feats.shape, dtype=feats.dtype) * std
    return feats + noise.to(feats.device) * (valid & hit[:, None])[:, :, None]


def alter(
    feats: torch.Tensor, lengths: torch.Tensor, config: MaskingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """All enabled alterations: feats (B, T, F), lengths (B,) ->
    (altered (B, T, F), label (B, T, F) bool: where the reconstruction loss is taken)."""
    valid = (
        torch.arange(feats.shape[1], device=feats.device)[None, :]
        < lengths.to(feats.device)[:, None]
    )
    altered, frames = alter_time(feats, lengths, config)
    label = frames[:, :, None].expand(-1, -1, feats.shape[2])
    if config.mask_frequency > 0:
        altered, bins = mask_frequency(altered, lengths, config.mask_frequency)
        label = label | (bins[:, None, :] & valid[:, :, None])
    if config.noise_proportion > 0:
        altered = add_noise(altered, lengths, config.noise_proportion, config.noise_std)
    return altered, label
