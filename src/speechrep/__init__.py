"""speechrep: self-supervised speech representations — upstream, featurizer, pretraining, SUPERB.

Example:
    >>> import speechrep, torch
    >>> up = speechrep.load_upstream("fbank")
    >>> out = up(torch.randn(1, 16000) * 0.1, torch.tensor([16000]))
    >>> len(out.hidden_states), tuple(out.hidden_states[0].shape)
    (1, (1, 100, 240))
"""

from speechrep.audio import load_audio, pad_batch
from speechrep.featurizer import Featurizer
from speechrep.upstream import Upstream, UpstreamInfo, UpstreamOutput, list_upstreams, load_upstream

__version__ = "0.1.0"

__all__ = [
    "Featurizer",
    "Upstream",
    "UpstreamInfo",
    "UpstreamOutput",
    "list_upstreams",
    "load_audio",
    "load_upstream",
    "pad_batch",
    "__version__",
]
