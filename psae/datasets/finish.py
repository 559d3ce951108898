"""From decoded arrays to a :class:`Dataset`: subset, grayscale, float32, normalise."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ParameterError
from ._base import Dataset, DatasetError, Note, RawData, stratified_subset

__all__ = ["finish"]

_GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma weights


def _to_gray(X: np.ndarray) -> np.ndarray:
    n = len(X)
    X3 = X.reshape(n, -1, 3)
    out = np.empty((n, X3.shape[1]), dtype=np.float32)
    step = 4096
    for i in range(0, n, step):
        out[i : i + step] = X3[i : i + step].astype(np.float32) @ _GRAY
    return out


def _own(a: np.ndarray, dtype: type) -> np.ndarray:
    """``a`` as a C-contiguous, writeable array of ``dtype`` (copying cache memory maps)."""
    if isinstance(a, np.memmap) or not a.flags.writeable:
        return np.array(a, dtype=dtype, order="C")
    return np.ascontiguousarray(a, dtype=dtype)


def _fits_float32(a: np.ndarray, before: np.ndarray, name: str, key: str) -> np.ndarray:
    """``a`` (float32) unless the cast made a finite value infinite (|x| > 3.4e38)."""
    if before.dtype.kind == "f" and before.dtype.itemsize > 4 and not np.isfinite(a).all():
        row = int(np.argmin(np.isfinite(a).all(axis=1)))
        raise DatasetError(f"{name}: {key} row {row} holds a value beyond float32's range "
                           "(about ±3.4e38); psae computes in float32: rescale the data")
    return a


def _limit_test(limit: int, n_train: int, n_test: int, n_classes: int) -> int:
    k = math.ceil(limit * n_test / max(n_train, 1))
    return min(n_test, max(k, n_classes))


NO_TEST_NOTE = Note("no test split in this source", "no_test")
GRAY_NOTE = Note("colour images converted to gray (ITU-R 601 luma)", "gray")


def check_limit(limit: object, seed: object = 0) -> None:
    """Raise :class:`ParameterError` unless ``limit`` is ``None`` or a positive int, and
    ``seed`` an int >= 0 (numpy's own TypeError and ValueError said neither name)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        raise ParameterError(f"limit must be a positive int, got {limit!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be an int >= 0, got {seed!r}")


def finish(
    name: str,
    raw: RawData,
    source: str | tuple[str, ...],
    *,
    limit: int | None,
    grayscale: bool,
    normalize: bool,
    seed: int,
    notes: tuple[str, ...] = (),
) -> Dataset:
    """Post-process ``raw`` as :func:`psae.datasets.load` documents; ``notes`` are added to
    ``raw.notes``."""
    check_limit(limit, seed)
    Xtr, ytr, Xte, yte, shape = raw.X_train, raw.y_train, raw.X_test, raw.y_test, raw.shape
    rows_tr = rows_te = None
    if limit is not None:
        rng = np.random.default_rng(seed)
        n_tr = len(Xtr)
        rows_tr = idx = stratified_subset(ytr, n_tr, int(limit), rng)
        Xtr = Xtr[idx]
        ytr = None if ytr is None else ytr[idx]
        if Xte is not None:
            n_cls = 0 if yte is None else len(np.unique(yte))
            k = _limit_test(int(limit), n_tr, len(Xte), n_cls)
            rows_te = idx = stratified_subset(yte, len(Xte), k, rng)
            Xte = Xte[idx]
            yte = None if yte is None else yte[idx]
    if grayscale and shape is not None and len(shape) == 3 and shape[2] == 3:
        Xtr = _to_gray(Xtr)
        Xte = None if Xte is None else _to_gray(Xte)
        shape = shape[:2]
        notes = (*notes, GRAY_NOTE)
    with np.errstate(over="ignore"):  # an overflowing cast is the error below, not a warning
        Xtr = _fits_float32(_own(Xtr, np.float32), raw.X_train, name, "X_train")
        Xte = None if Xte is None else _fits_float32(_own(Xte, np.float32), raw.X_test, name,
                                                     "X_test")
    if normalize:
        from psae.preprocessing import Normalizer

        norm = Normalizer().fit(Xtr)
        Xtr = np.ascontiguousarray(norm.transform(Xtr), dtype=np.float32)
        Xte = None if Xte is None else np.ascontiguousarray(norm.transform(Xte), dtype=np.float32)
    ytr = None if ytr is None else _own(ytr, np.int64)
    yte = None if yte is None else _own(yte, np.int64)
    if Xte is None:
        notes = (*notes, NO_TEST_NOTE)
    return Dataset(
        name=name,
        X_train=Xtr,
        y_train=ytr,
        X_test=Xte,
        y_test=yte,
        shape=None if shape is None else tuple(int(s) for s in shape),
        classes=None if raw.classes is None else list(raw.classes),
        source=source,
        label_column=raw.label_column,
        feature_names=raw.feature_names,
        notes=(*raw.notes, *notes),
        rows_train=None if rows_tr is None or len(rows_tr) == len(raw.X_train)
        else np.asarray(rows_tr, dtype=np.int64),
        rows_test=None if rows_te is None or raw.X_test is None
        or len(rows_te) == len(raw.X_test) else np.asarray(rows_te, dtype=np.int64),
    )
