"""Pretraining losses, each exact on padded batches (only valid frames count)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def valid_mask(lengths: torch.Tensor, max_len: int, device: torch.device) -> torch.Tensor:
    """(B,) -> (B, T) bool, True on valid frames."""
    return torch.arange(max_len, device=device)[None, :] < lengths.to(device)[:, None]


def masked_reconstruction(
    pred: torch.Tensor, target: torch.Tensor, label: torch.Tensor, kind: str = "l1"
) -> torch.Tensor:
    """Mean L1 (or squared) error over the chosen elements; pred/target/label (B, T, F).

    s3prl: ``L1Loss()(pred.masked_select(label), target.masked_select(label))``. With no
    element chosen the loss is 0 (and carries no gradient) instead of NaN.
    """
    diff = (pred.float() - target.float()).masked_fill(~label, 0.0)
    error = diff.abs() if kind == "l1" else diff.pow(2)
    return error.sum() / label.sum().clamp(min=1)


def future_prediction(
    pred: torch.Tensor, feats: torch.Tensor, lengths: torch.Tensor, shift: int
) -> torch.Tensor:
    """APC: frame t predicts frame t + ``shift``; mean L1 over frames with t + shift < length.

    pred (B, T, F) computed from feats (B, T, F) by a causal model.
    """
    if shift < 1:
        raise ValueError(f"n_future must be >= 1, found {shift}")
    usable = valid_mask(lengths - shift, pred.shape[1] - shift, pred.device)  # (B, T - shift)
    error = (
        (pred[:, :-shift].float() - feats[:, shift:].float()).abs().mean(dim=-1)
    )  # (B, T - shift)
    return (error * usable).sum() / usable.sum().clamp(min=1)


def frame_reconstruction(
    pred: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """NPC: mean L1 over every valid frame and feature; pred/target (B, T, F)."""
    valid = valid_mask(lengths, pred.shape[1], pred.device)
    error = (pred.float() - target.float()).abs().mean(dim=-1)  # (B, T)
    return (error * valid).sum() / valid.sum().clamp(min=1)


def distillation(
    pred: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor, cosine_weight: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DistilHuBERT: L1 + ``cosine_weight`` x (-log sigmoid(cos)) per frame, over valid frames.

    pred/target (B, N, T, D) (N predicted teacher layers). Returns (total, l1, cosine term).
    """
    valid = valid_mask(lengths, pred.shape[2], pred.device)[:, None, :].expand(
        -1, pred.shape[1], -1
    )
    count = valid.sum().clamp(min=1)
    pred, target = pred.float(), target.float()
    l1 = ((pred - target).abs().mean(dim=-1) * valid).sum() / count
    cosine = -F.logsigmoid(F.cosine_similarity(pred, target, dim=-1))  # (B, N, T)
    cos_term = (cosine * valid).sum() / count
    return l1 + cosine_weight * cos_term, l1, cos_term
