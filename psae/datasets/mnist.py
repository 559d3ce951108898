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
    return X.reshape(len(X), 28 * 28), y.astype(np.int64)  # -1 failed on 0 images


def read_mnist(files: list[Path]) -> RawData:
    """Decode the four MNIST files (in :data:`MNIST_FILES` order)."""
    (Xtr, ytr), (Xte, yte) = _pair(*files[:2]), _pair(*files[2:])
    return RawData(Xtr, ytr, Xte, yte, (28, 28), [str(i) for i in range(10)])


_CHECKSUMS = {
    # gzipped as distributed (sha256 as published with the copy in shared/data)
    "train-images-idx3-ubyte.gz": (
        ("sha256", "db8f937d487057fb14a9f0fbe97f0bc8d311ab41b750d41e1ff37c43b9e55e19"),),
    "train-labels-idx1-ubyte.gz": (
        ("sha256", "51fc562b6747b666fbf6e84ce29d43c3cb5f9c388c664d43b33f02095313405a"),),
    "t10k-images-idx3-ubyte.gz": (
        ("sha256", "cfeddb84311ecf044fc6a5b0f6ee8a24d265d4e83e388400186eb114082f4209"),),
    "t10k-labels-idx1-ubyte.gz": (
        ("sha256", "e41c74e484045d39b462a7790a4af51301bd9b0b24f0154798d713ec68c45920"),),
    # the uncompressed originals
    "train-images-idx3-ubyte": (
        ("md5", "6bbc9ace898e44ae57da46a324031adb"),
        ("sha256", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db")),
    "train-labels-idx1-ubyte": (
        ("sha256", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),),
    "t10k-images-idx3-ubyte": (
        ("sha256", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),),
    "t10k-labels-idx1-ubyte": (
        ("sha256", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),),
}
_SETTINGS = {
    "paper": {
        "full": {"n_components": 500, "epochs": 10, "n_val": 10000, "grid_train": 10000,
                 "note": "grid points fitted on 10,000 of the 50,000 non-validation images to "
                         "bound the cost; final fits use all 60,000"},
        "quick": {"n_components": 200, "epochs": 8, "n_val": 1000, "train_limit": 4000,
                  "test_limit": 1000},
    },
    "matched": {
        "full": {"n_components": 1000, "targets": (10, 25, 50, 100), "epochs": 20,
                 "max_epochs": 100, "explore_target": 25},
        "quick": {"n_components": 200, "targets": (10, 25), "epochs": 6, "max_epochs": 6,
                  "explore_target": 25},
    },
}

SOURCE = Source(name="mnist", label="MNIST", read=read_mnist, files=_FILES, urls=_URLS, put=_PUT,
                checksums=_CHECKSUMS, settings=_SETTINGS)
