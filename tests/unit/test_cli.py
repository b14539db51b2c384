"""The `speechrep` command table: help, list, unknown commands, one-line user errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from speechrep import cli
from speechrep.upstream.registry import UPSTREAMS

BASELINES = ("fbank", "fbank_no_cmvn", "mfcc", "spectrogram", "mel", "linear")


def test_help_lists_every_command():
    done = subprocess.run(
        [sys.executable, "-m", "speechrep", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: speechrep")
    for name, (_, help_text) in cli.COMMANDS.items():
        assert f"    {name}" in done.stdout and help_text.split()[0] in done.stdout


def test_top_level_help_imports_no_command_module(monkeypatch, capsys):
    monkeypatch.setitem(
        cli.COMMANDS, "broken", ("speechrep.no_such_module", "a command that cannot load")
    )
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "broken" in capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: speechrep {command}")


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert capsys.readouterr().out.startswith("usage: speechrep")


def test_unknown_command_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["extrct"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'extrct'" in err and "extract" in err


def test_missing_required_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["extract", "some.wav", "-o", "out"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: -u/--upstream" in capsys.readouterr().err


def test_list_prints_the_baselines(capsys):
    assert cli.main(["list"]) == 0
    rows = {
        line.split()[0]: line.split()
        for line in capsys.readouterr().out.splitlines()
        if line.strip()
    }
    for name in BASELINES:
        info = UPSTREAMS[name]
        assert rows[name][1:4] == [info.family, str(info.num_layers), str(info.hidden_size)]
    assert all(name in rows for name in UPSTREAMS)


def test_list_family_filter(capsys):
    assert cli.main(["list", "--family", "no_such_family"]) == 0
    out = capsys.readouterr().out
    assert "name" in out and not any(f"{name} " in out for name in BASELINES)


def test_user_error_is_one_line_exit_1(tmp_path, capsys):
    assert (
        cli.main(["extract", "-u", "fbank", str(tmp_path / "nothing_here"), "-o", str(tmp_path)])
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("speechrep extract: error: input not found")
