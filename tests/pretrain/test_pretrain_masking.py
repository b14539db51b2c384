import pytest
import torch

from speechrep.pretrain.masking import MaskingConfig, alter, alter_time, mask_frequency, span_starts


def feats_and_lengths(seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(3, 120, 10, generator=g) + 5.0  # never 0, so zeroed frames are visible
    lengths = torch.tensor([120, 80, 30])
    feats[1, 80:] = 0.0
    feats[2, 30:] = 0.0
    return feats, lengths


def test_span_count_and_range():
    torch.manual_seed(0)
    config = MaskingConfig(mask_allow_overlap=False)
    for length in (30, 100, 1000):
        starts = span_starts(length, 7, config)
        assert len(starts) == round(length * 0.15 / 7)
        assert int(starts.max()) <= length - 8  # s3prl's last start: length - span - 1
        diffs = starts.sort().values.diff()
        assert bool((diffs >= 7).all())  # on a grid round(7 * 1.5) apart: no overlap


def test_time_masking_zero_random_and_keep():
    feats, lengths = feats_and_lengths()
    torch.manual_seed(1)
    zeroed, chosen = alter_time(
        feats, lengths, MaskingConfig(zero_probability=1.0, random_probability=0.0)
    )
    assert chosen.sum(1).tolist()[0] > 0 and not chosen[1, 80:].any() and not chosen[2, 30:].any()
    assert bool((zeroed[chosen] == 0).all()) and torch.equal(zeroed[~chosen], feats[~chosen])

    torch.manual_seed(1)
    swapped, chosen = alter_time(
        feats, lengths, MaskingConfig(zero_probability=0.0, random_probability=1.0)
    )
    for b in range(3):  # every replaced frame is a valid frame of the same utterance
        valid = feats[b, : lengths[b]]
        for frame in swapped[b][chosen[b]]:
            assert bool((valid == frame).all(1).any())
    assert not torch.equal(swapped, feats)

    torch.manual_seed(1)
    kept, chosen = alter_time(
        feats, lengths, MaskingConfig(zero_probability=0.0, random_probability=0.0)
    )
    assert torch.equal(kept, feats) and chosen.any()


def test_frequency_band_and_noise_stay_inside_valid_frames():
    feats, lengths = feats_and_lengths()
    torch.manual_seed(2)
    out, bins = mask_frequency(feats, lengths, 0.2)
    assert bool((bins.sum(1) <= 2).all())  # int(10 * 0.2)
    assert torch.equal(out[:, :, ~bins.any(0)], feats[:, :, ~bins.any(0)])

    torch.manual_seed(3)
    config = MaskingConfig(mask_proportion=0.0, mask_frequency=0.2, noise_proportion=1.0)
    noisy, label = alter(feats, lengths, config)
    assert not label[1, 80:].any() and not label[2, 30:].any()
    assert torch.equal(noisy[1, 80:], feats[1, 80:]) and torch.equal(noisy[2, 30:], feats[2, 30:])
    off = alter(
        feats, lengths, MaskingConfig(mask_proportion=0.0, mask_frequency=0.0, noise_proportion=0.0)
    )
    assert torch.equal(off[0], feats) and not off[1].any()
    assert not torch.equal(noisy[~label], feats[~label])  # the noise reached unlabelled elements


@pytest.mark.parametrize(
    "bad",
    [
        {"mask_proportion": 1.5},
        {"mask_consecutive_min": 0},
        {"zero_probability": 0.9, "random_probability": 0.2},
    ],
)
def test_bad_masking_config(bad):
    with pytest.raises(ValueError, match="task"):
        MaskingConfig(**bad)
