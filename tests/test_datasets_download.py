"""psae.datasets downloads (local HTTP server and file:// URLs) and the decoded-array cache."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from psae import datasets
from psae.datasets import DatasetError, DatasetNotFoundError
from psae.datasets import download as dl

DATA = Path(
    os.environ.get("PSAE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
MNIST_GZ = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


class Server:
    """A tiny HTTP server on 127.0.0.1: ``routes[path] = bytes`` or ``("cut", bytes)``."""

    def __init__(self) -> None:
        self.routes: dict[str, object] = {}
        self.hits: list[str] = []
        routes, hits = self.routes, self.hits

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                hits.append(self.path)
                r = routes.get(self.path)
                if r is None:
                    self.send_error(404)
                    return
                if isinstance(r, tuple):  # announce all, send a part, hang up
                    body = r[1]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(r)))
                self.end_headers()
                self.wfile.write(r)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


@pytest.fixture
def urls(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, str]]:
    """A private copy of the URL table, restored after the test."""
    monkeypatch.delenv("PSAE_MIRROR", raising=False)
    table = {k: dict(v) for k, v in dl.URLS.items()}
    monkeypatch.setattr(dl, "URLS", table)
    return table


def files_in(d: Path) -> list[str]:
    return sorted(p.name for p in d.rglob("*") if p.is_file()) if d.exists() else []


# ----------------------------------------------------------------------------- downloads
def test_download_mnist_over_http(tmp_path: Path, server: Server, urls: dict) -> None:
    for f in MNIST_GZ:
        server.routes[f"/mnist/{f}"] = (DATA / "mnist" / f).read_bytes()
        urls["mnist"][f] = f"{server.url}/mnist/{f}"
    ds = datasets.load("mnist", tmp_path, cache=tmp_path / "c")
    assert ds.X_train.shape == (60_000, 784) and ds.X_test.shape == (10_000, 784)
    assert files_in(tmp_path / "mnist") == sorted(MNIST_GZ)
    for f in MNIST_GZ:
        assert (tmp_path / "mnist" / f).read_bytes() == (DATA / "mnist" / f).read_bytes()
    # present now: no second download
    n = len(server.hits)
    datasets.load("mnist", tmp_path, cache=tmp_path / "c")
    assert len(server.hits) == n


def test_download_only_missing_files(tmp_path: Path, server: Server, urls: dict) -> None:
    (tmp_path / "optdigits").mkdir()
    (tmp_path / "optdigits" / "optdigits.tra").write_bytes(
        (DATA / "optdigits" / "optdigits.tra").read_bytes()
    )
    server.routes["/tes"] = (DATA / "optdigits" / "optdigits.tes").read_bytes()
    urls["optdigits"]["optdigits.tes"] = f"{server.url}/tes"
    urls["optdigits"]["optdigits.tra"] = f"{server.url}/nothing-here"
    ds = datasets.load("optdigits", tmp_path, cache=False)
    assert ds.X_test.shape == (1797, 64)
    assert server.hits == ["/tes"]


def test_download_via_file_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSAE_MIRROR", DATA.as_uri())
    assert dl.url_for("optdigits", "optdigits.tra") == DATA.as_uri() + "/optdigits/optdigits.tra"
    ds = datasets.load("optdigits", tmp_path / "root", cache=False)
    assert ds.X_train.shape == (3823, 64)
    assert files_in(tmp_path / "root") == ["optdigits.tes", "optdigits.tra"]


def test_download_checksum_failure_leaves_nothing(
    tmp_path: Path, server: Server, urls: dict
) -> None:
    server.routes["/tra"] = b"1,2,3\n" * 100
    server.routes["/tes"] = (DATA / "optdigits" / "optdigits.tes").read_bytes()
    urls["optdigits"]["optdigits.tra"] = f"{server.url}/tra"
    urls["optdigits"]["optdigits.tes"] = f"{server.url}/tes"
    with pytest.raises(DatasetError) as ei:
        datasets.load("optdigits", tmp_path, cache=False)
    msg = str(ei.value)
    assert "optdigits.tra" in msg and "checksum mismatch" in msg and "/tra" in msg
    assert "e1b683cc211604fe8fd8c4417e6a69f31380e0c61d4af22e93cc21e9257ffedd" in msg
    assert files_in(tmp_path) == []


def test_download_interrupted_leaves_nothing(tmp_path: Path, server: Server, urls: dict) -> None:
    server.routes["/big"] = ("cut", (DATA / "mnist" / "train-labels-idx1-ubyte.gz").read_bytes())
    urls["mnist"] = {f: f"{server.url}/big" for f in MNIST_GZ}
    t = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as ei:
        datasets.load("mnist", tmp_path, cache=False)
    assert time.perf_counter() - t < 15
    msg = str(ei.value)
    assert "train-images-idx3-ubyte" in msg and str(tmp_path / "mnist") in msg
    assert isinstance(ei.value.__cause__, dl.DownloadError)
    assert files_in(tmp_path) == []
    # download_file on its own
    with pytest.raises(dl.DownloadError):
        dl.download_file(f"{server.url}/big", tmp_path / "x.bin", expected=[])
    assert files_in(tmp_path) == []


def test_download_unreachable_fails_fast(tmp_path: Path, urls: dict) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    urls["optdigits"] = {
        f: f"http://127.0.0.1:{port}/{f}" for f in ("optdigits.tra", "optdigits.tes")
    }
    t = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as ei:
        datasets.load("optdigits", tmp_path, cache=False)
    assert time.perf_counter() - t < 12
    msg = str(ei.value)
    assert "optdigits.tra" in msg and "optdigits.tes" in msg and "download failed" in msg
    assert files_in(tmp_path) == []
    with pytest.raises(dl.DownloadError):
        dl.download_file((tmp_path / "none.bin").as_uri(), tmp_path / "out.bin")
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        datasets.load("optdigits", tmp_path, download=False)


def test_download_file_success_and_404(tmp_path: Path, server: Server) -> None:
    server.routes["/f"] = b"hello" * 1000
    import hashlib

    sha = hashlib.sha256(b"hello" * 1000).hexdigest()
    out = dl.download_file(f"{server.url}/f", tmp_path / "f.bin", expected=[("sha256", sha)])
    assert out.read_bytes() == b"hello" * 1000
    with pytest.raises(DatasetError):
        dl.download_file(f"{server.url}/f", tmp_path / "g.bin", expected=[("sha256", "0" * 64)])
    with pytest.raises(dl.DownloadError, match="404"):
        dl.download_file(f"{server.url}/missing", tmp_path / "h.bin")
    assert files_in(tmp_path) == ["f.bin"]


# ----------------------------------------------------------------------------- cache
def write_optdigits(root: Path, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = np.concatenate([rng.integers(0, 17, (30, 64)), np.arange(30)[:, None] % 10], axis=1)
    d = root / "optdigits"
    d.mkdir(parents=True, exist_ok=True)
    text = "\n".join(",".join(map(str, r)) for r in rows) + "\n"
    for f in ("optdigits.tra", "optdigits.tes"):
        (d / f).write_text(text)
    return rows


class Counter:
    def __init__(self, fn):
        self.fn, self.n = fn, 0

    def __call__(self, *a, **k):
        self.n += 1
        return self.fn(*a, **k)


def entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.iterdir() if p.is_dir())


def test_cache_hit_stale_and_damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "c"
    src = datasets.SOURCES["optdigits"]
    counter = Counter(src.read)
    monkeypatch.setitem(datasets.SOURCES, "optdigits", dataclasses.replace(src, read=counter))
    rows = write_optdigits(tmp_path)
    load = lambda: datasets.load("optdigits", tmp_path, cache=cache, verify=False)  # noqa: E731
    ds = load()
    assert counter.n == 1
    (entry,) = entries(cache)
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["arrays"]["X_train"]["shape"] == [30, 64]
    assert manifest["arrays"]["X_train"]["dtype"] == "|u1"
    # hit
    ds2 = load()
    assert counter.n == 1
    np.testing.assert_array_equal(ds2.X_train, ds.X_train)
    # stale: the source changed -> rebuilt, old entry dropped
    rows2 = write_optdigits(tmp_path, seed=1)
    st = (tmp_path / "optdigits" / "optdigits.tra").stat()
    os.utime(tmp_path / "optdigits" / "optdigits.tra", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    ds3 = load()
    assert counter.n == 2
    np.testing.assert_array_equal(ds3.X_train, rows2[:, :64])
    assert not np.array_equal(rows2, rows)
    (entry,) = entries(cache)
    # damaged: one byte altered in the middle of a .npy -> rebuilt
    f = entry / "X_train.npy"
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF
    f.write_bytes(bytes(b))
    ds4 = load()
    assert counter.n == 3
    np.testing.assert_array_equal(ds4.X_train, rows2[:, :64])
    # truncated .npy -> rebuilt
    (entry,) = entries(cache)
    f = entry / "y_test.npy"
    f.write_bytes(f.read_bytes()[:-4])
    np.testing.assert_array_equal(load().y_test, rows2[:, 64])
    assert counter.n == 4
    # missing file / garbage manifest -> rebuilt
    (entry,) = entries(cache)
    (entry / "manifest.json").write_text("{not json")
    load()
    assert counter.n == 5
    (entry,) = entries(cache)
    (entry / "X_test.npy").unlink()
    load()
    assert counter.n == 6
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp")]


def test_cache_false_writes_nothing(tmp_path: Path) -> None:
    write_optdigits(tmp_path)
    datasets.load("optdigits", tmp_path, cache=False, verify=False)
    assert not (tmp_path / ".cache").exists()
    # default: root/.cache, or PSAE_CACHE
    datasets.load("optdigits", tmp_path, verify=False)
    assert entries(tmp_path / ".cache")


def test_cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_optdigits(tmp_path)
    monkeypatch.setenv("PSAE_CACHE", str(tmp_path / "envcache"))
    datasets.load("optdigits", tmp_path, verify=False)
    assert entries(tmp_path / "envcache") and not (tmp_path / ".cache").exists()


def test_failed_decode_leaves_no_cache(tmp_path: Path) -> None:
    write_optdigits(tmp_path)
    (tmp_path / "optdigits" / "optdigits.tes").write_text("oops\n")
    with pytest.raises(DatasetError):
        datasets.load("optdigits", tmp_path, cache=tmp_path / "c", verify=False)
    assert not (tmp_path / "c").exists() or entries(tmp_path / "c") == []


def test_read_only_root_caches_in_user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PSAE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "ro"
    write_optdigits(root)
    root.chmod(0o555)
    try:
        datasets.load("optdigits", root, verify=False)
        assert not (root / ".cache").exists()
        assert entries(tmp_path / "xdg" / "psae")
    finally:
        root.chmod(0o755)
