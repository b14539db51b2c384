"""`speechrep demo`: synthesise, pretrain, extract, export, print the table.

The pretraining steps are cut to a few updates on the tiny corpus here; `make demo` runs the real
step counts."""

from __future__ import annotations

import re
import shutil

import pytest
import torch
from safetensors.torch import load_file

import speechrep
from speechrep import demo
from speechrep.audio import load_audio
from speechrep.cli import main
from speechrep.synth import espeak

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@pytest.fixture(autouse=True)
def short_pretraining(monkeypatch):
    monkeypatch.setattr(demo, "PRETRAIN", (("apc", 3), ("tera", 3)))
    monkeypatch.setattr(demo, "CORPUS_SIZE", "tiny")


def table(stdout: str) -> dict[str, list[str]]:
    """The report's rows: utterance id -> (seconds, "frames x dims" for fbank, mfcc, apc, tera)."""
    cell = r"\s+(\d+ x \d+)"
    rows = re.findall(r"^  (utt\S+)\s+(\S+)" + cell * 4 + "$", stdout, re.MULTILINE)
    return {utt_id: cells for utt_id, *cells in rows}


def test_demo_produces_features_of_every_utterance(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert [line.split(":")[0] for line in stdout.splitlines() if line.startswith("[")] == [
        f"[{i}/{len(demo.STEPS)}] {step.name}" for i, step in enumerate(demo.STEPS, start=1)
    ]
    rows = table(stdout)
    assert sorted(rows) == sorted(utt_id for utt_id, _, _ in demo.SENTENCES)
    mfcc = speechrep.load_upstream("mfcc")
    apc = speechrep.load_upstream(out / "pretrain" / "apc")
    tera = speechrep.load_upstream(out / "pretrain" / "tera")
    assert (out / "export" / "tera_s3prl.ckpt").is_file()
    assert re.search(r"apc: loss \d\.\d+ -> \d\.\d+, tera: loss", stdout)
    for utt_id, (seconds, fbank_cell, mfcc_cell, apc_cell, tera_cell) in rows.items():
        wav, rate = load_audio(out / "audio" / f"{utt_id}.wav")
        frames = (len(wav) - 1) // 160 + 1
        assert rate == 16000 and abs(float(seconds) - len(wav) / 16000) < 0.01
        assert fbank_cell == f"{frames} x 240" and mfcc_cell == f"{frames} x 39"
        assert apc_cell == f"{frames} x {apc.hidden_size}"
        assert tera_cell == f"{frames} x {tera.hidden_size}"
        saved = load_file(out / "features" / "mfcc" / f"{utt_id}.safetensors")["layer_0"]
        alone = mfcc(torch.from_numpy(wav)[None], torch.tensor([len(wav)])).hidden_states[0][0]
        assert torch.allclose(saved, alone, atol=1e-5)
        wav[len(wav) // 2] += 0.5  # perturbed twin
        moved = mfcc(torch.from_numpy(wav)[None], torch.tensor([len(wav)])).hidden_states[0][0]
        assert not torch.allclose(saved, moved, atol=1e-5)
    # the voices differ, so the utterances do
    lengths = {len(load_audio(out / "audio" / f"{u}.wav")[0]) for u, _, _ in demo.SENTENCES}
    assert len(lengths) == len(demo.SENTENCES)


def test_demo_second_run_reuses_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    first = table(capsys.readouterr().out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert main(["demo", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "(0 synthesised now)" in stdout and "(0 files written now)" in stdout
    assert table(stdout) == first
    assert {
        p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.suffix != ".jsonl"
    } == {p: t for p, t in stamps.items() if p.suffix != ".jsonl"}


def test_demo_without_espeak_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(espeak.shutil, "which", lambda name: None)
    espeak.espeak_path.cache_clear()
    try:
        assert main(["demo", "--out", str(tmp_path / "demo")]) == 1
    finally:
        espeak.espeak_path.cache_clear()
    err = capsys.readouterr().err
    assert "apt-get install espeak-ng" in err and "Traceback" not in err
