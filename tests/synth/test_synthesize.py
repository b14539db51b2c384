"""synthesize(): determinism, all-or-nothing output, refusal to overwrite, and the CLI."""

from __future__ import annotations

import pytest

import speechrep.synth.core as core
from speechrep.cli import main
from speechrep.synth import CORPORA, synthesize

from .synth_helpers import requires_espeak, tree_digest

pytestmark = requires_espeak


@pytest.mark.parametrize(
    "corpus", ["speech_commands", "librispeech", "common_voice"]
)  # wav, flac, mp3
def test_same_seed_gives_identical_bytes(tiny_corpus, tmp_path, corpus):
    first = tiny_corpus(corpus)
    again = synthesize(corpus, tmp_path / corpus, size="tiny", seed=0)
    assert tree_digest(again) == tree_digest(first)


def test_other_seed_gives_other_corpus(tiny_corpus, tmp_path):
    other = synthesize("audio_folder", tmp_path / "seed1", size="tiny", seed=1)
    assert tree_digest(other) != tree_digest(tiny_corpus("audio_folder"))


def _fail_on_call(monkeypatch, number: int, error: BaseException) -> None:
    real = core.write_audio
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == number:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "write_audio", failing)


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch, error):
    _fail_on_call(monkeypatch, 5, error)
    target = tmp_path / "corpus"
    with pytest.raises(type(error)):
        synthesize("audio_folder", target, size="tiny")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # no half-written temporary folder either


def test_non_empty_folder_is_refused_unless_forced(tmp_path, monkeypatch):
    target = tmp_path / "corpus"
    target.mkdir()
    (target / "keep.txt").write_text("user data")
    with pytest.raises(ValueError, match="not empty.*--force"):
        synthesize("audio_folder", target)
    assert (target / "keep.txt").read_text() == "user data"
    _fail_on_call(monkeypatch, 3, RuntimeError("boom"))  # a failed forced run keeps the old folder
    with pytest.raises(RuntimeError):
        synthesize("audio_folder", target, force=True)
    assert (target / "keep.txt").is_file()
    monkeypatch.undo()
    synthesize("audio_folder", target, force=True)
    assert not (target / "keep.txt").exists() and len(list(target.glob("*.wav"))) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_empty_existing_folder_is_used(tmp_path):
    target = tmp_path / "corpus"
    target.mkdir()
    assert synthesize("audio_folder", target) == target.absolute()
    assert (target / "synth_manifest.jsonl").is_file()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus 'timit'.*speech_commands"):
        synthesize("timit", tmp_path / "x")
    with pytest.raises(ValueError, match="size"):
        synthesize("audio_folder", tmp_path / "x", size="huge")
    assert not (tmp_path / "x").exists()


def test_cli_help_lists_every_corpus(capsys):
    with pytest.raises(SystemExit) as done:
        main(["synth", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in CORPORA)
    assert "not research numbers" in out and "espeak-ng" in out


def test_cli_writes_and_refuses(tmp_path, capsys):
    target = tmp_path / "folder"
    assert main(["synth", "audio_folder", "-o", str(target), "--seed", "3"]) == 0
    assert "wrote audio_folder" in capsys.readouterr().out
    assert len(list(target.glob("*.wav"))) == 12
    assert main(["synth", "audio_folder", "-o", str(target)]) == 1
    assert "not empty" in capsys.readouterr().err
