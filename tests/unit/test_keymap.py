import pytest
import torch

from speechrep.convert.keymap import KeyMapError, load_strict, rename_keys

RULES = [
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"layers.\1.ff.in.\2"),
    (r"mask_emb", None),
]


def test_rename_and_drop():
    out = rename_keys({"encoder.layers.3.fc1.weight": torch.ones(1), "mask_emb": torch.ones(1)}, RULES)
    assert list(out) == ["layers.3.ff.in.weight"]


def test_unknown_key_named():
    with pytest.raises(KeyMapError, match=r"ckpt\.pt: unknown key\(s\): encoder\.extra"):
        rename_keys({"encoder.extra": torch.ones(1)}, RULES, where="ckpt.pt")


def test_two_keys_onto_one_target():
    rules = [(r"a|b", "c")]
    with pytest.raises(KeyMapError, match="map twice onto 'c'"):
        rename_keys({"a": torch.ones(1), "b": torch.ones(1)}, rules)


def test_load_strict_reports_missing_extra_and_shapes():
    module = torch.nn.Linear(2, 3)
    with pytest.raises(KeyMapError, match=r"missing key\(s\): bias; unexpected key\(s\): foo"):
        load_strict(module, {"weight": torch.zeros(3, 2), "foo": torch.zeros(1)})
    with pytest.raises(KeyMapError, match=r"shape mismatch: weight \(2, 3\) \(model expects \(3, 2\)\)"):
        load_strict(module, {"weight": torch.zeros(2, 3), "bias": torch.zeros(3)})
    load_strict(module, {"weight": torch.full((3, 2), 2.0), "bias": torch.zeros(3)})
    assert float(module.weight.detach().sum()) == 12.0


def test_load_strict_assign_takes_the_tensors_casts_and_unshares():
    with torch.device("meta"):
        module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(3, 2))
    weight = torch.randn(2, 3)
    state = {
        "0.weight": weight,
        "0.bias": torch.zeros(2, dtype=torch.float16),
        "1.weight": weight,  # the same storage under a second key
        "1.bias": torch.ones(2),
    }
    load_strict(module, state, assign=True)
    assert module[0].weight.data_ptr() == weight.data_ptr()  # taken, not copied
    assert module[0].bias.dtype == torch.float32  # cast to the module's dtype
    assert module[1].weight.data_ptr() != weight.data_ptr()  # two params never share storage
    assert torch.equal(module[1].weight, weight)
    # twin: the copying path leaves the module's own storage
    plain = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(3, 2))
    load_strict(plain, state)
    assert plain[0].weight.data_ptr() != weight.data_ptr()
