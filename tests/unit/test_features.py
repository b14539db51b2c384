"""Known-value and padded-batch tests for speechrep.audio.features."""

from __future__ import annotations

import math

import pytest
import torch

from speechrep.audio.features import (
    KaldiOptions,
    StftOptions,
    add_deltas,
    cmvn,
    compute_deltas,
    kaldi_dct_matrix,
    kaldi_fbank,
    kaldi_frame_lengths,
    kaldi_mel_banks,
    kaldi_mfcc,
    kaldi_spectrogram,
    kaldi_window,
    mel_filterbank,
    stft_features,
)


def _batch(seed: int = 0, lens: tuple[int, ...] = (4000, 6410, 2577)) -> tuple[torch.Tensor, torch.Tensor]:
    """A zero-padded batch whose padding is then filled with loud garbage: nothing may read it."""
    g = torch.Generator().manual_seed(seed)
    wavs = torch.randn(len(lens), max(lens), generator=g) * 0.1
    for i, n in enumerate(lens):
        wavs[i, n:] = 5.0
    return wavs, torch.tensor(lens)


# ----------------------------------------------------------------------------- frame counts


def test_kaldi_frame_lengths_snip_edges():
    lens = torch.tensor([0, 399, 400, 559, 560, 16000])
    assert kaldi_frame_lengths(lens, KaldiOptions()).tolist() == [0, 0, 1, 1, 2, 98]


def test_kaldi_frame_lengths_no_snip_edges_and_min_duration():
    lens = torch.tensor([79, 80, 16000, 16079])
    assert kaldi_frame_lengths(lens, KaldiOptions(snip_edges=False)).tolist() == [0, 1, 100, 100]
    short = KaldiOptions(min_duration=0.5)
    assert kaldi_frame_lengths(torch.tensor([7999, 8000]), short).tolist() == [0, 48]


def test_feature_functions_return_their_frame_counts():
    wavs, lens = _batch()
    feats, frame_lens = kaldi_fbank(wavs, lens, KaldiOptions(num_mel_bins=40))
    assert frame_lens.tolist() == [1 + (n - 400) // 160 for n in lens.tolist()]
    assert feats.shape == (3, max(frame_lens.tolist()), 40)
    feats, frame_lens = stft_features(wavs, lens, StftOptions(feat_type="linear"))
    assert frame_lens.tolist() == [1 + n // 160 for n in lens.tolist()]
    assert feats.shape == (3, max(frame_lens.tolist()), 201)


# ----------------------------------------------------------------------------- windows and banks


def _window(kind: str) -> torch.Tensor:
    """A 9-sample window (9 ms at 1 kHz)."""
    return kaldi_window(KaldiOptions(sample_rate=1000.0, frame_length_ms=9.0, frame_shift_ms=2.0,
                                     window_type=kind, num_mel_bins=4, num_ceps=4, low_freq=0.0))


@pytest.mark.parametrize("kind", ["povey", "hamming", "hanning", "rectangular", "blackman"])
def test_windows_are_symmetric_with_unit_peak(kind):
    w = _window(kind)
    assert w.shape == (9,)
    assert torch.allclose(w, w.flip(0), atol=1e-12)
    assert abs(float(w[4]) - 1.0) < 1e-12  # odd size: the centre sample is the peak


def test_window_edges():
    assert float(_window("povey")[0]) == 0.0 and float(_window("hanning")[0]) == 0.0
    assert abs(float(_window("hamming")[0]) - 0.08) < 1e-12
    assert abs(float(_window("blackman")[0])) < 1e-12
    assert torch.equal(_window("rectangular"), torch.ones(9, dtype=torch.float64))
    hann = _window("hanning")
    assert torch.allclose(_window("povey"), hann.pow(0.85), atol=1e-12)
    assert abs(float(hann[2]) - 0.5) < 1e-12  # quarter of the way: 0.5 - 0.5 cos(pi / 2)


def test_kaldi_mel_banks_are_a_partition_of_unity_between_the_first_and_last_centre():
    opts = KaldiOptions(num_mel_bins=40)
    banks = kaldi_mel_banks(opts)
    assert banks.shape == (257, 40)
    assert float(banks[-1].abs().sum()) == 0.0  # the Nyquist bin is unused
    freqs = torch.arange(257, dtype=torch.float64) * 16000 / 512
    mel = 1127 * torch.log1p(freqs / 700)
    lo, hi = 1127 * math.log1p(20 / 700), 1127 * math.log1p(8000 / 700)
    delta = (hi - lo) / 41
    inner = (mel >= lo + delta) & (mel <= hi - delta)
    assert inner.sum() > 200
    assert torch.allclose(banks[inner].sum(1), torch.ones(int(inner.sum()), dtype=torch.float64), atol=1e-9)
    assert float(banks[freqs < 20].sum()) == 0.0  # below low_freq


def test_htk_mel_filterbank_is_a_partition_of_unity_inside():
    fb = mel_filterbank(201, 80, 16000)
    assert fb.shape == (201, 80) and float(fb.min()) >= 0.0 and float(fb.max()) <= 1.0
    m = torch.linspace(0, 2595 * math.log10(1 + 8000 / 700), 82, dtype=torch.float64)
    points = 700 * (10 ** (m / 2595) - 1)
    freqs = torch.linspace(0, 8000, 201, dtype=torch.float64)
    inner = (freqs >= points[1]) & (freqs <= points[-2])
    assert torch.allclose(fb[inner].sum(1), torch.ones(int(inner.sum()), dtype=torch.float64), atol=1e-9)


def test_dct_matrix_is_orthonormal():
    dct = kaldi_dct_matrix(23, 23)
    assert torch.allclose(dct.T @ dct, torch.eye(23, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(dct[:, 0], torch.full((23,), 23 ** -0.5, dtype=torch.float64))


# ----------------------------------------------------------------------------- Kaldi known values


def test_kaldi_spectrogram_known_values_with_reflected_edges():
    # 4-sample frames, shift 2, plain frames: reflection pads [1 | 1 2 3 4 5 | 5 4 ..].
    opts = KaldiOptions(sample_rate=1000.0, frame_length_ms=4.0, frame_shift_ms=2.0, window_type="rectangular",
                        preemphasis=0.0, remove_dc_offset=False, snip_edges=False, num_mel_bins=4, num_ceps=4,
                        low_freq=0.0)
    wav = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, -7.0]])  # last sample is padding
    feats, n = kaldi_spectrogram(wav, torch.tensor([5]), opts)
    assert n.tolist() == [3]
    frames = torch.tensor([[1.0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 5, 4]])
    expected = torch.fft.rfft(frames).abs().square().clamp(min=1.1920928955078125e-07).log()
    expected[:, 0] = frames.square().sum(1).log()  # bin 0 holds the log energy
    assert torch.allclose(feats[0], expected, atol=1e-5)
    assert abs(float(feats[0, 0, 1]) - math.log(5.0)) < 1e-5  # |1 - i - 2 + 3i|^2 = 5


def test_kaldi_energy_floor_and_dc_removal():
    opts = KaldiOptions(sample_rate=1000.0, frame_length_ms=4.0, frame_shift_ms=4.0, num_mel_bins=4,
                        num_ceps=4, low_freq=0.0)
    const = torch.full((1, 8), 0.3)  # DC only: removed, energy floored at log(1) = 0
    feats, _ = kaldi_spectrogram(const, torch.tensor([8]), opts)
    assert feats[0, :, 0].tolist() == [0.0, 0.0]
    assert torch.allclose(feats[0, :, 1:], torch.full_like(feats[0, :, 1:], math.log(1.1920928955078125e-07)))


def test_kaldi_fbank_energy_column_placement():
    wavs, lens = _batch()
    base, _ = kaldi_fbank(wavs, lens, KaldiOptions(num_mel_bins=30))
    first, _ = kaldi_fbank(wavs, lens, KaldiOptions(num_mel_bins=30, use_energy=True))
    last, _ = kaldi_fbank(wavs, lens, KaldiOptions(num_mel_bins=30, use_energy=True, htk_compat=True))
    spec, _ = kaldi_spectrogram(wavs, lens, KaldiOptions())
    assert torch.equal(first[..., 1:], base) and torch.equal(last[..., :-1], base)
    assert torch.equal(first[..., 0], spec[..., 0]) and torch.equal(last[..., -1], spec[..., 0])


def test_kaldi_mfcc_lifter_and_energy():
    wavs, lens = _batch()
    plain, _ = kaldi_mfcc(wavs, lens, KaldiOptions(cepstral_lifter=0.0))
    lifted, _ = kaldi_mfcc(wavs, lens, KaldiOptions())
    lifter = 1 + 11 * torch.sin(math.pi * torch.arange(13) / 22)
    assert torch.allclose(lifted, plain * lifter, atol=1e-4)
    assert not torch.allclose(lifted, plain, atol=1e-2)
    energy, _ = kaldi_mfcc(wavs, lens, KaldiOptions(use_energy=True))
    spec, _ = kaldi_spectrogram(wavs, lens, KaldiOptions())
    assert torch.equal(energy[..., 0], spec[..., 0]) and torch.allclose(energy[..., 1:], lifted[..., 1:])
    htk, _ = kaldi_mfcc(wavs, lens, KaldiOptions(htk_compat=True))
    assert torch.allclose(htk[..., -1], lifted[..., 0] * math.sqrt(2), atol=1e-5)


def test_kaldi_options_from_kaldi_args():
    opts = KaldiOptions.from_kaldi_args({"frame_length": 20.0, "frame_shift": 5.0, "num_mel_bins": 40,
                                         "sample_frequency": 8000, "preemphasis_coefficient": 0.5,
                                         "vtln_warp": 1.0}, window_type="hamming")
    assert (opts.window_size, opts.window_shift, opts.padded_window_size) == (160, 40, 256)
    assert (opts.preemphasis, opts.window_type, opts.num_mel_bins) == (0.5, "hamming", 40)
    with pytest.raises(ValueError, match="unsupported Kaldi feature option vtln_warp"):
        KaldiOptions.from_kaldi_args({"vtln_warp": 0.9})
    with pytest.raises(ValueError, match="window_type"):
        KaldiOptions(window_type="kaiser")


# ----------------------------------------------------------------------------- padded batches


KALDI_CASES = [
    (kaldi_fbank, KaldiOptions(num_mel_bins=80, window_type="hamming")),
    (kaldi_fbank, KaldiOptions(snip_edges=False, use_energy=True, raw_energy=False, subtract_mean=True)),
    (kaldi_mfcc, KaldiOptions(use_energy=True)),
    (kaldi_spectrogram, KaldiOptions(round_to_power_of_two=False, window_type="blackman")),
]


@pytest.mark.parametrize("fn,opts", KALDI_CASES)
def test_kaldi_padded_batch_equals_each_utterance_alone(fn, opts):
    wavs, lens = _batch()
    feats, frame_lens = fn(wavs, lens, opts)
    for i, n in enumerate(lens.tolist()):
        alone, alone_lens = fn(wavs[i : i + 1, :n], lens[i : i + 1], opts)
        t = int(alone_lens[0])
        assert int(frame_lens[i]) == t
        assert (feats[i, :t] - alone[0]).abs().max() < 1e-5
        assert float(feats[i, t:].abs().sum()) == 0.0


def test_kaldi_padded_batch_twin_reads_padding_when_lengths_lie():
    # Twin of the test above: claiming the full padded length must change the short utterance.
    wavs, lens = _batch()
    opts = KaldiOptions(snip_edges=False)
    feats, _ = kaldi_fbank(wavs, lens, opts)
    wrong, _ = kaldi_fbank(wavs, torch.full_like(lens, wavs.shape[1]), opts)
    t = int(kaldi_frame_lengths(lens[:1], opts)[0])
    assert (feats[0, :t] - wrong[0, :t]).abs().max() > 1e-3


@pytest.mark.parametrize("opts", [StftOptions(), StftOptions(feat_type="linear", log=False),
                                  StftOptions(target_level=-25.0, win_ms=20.0)])
def test_stft_padded_batch_equals_each_utterance_alone(opts):
    wavs, lens = _batch()
    feats, frame_lens = stft_features(wavs, lens, opts)
    for i, n in enumerate(lens.tolist()):
        alone, _ = stft_features(wavs[i : i + 1, :n], lens[i : i + 1], opts)
        t = int(frame_lens[i])
        assert (feats[i, :t] - alone[0]).abs().max() <= 1e-5 * max(1.0, float(alone.abs().max()))
        assert float(feats[i, t:].abs().sum()) == 0.0


def test_stft_linear_matches_torch_stft_on_each_utterance():
    wavs, lens = _batch()
    opts = StftOptions(feat_type="linear", log=False)
    feats, frame_lens = stft_features(wavs, lens, opts)
    window = torch.hann_window(400)
    for i, n in enumerate(lens.tolist()):
        ref = torch.stft(wavs[i, :n], 400, 160, 400, window, center=True, pad_mode="reflect",
                         return_complex=True).abs().square().T  # (T, 201)
        assert ref.shape[0] == int(frame_lens[i])
        assert (feats[i, : ref.shape[0]] - ref).abs().max() < 1e-5 * float(ref.max())
        # Twin: a symmetric (non-periodic) window is a different STFT.
        other = torch.stft(wavs[i, :n], 400, 160, 400, torch.hann_window(400, periodic=False), center=True,
                           pad_mode="reflect", return_complex=True).abs().square().T
        assert (feats[i, : ref.shape[0]] - other).abs().max() > 1e-3 * float(ref.max())


def test_stft_target_level_normalises_loudness():
    wavs, lens = _batch()
    opts = StftOptions(target_level=-25.0)
    quiet, _ = stft_features(wavs, lens, opts)
    loud, _ = stft_features(wavs * 3.0, lens, opts)  # padding scaled too: must not matter
    assert (quiet - loud).abs().max() < 1e-4
    unscaled, _ = stft_features(wavs * 3.0, lens, StftOptions())
    assert (quiet - unscaled).abs().max() > 1.0


# ----------------------------------------------------------------------------- deltas and CMVN


def test_deltas_of_a_ramp_with_replicated_edges_at_each_utterance_end():
    ramp = torch.arange(10.0)[None, :, None] * 2.0  # slope 2
    x = torch.cat([ramp, ramp], 0)
    x[1, 7:] = 100.0  # second utterance has 7 frames; padding is garbage
    d = compute_deltas(x, torch.tensor([10, 7]), win_length=5)[..., 0]
    # replicate padding: d[0] = (1 * 2 + 2 * 4) / 10 * slope, d[1] = (1 * 4 + 2 * 6) / 10 * slope
    assert torch.allclose(d[0], torch.tensor([1.0, 1.6, 2, 2, 2, 2, 2, 2, 1.6, 1.0]))
    assert torch.allclose(d[1], torch.tensor([1.0, 1.6, 2, 2, 2, 1.6, 1.0, 0, 0, 0]))
    dd = add_deltas(x, torch.tensor([10, 7]), order=2)
    assert dd.shape == (2, 10, 3) and torch.equal(dd[..., 1], d)
    assert torch.allclose(dd[0, 4:6, 2], torch.zeros(2), atol=1e-6)  # constant slope: no acceleration
    assert float(dd[1, 7:].abs().sum()) == 0.0


def test_deltas_win_length_3():
    x = torch.tensor([[0.0, 1.0, 4.0, 9.0]])[..., None]
    d = compute_deltas(x, torch.tensor([4]), win_length=3)[0, :, 0]
    assert torch.allclose(d, torch.tensor([0.5, 2.0, 4.0, 2.5]))  # (x[t+1] - x[t-1]) / 2


def test_cmvn_uses_valid_frames_only():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 12, 5, generator=g) * 3 + 7
    x[1, 8:] = 1e6  # padding
    lens = torch.tensor([12, 8])
    y = cmvn(x, lens)
    valid = y[1, :8]
    assert torch.allclose(valid.mean(0), torch.zeros(5), atol=1e-5)
    assert torch.allclose(valid.std(0), torch.ones(5), atol=1e-5)  # unbiased
    assert float(y[1, 8:].abs().sum()) == 0.0
    alone = cmvn(x[1:, :8], lens[1:])
    assert (y[1, :8] - alone[0]).abs().max() < 1e-6
    # Twin: treating the padding as valid gives something else.
    assert (cmvn(x, torch.tensor([12, 12]))[1, :8] - alone[0]).abs().max() > 0.1


def test_cmvn_known_values_and_single_frame():
    x = torch.tensor([[[1.0], [3.0], [5.0]], [[4.0], [0.0], [0.0]]])
    y = cmvn(x, torch.tensor([3, 1]))[..., 0]
    assert torch.allclose(y[0], torch.tensor([-1.0, 0.0, 1.0]))  # mean 3, unbiased std 2
    assert y[1].tolist() == [0.0, 0.0, 0.0]


def test_zero_frame_utterances_and_bad_lengths():
    wavs = torch.randn(2, 1000)
    feats, n = kaldi_fbank(wavs, torch.tensor([1000, 300]), KaldiOptions())
    assert n.tolist() == [4, 0] and float(feats[1].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="wav_lens"):
        kaldi_fbank(wavs, torch.tensor([1001, 10]), KaldiOptions())
