import numpy as np
import pytest
import soundfile as sf
import torch

from speechrep.audio import AudioError, find_audio_files, lengths_to_mask, load_audio, pad_batch


def _tone(n=16000, rate=16000):
    return (0.1 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.float32)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
def test_formats_roundtrip(tmp_path, ext):
    path = tmp_path / f"a.{ext}"
    sf.write(path, _tone(), 16000)
    wav, rate = load_audio(path)
    assert rate == 16000 and wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) - 16000) <= 1 if ext != "ogg" else abs(len(wav) - 16000) < 2000


def test_stereo_downmix_and_resample(tmp_path):
    left, right = _tone(8000, 8000), np.zeros(8000, np.float32)
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, right], 1), 8000, subtype="FLOAT")
    wav, rate = load_audio(path)
    assert rate == 16000 and len(wav) == 16000
    native, native_rate = load_audio(path, sample_rate=None)
    assert native_rate == 8000 and np.allclose(native, left / 2, atol=1e-6)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav")


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(AudioError, match=r"bad\.wav: cannot read audio"):
        load_audio(path)


def test_empty_audio(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav: audio file holds no samples"):
        load_audio(path)
    zero_bytes = tmp_path / "zero.flac"
    zero_bytes.write_bytes(b"")
    with pytest.raises(AudioError, match=r"zero\.flac"):
        load_audio(zero_bytes)


def test_nan_samples(tmp_path):
    wav = _tone()
    wav[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, wav, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: audio holds NaN or Inf"):
        load_audio(path)


def test_pad_batch_and_mask():
    wavs, lens = pad_batch([np.ones(3, np.float32), np.ones(5, np.float32) * 2])
    assert wavs.shape == (2, 5) and lens.tolist() == [3, 5]
    assert wavs[0, 3:].abs().sum() == 0 and wavs[1].sum() == 10
    assert lengths_to_mask(lens).tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    with pytest.raises(ValueError, match="expected shape"):
        pad_batch([torch.ones(2, 2)])


def test_find_audio_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ["a/x.wav", "a/b/y.flac", "a/notes.txt", "z.ogg"]:
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in find_audio_files(tmp_path)]
    assert found == ["a/b/y.flac", "a/x.wav", "z.ogg"]
