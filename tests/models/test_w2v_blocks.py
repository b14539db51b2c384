"""Blocks of the wav2vec 2.0 family: conv extractor, positional convs, attention, relative bias."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from speechrep.nn.conv import (
    BASE_CONV_LAYERS,
    MaskedGroupNorm,
    build_feature_extractor,
    conv_output_lengths,
    parse_conv_layers,
    receptive_field,
    total_stride,
)
from speechrep.nn.relative_attention import RelativePositionBias, relative_position_buckets
from speechrep.nn.transformer import (
    ConvPositionalEmbedding,
    SelfAttention,
    StackedConvPositionalEmbedding,
    valid_mask,
)

TOL = 1e-5  # fp32 absolute, for blocks compared with a plain-torch computation


def test_parse_conv_layers_reads_fairseq_strings():
    assert parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2") == BASE_CONV_LAYERS
    assert (
        parse_conv_layers("[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]")
        == BASE_CONV_LAYERS
    )
    assert parse_conv_layers("[(8, 4, 2)]") == ((8, 4, 2),)


@pytest.mark.parametrize(
    "spec",
    [
        "__import__('os').getcwd()",
        "[(512, 10)]",
        "[(512, 10, 0)]",
        "[(1, 1, 1)] * 100000",
        "[(1.5, 2, 2)]",
        "",
    ],
)
def test_parse_conv_layers_rejects_anything_else(spec):
    with pytest.raises(ValueError, match="conv layer spec"):
        parse_conv_layers(spec)


def test_base_stack_numbers():
    assert receptive_field(BASE_CONV_LAYERS) == 400
    assert total_stride(BASE_CONV_LAYERS) == 320


def test_conv_lengths_match_the_actual_conv_output():
    layers = ((4, 10, 5), (4, 3, 2), (4, 2, 2))
    fe = build_feature_extractor(layers).eval()
    for n in range(receptive_field(layers), 200):
        feats, lens = fe(torch.randn(1, n), torch.tensor([n]))
        assert lens.tolist() == [feats.shape[-1]], n
    assert conv_output_lengths(torch.tensor([0, 5, 17]), layers).tolist() == [0, 0, 0]


def test_masked_group_norm_equals_group_norm_on_each_utterance():
    torch.manual_seed(0)
    norm = MaskedGroupNorm(6)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(3, 6, 20)
    lengths = torch.tensor([20, 13, 7])
    out = norm(x, lengths)
    reference = nn.GroupNorm(6, 6)
    reference.load_state_dict(norm.state_dict())
    for b, n in enumerate(lengths.tolist()):
        alone = reference(x[b : b + 1, :, :n])[0]
        assert (out[b, :, :n] - alone).abs().max() <= TOL
        if n < 20:
            assert out[b, :, n:].abs().max() == 0
    # twin: statistics over the whole padded axis (what a plain GroupNorm does) differ
    plain = reference(x)
    assert (plain[1, :, :13] - out[1, :, :13]).abs().max() > 1e-2


def test_group_norm_extractor_ignores_what_lies_in_the_padding():
    torch.manual_seed(1)
    fe = build_feature_extractor(((8, 10, 5), (8, 3, 2)), "group_norm").eval()
    wavs = torch.randn(2, 300)
    lens = torch.tensor([300, 180])
    zeros = wavs.clone()
    zeros[1, 180:] = 0
    a, la = fe(zeros, lens)
    b, _ = fe(wavs, lens)  # noise in the padding of utterance 1
    n = int(la[1])
    assert (a[1, :, :n] - b[1, :, :n]).abs().max() == 0
    # twin: changing a valid sample does change the output
    wavs[1, 10] += 1.0
    c, _ = fe(wavs, lens)
    assert (a[1, :, :n] - c[1, :, :n]).abs().max() > 1e-3


@pytest.mark.parametrize("kernel", [4, 5])
def test_conv_positional_embedding_is_weight_normed_conv(kernel):
    torch.manual_seed(2)
    pos = ConvPositionalEmbedding(8, kernel, groups=2)
    with torch.no_grad():
        pos.weight_g.mul_(torch.rand_like(pos.weight_g) + 0.5)
        pos.bias.normal_()
    conv = nn.Conv1d(8, 8, kernel, padding=kernel // 2, groups=2)
    conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
    with torch.no_grad():
        conv.parametrizations.weight.original0.copy_(pos.weight_g)
        conv.parametrizations.weight.original1.copy_(pos.weight_v)
        conv.bias.copy_(pos.bias)
    x = torch.randn(2, 11, 8)
    expected = F.gelu(conv(x.transpose(1, 2)))[..., :11].transpose(1, 2)
    out = pos(x)
    assert out.shape == x.shape
    assert (out - expected).abs().max() <= TOL
    with torch.no_grad():  # twin: another gain gives another output
        pos.weight_g[..., 0] += 0.5
    assert (pos(x) - expected).abs().max() > 1e-3


@pytest.mark.parametrize("module", ["single", "stacked"])
def test_positional_conv_sees_zeros_past_each_utterance(module):
    torch.manual_seed(3)
    if module == "single":
        pos = ConvPositionalEmbedding(8, 6, groups=2)
    else:
        pos = StackedConvPositionalEmbedding(8, conv_pos=8, groups=2, depth=3)  # kernel 3
    x = torch.randn(2, 12, 8)
    valid = valid_mask(torch.tensor([12, 7]), 12, x.device)
    batch = pos(x, valid)
    alone = pos(x[1:2, :7])
    assert (batch[1, :7] - alone[0]).abs().max() <= TOL
    # twin: without the mask, the padded frames leak into the valid ones
    leaked = pos(x)
    assert (leaked[1, :7] - alone[0]).abs().max() > 1e-3


def test_attention_key_padding_equals_the_truncated_sequence():
    torch.manual_seed(4)
    attn = SelfAttention(16, 4).eval()
    x = torch.randn(2, 9, 16)
    valid = valid_mask(torch.tensor([9, 5]), 9, x.device)
    out = attn(x, valid)
    alone = attn(x[1:2, :5])
    assert (out[1, :5] - alone[0]).abs().max() <= TOL
    assert (attn(x)[1, :5] - alone[0]).abs().max() > 1e-3  # twin: no mask


def test_relative_position_buckets_known_values():
    buckets = relative_position_buckets(1000, num_buckets=320, max_distance=800)
    # entry [q, k] is the bucket of k - q; keys after the query use the upper half (+160)
    assert buckets[0, 0] == 0 and buckets[10, 5] == 5 and buckets[5, 10] == 165
    assert buckets[79, 0] == 79 and buckets[80, 0] == 80  # exact below 80, log-spaced from 80
    assert buckets[800, 0] == 159 and buckets[0, 999] == 319  # clipped at the last bucket
    distance_row = buckets[999].flip(0)  # bucket of -d for d = 0..999
    assert bool((distance_row[1:] >= distance_row[:-1]).all())


def test_relative_position_bias_shape_and_lookup():
    bias = RelativePositionBias(num_buckets=16, max_distance=20, num_heads=3)
    out = bias(7)
    assert out.shape == (1, 3, 7, 7)
    bucket = relative_position_buckets(7, 16, 20)[2, 5]
    assert torch.equal(out[0, :, 2, 5], bias.embedding.weight[bucket])


@pytest.mark.parametrize("mode", ["group_norm", "layer_norm"])
@pytest.mark.parametrize("chunk_elements", [1, 16 * 4 * 3 * 5, 1 << 22])
def test_chunked_extraction_equals_the_whole_tensor(mode, chunk_elements):
    torch.manual_seed(2)
    layers = ((16, 10, 5), (16, 3, 2), (16, 2, 2))  # stride 20, receptive field 40
    fe = build_feature_extractor(layers, mode, conv_bias=True).eval()
    with torch.no_grad():
        for p in fe.parameters():
            p.normal_(std=0.5)
    lens = torch.tensor([1000, 733, 40, 41])
    wavs = torch.randn(4, 1000) * (torch.arange(1000)[None, :] < lens[:, None])
    fe.chunk_elements = chunk_elements
    with torch.no_grad():
        whole, whole_lens = fe._forward_whole(wavs, lens)
        chunked, lengths = fe(wavs, lens)  # no gradients: the chunked path
    assert lengths.tolist() == whole_lens.tolist() == [49, 36, 1, 1]
    assert chunked.shape == whole.shape
    for b, n in enumerate(lengths.tolist()):
        ref = whole[b, :, :n]
        assert (chunked[b, :, :n] - ref).abs().max() <= TOL * max(1.0, ref.abs().max().item())
        assert chunked[b, :, n:].abs().sum() == 0  # padded frames are zero
    if mode == "group_norm":
        # twin: statistics over the padded axis (every length = S) change utterance 1
        with torch.no_grad():
            padded_stats, _ = fe(wavs, torch.full((4,), 1000))
        assert (padded_stats[1, :, :36] - whole[1, :, :36]).abs().max() > 1e-2


def test_extractor_runs_whole_with_gradients_and_chunked_without(monkeypatch):
    fe = build_feature_extractor(((8, 10, 5), (8, 3, 2)), "group_norm")
    wavs, lens = torch.randn(2, 300), torch.tensor([300, 200])
    fe(wavs, lens)[0].sum().backward()  # gradients: the whole-tensor path
    assert fe.layers[0].conv.weight.grad is not None

    def refuse(*args):
        raise AssertionError("whole-tensor path used without gradients")

    monkeypatch.setattr(fe, "_forward_whole", refuse)
    with torch.no_grad():
        fe(wavs, lens)
    with pytest.raises(AssertionError, match="whole-tensor"):
        fe(wavs, lens)


def test_feed_forward_in_pieces_equals_the_whole(monkeypatch):
    import speechrep.nn.transformer as transformer

    torch.manual_seed(3)
    ffn = transformer.FeedForward(8, 32).eval()
    x = torch.randn(3, 7, 8)
    whole = ffn(x)  # gradients enabled: one piece
    monkeypatch.setattr(transformer, "FFN_CHUNK_ELEMENTS", 32 * 4)  # 4 rows a piece: 6 pieces
    with torch.no_grad():
        pieces = ffn(x)
    assert pieces.shape == whole.shape
    assert (pieces - whole).abs().max() <= TOL
    # twin: a row out of place is caught
    assert (pieces.roll(1, dims=1) - whole).abs().max() > 1e-2
