"""Fixtures: a folder of speech-like audio synthesised with numpy, and a tiny random teacher."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

SAMPLE_RATE = 16000


def vowel_like(
    rng: np.random.Generator, seconds: float, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """A harmonic tone (f0 100-220 Hz, gliding) whose harmonics follow 3 drifting formants,
    cut into syllables by an amplitude envelope, plus a little noise. float32 in [-1, 1]."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    centres = [rng.uniform(300, 900), rng.uniform(900, 2300), rng.uniform(2300, 3200)]
    drift = [
        c * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t + rng.uniform(0, 6)))
        for c in centres
    ]
    wav = np.zeros(n)
    for k in range(1, 60):
        freq = k * f0
        gain = sum(np.exp(-0.5 * ((freq - c) / 120.0) ** 2) for c in drift)
        wav += gain * np.sin(k * phase) * (freq < sample_rate / 2 - 500)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6)) ** 2
    wav = wav * envelope + 0.001 * rng.standard_normal(n)
    return (0.5 * wav / np.abs(wav).max()).astype(np.float32)


def make_audio_folder(
    root: Path, count: int = 16, seconds: tuple[float, float] = (0.8, 1.6), seed: int = 0
) -> Path:
    """Write ``count`` wav files of random length into ``root`` (in two sub-folders)."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        path = root / f"spk{i % 2}" / f"utt{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), vowel_like(rng, rng.uniform(*seconds)), SAMPLE_RATE)
    return root


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory) -> Path:
    """4 utterances of 0.8-1.6 s: a handful a tiny model can overfit in ~100 steps."""
    return make_audio_folder(tmp_path_factory.mktemp("audio"), count=4)


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> Path:
    """A random 4-layer x 32 HuBERT as a speechrep-native folder (the distillation teacher)."""
    from speechrep.convert.native import NativeCheckpoint, save_native
    from speechrep.upstream.wav2vec2 import HubertUpstream, Wav2Vec2Config

    torch.manual_seed(0)
    conv = ((32, 10, 5), (32, 3, 2), (32, 3, 2), (32, 3, 2), (32, 3, 2), (32, 2, 2), (32, 2, 2))
    config = Wav2Vec2Config(
        conv_layers=conv,
        num_layers=4,
        hidden_size=32,
        ffn_size=64,
        num_heads=4,
        pos_conv_kernel=16,
        pos_conv_groups=4,
    )
    teacher = HubertUpstream(config)
    out = tmp_path_factory.mktemp("teacher") / "hubert_tiny"
    save_native(
        NativeCheckpoint(teacher.family, teacher.native_config(), teacher.state_dict()), out
    )
    return out
