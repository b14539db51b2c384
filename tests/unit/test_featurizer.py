import pytest
import torch

from speechrep import Featurizer, UpstreamOutput


def _out(num=3, b=2, t=4, d=5):
    states = tuple(torch.full((b, t, d), float(i + 1)) for i in range(num))
    return UpstreamOutput(states, torch.tensor([4, 2]))


def test_equal_weights_give_mean():
    x, n = Featurizer(3)(_out())
    assert torch.allclose(x, torch.full_like(x, 2.0)) and n.tolist() == [4, 2]


def test_weighted_sum_matches_manual_softmax():
    feat = Featurizer(3)
    with torch.no_grad():
        feat.weights.copy_(torch.tensor([0.0, 1.0, 2.0]))
    w = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0)
    x, _ = feat(_out())
    assert torch.allclose(x[0, 0, 0], (w * torch.tensor([1.0, 2.0, 3.0])).sum())
    assert torch.allclose(feat.layer_weights(), w)
    assert abs(float(feat.layer_weights().detach().sum()) - 1) < 1e-6


def test_selected_layers_and_negative_index():
    feat = Featurizer(3, layers=[0, -1])
    assert feat.layers == [0, 2]
    x, _ = feat(_out())
    assert torch.allclose(x, torch.full_like(x, 2.0))  # mean of 1 and 3


def test_single_layer_passes_through():
    out = _out(num=1)
    feat = Featurizer(1)
    x, _ = feat(out)
    assert x is out.hidden_states[0] and feat.weights is None
    assert feat.layer_weights().tolist() == [1.0]


def test_layer_norm_option():
    states = (torch.randn(1, 3, 8) * 5 + 2, torch.randn(1, 3, 8) * 3 - 1)
    x, _ = Featurizer(2, layer_norm=True)(UpstreamOutput(states, torch.tensor([3])))
    normed = [torch.nn.functional.layer_norm(s, (8,)) for s in states]
    assert torch.allclose(x, (normed[0] + normed[1]) / 2, atol=1e-6)


def test_gradient_reaches_weights():
    feat = Featurizer(3)
    x, _ = feat(_out())
    (x * torch.arange(5.0)).sum().backward()
    assert feat.weights.grad is not None


def test_errors():
    with pytest.raises(ValueError, match="out of range"):
        Featurizer(3, layers=[3])
    with pytest.raises(ValueError, match="distinct"):
        Featurizer(3, layers=[0, -3])
    with pytest.raises(ValueError, match="built for 2 hidden states, upstream gave 3"):
        Featurizer(2)(_out())
