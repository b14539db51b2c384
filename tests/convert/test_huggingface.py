"""HuggingFace folders -> speechrep: detection, config mapping, key rules, file variants
(.bin through the restricted unpickler, old weight-norm names, shards), waveform settings and
clear errors. Numerical parity with transformers is in tests/models/test_hf_parity.py."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from speechrep.convert.cli import convert
from speechrep.convert.detect import read_checkpoint
from speechrep.convert.huggingface import is_hf_dir, read_hf_dir
from speechrep.convert.keymap import KeyMapError
from speechrep.convert.native import NativeCheckpoint, save_native
from speechrep.convert.safe_pickle import CheckpointError
from speechrep.upstream.load import build_upstream, load_upstream

transformers = pytest.importorskip("transformers")

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "num_conv_pos_embeddings": 8,
    "num_conv_pos_embedding_groups": 4,
    "conv_dim": (16, 16, 16),
    "conv_kernel": (10, 3, 2),
    "conv_stride": (5, 2, 2),
}
WAV = torch.randn(1, 2000, generator=torch.Generator().manual_seed(0))


def save_hf(
    folder: Path,
    model_class: str = "Wav2Vec2Model",
    config_class: str = "Wav2Vec2Config",
    **overrides,
) -> Path:
    config = getattr(transformers, config_class)(**{**TINY, **overrides})
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(folder)
    return folder


def outputs(model: torch.nn.Module) -> list[torch.Tensor]:
    with torch.no_grad():
        return list(model(WAV, torch.tensor([WAV.shape[1]])).hidden_states)


def edit_config(folder: Path, **changes) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


@pytest.fixture(scope="module")
def w2v_dir(tmp_path_factory) -> Path:
    return save_hf(tmp_path_factory.mktemp("w2v"))


def test_is_hf_dir(tmp_path, w2v_dir):
    assert is_hf_dir(w2v_dir)
    assert not is_hf_dir(tmp_path)  # empty
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "wav2vec2"}))
    assert not is_hf_dir(tmp_path)  # no weights
    native = NativeCheckpoint("fbank", {}, {"w": torch.zeros(1)})
    assert not is_hf_dir(save_native(native, tmp_path / "native"))  # no model_type


def test_config_mapping_of_each_family(tmp_path):
    w2v = read_hf_dir(
        save_hf(
            tmp_path / "a",
            feat_extract_norm="layer",
            do_stable_layer_norm=True,
            conv_bias=True,
            hidden_act="gelu_new",
            layer_norm_eps=1e-6,
        )
    )
    assert w2v.family == "wav2vec2"
    cfg = w2v.config
    assert cfg["conv_layers"] == [[16, 10, 5], [16, 3, 2], [16, 2, 2]]
    assert (cfg["extractor_mode"], cfg["layer_norm_first"], cfg["conv_bias"]) == (
        "layer_norm",
        True,
        True,
    )
    assert (cfg["activation"], cfg["layer_norm_eps"]) == ("gelu_accurate", 1e-6)
    assert (cfg["num_layers"], cfg["hidden_size"], cfg["ffn_size"], cfg["num_heads"]) == (
        2,
        32,
        64,
        4,
    )
    assert (cfg["pos_conv_kernel"], cfg["pos_conv_groups"], cfg["pos_conv_depth"]) == (8, 4, 1)
    wavlm = read_hf_dir(
        save_hf(tmp_path / "b", "WavLMModel", "WavLMConfig", num_buckets=16, max_bucket_distance=50)
    )
    assert wavlm.family == "wavlm"
    assert (wavlm.config["num_buckets"], wavlm.config["max_distance"]) == (16, 50)
    assert wavlm.config["relative_position_embedding"] and wavlm.config["gated_relative_position"]
    d2v = read_hf_dir(
        save_hf(
            tmp_path / "c",
            "Data2VecAudioModel",
            "Data2VecAudioConfig",
            num_conv_pos_embeddings=3,
            conv_pos_kernel_size=5,
        )
    )
    assert d2v.family == "data2vec"
    assert (d2v.config["pos_conv_depth"], d2v.config["extractor_mode"]) == (3, "layer_norm")
    # speechrep's stacked positional conv uses kernel conv_pos // depth
    assert d2v.config["pos_conv_kernel"] // d2v.config["pos_conv_depth"] == 5
    hubert = read_hf_dir(save_hf(tmp_path / "d", "HubertModel", "HubertConfig"))
    assert hubert.family == "hubert" and hubert.config["extractor_mode"] == "group_norm"


def test_missing_config_fields_take_transformers_defaults(tmp_path):
    folder = save_hf(tmp_path / "m", "WavLMModel", "WavLMConfig")
    config = json.loads((folder / "config.json").read_text())
    for key in ("max_bucket_distance", "do_stable_layer_norm", "conv_bias", "feat_extract_norm"):
        config.pop(key)
    (folder / "config.json").write_text(json.dumps(config))
    cfg = read_hf_dir(folder).config
    assert (cfg["max_distance"], cfg["layer_norm_first"], cfg["conv_bias"]) == (800, False, False)
    assert cfg["extractor_mode"] == "group_norm"


@pytest.mark.parametrize(
    ("model_class", "config_class", "heads"),
    [
        ("Wav2Vec2ForPreTraining", "Wav2Vec2Config", ("quantizer.", "project_q.", "project_hid.")),
        ("HubertForCTC", "HubertConfig", ("lm_head.",)),
        ("WavLMForSequenceClassification", "WavLMConfig", ("projector.", "classifier.")),
    ],
)
def test_task_models_drop_heads_and_match_the_base_model(
    tmp_path, model_class, config_class, heads
):
    extra = {"codevector_dim": 16, "proj_codevector_dim": 16, "num_codevectors_per_group": 4}
    folder = save_hf(
        tmp_path / "task",
        model_class,
        config_class,
        **(extra if "PreTraining" in model_class else {}),
    )
    state = load_file(str(folder / "model.safetensors"))
    assert all(any(k.startswith(h) for k in state) for h in heads)  # the heads are really there
    native = read_hf_dir(folder)
    assert not any("quantizer" in k or "head" in k or "mask" in k for k in native.state_dict)
    # the same weights saved as a bare base model read identically
    base = getattr(transformers, model_class).from_pretrained(folder).base_model
    base.save_pretrained(tmp_path / "base")
    bare = read_hf_dir(tmp_path / "base")
    assert native.state_dict.keys() == bare.state_dict.keys()
    assert all(torch.equal(native.state_dict[k], bare.state_dict[k]) for k in bare.state_dict)


def test_unknown_keys_are_errors_naming_them(tmp_path, w2v_dir):
    state = load_file(str(w2v_dir / "model.safetensors"))
    folder = tmp_path / "extra"
    folder.mkdir()
    (folder / "config.json").write_text((w2v_dir / "config.json").read_text())
    save_file(
        {**state, "encoder.layers.0.attention.mystery": torch.zeros(1)},
        str(folder / "model.safetensors"),
    )
    with pytest.raises(KeyMapError, match="encoder.layers.0.attention.mystery"):
        read_hf_dir(folder)
    # a head outside the prefix that is not a known training/task head
    prefixed = {f"wav2vec2.{k}": v for k, v in state.items()}
    save_file(
        {**prefixed, "speaker_head.weight": torch.zeros(1)}, str(folder / "model.safetensors")
    )
    with pytest.raises(KeyMapError, match="speaker_head.weight"):
        read_hf_dir(folder)
    save_file(prefixed, str(folder / "model.safetensors"))  # the twin: no stray key reads fine
    assert read_hf_dir(folder).state_dict.keys() == read_hf_dir(w2v_dir).state_dict.keys()


def test_missing_tensor_fails_at_build(tmp_path, w2v_dir):
    state = load_file(str(w2v_dir / "model.safetensors"))
    state.pop("encoder.layer_norm.bias")
    folder = tmp_path / "short"
    folder.mkdir()
    (folder / "config.json").write_text((w2v_dir / "config.json").read_text())
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(KeyMapError, match="encoder.layer_norm.bias"):
        build_upstream(read_hf_dir(folder))


def test_pytorch_model_bin_and_old_weight_norm_names_read_the_same(tmp_path, w2v_dir):
    reference = build_upstream(read_hf_dir(w2v_dir)).eval()
    state = load_file(str(w2v_dir / "model.safetensors"))
    renamed = {
        k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): v
        for k, v in state.items()
    }
    assert "encoder.pos_conv_embed.conv.weight_g" in renamed
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "config.json").write_text((w2v_dir / "config.json").read_text())
    torch.save(renamed, folder / "pytorch_model.bin")
    model = build_upstream(read_hf_dir(folder)).eval()
    assert all(torch.equal(a, b) for a, b in zip(outputs(model), outputs(reference), strict=True))


def test_pytorch_model_bin_goes_through_the_restricted_unpickler(tmp_path, w2v_dir):
    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text((w2v_dir / "config.json").read_text())
    torch.save(
        {"encoder.layer_norm.weight": torch.zeros(2), "x": Payload()}, folder / "pytorch_model.bin"
    )
    with pytest.raises(CheckpointError, match="refusing to load global 'builtins.print'"):
        read_hf_dir(folder)
    assert pickle.dumps(Payload())  # the payload itself is a valid pickle


def test_sharded_safetensors(tmp_path, w2v_dir):
    state = load_file(str(w2v_dir / "model.safetensors"))
    folder = tmp_path / "sharded"
    folder.mkdir()
    (folder / "config.json").write_text((w2v_dir / "config.json").read_text())
    keys = sorted(state)
    shards = {
        "model-00001-of-00002.safetensors": keys[::2],
        "model-00002-of-00002.safetensors": keys[1::2],
    }
    for name, part in shards.items():
        save_file({k: state[k] for k in part}, str(folder / name))
    weight_map = {k: name for name, part in shards.items() for k in part}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert is_hf_dir(folder)
    sharded, whole = read_hf_dir(folder).state_dict, read_hf_dir(w2v_dir).state_dict
    assert sharded.keys() == whole.keys()
    assert all(torch.equal(sharded[k], whole[k]) for k in whole)
    weight_map[keys[0]] = "../elsewhere.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError, match="leaves the folder"):
        read_hf_dir(folder)


def test_waveform_normalisation_from_preprocessor_config(tmp_path):
    group = save_hf(tmp_path / "g")
    layer = save_hf(tmp_path / "l", feat_extract_norm="layer")
    # no preprocessor_config.json: the family's usual setting (normalised iff LayerNorm extractor)
    assert read_hf_dir(group).config["normalize_waveform"] is False
    assert read_hf_dir(layer).config["normalize_waveform"] is True
    transformers.Wav2Vec2FeatureExtractor(do_normalize=True, sampling_rate=8000).save_pretrained(
        group
    )
    cfg = read_hf_dir(group).config
    assert (cfg["normalize_waveform"], cfg["sample_rate"]) == (True, 8000)
    transformers.Wav2Vec2FeatureExtractor(do_normalize=False).save_pretrained(layer)
    assert read_hf_dir(layer).config["normalize_waveform"] is False
    pre = json.loads((layer / "preprocessor_config.json").read_text())
    pre["feature_extractor_type"] = "WhisperFeatureExtractor"
    (layer / "preprocessor_config.json").write_text(json.dumps(pre))
    with pytest.raises(CheckpointError, match="WhisperFeatureExtractor"):
        read_hf_dir(layer)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_type": "wav2vec2-conformer"}, "model_type 'wav2vec2-conformer' is not supported"),
        ({"add_adapter": True}, "add_adapter"),
        ({"adapter_attn_dim": 16}, "adapter_attn_dim"),
        ({"feat_extract_activation": "relu"}, "feat_extract_activation 'relu'"),
        ({"hidden_act": "quick_gelu"}, "hidden_act 'quick_gelu'"),
        ({"feat_extract_norm": "batch"}, "feat_extract_norm 'batch'"),
        ({"conv_kernel": [10, 3]}, "lengths differ"),
        ({"num_attention_heads": 5}, "multiple of num_heads"),
        ({"conv_dim": 512}, "malformed config"),
        ({"hidden_size": "big"}, "unsupported model config"),
    ],
)
def test_unsupported_settings_raise(tmp_path, w2v_dir, changes, message):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "config.json").write_text((w2v_dir / "config.json").read_text())
    (folder / "model.safetensors").write_bytes((w2v_dir / "model.safetensors").read_bytes())
    read_hf_dir(folder)  # the twin: unchanged, it reads
    edit_config(folder, **changes)
    with pytest.raises(CheckpointError, match=message):
        read_hf_dir(folder)


def test_family_specific_unsupported_settings(tmp_path):
    hubert = save_hf(tmp_path / "h", "HubertModel", "HubertConfig")
    edit_config(hubert, conv_pos_batch_norm=True)
    with pytest.raises(CheckpointError, match="conv_pos_batch_norm"):
        read_hf_dir(hubert)
    edit_config(hubert, conv_pos_batch_norm=False, feat_proj_layer_norm=False)
    with pytest.raises(CheckpointError, match="feat_proj_layer_norm"):
        read_hf_dir(hubert)
    d2v = save_hf(
        tmp_path / "d",
        "Data2VecAudioModel",
        "Data2VecAudioConfig",
        num_conv_pos_embeddings=2,
        conv_pos_kernel_size=5,
    )
    edit_config(d2v, num_conv_pos_embeddings=1)
    with pytest.raises(CheckpointError, match="num_conv_pos_embeddings >= 2"):
        read_hf_dir(d2v)


def test_loading_paths_detect_and_convert(tmp_path, w2v_dir):
    direct = build_upstream(read_hf_dir(w2v_dir)).eval()
    assert read_checkpoint(w2v_dir).family == "wav2vec2"
    assert read_checkpoint(w2v_dir / "config.json").family == "wav2vec2"
    by_path = load_upstream(w2v_dir)
    by_name = load_upstream("hubert", ckpt=w2v_dir)  # a compatible family's registered name
    native = load_upstream(convert(w2v_dir, tmp_path / "native"))
    for model in (by_path, by_name, native):
        assert all(torch.equal(a, b) for a, b in zip(outputs(model), outputs(direct), strict=True))
    with pytest.raises(ValueError, match="holds a 'wav2vec2' model"):
        load_upstream("wavlm_base", ckpt=w2v_dir)
    with pytest.raises(FileNotFoundError, match="config.json"):
        read_hf_dir(tmp_path)
