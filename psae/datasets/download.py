"""Fetching data files from their official sources, atomically and checksum-verified.

:data:`URLS` maps each data set's file names to its official URL, as the data sets'
:class:`~psae.datasets.source.Source` records declare them; tests and mirrors may change it, or
set ``PSAE_MIRROR`` to a base URL under which files are looked up as ``<base>/<dataset>/<file>``
(the layout of a data root, so ``file:///path/to/root`` works).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from ..io.atomic import atomic_path
from ._base import DatasetError
from .checksums import known_digests, verify_digests
from .registry import SOURCES

__all__ = ["TIMEOUT", "URLS", "DownloadError", "download_file", "url_for"]

#: dataset -> file name -> URL, as the data sets' modules declare them
URLS: dict[str, dict[str, str]] = {n: dict(s.urls) for n, s in SOURCES.items() if s.urls}

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
    """Download ``url`` to ``dest`` via a temp file in the same dir, verify, then rename
    (:func:`psae.io.atomic.atomic_path`: the file gets the umask's ordinary mode).

    ``expected`` defaults to the published checksums of ``dest``'s name. On any failure the
    temp file is removed and nothing is left at ``dest``. Raises :class:`DownloadError` for
    transfer problems and :class:`DatasetError` for a checksum mismatch.
    """
    dest = Path(dest)
    exp = list(expected) if expected is not None else known_digests(dest.name)
    with atomic_path(dest, suffix=".part", record=False) as tmp:
        with open(tmp, "wb") as out:
            digests = _transfer(url, out, dest.name, timeout or TIMEOUT, progress)
        try:
            # not the advice for a file on disk: nothing was kept, and a download is
            # checked whatever verify says
            verify_digests(dest, digests, exp, advice=(
                "The server sent another file (cut off, or changed): nothing was kept; try "
                "again, or another mirror (PSAE_MIRROR)"))
        except DatasetError as e:
            raise DatasetError(f"downloaded from {url}: {e}") from None
    return dest


#: what a failing connection raises: offline, refused, reset, timed out, a bad reply or URL
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, ValueError)


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    req = urllib.request.Request(url, headers={"User-Agent": "psae"})
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except _NETWORK_ERRORS as e:
        raise DownloadError(f"{url}: download failed ({e})") from e


def _read(resp: http.client.HTTPResponse, url: str) -> bytes:
    try:
        return resp.read(_CHUNK)
    except _NETWORK_ERRORS as e:
        raise DownloadError(f"{url}: download failed ({e})") from e


def _transfer(url: str, out: BinaryIO, desc: str, timeout: float, progress: bool) -> dict[str, str]:
    """Copy ``url`` into ``out``; the sha256 and md5 of what came. Only the network's errors
    become :class:`DownloadError`; a failing write (a full disk) stays what it is."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with _open(url, timeout) as resp:
        total = resp.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        got = 0
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=desc,
            disable=None if progress else True,
            leave=False,
        ) as bar:
            while chunk := _read(resp, url):
                out.write(chunk)
                sha.update(chunk)
                md5.update(chunk)
                got += len(chunk)
                bar.update(len(chunk))
    if total is not None and got != total:
        raise DownloadError(f"{url}: transfer interrupted after {got} of {total} bytes")
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}
