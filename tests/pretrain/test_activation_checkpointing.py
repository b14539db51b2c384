"""Activation checkpointing and chunked attention in the BERT encoder: same outputs and gradients."""

from __future__ import annotations

import pytest
import torch

from speechrep.nn import bert
from speechrep.nn.bert import build_bert_encoder, chunked_attention, key_padding_mask
from speechrep.train.loop import set_activation_checkpointing

TOL = 1e-6  # max abs difference of gradients


def _encoder(dropout: float) -> bert.BertEncoder:
    torch.manual_seed(0)
    return build_bert_encoder(
        12, 32, 2, 4, 64, hidden_dropout=dropout, attention_dropout=dropout
    ).train()


def _grads(enc: bert.BertEncoder, feats: torch.Tensor, lens: torch.Tensor) -> list[torch.Tensor]:
    enc.zero_grad()
    x = feats.clone().requires_grad_(True)
    states = enc(x, lens)
    (states[-1].square().sum() + states[1].sum()).backward()
    return [x.grad] + [p.grad.clone() for p in enc.parameters()]


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((u - v).abs().max()) for u, v in zip(a, b, strict=True))


@pytest.mark.parametrize("mode", ["attention", "layers"])
@pytest.mark.parametrize("padded", [True, False])
def test_checkpointed_gradients_equal_plain(padded: bool, mode: str, monkeypatch) -> None:
    monkeypatch.setattr(bert, "ATTENTION_CHUNK_ELEMENTS", 2 * 4 * 5 * 23)  # several chunks
    feats = torch.randn(2, 23, 12, generator=torch.Generator().manual_seed(1))
    lens = torch.tensor([23, 17 if padded else 23])
    enc = _encoder(dropout=0.0)
    plain = _grads(enc, feats, lens)
    assert set_activation_checkpointing(enc, mode) == 1
    assert all(m.recompute for m in enc.modules() if isinstance(m, bert.SelfAttention))
    assert _max_diff(_grads(enc, feats, lens), plain) <= TOL
    # Perturbed twin: one changed weight must change the gradients.
    with torch.no_grad():
        enc.layers[0].attention.query.weight[0, 0] += 0.5
    assert _max_diff(_grads(enc, feats, lens), plain) > TOL


def test_chunked_attention_with_dropout_replays_masks(monkeypatch) -> None:
    """Backward through recomputed chunks uses the forward's dropout masks (fixed-seed twin)."""
    monkeypatch.setattr(bert, "ATTENTION_CHUNK_ELEMENTS", 2 * 3 * 4 * 9)
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 3, 9, 8, generator=gen, requires_grad=True) for _ in range(3))
    mask = key_padding_mask(torch.tensor([9, 6]), 9)

    def run(fn) -> list[torch.Tensor]:
        torch.manual_seed(5)
        out = fn(q, k, v, mask, 0.3)
        grads = torch.autograd.grad(out.square().sum(), (q, k, v))
        return [out.detach(), *grads]

    def reference(q, k, v, mask, p):  # the same chunks, kept for backward (no recompute)
        rows = bert.ATTENTION_CHUNK_ELEMENTS // (2 * 3 * 9)
        return torch.cat(
            [bert._attend(q[:, :, i : i + rows], k, v, mask, p) for i in range(0, 9, rows)], dim=2
        )

    got, want = run(chunked_attention), run(reference)
    assert _max_diff(got, want) <= TOL
    torch.manual_seed(6)  # a different draw of dropout masks must differ
    other = chunked_attention(q, k, v, mask, 0.3).detach()
    assert float((other - got[0]).abs().max()) > TOL


def test_eval_outputs_unchanged_by_switch() -> None:
    feats = torch.randn(2, 15, 12, generator=torch.Generator().manual_seed(3))
    lens = torch.tensor([15, 9])
    enc = _encoder(dropout=0.1).eval()
    with torch.no_grad():
        before = enc(feats, lens)
        enc.activation_checkpointing = "layers"
        after = enc(feats, lens)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_unpadded_batch_passes_no_mask() -> None:
    assert key_padding_mask(torch.tensor([7, 7]), 7) is None
    mask = key_padding_mask(torch.tensor([7, 5]), 7)
    assert mask is not None and mask.shape == (2, 1, 1, 7) and int(mask.sum()) == 12


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="activation_checkpointing"):
        _encoder(0.0).activation_checkpointing = "all"


def test_attention_dropout_is_unbiased_and_masks_padding() -> None:
    """Averaged over draws, attention with dropout p equals attention without it (tol 0.03)."""
    gen = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(1, 2, 5, 4, generator=gen) for _ in range(3))
    mask = key_padding_mask(torch.tensor([3]), 5)
    want = bert.F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.manual_seed(0)
    mean = torch.stack([bert._attend(q, k, v, mask, 0.1) for _ in range(4000)]).mean(0)
    assert float((mean - want).abs().max()) < 0.03
    v_pad = v.clone()
    v_pad[:, :, 3:] += 100.0  # padded keys must not leak into any output (|v| < 4 otherwise)
    assert float((bert._attend(q, k, v_pad, mask, 0.1)).abs().max()) < 20.0
    # Twin: without the mask the padded values do leak (by ~100 x their attention weight).
    assert float((bert._attend(q, k, v_pad, None, 0.1)).abs().max()) > 20.0


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_cpu_drop_mask_drops_p_of_every_lane(p) -> None:
    torch.manual_seed(7)
    drop, keep = bert.draw_drop_mask(torch.Size([4, 3, 101, 1001]), p, torch.device("cpu"))
    assert drop.shape == (4, 3, 101, 1001) and drop.dtype == torch.bool
    assert keep == bert.kept_fraction(p, torch.device("cpu"))
    assert abs(keep - (1 - p)) <= 2**-16
    n = drop[..., :1000].numel() // 2  # ~606k per lane: 4 sigma ~ 0.0015 at p = 0.1
    for lane in (0, 1):  # the two 16-bit halves of each random 32-bit draw
        assert abs(float(drop[..., lane:1000:2].float().mean()) - (1 - keep)) < 4 * (p / n) ** 0.5
    assert abs(float(drop[..., 1000].float().mean()) - p) < 0.02  # the odd last column
    # twin: one threshold for both halves would drop 2p of the high half (its sign bit is 0)
    high = torch.empty(n, dtype=torch.int32).random_().view(torch.int16)[1::2]
    naive = float((high >= round(2 * keep * 2**15) - 2**15).float().mean())
    assert abs(naive - p) > 0.05
    again, _ = bert.draw_drop_mask(torch.Size([4, 3, 101, 1001]), p, torch.device("cpu"))
    assert (again != drop).any()  # fresh draws
