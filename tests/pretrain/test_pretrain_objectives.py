import torch
import torch.nn.functional as F

from speechrep.pretrain.objectives import (
    distillation,
    frame_reconstruction,
    future_prediction,
    masked_reconstruction,
)


def test_masked_reconstruction_is_l1_over_the_chosen_elements():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 9, 4, generator=g), torch.randn(2, 9, 4, generator=g)
    label = torch.rand(2, 9, 4, generator=g) > 0.6
    expected = F.l1_loss(pred.masked_select(label), target.masked_select(label))  # s3prl's form
    assert abs(float(masked_reconstruction(pred, target, label)) - float(expected)) < 1e-6
    moved = pred.clone()
    moved[label] += 0.5  # a chosen element moves: the loss must move
    assert abs(float(masked_reconstruction(moved, target, label)) - float(expected)) > 1e-3
    pred[~label] = 100.0  # unchosen elements never count
    assert abs(float(masked_reconstruction(pred, target, label)) - float(expected)) < 1e-6
    assert float(masked_reconstruction(pred, target, torch.zeros_like(label))) == 0.0


def test_future_prediction_ignores_padding():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 12, 3, generator=g)
    pred = torch.randn(2, 12, 3, generator=g)
    lengths = torch.tensor([12, 8])
    pairs = [
        (pred[b, t] - feats[b, t + 2]).abs().mean()
        for b in range(2)
        for t in range(int(lengths[b]) - 2)
    ]
    expected = torch.stack(pairs).mean()
    assert abs(float(future_prediction(pred, feats, lengths, 2)) - float(expected)) < 1e-6
    feats[1, 8:] = 99.0
    pred[1, 6:] = -99.0  # frames whose target lies in the padding
    assert abs(float(future_prediction(pred, feats, lengths, 2)) - float(expected)) < 1e-6
    pred[1, 5] += 1.0
    assert abs(float(future_prediction(pred, feats, lengths, 2)) - float(expected)) > 1e-3


def test_frame_reconstruction_and_distillation_on_valid_frames():
    g = torch.Generator().manual_seed(2)
    pred, target = torch.randn(2, 2, 10, 6, generator=g), torch.randn(2, 2, 10, 6, generator=g)
    lengths = torch.tensor([10, 4])
    total, l1, cos = distillation(pred, target, lengths, cosine_weight=0.5)
    frames = [(b, n, t) for b in range(2) for n in range(2) for t in range(int(lengths[b]))]
    l1_ref = torch.stack([(pred[f] - target[f]).abs().mean() for f in frames]).mean()
    cos_ref = torch.stack(
        [-F.logsigmoid(F.cosine_similarity(pred[f], target[f], dim=0)) for f in frames]
    ).mean()
    assert abs(float(l1) - float(l1_ref)) < 1e-6 and abs(float(cos) - float(cos_ref)) < 1e-6
    assert abs(float(total) - float(l1_ref + 0.5 * cos_ref)) < 1e-6
    pred[1, :, 4:] = 50.0
    assert abs(float(distillation(pred, target, lengths, 0.5)[0]) - float(total)) < 1e-6
    pred[1, 0, 3] += 1.0
    assert abs(float(distillation(pred, target, lengths, 0.5)[0]) - float(total)) > 1e-4

    rec = frame_reconstruction(pred[:, 0], target[:, 0], lengths)
    ref = torch.cat(
        [
            (pred[0, 0] - target[0, 0]).abs().mean(-1),
            (pred[1, 0, :4] - target[1, 0, :4]).abs().mean(-1),
        ]
    )
    assert abs(float(rec) - float(ref.mean())) < 1e-6
