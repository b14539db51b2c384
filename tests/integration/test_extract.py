"""`speechrep extract` end to end: real fbank on small files, plus a 3-layer stand-in upstream
for the layer options and for counting model work."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import speechrep
from speechrep.audio import load_audio
from speechrep.cli import main
from speechrep.extract import Utterance, collect_inputs, parse_layers, plan_batches, resolve_layers
from speechrep.upstream.base import Upstream
from speechrep.upstream.load import FAMILY_CLASSES
from speechrep.upstream.registry import UPSTREAMS, UpstreamInfo

TOLERANCE = 1e-5  # fp32 features of one utterance, batched vs alone


# ------------------------------------------------------------------ a 3-layer stand-in upstream


@dataclass(frozen=True)
class LayeredConfig:
    dim: int = 4
    layers: int = 3


class LayeredUpstream(Upstream):
    """Layer k, frame t = (k + 1) * mean(wav[160 t : 160 t + 400]) + dim index; counts its inputs."""

    family = "layered"
    config_class = LayeredConfig
    utterances_seen = 0

    def __init__(self, config: LayeredConfig) -> None:
        super().__init__(config)
        self.sample_rate, self.downsample_rate = 16000, 160
        self.hidden_size, self.num_layers = config.dim, config.layers

    def forward_features(self, wavs, wav_lens):
        type(self).utterances_seen += wavs.shape[0]
        frames = (
            wavs.unfold(1, 400, 160).mean(-1) if wavs.shape[1] >= 400 else wavs[:, :0]
        )  # (B, T')
        base = frames[:, :, None] + torch.arange(self.hidden_size)[None, None, :]  # (B, T', D)
        native = torch.where(wav_lens >= 400, (wav_lens - 400) // 160 + 1, 0)
        eye = torch.eye(self.hidden_size)  # a matmul, so bf16/fp16 autocast shows in the output
        return [(base * (k + 1)) @ eye for k in range(self.num_layers)], native


@pytest.fixture
def layered(monkeypatch):
    monkeypatch.setitem(FAMILY_CLASSES, "layered", f"{__name__}:LayeredUpstream")
    monkeypatch.setitem(
        UPSTREAMS, "layered", UpstreamInfo("layered", "layered", "test", num_layers=3)
    )
    LayeredUpstream.utterances_seen = 0
    return LayeredUpstream


# ------------------------------------------------------------------ audio fixtures


def write_wav(path: Path, seconds: float, rate: int = 16000, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
    return path


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "wavs"
    write_wav(root / "a.wav", 0.5, seed=1)
    write_wav(root / "spk1" / "b.flac", 0.8, seed=2)
    write_wav(root / "spk1" / "deep" / "c.wav", 0.31, rate=8000, seed=3)  # resampled to 16 kHz
    write_wav(root / "spk2" / "d.wav", 1.2, seed=4)
    (root / "notes.md").write_text("not audio")
    return root


def run_cli(*args) -> int:
    return main(["extract", "--no-progress", *map(str, args)])


def read_index(out: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    return {row["id"]: row for row in rows}


def alone(upstream_name: str, wav: np.ndarray, layer: int = 0) -> torch.Tensor:
    up = speechrep.load_upstream(upstream_name)
    out = up(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
    return out.hidden_states[layer][0]


# ------------------------------------------------------------------ fbank end to end


def test_fbank_folder_mirrors_paths_frames_and_values(corpus, tmp_path):
    out = tmp_path / "feats"
    assert run_cli("-u", "fbank", corpus, "-o", out, "--batch-seconds", "60") == 0
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.safetensors"))
    assert files == [
        "a.safetensors",
        "spk1/b.safetensors",
        "spk1/deep/c.safetensors",
        "spk2/d.safetensors",
    ]
    index = read_index(out)
    assert sorted(index) == ["a", "spk1/b", "spk1/deep/c", "spk2/d"]
    for utt_id, source in [
        ("a", "a.wav"),
        ("spk1/b", "spk1/b.flac"),
        ("spk1/deep/c", "spk1/deep/c.wav"),
    ]:
        wav, _ = load_audio(corpus / source)
        features = load_file(out / f"{utt_id}.safetensors")
        assert list(features) == ["layer_0"]
        assert features["layer_0"].shape == ((len(wav) - 1) // 160 + 1, 240)
        row = index[utt_id]
        assert row["frames"] == (len(wav) - 1) // 160 + 1 and row["layers"] == [0]
        assert row["source"] == str(corpus / source) and row["file"] == f"{utt_id}.safetensors"
        assert row["sample_rate"] == (8000 if utt_id.endswith("c") else 16000)
        # all four went through one padded batch; each must equal its run alone
        assert torch.allclose(features["layer_0"], alone("fbank", wav), atol=TOLERANCE)
    # perturbed twin: one changed sample gives features the comparison rejects
    wav, _ = load_audio(corpus / "a.wav")
    wav[3000] += 0.5
    assert not torch.allclose(
        load_file(out / "a.safetensors")["layer_0"], alone("fbank", wav), atol=TOLERANCE
    )


def test_resume_skips_done_outputs_and_redoes_a_deleted_one(corpus, tmp_path, monkeypatch):
    from speechrep.upstream import spectral

    calls: list[int] = []
    forward = spectral.SpectralUpstream.forward_features

    def counting(self, wavs, wav_lens):
        calls.append(int(wavs.shape[0]))
        return forward(self, wavs, wav_lens)

    monkeypatch.setattr(spectral.SpectralUpstream, "forward_features", counting)
    out = tmp_path / "feats"
    assert run_cli("-u", "fbank", corpus, "-o", out) == 0
    assert sum(calls) == 4
    first_index = (out / "index.jsonl").read_text()
    stamp = (out / "spk2" / "d.safetensors").stat().st_mtime_ns

    calls.clear()
    assert run_cli("-u", "fbank", corpus, "-o", out) == 0
    assert calls == []  # no model work at all
    assert (out / "index.jsonl").read_text() == first_index
    assert (out / "spk2" / "d.safetensors").stat().st_mtime_ns == stamp

    (out / "spk1" / "b.safetensors").unlink()
    assert run_cli("-u", "fbank", corpus, "-o", out) == 0
    assert calls == [1]  # only the deleted one
    assert (out / "index.jsonl").read_text() == first_index


def test_bad_files_are_reported_and_the_rest_extracted(corpus, tmp_path, capsys):
    (corpus / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    (corpus / "empty.wav").write_bytes(b"")
    sf.write(corpus / "silent_header.wav", np.zeros(0, np.float32), 16000)
    sf.write(corpus / "nan.wav", np.full(3200, np.nan, np.float32), 16000, subtype="FLOAT")
    write_wav(corpus / "spk2" / "short.wav", 0.005)  # 80 samples: no fbank frame
    out = tmp_path / "feats"
    assert run_cli("-u", "fbank", corpus, "-o", out, "--batch-seconds", "60") == 1
    err = capsys.readouterr().err
    listing = err[err.index("5 file(s) failed:") :]
    for name, reason in [
        ("corrupt.wav", "cannot read audio"),
        ("empty.wav", "cannot read audio"),
        ("silent_header.wav", "no samples"),
        ("nan.wav", "NaN"),
        ("short.wav", "80 samples: too short"),
    ]:
        line = next(line for line in listing.splitlines() if name in line)
        assert reason in line, line
    assert "Traceback" not in err
    assert sorted(read_index(out)) == ["a", "spk1/b", "spk1/deep/c", "spk2/d"]
    assert not (out / "spk2" / "short.safetensors").exists()


def test_too_short_file_in_a_batch_fails_alone(layered, corpus, tmp_path, capsys):
    write_wav(corpus / "short.wav", 0.02)  # 320 samples: under the 400-sample window
    out = tmp_path / "feats"
    assert run_cli("-u", "layered", corpus, "-o", out, "--batch-seconds", "60") == 1
    assert "short.wav: utterance 0 has 320 samples: too short" in capsys.readouterr().err
    assert sorted(read_index(out)) == ["a", "spk1/b", "spk1/deep/c", "spk2/d"]
    assert layered.utterances_seen == 5 + 5  # the failed batch of 5, then each alone


def test_list_file_paths_resolve_against_the_list_folder(corpus, tmp_path, capsys):
    listing = corpus / "subset.lst"
    listing.write_text(f"# a subset\nspk1/b.flac\n\n{corpus / 'a.wav'}\nspk1/missing.wav\n")
    out = tmp_path / "feats"
    assert run_cli("-u", "fbank", listing, "-o", out) == 1
    assert "missing.wav: file not found" in capsys.readouterr().err
    assert sorted(read_index(out)) == ["a", "spk1/b"]
    assert (out / "spk1" / "b.safetensors").is_file()


def test_single_file_input_is_named_by_its_stem(corpus, tmp_path):
    out = tmp_path / "feats"
    assert run_cli("-u", "mfcc", corpus / "spk1" / "b.flac", "-o", out) == 0
    assert load_file(out / "b.safetensors")["layer_0"].shape == (80, 39)


def test_unknown_upstream_is_one_clear_line(corpus, tmp_path, capsys):
    assert run_cli("-u", "fbnak", corpus, "-o", tmp_path / "feats") == 1
    err = capsys.readouterr().err
    assert "unknown upstream 'fbnak'" in err and "fbank" in err  # suggests the close name
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_input_is_an_error(tmp_path, capsys):
    assert run_cli("-u", "fbank", tmp_path / "nope", "-o", tmp_path / "feats") == 1
    assert "input not found" in capsys.readouterr().err


def test_folder_without_audio_is_an_error(tmp_path, capsys):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt.md").write_text("no audio")
    assert run_cli("-u", "fbank", tmp_path / "texts", "-o", tmp_path / "feats") == 1
    assert "no audio files found (searched for .wav .flac" in capsys.readouterr().err


# ------------------------------------------------------------------ layers, dtype, batching


def test_layers_and_dtype_are_honoured(layered, corpus, tmp_path):
    out = tmp_path / "feats"
    assert (
        run_cli("-u", "layered", corpus, "-o", out, "--layers", "0,-1", "--dtype", "float16") == 0
    )
    features = load_file(out / "spk1" / "b.safetensors")
    assert sorted(features) == ["layer_0", "layer_2"]
    assert all(t.dtype == torch.float16 for t in features.values())
    wav, _ = load_audio(corpus / "spk1" / "b.flac")
    for layer in (0, 2):
        expected = alone("layered", wav, layer).half()
        assert torch.allclose(features[f"layer_{layer}"].float(), expected.float(), atol=1e-3)
    assert not torch.allclose(
        features["layer_0"].float(), alone("layered", wav, 1).half().float(), atol=1e-3
    )
    assert read_index(out)["spk1/b"]["layers"] == [0, 2]


def test_changed_layers_recompute_instead_of_skipping(layered, corpus, tmp_path):
    out = tmp_path / "feats"
    assert run_cli("-u", "layered", corpus, "-o", out, "--layers", "1") == 0
    layered.utterances_seen = 0
    assert run_cli("-u", "layered", corpus, "-o", out, "--layers", "1") == 0
    assert layered.utterances_seen == 0
    assert run_cli("-u", "layered", corpus, "-o", out, "--layers", "2") == 0
    assert layered.utterances_seen == 4
    assert sorted(load_file(out / "a.safetensors")) == ["layer_2"]


def test_precision_is_used_and_recorded(layered, corpus, tmp_path):
    out = tmp_path / "feats"
    assert run_cli("-u", "layered", corpus / "a.wav", "-o", out) == 0
    fp32 = load_file(out / "a.safetensors")["layer_2"]
    layered.utterances_seen = 0
    assert run_cli("-u", "layered", corpus / "a.wav", "-o", out, "--precision", "bf16") == 0
    assert layered.utterances_seen == 1  # another precision is not reused
    with safe_open(str(out / "a.safetensors"), framework="pt") as handle:
        assert handle.metadata()["precision"] == "bf16"
        bf16 = handle.get_tensor("layer_2")
    assert bf16.dtype == torch.float32  # --dtype, not --precision, sets the stored dtype
    assert not torch.equal(bf16, fp32) and torch.allclose(bf16, fp32, rtol=2e-2, atol=2e-2)


def test_layer_out_of_range(layered, corpus, tmp_path, capsys):
    assert run_cli("-u", "layered", corpus, "-o", tmp_path / "f", "--layers", "3") == 1
    assert "layer 3 out of range: the upstream has 3 hidden states" in capsys.readouterr().err


def test_batch_size_does_not_change_outputs(layered, corpus, tmp_path):
    one, many = tmp_path / "one", tmp_path / "many"
    assert run_cli("-u", "layered", corpus, "-o", one, "--batch-seconds", "0.1") == 0
    assert run_cli("-u", "layered", corpus, "-o", many, "--batch-seconds", "100") == 0
    for path in one.rglob("*.safetensors"):
        a, b = load_file(path), load_file(many / path.relative_to(one))
        assert all(torch.allclose(a[k], b[k], atol=TOLERANCE) for k in a)


def test_plan_batches_bounds_padded_seconds():
    utts = [
        Utterance(Path(f"{i}.wav"), Path(str(i)), seconds=s)
        for i, s in enumerate([3, 1, 7, 2, 2, 5])
    ]
    batches = plan_batches(utts, batch_seconds=8)
    assert sorted(u.id for b in batches for u in b) == sorted(u.id for u in utts)
    assert [u.seconds for u in batches[0]] == [7]
    assert all(len(b) * b[0].seconds <= 8 or len(b) == 1 for b in batches)
    assert all(b[0].seconds == max(u.seconds for u in b) for b in batches)
    assert [[u.seconds for u in b] for b in batches] == [[7], [5], [3, 2], [2, 1]]


def test_layer_parsing():
    assert parse_layers("0,4,-1") == (0, 4, -1) and parse_layers(None) is None
    assert resolve_layers((0, -1, 12), 13) == [0, 12]
    with pytest.raises(ValueError, match="comma-separated"):
        parse_layers("0;1")


def test_two_inputs_with_the_same_output_name_are_refused(corpus, tmp_path):
    write_wav(tmp_path / "other" / "a.wav", 0.3)
    with pytest.raises(ValueError, match="both be written as 'a'"):
        collect_inputs([corpus / "a.wav", tmp_path / "other" / "a.wav"])


def test_outputs_carry_their_index_row(corpus, tmp_path):
    out = tmp_path / "feats"
    assert run_cli("-u", "fbank", corpus / "a.wav", "-o", out) == 0
    with safe_open(str(out / "a.safetensors"), framework="pt") as handle:
        meta = handle.metadata()
    assert json.loads(meta["index"]) == read_index(out)["a"]
    assert meta["label"] == "fbank" and meta["layers"] == "0" and meta["dtype"] == "float32"


# ------------------------------------------------------------------ torchrun, 2 CPU processes


def test_torchrun_two_ranks_split_and_merge(corpus, tmp_path):
    (corpus / "corrupt.wav").write_bytes(b"not a wav at all" * 4)
    out, single = tmp_path / "ddp", tmp_path / "single"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "speechrep",
        "extract",
        "-u",
        "fbank",
        str(corpus),
        "-o",
        str(out),
        "--no-progress",
        "--device",
        "cpu",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode != 0  # the corrupt file fails the run on both ranks
    assert done.stderr.count("1 file(s) failed") == 1  # rank 0 lists it once
    assert "corrupt.wav" in done.stderr
    per_rank = dict(re.findall(r"rank (\d)/2: (\d+) written", done.stdout))
    assert sorted(per_rank) == ["0", "1"] and all(int(n) > 0 for n in per_rank.values())
    assert sum(map(int, per_rank.values())) == 4
    assert sorted(read_index(out)) == ["a", "spk1/b", "spk1/deep/c", "spk2/d"]
    assert not list(out.glob("index.rank*"))
    (corpus / "corrupt.wav").unlink()
    assert run_cli("-u", "fbank", corpus, "-o", single) == 0
    for path in single.rglob("*.safetensors"):
        a, b = load_file(path), load_file(out / path.relative_to(single))
        assert torch.allclose(a["layer_0"], b["layer_0"], atol=TOLERANCE)
