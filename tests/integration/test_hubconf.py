"""hubconf.py: every registered upstream loads through torch.hub from a local checkout."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import speechrep
from speechrep.upstream.registry import UPSTREAMS, UpstreamInfo

REPO = Path(__file__).resolve().parents[2]


def import_hubconf():
    """Import hubconf.py the way torch.hub does (a fresh module from the file)."""
    spec = importlib.util.spec_from_file_location("hubconf", REPO / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hub_entry_points(module) -> list[str]:
    # torch.hub.list's own rule, which it applies only to GitHub repositories
    return [f for f in dir(module) if callable(getattr(module, f)) and not f.startswith("_")]


def test_every_registered_name_is_an_entry_point():
    names = hub_entry_points(import_hubconf())
    assert sorted(names) == sorted(UPSTREAMS)
    assert "fbank" in names and "mfcc" in names


def test_entry_points_follow_the_registry(monkeypatch):
    monkeypatch.setitem(
        UPSTREAMS,
        "fbank_copy",
        UpstreamInfo("fbank_copy", "spectral", "copy", config={"kind": "fbank"}),
    )
    assert "fbank_copy" in hub_entry_points(import_hubconf())
    monkeypatch.delitem(UPSTREAMS, "fbank_copy")
    assert "fbank_copy" not in hub_entry_points(import_hubconf())


def test_torch_hub_load_fbank_equals_load_upstream():
    up = torch.hub.load(str(REPO), "fbank", source="local")
    assert isinstance(up, speechrep.Upstream) and not up.training
    wav = torch.randn(1, 4000) * 0.1
    ours = speechrep.load_upstream("fbank")(wav, torch.tensor([4000])).hidden_states[0]
    hub = up(wav, torch.tensor([4000])).hidden_states[0]
    assert hub.shape == (1, 25, 240) and torch.equal(hub, ours)
    wav[0, 1000] += 0.5  # perturbed twin
    assert not torch.equal(up(wav, torch.tensor([4000])).hidden_states[0], ours)


def test_keyword_options_reach_load_upstream():
    up = torch.hub.load(str(REPO), "mfcc", source="local", precision="bf16", trainable=True)
    assert up.precision == "bf16" and up.training


def test_ckpt_is_never_ignored(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        torch.hub.load(str(REPO), "fbank", source="local", ckpt=str(tmp_path / "missing.pt"))


def test_unknown_name_is_refused():
    with pytest.raises(RuntimeError, match="Cannot find callable fbnak"):
        torch.hub.load(str(REPO), "fbnak", source="local")


def test_entry_point_docstring_describes_the_upstream():
    assert "Kaldi fbank" in import_hubconf().fbank.__doc__


def test_checkout_without_install_puts_src_on_the_path():
    src = str(REPO / "src")
    code = (
        "import sys\n"
        f"sys.path[:] = [p for p in sys.path if p.rstrip('/') != {src!r}]\n"
        "import importlib.util\n"
        "assert importlib.util.find_spec('speechrep') is None\n"
        "import torch\n"
        f"up = torch.hub.load({str(REPO)!r}, 'fbank', source='local')\n"
        "import speechrep\n"
        "print(speechrep.__file__, type(up).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(REPO / "src" / "speechrep"))
