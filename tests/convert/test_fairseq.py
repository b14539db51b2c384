"""Readers of fairseq / s3prl-converted / WavLM / distiller checkpoints (convert/fairseq.py).

The fairseq-original fixtures hold the weights and config of the s3prl-converted ones, so their
expected hidden states are ``<family>.outputs.npz`` (see fixtures/reference/FAIRSEQ.md).
"""

from __future__ import annotations

import pytest
import torch
from upstream_checks import perturb, reference_error

from speechrep.convert.detect import read_checkpoint
from speechrep.convert.keymap import KeyMapError
from speechrep.convert.native import save_native
from speechrep.convert.safe_pickle import CheckpointError, safe_load
from speechrep.upstream.load import load_upstream
from speechrep.upstream.registry import UPSTREAMS

TOL = 1e-4  # fp32 absolute
FAIRSEQ_FILES = {  # file -> (family, outputs)
    "wav2vec2.fairseq.pt": ("wav2vec2", "wav2vec2"),
    "wav2vec2.fairseq_args.pt": ("wav2vec2", "wav2vec2"),
    "hubert.fairseq.pt": ("hubert", "hubert"),
    "hubert.fairseq_plaincfg.pt": ("hubert", "hubert"),
    "data2vec.fairseq.pt": ("data2vec", "data2vec"),
}


@pytest.mark.parametrize("name", sorted(FAIRSEQ_FILES))
def test_fairseq_original_matches_s3prl(reference_dir, name):
    family, outputs = FAIRSEQ_FILES[name]
    model = load_upstream(family, ckpt=reference_dir / name)
    assert type(model).family == family and model.num_layers == 3
    assert reference_error(model, outputs) <= TOL


@pytest.mark.parametrize("name", sorted(FAIRSEQ_FILES))
def test_fairseq_original_perturbed_twin_fails(reference_dir, name):
    family, outputs = FAIRSEQ_FILES[name]
    model = load_upstream(reference_dir / name)  # format and family auto-detected
    assert type(model).family == family
    perturb(model, "encoder.layers.0.feed_forward.fc1.weight", 0.05)
    assert reference_error(model, outputs) > TOL


@pytest.mark.parametrize(
    ("converted", "originals"),
    [
        ("wav2vec2.pt", ["wav2vec2.fairseq.pt", "wav2vec2.fairseq_args.pt"]),
        ("hubert.pt", ["hubert.fairseq.pt", "hubert.fairseq_plaincfg.pt"]),
        ("data2vec.pt", ["data2vec.fairseq.pt"]),
    ],
)
def test_every_layout_reads_to_the_same_model(reference_dir, converted, originals):
    """s3prl-converted, fairseq cfg (omegaconf / plain) and 2020 args: one config, one state."""
    base = read_checkpoint(reference_dir / converted)
    assert base.extra["format"] == "s3prl-converted"
    for name in originals:
        other = read_checkpoint(reference_dir / name)
        assert other.extra["format"] == "fairseq"
        assert (other.family, other.config) == (base.family, base.config)
        assert sorted(other.state_dict) == sorted(base.state_dict)
        assert all(torch.equal(other.state_dict[k], v) for k, v in base.state_dict.items())


def test_config_mapping(reference_dir):
    d2v = read_checkpoint(reference_dir / "data2vec.pt").config
    assert d2v["extractor_mode"] == "layer_norm" and d2v["pos_conv_depth"] == 5
    assert d2v["normalize_waveform"] is True and d2v["feature_projection"] is True
    args = read_checkpoint(reference_dir / "wav2vec2.fairseq_args.pt").config  # 2020: defaults
    assert args["pos_conv_depth"] == 1 and args["extractor_mode"] == "group_norm"
    assert args["conv_layers"] == [[32, 10, 5]] + [[32, 3, 2]] * 4 + [[32, 2, 2]] * 2
    wavlm = read_checkpoint(reference_dir / "wavlm.pt")
    assert wavlm.family == "wavlm" and wavlm.extra["format"] == "wavlm"
    assert wavlm.config["max_distance"] == 800 and wavlm.config["gated_relative_position"] is True


def test_native_round_trip_keeps_the_outputs(reference_dir, tmp_path):
    save_native(read_checkpoint(reference_dir / "hubert.fairseq.pt"), tmp_path / "hubert")
    model = load_upstream(tmp_path / "hubert")
    assert reference_error(model, "hubert") <= TOL


def rewrite(reference_dir, tmp_path, name: str, edit) -> str:
    """Load a fixture as plain data, apply ``edit``, save it under tmp_path; return the path."""
    payload = safe_load(reference_dir / name)
    edit(payload)
    path = tmp_path / f"edited_{name}"
    torch.save(payload, path)
    return str(path)


def _weights(payload):
    return payload.get("model_weight", payload.get("model"))


CHECKPOINT_ERRORS = [
    ("hubert.pt", lambda p: p.pop("dictionaries_symbols"), "dictionaries_symbols"),
    ("hubert.pt", lambda p: p["model_cfg"].pop("label_rate"), "label_rate"),
    ("hubert.pt", lambda p: p["dictionaries_symbols"][0].pop(), "label_embs_concat has 504 rows"),
    ("data2vec.pt", lambda p: p["model_weight"].pop("_ema"), "_ema"),
    (
        "hubert.fairseq.pt",
        lambda p: p["cfg"]["model"].update(_name="transformer_lm"),
        "transformer_lm",
    ),
    ("hubert.fairseq.pt", lambda p: p["cfg"]["model"].update(layer_type="conformer"), "conformer"),
    (
        "wav2vec2.fairseq_args.pt",
        lambda p: p["args"].update(arch="wav2vec"),
        "'wav2vec' is not one",
    ),
    (
        "wav2vec2.fairseq.pt",
        lambda p: p["cfg"]["model"].update(conv_feature_layers="[(512, 10, 5)] + exec('x')"),
        "conv layer spec",
    ),
    (
        "wav2vec2.fairseq.pt",
        lambda p: p.update(model={f"w2v_encoder.w2v_model.{k}": v for k, v in p["model"].items()}),
        "fine-tuned",
    ),
    ("wavlm.pt", lambda p: p["cfg"].update(extractor_mode="batch_norm"), "extractor_mode"),
    ("wavlm.pt", lambda p: p["cfg"].update(activation_fn="glu"), "activation"),
]


@pytest.mark.parametrize(("name", "edit", "message"), CHECKPOINT_ERRORS)
def test_bad_checkpoint_is_a_one_line_error_naming_the_file(
    reference_dir, tmp_path, name, edit, message
):
    path = rewrite(reference_dir, tmp_path, name, edit)
    with pytest.raises(CheckpointError, match=message) as err:
        read_checkpoint(path)
    assert str(err.value).startswith(path) and "\n" not in str(err.value)


KEY_ERRORS = [
    ("wav2vec2.pt", lambda p: _weights(p).update(stray=torch.zeros(1)), "unknown key.*stray"),
    # training-only keys are per family: HuBERT's label embeddings are not wav2vec 2.0's
    (
        "wav2vec2.fairseq.pt",
        lambda p: _weights(p).update(label_embs_concat=torch.zeros(1)),
        "label_embs",
    ),
    (
        "wavlm.pt",
        lambda p: _weights(p).update({"quantizer.vars": torch.zeros(1)}),
        "quantizer.vars",
    ),
    (
        "hubert.pt",
        lambda p: _weights(p).pop("encoder.layer_norm.weight"),
        "missing key.*layer_norm",
    ),
    (
        "wavlm.pt",
        lambda p: _weights(p).pop("encoder.layers.1.self_attn.grep_a"),
        "missing key.*gate_const",
    ),
    (
        "data2vec.fairseq.pt",
        lambda p: p["cfg"]["model"].update(pos_conv_depth=1),
        "missing key.*pos_conv.weight_g.*unexpected key.*pos_conv.layers",
    ),
]


@pytest.mark.parametrize(("name", "edit", "message"), KEY_ERRORS)
def test_key_mismatch_names_the_keys_and_the_file(reference_dir, tmp_path, name, edit, message):
    path = rewrite(reference_dir, tmp_path, name, edit)
    with pytest.raises(KeyMapError, match=message) as err:
        load_upstream(path)
    assert path in str(err.value) and "\n" not in str(err.value)


def test_unedited_rewrite_still_loads(reference_dir, tmp_path):
    """The twin of the error tests: the rewrite itself breaks nothing."""
    for name in ("hubert.pt", "wavlm.pt", "data2vec.fairseq.pt", "wav2vec2.fairseq_args.pt"):
        load_upstream(rewrite(reference_dir, tmp_path, name, lambda p: None))


def test_truncated_and_foreign_files(reference_dir, tmp_path):
    data = (reference_dir / "hubert.fairseq.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        load_upstream(tmp_path / "cut.pt")
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt: unknown checkpoint format"):
        load_upstream(tmp_path / "other.pt")


def test_registered_name_with_a_file_of_another_family(reference_dir):
    with pytest.raises(ValueError, match="holds a 'hubert' model, not a 'wavlm' model"):
        load_upstream("wavlm", ckpt=reference_dir / "hubert.fairseq.pt")
    assert type(load_upstream("hubert", ckpt=reference_dir / "hubert.pt")).family == "hubert"


REGISTERED = {
    "wav2vec2": "wav2vec2", "wav2vec2_base_960": "wav2vec2", "wav2vec2_large_960": "wav2vec2",
    "wav2vec2_large_ll60k": "wav2vec2", "xls_r_300m": "wav2vec2", "hubert": "hubert",
    "hubert_base": "hubert", "hubert_large_ll60k": "hubert", "wavlm_base": "wavlm",
    "wavlm_base_plus": "wavlm", "wavlm_large": "wavlm", "data2vec_base_960": "data2vec",
    "data2vec_large_ll60k": "data2vec", "distilhubert": "distilhubert", "distilhubert_base": "distilhubert",
}  # fmt: skip


def test_registry_entries():
    for name, family in REGISTERED.items():
        info = UPSTREAMS[name]
        assert info.family == family and info.url.startswith("https://huggingface.co/")
        large = "large" in name or "xls_r" in name
        layers = 25 if large else 6 if family == "distilhubert" else 13
        assert (info.num_layers, info.hidden_size) == (layers, 1024 if large else 768)
    assert UPSTREAMS["wav2vec2"].url == UPSTREAMS["wav2vec2_base_960"].url
    assert UPSTREAMS["hubert"].url == UPSTREAMS["hubert_base"].url
    assert UPSTREAMS["distilhubert"].url == UPSTREAMS["distilhubert_base"].url
    assert UPSTREAMS["distilhubert"].num_layers == 6 and UPSTREAMS["hubert"].num_layers == 13
