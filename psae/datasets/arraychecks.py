"""Checks and label encoding shared by the generic array readers (``.npz``, ``.csv``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import DatasetError

__all__ = ["encode_labels", "first_nonfinite"]


def first_nonfinite(a: np.ndarray) -> tuple[int, str] | None:
    """``(row, "NaN" | "inf")`` of the first row of ``a`` holding a NaN or infinity, else None."""
    if a.dtype.kind not in "fc" or a.size == 0:
        return None
    finite = np.isfinite(a.reshape(len(a), -1)).all(axis=1)
    if finite.all():
        return None
    row = int(np.argmin(finite))
    return row, "NaN" if np.isnan(a[row]).any() else "inf"


def encode_labels(
    ys: list[np.ndarray | None], path: Path
) -> tuple[list[np.ndarray | None], list[str] | None]:
    """Labels as int64 indices into their sorted unique values, and those values as class
    names (whole floats named as integers: ``1.0`` is class ``"1"``).

    Labels 0..K−1 stay as they are; others are renumbered, so labels {1, 2} are two classes,
    not three with an empty class 0, and IDs in the tens of thousands are not that many
    classes.
    """
    present = [y for y in ys if y is not None]
    if not present:
        return ys, None
    allv = np.concatenate(present)
    if allv.dtype.kind not in "iufUSb":
        raise DatasetError(f"{path}: unsupported label dtype {allv.dtype}")
    # whole floats as integers only where int64 holds them exactly: 1e19 and 2e19 both cast
    # to INT64_MIN and became one class
    if (allv.dtype.kind == "f" and np.all(np.isfinite(allv)) and np.all(allv == np.round(allv))
            and np.all(np.abs(allv) <= 2.0**53)):
        ys = [None if y is None else y.astype(np.int64) for y in ys]
        allv = allv.astype(np.int64)
    names = np.unique(allv)
    out = [None if y is None else np.searchsorted(names, y).astype(np.int64) for y in ys]
    return out, [str(n.decode() if isinstance(n, bytes) else n) for n in names.tolist()]
