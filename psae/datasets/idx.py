"""The IDX file format (gzipped or not), as MNIST is distributed."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

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


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head != b"\x1f\x8b":
            return f.read()
        try:
            with gzip.GzipFile(fileobj=f) as g:
                return g.read()
        except (OSError, EOFError, zlib.error) as e:
            raise DatasetError(f"{path}: corrupt or truncated gzip data ({e})") from e


def read_idx(path: str | os.PathLike[str], magic: int | None = None) -> np.ndarray:
    """Read one IDX file (gzip detected by content) into an array of its header's shape.

    Checks the magic number (``magic`` if given), and that the file length matches the header.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    got = int.from_bytes(data[:4], "big")
    zero, code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if magic is not None and got != magic:
        raise DatasetError(f"{path}: wrong magic number {got} (expected {magic})")
    if zero != 0 or code not in _DTYPES or ndim == 0:
        raise DatasetError(f"{path}: not an IDX file (magic number {got})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _DTYPES[code]
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DatasetError(
            f"{path}: file length {len(data)} does not match its header "
            f"(dims {dims} need {expected} bytes)"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False)
