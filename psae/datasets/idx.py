"""MNIST: the IDX file format (gzipped or not)."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ._base import DatasetError, RawData

__all__ = ["MNIST_FILES", "find_mnist", "read_idx", "read_mnist"]

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

#: the four files, without ``.gz``
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

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


def find_mnist(dirs: list[Path]) -> list[Path] | None:
    """The four MNIST files in the first of ``dirs`` that holds all of them (``.gz`` or not)."""
    for d in dirs:
        found = []
        for base in MNIST_FILES:
            cands = [d / f"{base}.gz", d / base]
            hit = next((c for c in cands if c.is_file()), None)
            if hit is None:
                break
            found.append(hit)
        else:
            return found
    return None


def _pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    X = read_idx(images, IMAGES_MAGIC)
    y = read_idx(labels, LABELS_MAGIC)
    if X.ndim != 3:
        raise DatasetError(f"{images}: expected 3 dimensions, header has {X.ndim}")
    if X.shape[1:] != (28, 28):
        raise DatasetError(f"{images}: expected 28x28 images, header says {X.shape[1:]}")
    if y.ndim != 1:
        raise DatasetError(f"{labels}: expected 1 dimension, header has {y.ndim}")
    if len(X) != len(y):
        raise DatasetError(f"{images} holds {len(X)} images but {labels} holds {len(y)} labels")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DatasetError(f"{labels}: labels outside 0..9")
    return X.reshape(len(X), -1), y.astype(np.int64)


def read_mnist(files: list[Path]) -> RawData:
    """Decode the four MNIST files (in :data:`MNIST_FILES` order)."""
    Xtr, ytr = _pair(files[0], files[1])
    Xte, yte = _pair(files[2], files[3])
    return RawData(Xtr, ytr, Xte, yte, (28, 28), [str(i) for i in range(10)])
