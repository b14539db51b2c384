"""espeak-ng front end, the IPA->ARPAbet lexicon and the signal helpers."""

from __future__ import annotations

import numpy as np
import pytest

from speechrep.synth import dsp, espeak
from speechrep.synth.lexicon import build_lexicon, format_lexicon, ipa_to_arpabet
from speechrep.synth.text import vocabulary

from .synth_helpers import ARPABET_71, best_correlation, requires_espeak


@requires_espeak
def test_speak_is_deterministic_16k_float32():
    first = espeak.speak("left", voice="en-us+f3", pitch=60, speed=170)
    second = espeak.speak("left", voice="en-us+f3", pitch=60, speed=170)
    assert first.dtype == np.float32 and first.ndim == 1
    assert 0.2 < len(first) / 16000 < 1.5  # one word, seconds
    assert np.array_equal(first, second)  # espeak-ng has no randomness
    other = espeak.speak("left", voice="en-us+f3", pitch=30, speed=170)  # perturbed twin
    assert not np.array_equal(first, other[: len(first)])


@requires_espeak
def test_speak_rate_and_prosody_controls():
    slow = espeak.speak("stop the music", speed=110, sample_rate=8000)
    fast = espeak.speak("stop the music", speed=260, sample_rate=8000)
    assert len(slow) > 1.5 * len(fast)  # speed is words per minute
    wide = espeak.speak("I am so happy today", intonation="x-high")
    flat = espeak.speak("I am so happy today", intonation="x-low")
    assert not np.array_equal(wide[: len(flat)], flat[: len(wide)])


@requires_espeak
def test_speak_rejects_bad_arguments():
    with pytest.raises(ValueError, match="pitch"):
        espeak.speak("yes", pitch=150)
    with pytest.raises(ValueError, match="empty"):
        espeak.speak("  ")
    with pytest.raises(espeak.EspeakError, match="voice"):
        espeak.speak("yes", voice="mb-us1")  # mbrola voice: not installed


def test_missing_espeak_says_how_to_install(monkeypatch):
    monkeypatch.setattr(espeak.shutil, "which", lambda name: None)
    espeak.espeak_path.cache_clear()
    try:
        with pytest.raises(espeak.EspeakError, match="apt-get install espeak-ng"):
            espeak.speak("yes")
    finally:
        espeak.espeak_path.cache_clear()


def test_ipa_to_arpabet_stress_and_multi_phone_tokens():
    assert ipa_to_arpabet(["k", "ˈæ", "t"]) == ["K", "AE1", "T"]
    assert ipa_to_arpabet(["ˈæ", "p", "əl"]) == ["AE1", "P", "AH0", "L"]
    assert ipa_to_arpabet(["d", "ˈɑːɹ", "k"]) == ["D", "AA1", "R", "K"]
    assert ipa_to_arpabet(["b", "ᵻ", "h", "ˌaɪ", "n", "d"]) == ["B", "IH0", "HH", "AY2", "N", "D"]
    with pytest.raises(ValueError, match="'q'.*'qat'"):
        ipa_to_arpabet(["q", "æ", "t"], word="qat")


@requires_espeak
def test_lexicon_covers_the_grammar_in_arpabet():
    lexicon = build_lexicon(vocabulary())
    assert set(lexicon) == {w.upper() for w in vocabulary()}
    for word, phones in lexicon.items():
        assert phones and set(phones) <= ARPABET_71, (word, phones)
        assert sum(p[-1] == "1" for p in phones) <= 1 or word == "THE", (word, phones)
    assert lexicon["CAT"] == ["K", "AE1", "T"]
    line = format_lexicon({"CAT": ["K", "AE1", "T"]})
    assert line == "CAT\tK AE1 T\n"


def test_add_noise_hits_the_requested_snr():
    rng = np.random.default_rng(0)
    speech = dsp.pad(np.sin(np.arange(8000) * 0.3).astype(np.float32) * 0.3, 4000, 4000)
    for kind in dsp.NOISE_KINDS:
        background = dsp.noise(rng, kind, len(speech))
        assert abs(dsp.rms(background) - 1.0) < 1e-3
        noisy = dsp.add_noise(speech, background, 10.0)
        added = noisy - speech
        snr = 20 * np.log10(dsp.active_rms(speech) / dsp.rms(added))
        assert abs(snr - 10.0) < 0.01, kind
        assert abs(20 * np.log10(dsp.active_rms(speech) / dsp.rms(added * 2)) - 10.0) > 5  # twin


def test_place_trim_and_correlation_helpers():
    rng = np.random.default_rng(1)
    burst = rng.standard_normal(800).astype(np.float32)
    placed = dsp.place(burst, 4000, 1000)
    assert dsp.speech_bounds(placed) == (960, 1920)  # whole 10 ms frames around samples 1000..1800
    assert len(dsp.trim(placed, keep_seconds=0.0)) == 960
    assert best_correlation(placed, burst) > 0.999
    assert best_correlation(placed, rng.standard_normal(800)) < 0.3
