"""Shared fixtures: each tiny corpus is synthesised once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechrep.synth import synthesize


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """``tiny_corpus(name)`` -> root of that corpus (tiny, seed 0), built on first use."""
    base = tmp_path_factory.mktemp("synth")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = synthesize(name, base / name, size="tiny", seed=0)
        return built[name]

    return get
