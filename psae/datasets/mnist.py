"""MNIST: four IDX files (gzipped or not), 60,000 training and 10,000 test digits of 28x28."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import idx
from ._base import DatasetError, RawData
from .source import Source

__all__ = ["MNIST_FILES", "SOURCE", "read_mnist"]

#: the four files, without ``.gz``, in the order :func:`read_mnist` takes them
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_FILES = {f"{f}.gz": (f"{f}.gz", f) for f in MNIST_FILES}
_URLS = {f: f"https://ossci-datasets.s3.amazonaws.com/mnist/{f}" for f in _FILES}
_PUT = "these files (gzipped or not)"


def _pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    # through the module, so a test can stand in for the decoder
    X = idx.read_idx(images, idx.IMAGES_MAGIC)
    y = idx.read_idx(labels, idx.LABELS_MAGIC)
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
    (Xtr, ytr), (Xte, yte) = _pair(*files[:2]), _pair(*files[2:])
    return RawData(Xtr, ytr, Xte, yte, (28, 28), [str(i) for i in range(10)])


SOURCE = Source(name="mnist", label="MNIST", read=read_mnist, files=_FILES, urls=_URLS, put=_PUT)
