"""Fetching data files from their official sources, atomically and checksum-verified.

:data:`URLS` maps each data set's file names to its official URL; tests and mirrors may
change it, or set ``PSAE_MIRROR`` to a base URL under which files are looked up as
``<base>/<dataset>/<file>`` (the layout of a data root, so ``file:///path/to/root`` works).
"""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from tqdm.auto import tqdm

from ._base import DatasetError
from .checksums import known_digests, verify_digests

__all__ = ["TIMEOUT", "URLS", "DownloadError", "download_file", "url_for"]

_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases/optdigits/"

#: dataset -> file name -> URL
URLS: dict[str, dict[str, str]] = {
    "mnist": {
        f: _MNIST + f
        for f in (
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        )
    },
    "cifar10": {
        "cifar-10-python.tar.gz": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    },
    "optdigits": {f: _UCI + f for f in ("optdigits.tra", "optdigits.tes")},
}

#: seconds before a connection or read is given up
TIMEOUT = 10.0
_CHUNK = 1 << 16


class DownloadError(OSError):
    """The transfer failed (unreachable, timed out, interrupted)."""


def url_for(dataset: str, filename: str) -> str:
    """The URL of one file: ``$PSAE_MIRROR/<dataset>/<filename>`` if set, else :data:`URLS`."""
    mirror = os.environ.get("PSAE_MIRROR")
    if mirror:
        return f"{mirror.rstrip('/')}/{dataset}/{filename}"
    return URLS[dataset][filename]


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    expected: Iterable[tuple[str, str]] | None = None,
    timeout: float | None = None,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` via a temp file in the same dir, verify, then rename.

    ``expected`` defaults to the published checksums of ``dest``'s name. On any failure the
    temp file is removed and nothing is left at ``dest``. Raises :class:`DownloadError` for
    transfer problems and :class:`DatasetError` for a checksum mismatch.
    """
    import hashlib

    dest = Path(dest)
    exp = list(expected) if expected is not None else known_digests(dest.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out:
            try:
                req = urllib.request.Request(url, headers={"User-Agent": "psae"})
                with urllib.request.urlopen(req, timeout=timeout or TIMEOUT) as resp:
                    total = resp.headers.get("Content-Length")
                    total = int(total) if total and total.isdigit() else None
                    got = 0
                    with tqdm(
                        total=total,
                        unit="B",
                        unit_scale=True,
                        desc=dest.name,
                        disable=None if progress else True,
                        leave=False,
                    ) as bar:
                        while chunk := resp.read(_CHUNK):
                            out.write(chunk)
                            sha.update(chunk)
                            md5.update(chunk)
                            got += len(chunk)
                            bar.update(len(chunk))
                    if total is not None and got != total:
                        raise DownloadError(
                            f"{url}: transfer interrupted after {got} of {total} bytes"
                        )
            except DownloadError:
                raise
            except (
                urllib.error.URLError,
                http.client.HTTPException,
                TimeoutError,
                ConnectionError,
                ValueError,
            ) as e:
                raise DownloadError(f"{url}: download failed ({e})") from e
        try:
            verify_digests(dest, {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}, exp)
        except DatasetError as e:
            raise DatasetError(f"downloaded from {url}: {e}") from None
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest
