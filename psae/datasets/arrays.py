"""Generic array files: ``.npz`` and numeric ``.csv``."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ._base import Dataset, DatasetError, RawData

__all__ = ["load_arrays", "read_arrays"]


def _labels(y: np.ndarray, path: Path, key: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DatasetError(f"{path}: {key} must be 1-D, has shape {y.shape}")
    return y


def _encode_labels(
    ys: list[np.ndarray | None], path: Path
) -> tuple[list[np.ndarray | None], list[str] | None]:
    present = [y for y in ys if y is not None]
    if not present:
        return ys, None
    allv = np.concatenate(present)
    if np.issubdtype(allv.dtype, np.integer) or (
        np.issubdtype(allv.dtype, np.floating)
        and np.all(np.isfinite(allv))
        and np.all(allv == np.round(allv))
    ):
        ints = allv.astype(np.int64)
        if ints.size and ints.min() >= 0 and ints.max() < 100_000:
            # integer labels are kept as they are; classes named 0..max
            return [None if y is None else y.astype(np.int64) for y in ys], [
                str(i) for i in range(int(ints.max()) + 1)
            ]
    if allv.dtype.kind not in "iufUSb":
        raise DatasetError(f"{path}: unsupported label dtype {allv.dtype}")
    names = np.unique(allv)
    out = [None if y is None else np.searchsorted(names, y).astype(np.int64) for y in ys]
    return out, [str(n.decode() if isinstance(n, bytes) else n) for n in names.tolist()]


def _features(X: np.ndarray, path: Path, key: str) -> tuple[np.ndarray, tuple[int, ...] | None]:
    X = np.asarray(X)
    if X.ndim < 2:
        raise DatasetError(f"{path}: {key} must have at least 2 dimensions, has {X.shape}")
    if X.dtype.kind not in "iufb":
        raise DatasetError(f"{path}: {key} must be numeric, has dtype {X.dtype}")
    shape = tuple(int(s) for s in X.shape[1:]) if X.ndim > 2 else None
    return X.reshape(len(X), -1), shape


def _read_npz(path: Path) -> RawData:
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise DatasetError(f"{path}: cannot read .npz ({e})") from e
    if "X_train" in d:
        Xtr, shape = _features(d["X_train"], path, "X_train")
        Xte = None
        if "X_test" in d:
            Xte, shape_te = _features(d["X_test"], path, "X_test")
            if Xte.shape[1] != Xtr.shape[1] or shape_te != shape:
                raise DatasetError(f"{path}: X_train and X_test have different feature shapes")
        ytr = _labels(d["y_train"], path, "y_train") if "y_train" in d else None
        yte = _labels(d["y_test"], path, "y_test") if "y_test" in d else None
        if Xte is None and yte is not None:
            raise DatasetError(f"{path}: y_test without X_test")
    elif "X" in d:
        Xtr, shape = _features(d["X"], path, "X")
        ytr = _labels(d["y"], path, "y") if "y" in d else None
        Xte = yte = None
    else:
        raise DatasetError(
            f"{path}: expected arrays 'X' (and 'y') or 'X_train', 'y_train', 'X_test', 'y_test'; "
            f"found {sorted(d)}"
        )
    for X, y, k in ((Xtr, ytr, "train"), (Xte, yte, "test")):
        if X is not None and y is not None and len(X) != len(y):
            raise DatasetError(f"{path}: {len(X)} {k} samples but {len(y)} labels")
    if (ytr is None) != (yte is None) and Xte is not None:
        raise DatasetError(f"{path}: labels given for only one of train and test")
    (ytr, yte), classes = _encode_labels([ytr, yte], path)
    return RawData(Xtr, ytr, Xte, yte, shape, classes)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _read_csv(path: Path, label_column: int | None) -> RawData:
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = [(i, ln.strip()) for i, ln in enumerate(f, 1) if ln.strip()]
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not a text file ({e})") from e
    if lines and not all(_is_number(c) for c in lines[0][1].split(",")):
        lines = lines[1:]  # header row
    if not lines:
        raise DatasetError(f"{path}: no data rows")
    rows = []
    width = None
    for lineno, ln in lines:
        cells = ln.split(",")
        try:
            vals = [float(c) for c in cells]
        except ValueError as e:
            raise DatasetError(f"{path}, line {lineno}: non-numeric value ({e})") from e
        if width is None:
            width = len(vals)
        elif len(vals) != width:
            raise DatasetError(f"{path}, line {lineno}: {len(vals)} columns, expected {width}")
        rows.append(vals)
    a = np.array(rows, dtype=np.float64)
    y = None
    if label_column is not None:
        if not -a.shape[1] <= label_column < a.shape[1]:
            raise DatasetError(f"{path}: label_column {label_column} out of range")
        col = label_column % a.shape[1]
        y = a[:, col]
        a = np.delete(a, col, axis=1)
        if a.shape[1] == 0:
            raise DatasetError(f"{path}: no feature columns besides the label")
    (y,), classes = _encode_labels([y], path)
    return RawData(a.astype(np.float32), y, None, None, None, classes)


def read_arrays(path: str | os.PathLike[str], label_column: int | None = None) -> RawData:
    """Decode a ``.npz`` or ``.csv`` file into :class:`RawData`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if label_column is not None:
            raise ValueError("label_column applies to .csv files only")
        return _read_npz(path)
    if suffix == ".csv":
        return _read_csv(path, label_column)
    raise ValueError(f"{path}: unsupported array file (expected .npz or .csv)")


def load_arrays(
    path: str | os.PathLike[str],
    *,
    label_column: int | None = None,
    limit: int | None = None,
    normalize: bool = False,
    seed: int = 0,
) -> Dataset:
    """Load a generic ``.npz`` or ``.csv`` file as a :class:`Dataset` (``shape=None`` if 2-D).

    ``.npz``: arrays ``X`` (and optional ``y``), or ``X_train``, ``y_train``, ``X_test``,
    ``y_test`` (labels optional). Features of more than 2 dimensions are flattened and their
    trailing shape kept as ``shape``. Integer labels are kept; other labels are encoded as
    indices into the sorted unique values (``classes``).
    ``.csv``: numeric, comma-separated; a non-numeric first row is a header and skipped;
    ``label_column`` (an index, negative counts from the end) names the label column, ``None``
    means no labels. There is no test split (``X_test is None``).
    """
    from . import _finish

    raw = read_arrays(path, label_column)
    return _finish(
        Path(path).stem,
        raw,
        str(Path(path)),
        limit=limit,
        grayscale=False,
        normalize=normalize,
        seed=seed,
    )
