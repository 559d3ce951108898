"""The IDX file format (gzipped or not), as MNIST is distributed."""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ._base import DatasetError

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "read_idx"]

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@contextlib.contextmanager
def _stream(path: Path) -> Iterator[BinaryIO]:
    """The file's bytes as a stream, gunzipped where it starts with gzip's signature."""
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head != b"\x1f\x8b":
            yield f
            return
        with gzip.GzipFile(fileobj=f) as g:
            yield g


def _read(stream: BinaryIO, n: int, path: Path) -> bytes:
    """At most ``n`` bytes (fewer at the end); a damaged gzip stream said as such."""
    try:
        return stream.read(n)
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{path}: corrupt or truncated gzip data ({e})") from e


_CHUNK = 1 << 24


def _read_upto(stream: BinaryIO, n: int, path: Path) -> bytes:
    """At most ``n`` bytes, read 16 MiB at a time: asking for a header's claim at once
    (8192³ bytes from a 116-byte file) was a MemoryError before a byte was read."""
    parts, got = [], 0
    while got < n:
        part = _read(stream, min(_CHUNK, n - got), path)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_idx(path: str | os.PathLike[str], magic: int | None = None) -> np.ndarray:
    """Read one IDX file (gzip detected by content) into an array of its header's shape.

    Checks the magic number (``magic`` if given), and that the file length matches the header.
    """
    path = Path(path)
    with _stream(path) as stream:
        head = _read(stream, 4, path)
        if len(head) < 4:
            raise DatasetError(f"{path}: too short for an IDX header ({len(head)} bytes)")
        got = int.from_bytes(head, "big")
        zero, code, ndim = int.from_bytes(head[:2], "big"), head[2], head[3]
        if magic is not None and got != magic:
            raise DatasetError(f"{path}: wrong magic number {got} (expected {magic})")
        if zero != 0 or code not in _DTYPES or ndim == 0:
            raise DatasetError(f"{path}: not an IDX file (magic number {got})")
        raw_dims = _read(stream, 4 * ndim, path)
        if len(raw_dims) < 4 * ndim:
            raise DatasetError(f"{path}: truncated IDX header")
        dims = tuple(int.from_bytes(raw_dims[4 * i : 4 + 4 * i], "big") for i in range(ndim))
        dtype = _DTYPES[code]
        # Python ints: numpy's int64 product wrapped to 0 for dims (2**31, 2**31, 4); and no
        # more read than the header asks for, plus one byte to see a longer file (a gzip
        # that inflates to gigabytes stops there)
        body = math.prod(dims) * dtype.itemsize
        header = 4 + 4 * ndim
        data = _read_upto(stream, body + 1, path)
    if len(data) != body:
        length = (f"more than {header + body} bytes" if len(data) > body
                  else f"file length {header + len(data)}")
        raise DatasetError(f"{path}: {length} does not match its header (dims {dims} need "
                           f"{header + body} bytes)")
    arr = np.frombuffer(data, dtype=dtype).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False)
