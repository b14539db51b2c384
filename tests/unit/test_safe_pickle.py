import argparse
import os
import pickle

import pytest
import torch

from speechrep.convert.safe_pickle import CheckpointError, safe_load


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_plain_checkpoint_with_namespace_and_optimizer(tmp_path):
    layer = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(layer.parameters())
    layer(torch.randn(4, 3)).sum().backward()
    opt.step()
    path = tmp_path / "ckpt.pt"
    torch.save({"Args": argparse.Namespace(lr=0.1, name="x"), "model": layer.state_dict(),
                "Optimizer": opt.state_dict(), "Step": 7}, path)
    data = safe_load(path)
    assert data["Args"] == {"lr": 0.1, "name": "x"}
    assert torch.equal(data["model"]["weight"], layer.weight.detach())
    assert data["Step"] == 7 and "state" in data["Optimizer"]


def test_arbitrary_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt: refusing to load global 'posix\.system'"):
        safe_load(path)


def test_legacy_pickle_stream_also_refused(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"payload": Evil()}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="refusing to load global"):
        safe_load(path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", pickle.dumps([1, 2])[:3]])
def test_garbage_and_empty_files(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"bad\.pt"):
        safe_load(path)


def test_truncated_zip(tmp_path):
    path = tmp_path / "trunc.pt"
    torch.save({"w": torch.randn(100, 100)}, path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"trunc\.pt: not a readable PyTorch checkpoint"):
        safe_load(path)


def test_audio_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "speech.wav"
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"speech\.wav: not a readable PyTorch checkpoint"):
        safe_load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        safe_load(tmp_path / "nope.pt")


def test_fairseq_omegaconf_config_becomes_plain_dict(reference_dir):
    data = safe_load(reference_dir / "hubert.fairseq.pt")
    model_cfg = data["cfg"]["model"]
    assert type(model_cfg) is dict and model_cfg["encoder_layers"] == 2
    assert model_cfg["conv_feature_layers"].startswith("[(32,10,5)]")
    symbols = data["task_state"]["dictionaries"][0]["symbols"]
    assert symbols[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and len(symbols) == 504
    args = safe_load(reference_dir / "wav2vec2.fairseq_args.pt")["args"]
    assert type(args) is dict and args["arch"] == "wav2vec2"
