"""Audio input: file reading, resampling, batching and the parameter-free features."""

from speechrep.audio.collate import lengths_to_mask, pad_batch
from speechrep.audio.io import (
    AUDIO_EXTENSIONS,
    AudioError,
    find_audio_files,
    load_audio,
    resample,
    save_audio,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioError",
    "find_audio_files",
    "lengths_to_mask",
    "load_audio",
    "pad_batch",
    "resample",
    "save_audio",
]
