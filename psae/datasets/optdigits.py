"""UCI Optical Recognition of Handwritten Digits: ``optdigits.tra`` and ``optdigits.tes``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._base import DatasetError, RawData
from .source import Source

__all__ = ["OPTDIGITS_FILES", "SETTINGS", "SOURCE", "read_optdigits", "read_optdigits_file"]

OPTDIGITS_FILES = ("optdigits.tra", "optdigits.tes")
_FILES = {f: (f,) for f in OPTDIGITS_FILES}
_URLS = {
    f: f"https://archive.ics.uci.edu/ml/machine-learning-databases/optdigits/{f}" for f in _FILES
}


def read_optdigits_file(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One UCI file: rows of 64 integers 0..16 then the class 0..9, comma-separated."""
    path = Path(path)
    rows: list[list[int]] = []
    with open(path, encoding="ascii", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            cells = [v.strip() for v in line.split(",")]
            # digits only: int() also took "1_0" as 10 and any length of number
            if not all(c.isdigit() and c.isascii() and len(c) <= 3 for c in cells):
                raise DatasetError(f"{path}, line {lineno}: not comma-separated integers "
                                   "0..999")
            vals = [int(c) for c in cells]
            if len(vals) != 65:
                raise DatasetError(f"{path}, line {lineno}: {len(vals)} values, expected 65")
            rows.append(vals)
    if not rows:
        raise DatasetError(f"{path}: no data rows")
    a = np.array(rows, dtype=np.int64)
    X, y = a[:, :64], a[:, 64]
    if X.min() < 0 or X.max() > 16:
        raise DatasetError(f"{path}: feature values outside 0..16")
    if y.min() < 0 or y.max() > 9:
        raise DatasetError(f"{path}: class labels outside 0..9")
    return X.astype(np.uint8), y


def read_optdigits(files: list[Path]) -> RawData:
    """Decode ``optdigits.tra`` (train) and ``optdigits.tes`` (test)."""
    (Xtr, ytr), (Xte, yte) = (read_optdigits_file(f) for f in files)
    return RawData(Xtr, ytr, Xte, yte, (8, 8), [str(i) for i in range(10)])


_CHECKSUMS = {
    "optdigits.tra": (
        ("sha256", "e1b683cc211604fe8fd8c4417e6a69f31380e0c61d4af22e93cc21e9257ffedd"),),
    "optdigits.tes": (
        ("sha256", "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8"),),
}
#: the reproduction protocols' settings, shared with the bundled digits (the same images)
SETTINGS = {
    "paper": {"full": {"n_components": 100, "epochs": 100},
              "quick": {"n_components": 80, "epochs": 40}},
    "matched": {
        "full": {"n_components": 100, "targets": (5, 10, 20), "epochs": 200,
                 "max_epochs": 1000, "explore_target": 10},
        "quick": {"n_components": 80, "targets": (5, 10), "epochs": 60, "max_epochs": 60,
                  "explore_target": 10},
    },
}

SOURCE = Source(name="optdigits", label="OPTDIGITS", read=read_optdigits, files=_FILES, urls=_URLS,
                checksums=_CHECKSUMS, settings=SETTINGS)
