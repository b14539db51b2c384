"""s3prl's own layouts <-> speechrep native: generic reader path, export back to s3prl's layout,
safe loading of runner-written files, and clear errors on bad files."""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import types

import pytest
import torch
from upstream_checks import REFERENCE, load_reference_wavs

from speechrep.audio.collate import pad_batch
from speechrep.convert.cli import convert
from speechrep.convert.detect import read_checkpoint
from speechrep.convert.keymap import KeyMapError
from speechrep.convert.native import NativeCheckpoint, save_native
from speechrep.convert.s3prl_export import export_s3prl
from speechrep.convert.safe_pickle import CheckpointError, safe_load
from speechrep.upstream.load import FAMILY_CLASSES, build_upstream, load_upstream
from speechrep.upstream.registry import UPSTREAMS

NAMES = ("tera", "mockingjay", "audio_albert", "apc", "vq_apc", "npc")


def _outputs(up: torch.nn.Module) -> list[torch.Tensor]:
    batch, lens = pad_batch(load_reference_wavs()[:2])
    with torch.no_grad():
        return list(up(batch, lens).hidden_states)


def _assert_same_model(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert all(torch.equal(x, y) for x, y in zip(_outputs(a), _outputs(b), strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_generic_reader_to_native_gives_identical_outputs(tmp_path, name):
    native = read_checkpoint(REFERENCE / f"{name}.ckpt")
    assert native.family in FAMILY_CLASSES
    assert build_upstream(native).family == native.family
    original = load_upstream(REFERENCE / f"{name}.ckpt")
    save_native(native, tmp_path / "native")
    copy = load_upstream(tmp_path / "native")
    assert copy.family == original.family
    _assert_same_model(original, copy)


@pytest.mark.parametrize("name", NAMES)
def test_export_reproduces_s3prl_layout_and_reloads_identically(tmp_path, name):
    source = safe_load(REFERENCE / f"{name}.ckpt")
    native_dir = convert(REFERENCE / f"{name}.ckpt", tmp_path / "native")
    out = convert(native_dir, tmp_path / f"{name}.ckpt", to="s3prl")  # verifies the re-read weights
    torch.load(out, map_location="cpu", weights_only=True)  # s3prl 0.4.18 loads APC/NPC this way
    written = safe_load(out)
    weights, config_key = (
        ("Transformer", "Upstream_Config") if "Transformer" in source else ("model", "config")
    )
    assert (
        written[weights].keys() == source[weights].keys()
    )  # pre-LN aliases / shared copies included
    assert all(torch.equal(written[weights][k], source[weights][k]) for k in source[weights])
    if config_key == "config":
        assert written["config"]["model"] == source["config"]["model"]
        assert written["config"]["data"] == source["config"]["data"]
    else:
        assert written[config_key]["transformer"] == source[config_key]["transformer"]
        assert written[config_key]["audio"]["input"] == source[config_key]["audio"]["input"]
        assert (
            written[config_key]["task"]["sequence_length"]
            == source[config_key]["task"]["sequence_length"]
        )
        assert "Config" in written and "transformer" not in written["Config"]
    _assert_same_model(load_upstream(REFERENCE / f"{name}.ckpt"), load_upstream(out))


def test_export_of_native_without_source_extras(tmp_path):
    # A native checkpoint with no s3prl leftovers (as pre-training writes) still exports.
    native = read_checkpoint(REFERENCE / "tera.ckpt")
    bare = NativeCheckpoint(native.family, native.config, native.state_dict)
    out = export_s3prl(bare, tmp_path / "bare.ckpt")
    written = safe_load(out)
    assert "SpecHead" not in written and written["Upstream_Config"]["task"]["mask_frequency"] == 0.2
    _assert_same_model(load_upstream(REFERENCE / "tera.ckpt"), load_upstream(out))


def test_export_errors(tmp_path):
    native = read_checkpoint(REFERENCE / "tera.ckpt")
    with pytest.raises(ValueError, match="no own checkpoint layout for family 'hubert'"):
        export_s3prl(NativeCheckpoint("hubert", {}, {}), tmp_path / "x.ckpt")
    bad = NativeCheckpoint(
        "tera", native.config, {**native.state_dict, "encoder.extra.weight": torch.ones(1)}
    )
    with pytest.raises(
        ValueError, match=r"weights do not fit the 'tera' layout.*encoder\.extra\.weight"
    ):
        export_s3prl(bad, tmp_path / "x.ckpt")
    features = {
        **native.config["features"],
        "stft": {**native.config["features"]["stft"], "target_level": None},
    }
    with pytest.raises(ValueError, match="cannot be written in s3prl's layout"):
        export_s3prl(
            NativeCheckpoint("tera", {**native.config, "features": features}, native.state_dict),
            tmp_path / "x.ckpt",
        )
    assert not (tmp_path / "x.ckpt").exists()


# ----------------------------------------------------------------------------- safe loading


class WarmupScheduler:
    """Stands for a scheduler class that very old files pickled from a module named `optimizers`."""

    def __init__(self):
        self.step_count, self.warmup = 10, 0.07


WarmupScheduler.__module__ = "optimizers"


def test_runner_written_file_with_namespace_optimizer_and_old_scheduler_loads(
    tmp_path, monkeypatch
):
    # s3prl's pre-training runner pickles Args (argparse.Namespace) and the optimizer state;
    # very old files also hold a scheduler object from a module named `optimizers`.
    module = types.ModuleType("optimizers")
    module.WarmupScheduler = WarmupScheduler
    monkeypatch.setitem(sys.modules, "optimizers", module)
    payload = safe_load(REFERENCE / "tera.ckpt")
    adam_state = {
        "state": {
            0: {
                "step": torch.tensor(1000.0),
                "exp_avg": torch.randn(48, 80),
                "exp_avg_sq": torch.rand(48, 80),
            }
        },
        "param_groups": [
            {
                "lr": 2e-4,
                "betas": (0.9, 0.999),
                "eps": 1e-8,
                "weight_decay": 0.01,
                "amsgrad": False,
                "params": [0],
            }
        ],
    }
    payload.update(
        Args=argparse.Namespace(config="x.yaml", seed=1337),
        Optimizer=adam_state,
        Scheduler=WarmupScheduler(),
    )
    torch.save(payload, tmp_path / "states-1000.ckpt")
    monkeypatch.delitem(sys.modules, "optimizers")
    with pytest.raises(pickle.UnpicklingError):  # torch's own weights_only loader refuses it
        torch.load(tmp_path / "states-1000.ckpt", weights_only=True)
    _assert_same_model(
        load_upstream(REFERENCE / "tera.ckpt"), load_upstream(tmp_path / "states-1000.ckpt")
    )


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_code_in_a_checkpoint_is_refused(tmp_path):
    payload = safe_load(REFERENCE / "apc.ckpt")
    payload["config"]["task"]["hook"] = _Evil()
    torch.save(payload, tmp_path / "evil.ckpt")
    with pytest.raises(
        CheckpointError, match=r"evil\.ckpt: refusing to load global 'posix\.system'"
    ):
        load_upstream(tmp_path / "evil.ckpt")


# ----------------------------------------------------------------------------- bad files


def test_truncated_file(tmp_path):
    data = (REFERENCE / "npc.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.ckpt: not a readable PyTorch checkpoint"):
        load_upstream(tmp_path / "cut.ckpt")


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("tera", lambda p: p["Upstream_Config"].pop("audio"), "missing config section 'audio'"),
        (
            "tera",
            lambda p: p["Upstream_Config"].pop("transformer"),
            "missing config section 'transformer'",
        ),
        (
            "tera",
            lambda p: p["Upstream_Config"]["transformer"].pop("num_attention_heads"),
            "config section 'transformer' lacks 'num_attention_heads'",
        ),
        (
            "mockingjay",
            lambda p: p["Upstream_Config"]["audio"]["input"].update(feat_type="mfcc"),
            "audio.input.feat_type must be 'mel' or 'linear'",
        ),
        ("apc", lambda p: p["config"].pop("data"), "missing config section 'data'"),
        (
            "apc",
            lambda p: p["config"]["model"]["paras"].pop("hidden_size"),
            "'model.paras' lacks 'hidden_size'",
        ),
        (
            "npc",
            lambda p: p["config"]["model"]["paras"].update(n_layerz=3),
            r"unknown key\(s\) \['n_layerz'\]",
        ),
        (
            "vq_apc",
            lambda p: p["config"]["model"]["paras"]["vq"].pop("code_dim"),
            "'model.paras.vq' lacks 'code_dim'",
        ),
        (
            "npc",
            lambda p: p["config"]["model"]["paras"].update(kernel_size=5),
            "must stay below kernel_size",
        ),
    ],
)
def test_bad_config_names_the_problem(tmp_path, name, edit, message):
    payload = safe_load(REFERENCE / f"{name}.ckpt")
    edit(payload)
    torch.save(payload, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match=rf"bad\.ckpt: .*{message}"):
        load_upstream(tmp_path / "bad.ckpt")


@pytest.mark.parametrize(
    ("name", "key", "shape"),
    [
        ("tera", "encoder.layer.1.intermediate.dense.weight", (64, 48)),
        ("apc", "rnn_layers.2.weight_hh_l0", (144, 40)),
        ("npc", "masked_convs.0.conv.weight", (48, 48, 13)),
    ],
)
def test_mismatched_shapes_are_named(tmp_path, name, key, shape):
    payload = safe_load(REFERENCE / f"{name}.ckpt")
    weights = payload["Transformer"] if "Transformer" in payload else payload["model"]
    weights[key] = torch.zeros(shape)
    torch.save(payload, tmp_path / "shapes.ckpt")
    with pytest.raises(
        KeyMapError,
        match=rf"shapes\.ckpt: shape mismatch: .*{tuple(shape)}".replace("(", r"\(").replace(
            ")", r"\)"
        ),
    ):
        load_upstream(tmp_path / "shapes.ckpt")


def test_unknown_and_missing_weights_are_named(tmp_path):
    payload = safe_load(REFERENCE / "vq_apc.ckpt")
    payload["model"]["rnn_layers.0.weight_ih_l1"] = torch.zeros(1)
    torch.save(payload, tmp_path / "extra.ckpt")
    with pytest.raises(
        KeyMapError, match=r"extra\.ckpt: unknown key\(s\): rnn_layers\.0\.weight_ih_l1"
    ):
        load_upstream(tmp_path / "extra.ckpt")
    payload = safe_load(REFERENCE / "vq_apc.ckpt")
    del payload["model"]["vq_layers.0.codebook_CxE.weight"]
    torch.save(payload, tmp_path / "missing.ckpt")
    with pytest.raises(
        KeyMapError,
        match=r"missing\.ckpt: missing key\(s\): quantizer\.groups\.0\.codebook\.weight",
    ):
        load_upstream(tmp_path / "missing.ckpt")


# ----------------------------------------------------------------------------- registry


S3PRL_NAMES = (
    "tera tera_100hr tera_960hr tera_logMelBase_T_F_AdamW_b32_200k_100hr "
    "tera_logMelBase_T_F_M_AdamW_b32_200k_100hr tera_logMelBase_T_F_AdamW_b32_1m_960hr "
    "tera_logMelBase_T_F_AdamW_b32_1m_960hr_drop1 tera_logMelBase_T_F_AdamW_b32_1m_960hr_seq3k "
    "tera_logMelBase_T_F_M_AdamW_b32_1m_960hr_drop1 tera_fbankBase_T_F_AdamW_b32_200k_100hr "
    "mockingjay mockingjay_origin mockingjay_100hr mockingjay_960hr "
    "mockingjay_logMelBase_T_AdamW_b32_200k_100hr "
    "mockingjay_logMelLinearLarge_T_AdamW_b32_500k_360hr_drop1 "
    "mockingjay_logMelBase_T_AdamW_b32_1m_960hr mockingjay_logMelBase_T_AdamW_b32_1m_960hr_drop1 "
    "mockingjay_logMelBase_T_AdamW_b32_1m_960hr_seq3k audio_albert audio_albert_960hr "
    "audio_albert_logMelBase_T_share_AdamW_b32_1m_960hr_drop1 apc apc_360hr apc_960hr "
    "vq_apc vq_apc_360hr vq_apc_960hr npc npc_360hr npc_960hr"
).split()


def test_registry_lists_s3prl_models_with_urls():
    for name in S3PRL_NAMES:
        info = UPSTREAMS[name]
        assert info.family in FAMILY_CLASSES and info.url.startswith("https://"), name
    assert UPSTREAMS["tera"].url == UPSTREAMS["tera_960hr"].url
    assert UPSTREAMS["apc"].url.endswith("/apc_360hr.ckpt")


def test_explicit_ckpt_for_a_registered_name_is_used():
    up = load_upstream("tera", ckpt=REFERENCE / "mockingjay.ckpt")
    assert up.config.hidden_size == 48
    with pytest.raises(ValueError, match="holds a 'npc' model, not a 'apc' model"):
        load_upstream("apc", ckpt=REFERENCE / "npc.ckpt")


def test_native_folder_keeps_extras_and_the_spec_head(tmp_path):
    source = safe_load(REFERENCE / "tera.ckpt")
    head = {k: torch.randn_like(v) for k, v in source["Transformer"].items() if "LayerNorm" in k}
    head = dict(list(head.items())[:2])  # any dict of tensors stands in for a SpecHead
    native = read_checkpoint(REFERENCE / "tera.ckpt")
    native.extra["SpecHead"] = head
    native.extra["note"] = {"steps": 3}
    reread = read_checkpoint(save_native(native, tmp_path / "native"))
    assert reread.extra["note"] == {"steps": 3}
    assert reread.extra["task"] == native.extra["task"]
    assert reread.extra["SpecHead"].keys() == head.keys()
    assert all(torch.equal(reread.extra["SpecHead"][k], v) for k, v in head.items())
    written = safe_load(export_s3prl(reread, tmp_path / "again.ckpt"))
    assert all(torch.equal(written["SpecHead"][k], v) for k, v in head.items())
    # twin: a folder written without extras has none
    bare = NativeCheckpoint(native.family, native.config, native.state_dict)
    assert read_checkpoint(save_native(bare, tmp_path / "bare")).extra == {}
    with pytest.warns(UserWarning, match="'odd' is neither JSON"):
        odd = NativeCheckpoint("tera", native.config, native.state_dict, extra={"odd": {1, 2}})
        save_native(odd, tmp_path / "odd")
