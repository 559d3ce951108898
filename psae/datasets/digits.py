"""scikit-learn's bundled digits (the UCI optdigits test set), split into train and test."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import RawData
from .optdigits import SETTINGS
from .source import Source

__all__ = ["DIGITS_TEST_SIZE", "SOURCE", "sk_digits"]

#: fraction of scikit-learn's 1,797 digits held out as the test split (stratified, seed 0)
DIGITS_TEST_SIZE = 0.25


def sk_digits(paths: list[Path] | None = None) -> RawData:
    """scikit-learn's ``load_digits()`` split into train/test (25 % test, stratified, seed 0).

    ``paths`` is ignored: the data ship with scikit-learn.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = d.data.astype(np.uint8)
    y = d.target.astype(np.int64)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=DIGITS_TEST_SIZE, stratify=y, random_state=0
    )
    return RawData(Xtr, ytr, Xte, yte, (8, 8), [str(i) for i in range(10)])


SOURCE = Source(name="digits", label="digits (scikit-learn)", read=sk_digits, bundled="sklearn",
                settings=SETTINGS)
