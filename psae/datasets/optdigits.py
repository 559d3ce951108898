"""UCI optdigits (``optdigits.tra`` / ``optdigits.tes``) and scikit-learn's bundled digits."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._base import DatasetError, RawData

__all__ = ["DIGITS_TEST_SIZE", "OPTDIGITS_FILES", "find_optdigits", "read_optdigits", "sk_digits"]

OPTDIGITS_FILES = ("optdigits.tra", "optdigits.tes")
#: fraction of scikit-learn's 1,797 digits held out as the test split (stratified, seed 0)
DIGITS_TEST_SIZE = 0.25


def read_optdigits_file(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One UCI file: rows of 64 integers 0..16 then the class 0..9, comma-separated."""
    path = Path(path)
    rows: list[list[int]] = []
    with open(path, encoding="ascii", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                vals = [int(v) for v in line.split(",")]
            except ValueError as e:
                raise DatasetError(f"{path}, line {lineno}: not comma-separated integers") from e
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


def find_optdigits(dirs: list[Path]) -> list[Path] | None:
    """Both optdigits files from the first of ``dirs`` that holds them."""
    for d in dirs:
        files = [d / f for f in OPTDIGITS_FILES]
        if all(f.is_file() for f in files):
            return files
    return None


def read_optdigits(files: list[Path]) -> RawData:
    """Decode ``optdigits.tra`` (train) and ``optdigits.tes`` (test)."""
    Xtr, ytr = read_optdigits_file(files[0])
    Xte, yte = read_optdigits_file(files[1])
    return RawData(Xtr, ytr, Xte, yte, (8, 8), [str(i) for i in range(10)])


def sk_digits() -> RawData:
    """scikit-learn's ``load_digits()`` split into train/test (25 % test, stratified, seed 0)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = d.data.astype(np.uint8)
    y = d.target.astype(np.int64)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=DIGITS_TEST_SIZE, stratify=y, random_state=0
    )
    return RawData(Xtr, ytr, Xte, yte, (8, 8), [str(i) for i in range(10)])
