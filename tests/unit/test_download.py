import threading

import pytest

from speechrep.upstream import download
from speechrep.upstream.download import DownloadError, cached_path, fetch, file_lock


def test_cache_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHREP_CACHE", str(tmp_path))
    path = cached_path("https://example.org/models/hubert_base_ls960.pt")
    assert path.parent == tmp_path and path.name.endswith("-hubert_base_ls960.pt")


def test_offline_error_names_url_and_ckpt(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHREP_CACHE", str(tmp_path))
    url = "http://127.0.0.1:9/hubert_base_ls960.pt"  # discard port: refused at once
    with pytest.raises(DownloadError, match=r"cannot download http://127\.0\.0\.1:9/hubert_base_ls960\.pt.*ckpt="):
        fetch(url, name="hubert_base")
    assert not cached_path(url).exists()


def test_cached_file_is_used_and_checksum_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHREP_CACHE", str(tmp_path))
    url = "http://127.0.0.1:9/x.pt"
    cached_path(url).write_bytes(b"abc")
    assert fetch(url).read_bytes() == b"abc"
    sha_abc = download.sha256_of(cached_path(url))
    assert fetch(url, sha256=sha_abc) == cached_path(url)
    with pytest.raises(DownloadError):  # wrong checksum -> re-download -> offline error
        fetch(url, sha256="0" * 64)


def test_file_lock_serialises(tmp_path):
    order = []

    def worker(tag):
        with file_lock(tmp_path / "l.lock"):
            order.append(f"{tag}-in")
            order.append(f"{tag}-out")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(0, 8, 2):
        assert order[i].split("-")[0] == order[i + 1].split("-")[0]
