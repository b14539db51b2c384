"""Upstream models: one base class, one registry, one loader."""

from speechrep.upstream.base import Upstream, UpstreamOutput
from speechrep.upstream.load import build_upstream, list_upstreams, load_upstream
from speechrep.upstream.registry import UPSTREAMS, UpstreamInfo

__all__ = ["UPSTREAMS", "Upstream", "UpstreamInfo", "UpstreamOutput", "build_upstream", "list_upstreams", "load_upstream"]
