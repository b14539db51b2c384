"""The one dict of upstream names. Adding a checkpoint means adding one entry here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UpstreamInfo:
    """A named upstream: which family builds it and where its weights live.

    ``url`` None means parameter-free (built from ``config``); ``sha256``/``size_bytes`` are
    checked after a download when known.
    """

    name: str
    family: str
    description: str
    url: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    sample_rate: int = 16000
    num_layers: int | None = None
    hidden_size: int | None = None


_S3PRL_CONVERTED = "https://huggingface.co/s3prl/converted_ckpts/resolve/main"
_DISTILHUBERT_URL = "https://huggingface.co/leo19941227/distilhubert/resolve/main/distilhubert_ls960_4-8-12.ckpt"


def _entries(*infos: UpstreamInfo) -> dict[str, UpstreamInfo]:
    return {info.name: info for info in infos}


UPSTREAMS: dict[str, UpstreamInfo] = _entries(
    # --- parameter-free baselines (speechrep.upstream.spectral) ---
    UpstreamInfo("fbank", "spectral", "Kaldi fbank 80 + delta + delta-delta, CMVN (240)",
                 config={"kind": "fbank"}, num_layers=1, hidden_size=240),
    UpstreamInfo("fbank_no_cmvn", "spectral", "Kaldi fbank 80 + delta + delta-delta, no CMVN (240)",
                 config={"kind": "fbank", "cmvn": False}, num_layers=1, hidden_size=240),
    UpstreamInfo("mfcc", "spectral", "Kaldi MFCC 13 + delta + delta-delta, CMVN (39)",
                 config={"kind": "mfcc"}, num_layers=1, hidden_size=39),
    UpstreamInfo("spectrogram", "spectral", "Kaldi spectrogram 512-point FFT, CMVN (257)",
                 config={"kind": "spectrogram"}, num_layers=1, hidden_size=257),
    UpstreamInfo("mel", "spectral", "log mel 80 from a centred STFT, CMVN (80)",
                 config={"kind": "mel"}, num_layers=1, hidden_size=80),
    UpstreamInfo("linear", "spectral", "log linear spectrum from a centred STFT, CMVN (201)",
                 config={"kind": "linear"}, num_layers=1, hidden_size=201),
    # --- wav2vec 2.0 family (speechrep.upstream.wav2vec2 / wavlm / distilhubert) ---
    # URLs are the files s3prl's hub downloads (s3prl's fairseq-free "converted" copies).
    UpstreamInfo("wav2vec2", "wav2vec2", "wav2vec 2.0 Base, LibriSpeech 960 h (= wav2vec2_base_960)",
                 url=f"{_S3PRL_CONVERTED}/wav2vec_small.pt", num_layers=13, hidden_size=768),
    UpstreamInfo("wav2vec2_base_960", "wav2vec2", "wav2vec 2.0 Base, LibriSpeech 960 h",
                 url=f"{_S3PRL_CONVERTED}/wav2vec_small.pt", num_layers=13, hidden_size=768),
    UpstreamInfo("wav2vec2_large_960", "wav2vec2", "wav2vec 2.0 Large, LibriSpeech 960 h",
                 url=f"{_S3PRL_CONVERTED}/libri960_big.pt", num_layers=25, hidden_size=1024),
    UpstreamInfo("wav2vec2_large_ll60k", "wav2vec2", "wav2vec 2.0 Large (LV-60), Libri-Light 60k h",
                 url=f"{_S3PRL_CONVERTED}/wav2vec_vox_new.pt", num_layers=25, hidden_size=1024),
    UpstreamInfo("wav2vec2_large_lv60_cv_swbd_fsh", "wav2vec2",
                 "wav2vec 2.0 Large, Libri-Light + CommonVoice + Switchboard + Fisher",
                 url=f"{_S3PRL_CONVERTED}/w2v_large_lv_fsh_swbd_cv.pt", num_layers=25, hidden_size=1024),
    UpstreamInfo("xlsr_53", "wav2vec2", "XLSR-53, wav2vec 2.0 Large on 53 languages (56k h)",
                 url=f"{_S3PRL_CONVERTED}/xlsr_53_56k.pt", num_layers=25, hidden_size=1024),
    UpstreamInfo("xls_r_300m", "wav2vec2", "XLS-R 300M, wav2vec 2.0 on 128 languages (436k h)",
                 url=f"{_S3PRL_CONVERTED}/xlsr2_300m.pt", num_layers=25, hidden_size=1024),
    UpstreamInfo("xls_r_1b", "wav2vec2", "XLS-R 1B, wav2vec 2.0 on 128 languages (436k h)",
                 url=f"{_S3PRL_CONVERTED}/xlsr2_960m_1000k.pt", num_layers=49, hidden_size=1280),
    UpstreamInfo("xls_r_2b", "wav2vec2", "XLS-R 2B, wav2vec 2.0 on 128 languages (436k h)",
                 url=f"{_S3PRL_CONVERTED}/xlsr2_2B_1000k.pt", num_layers=49, hidden_size=1920),
    UpstreamInfo("hubert", "hubert", "HuBERT Base, LibriSpeech 960 h (= hubert_base)",
                 url=f"{_S3PRL_CONVERTED}/hubert_base_ls960.pt", num_layers=13, hidden_size=768),
    UpstreamInfo("hubert_base", "hubert", "HuBERT Base, LibriSpeech 960 h",
                 url=f"{_S3PRL_CONVERTED}/hubert_base_ls960.pt", num_layers=13, hidden_size=768),
    UpstreamInfo("hubert_large_ll60k", "hubert", "HuBERT Large, Libri-Light 60k h",
                 url=f"{_S3PRL_CONVERTED}/hubert_large_ll60k.pt", num_layers=25, hidden_size=1024),
    UpstreamInfo("wavlm", "wavlm", "WavLM Base+, 94k h (= wavlm_base_plus)",
                 url=f"{_S3PRL_CONVERTED}/wavlm_base_plus.pt", num_layers=13, hidden_size=768),
    UpstreamInfo("wavlm_base", "wavlm", "WavLM Base, LibriSpeech 960 h",
                 url=f"{_S3PRL_CONVERTED}/wavlm_base.pt", num_layers=13, hidden_size=768),
    UpstreamInfo("wavlm_base_plus", "wavlm", "WavLM Base+, Libri-Light + GigaSpeech + VoxPopuli (94k h)",
                 url=f"{_S3PRL_CONVERTED}/wavlm_base_plus.pt", num_layers=13, hidden_size=768),
    UpstreamInfo("wavlm_large", "wavlm", "WavLM Large, Libri-Light + GigaSpeech + VoxPopuli (94k h)",
                 url=f"{_S3PRL_CONVERTED}/wavlm_large.pt", num_layers=25, hidden_size=1024),
    UpstreamInfo("data2vec", "data2vec", "data2vec-audio Base, LibriSpeech 960 h (= data2vec_base_960)",
                 url=f"{_S3PRL_CONVERTED}/audio_base_ls.pt", num_layers=13, hidden_size=768),
    UpstreamInfo("data2vec_base_960", "data2vec", "data2vec-audio Base, LibriSpeech 960 h",
                 url=f"{_S3PRL_CONVERTED}/audio_base_ls.pt", num_layers=13, hidden_size=768),
    UpstreamInfo("data2vec_large_ll60k", "data2vec", "data2vec-audio Large, Libri-Light 60k h",
                 url=f"{_S3PRL_CONVERTED}/vox_pretrained.pt", num_layers=25, hidden_size=1024),
    UpstreamInfo("distilhubert", "distilhubert", "DistilHuBERT, 2 layers distilled from HuBERT Base (= distilhubert_base)",
                 url=_DISTILHUBERT_URL, num_layers=6, hidden_size=768),
    UpstreamInfo("distilhubert_base", "distilhubert", "DistilHuBERT, 2 layers + heads for HuBERT Base layers 4/8/12, LibriSpeech 960 h",
                 url=_DISTILHUBERT_URL, num_layers=6, hidden_size=768),
    # --- s3prl's own models (speechrep.upstream.mockingjay / apc / npc) ---
    UpstreamInfo("tera", "tera", "TERA base (3 x 768), log-mel 80, time+freq+mag alteration, LibriSpeech 960 h",
                 url="https://huggingface.co/s3prl/tera/resolve/main/tera_logMelBase_T_F_M_AdamW_b32_1m_960hr_drop1/states-1000000.ckpt",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("tera_100hr", "tera", "TERA base, time+freq+mag alteration, 200k steps, LibriSpeech 100 h",
                 url="https://www.dropbox.com/s/l9ryl82k64m1lsk/states-200000.ckpt?dl=1",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("tera_960hr", "tera", "TERA base, time+freq+mag alteration, dropout 0.1, LibriSpeech 960 h",
                 url="https://huggingface.co/s3prl/tera/resolve/main/tera_logMelBase_T_F_M_AdamW_b32_1m_960hr_drop1/states-1000000.ckpt",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("tera_logMelBase_T_F_AdamW_b32_200k_100hr", "tera", "TERA base, time+freq alteration, 200k steps, 100 h",
                 url="https://www.dropbox.com/s/o36qt1zgtn3tsep/states-200000.ckpt?dl=1",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("tera_logMelBase_T_F_M_AdamW_b32_200k_100hr", "tera", "TERA base, time+freq+mag alteration, 200k steps, 100 h",
                 url="https://www.dropbox.com/s/l9ryl82k64m1lsk/states-200000.ckpt?dl=1",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("tera_logMelBase_T_F_AdamW_b32_1m_960hr", "tera", "TERA base, time+freq alteration, dropout 0.3, 960 h",
                 url="https://www.dropbox.com/s/98olxex0m7oy9ta/states-1000000.ckpt?dl=1",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("tera_logMelBase_T_F_AdamW_b32_1m_960hr_drop1", "tera", "TERA base, time+freq alteration, dropout 0.1, 960 h",
                 url="https://www.dropbox.com/s/2ekbt2gxlkbvfz0/states-1000000.ckpt?dl=1",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("tera_logMelBase_T_F_AdamW_b32_1m_960hr_seq3k", "tera", "TERA base, time+freq alteration, sequence length 3000, 960 h",
                 url="https://www.dropbox.com/s/tfysinbalpm3gsj/states-1000000.ckpt?dl=1",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("tera_logMelBase_T_F_M_AdamW_b32_1m_960hr_drop1", "tera", "TERA base, time+freq+mag alteration, dropout 0.1, 960 h",
                 url="https://huggingface.co/s3prl/tera/resolve/main/tera_logMelBase_T_F_M_AdamW_b32_1m_960hr_drop1/states-1000000.ckpt",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("tera_fbankBase_T_F_AdamW_b32_200k_100hr", "tera", "TERA base on Kaldi fbank 240, time+freq alteration, 100 h",
                 url="https://www.dropbox.com/s/i32ob29m6afufot/states-200000.ckpt?dl=1",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("mockingjay", "mockingjay", "Mockingjay large (12 x 768), log-mel in, linear target, LibriSpeech 360 h",
                 url="https://huggingface.co/s3prl/mockingjay/resolve/main/mockingjay_logMelLinearLarge_T_AdamW_b32_500k_360hr_drop1/states-500000.ckpt",
                 num_layers=13, hidden_size=768),
    UpstreamInfo("mockingjay_origin", "mockingjay", "Mockingjay large (12 x 768), log-mel in, linear target, LibriSpeech 360 h",
                 url="https://huggingface.co/s3prl/mockingjay/resolve/main/mockingjay_logMelLinearLarge_T_AdamW_b32_500k_360hr_drop1/states-500000.ckpt",
                 num_layers=13, hidden_size=768),
    UpstreamInfo("mockingjay_100hr", "mockingjay", "Mockingjay base (3 x 768), time alteration, 200k steps, LibriSpeech 100 h",
                 url="https://www.dropbox.com/s/luorglf8mdg67l2/states-200000.ckpt?dl=1",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("mockingjay_960hr", "mockingjay", "Mockingjay base, time alteration, dropout 0.1, LibriSpeech 960 h",
                 url="https://www.dropbox.com/s/7f9z6dzc7oix6qv/states-1000000.ckpt?dl=1",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("mockingjay_logMelBase_T_AdamW_b32_200k_100hr", "mockingjay", "Mockingjay base, time alteration, 200k steps, 100 h",
                 url="https://www.dropbox.com/s/luorglf8mdg67l2/states-200000.ckpt?dl=1",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("mockingjay_logMelLinearLarge_T_AdamW_b32_500k_360hr_drop1", "mockingjay", "Mockingjay large, log-mel in, linear target, 360 h",
                 url="https://huggingface.co/s3prl/mockingjay/resolve/main/mockingjay_logMelLinearLarge_T_AdamW_b32_500k_360hr_drop1/states-500000.ckpt",
                 num_layers=13, hidden_size=768),
    UpstreamInfo("mockingjay_logMelBase_T_AdamW_b32_1m_960hr", "mockingjay", "Mockingjay base, time alteration, dropout 0.3, 960 h",
                 url="https://www.dropbox.com/s/jzx0xggk663jev6/states-1000000.ckpt?dl=1",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("mockingjay_logMelBase_T_AdamW_b32_1m_960hr_drop1", "mockingjay", "Mockingjay base, time alteration, dropout 0.1, 960 h",
                 url="https://www.dropbox.com/s/7f9z6dzc7oix6qv/states-1000000.ckpt?dl=1",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("mockingjay_logMelBase_T_AdamW_b32_1m_960hr_seq3k", "mockingjay", "Mockingjay base, time alteration, sequence length 3000, 960 h",
                 url="https://www.dropbox.com/s/qnnvdrai2tfmjmh/states-1000000.ckpt?dl=1",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("audio_albert", "audio_albert", "Audio ALBERT (1 layer x 768 shared over 3), log-mel, LibriSpeech 960 h",
                 url="https://huggingface.co/s3prl/audio_albert/resolve/main/audio_albert_logMelBase_T_share_AdamW_b32_1m_960hr_drop1/states-1000000.ckpt",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("audio_albert_960hr", "audio_albert", "Audio ALBERT (1 layer x 768 shared over 3), log-mel, LibriSpeech 960 h",
                 url="https://huggingface.co/s3prl/audio_albert/resolve/main/audio_albert_logMelBase_T_share_AdamW_b32_1m_960hr_drop1/states-1000000.ckpt",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("audio_albert_logMelBase_T_share_AdamW_b32_1m_960hr_drop1", "audio_albert", "Audio ALBERT, time alteration, dropout 0.1, 960 h",
                 url="https://huggingface.co/s3prl/audio_albert/resolve/main/audio_albert_logMelBase_T_share_AdamW_b32_1m_960hr_drop1/states-1000000.ckpt",
                 num_layers=4, hidden_size=768),
    UpstreamInfo("apc", "apc", "APC, 3-layer GRU x 512, Kaldi fbank 80, LibriSpeech 360 h",
                 url="https://huggingface.co/leo19941227/apc_series/resolve/main/apc_360hr.ckpt",
                 num_layers=3, hidden_size=512),
    UpstreamInfo("apc_360hr", "apc", "APC, 3-layer GRU x 512, Kaldi fbank 80, LibriSpeech 360 h",
                 url="https://huggingface.co/leo19941227/apc_series/resolve/main/apc_360hr.ckpt",
                 num_layers=3, hidden_size=512),
    UpstreamInfo("apc_960hr", "apc", "APC, 3-layer GRU x 512, Kaldi fbank 80, LibriSpeech 960 h",
                 url="https://huggingface.co/leo19941227/apc_series/resolve/main/apc_960hr.ckpt",
                 num_layers=3, hidden_size=512),
    UpstreamInfo("vq_apc", "vq_apc", "VQ-APC, 3-layer GRU x 512 + VQ, Kaldi fbank 80, LibriSpeech 360 h",
                 url="https://huggingface.co/leo19941227/apc_series/resolve/main/vq_apc_360hr.ckpt",
                 num_layers=3, hidden_size=512),
    UpstreamInfo("vq_apc_360hr", "vq_apc", "VQ-APC, 3-layer GRU x 512 + VQ, Kaldi fbank 80, LibriSpeech 360 h",
                 url="https://huggingface.co/leo19941227/apc_series/resolve/main/vq_apc_360hr.ckpt",
                 num_layers=3, hidden_size=512),
    UpstreamInfo("vq_apc_960hr", "vq_apc", "VQ-APC, 3-layer GRU x 512 + VQ, Kaldi fbank 80, LibriSpeech 960 h",
                 url="https://huggingface.co/leo19941227/apc_series/resolve/main/vq_apc_960hr.ckpt",
                 num_layers=3, hidden_size=512),
    UpstreamInfo("npc", "npc", "NPC, 4 conv blocks x 512 + masked convs, Kaldi fbank 80, LibriSpeech 360 h",
                 url="https://huggingface.co/leo19941227/apc_series/resolve/main/npc_360hr.ckpt",
                 num_layers=9, hidden_size=512),
    UpstreamInfo("npc_360hr", "npc", "NPC, 4 conv blocks x 512 + masked convs, Kaldi fbank 80, LibriSpeech 360 h",
                 url="https://huggingface.co/leo19941227/apc_series/resolve/main/npc_360hr.ckpt",
                 num_layers=9, hidden_size=512),
    UpstreamInfo("npc_960hr", "npc", "NPC, 4 conv blocks x 512 + masked convs, Kaldi fbank 80, LibriSpeech 960 h",
                 url="https://huggingface.co/leo19941227/apc_series/resolve/main/npc_960hr.ckpt",
                 num_layers=9, hidden_size=512),
)


def get_info(name: str) -> UpstreamInfo:
    if name not in UPSTREAMS:
        import difflib

        close = difflib.get_close_matches(name, UPSTREAMS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown upstream '{name}': not a registered name, an existing path or a URL.{hint} "
            "Run `speechrep list` for the names."
        )
    return UPSTREAMS[name]
