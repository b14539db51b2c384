"""Fetching registered checkpoints: cache folder, checksum, file lock, clear offline errors."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from speechrep.fileio import atomic_path


class DownloadError(RuntimeError):
    """A checkpoint could not be fetched: the message says which URL and how to pass the file."""


def cache_dir() -> Path:
    """``$SPEECHREP_CACHE`` or ``~/.cache/speechrep``."""
    root = os.environ.get("SPEECHREP_CACHE") or Path.home() / ".cache" / "speechrep"
    return Path(root)


def cached_path(url: str) -> Path:
    """Where ``url`` is stored: a short hash of the URL keeps equal basenames apart."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or "checkpoint"
    return cache_dir() / f"{digest}-{name}"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock so that concurrent processes (DDP ranks) download once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch(url: str, sha256: str | None = None, name: str | None = None, timeout: float = 30.0) -> Path:
    """Return a local copy of ``url``, downloading it into the cache once.

    Raises:
        DownloadError: offline / HTTP failure / checksum mismatch; says how to pass a local file.
    """
    target = cached_path(url)
    with file_lock(target.with_name(target.name + ".lock")):
        if target.is_file() and (sha256 is None or sha256_of(target) == sha256):
            return target
        how = (
            f"download it by hand and pass the file: load_upstream('{name or 'FAMILY'}', ckpt='/path/to/file') "
            f"or `speechrep extract -u {name or 'FAMILY'} -k /path/to/file ...`"
        )
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(target) as tmp:
                with open(tmp, "wb") as out:
                    while block := response.read(1 << 20):
                        out.write(block)
                if sha256 is not None and sha256_of(tmp) != sha256:
                    raise DownloadError(f"{url}: checksum mismatch (expected sha256 {sha256}); {how}")
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise DownloadError(f"cannot download {url} ({err}); {how}") from None
    return target
