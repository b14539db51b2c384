from dataclasses import dataclass

import pytest
import torch

from speechrep.upstream.base import Upstream, align_frames, frame_lengths


def test_frame_lengths_s3prl_rule():
    assert frame_lengths(torch.tensor([1, 160, 161, 16000, 27200]), 160).tolist() == [1, 1, 2, 100, 170]


def test_align_repeats_last_native_frame_and_zeros_rest():
    state = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    out = align_frames(state, native_lens=torch.tensor([2, 4]), target_lens=torch.tensor([4, 3]))
    assert out[..., 0].tolist() == [[0, 1, 1, 1], [4, 5, 6, 0]]


@dataclass(frozen=True)
class FrameConfig:
    stride: int = 100


class Framer(Upstream):
    """Native frames = floor(n / stride) (fewer than the convention), value = frame mean."""

    family = "test"
    config_class = FrameConfig

    def __init__(self, config):
        super().__init__(config)
        self.sample_rate, self.downsample_rate, self.hidden_size, self.num_layers = 16000, config.stride, 1, 1

    def forward_features(self, wavs, wav_lens):
        frames = wavs[:, : wavs.shape[1] // self.downsample_rate * self.downsample_rate]
        frames = frames.reshape(wavs.shape[0], -1, self.downsample_rate).mean(-1, keepdim=True)
        return [frames], wav_lens // self.downsample_rate


def test_batch_equals_single_through_base():
    model = Framer(FrameConfig())
    wavs = torch.randn(2, 1050)
    wavs[1, 530:] = 0
    batch = model(wavs, torch.tensor([1050, 530]))
    single = model(wavs[1:, :530], torch.tensor([530]))
    assert batch.lengths.tolist() == [11, 6] and single.lengths.tolist() == [6]
    assert torch.equal(batch.hidden_states[0][1, :6], single.hidden_states[0][0])
    assert batch.hidden_states[0][1, 6:].abs().sum() == 0


def test_input_validation_and_too_short():
    model = Framer(FrameConfig())
    with pytest.raises(ValueError, match=r"expected shape \(B, S\)"):
        model(torch.zeros(10), torch.tensor([10]))
    with pytest.raises(ValueError, match="wav_lens must be in 1..10"):
        model(torch.zeros(1, 10), torch.tensor([11]))
    with pytest.raises(ValueError, match="utterance 0 has 50 samples: too short"):
        model(torch.zeros(1, 50), torch.tensor([50]))
