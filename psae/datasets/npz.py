"""Generic ``.npz`` files: ``X`` (and ``y``) or ``X_train``, ``y_train``, ``X_test``, ``y_test``."""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._base import DatasetError, Note, RawData
from .arraychecks import encode_labels, first_nonfinite

__all__ = ["read_npz", "SQUARE_NOTE"]

# said in the reproduce report's data table; not on every command's stderr
SQUARE_NOTE = Note("X holds flat rows whose width is a square: drawn as square images (save X "
                   "with shape (N, H, W) to give another shape)", "square")

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive
_NPY_MAGIC = b"\x93NUMPY"


def _check_signature(path: Path) -> None:
    """Refuse what is not a zip archive before numpy does (it would talk about pickles)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] in _ZIP_MAGIC:
        return
    if not head:
        what = "the file is empty"
    elif head.startswith(_NPY_MAGIC):
        what = "it is a single .npy array: save with np.savez"
    elif head[:1] == b"\x80":
        what = "it looks like a pickle, which psae never loads"
    elif all(32 <= c < 127 or c in b"\t\r\n" for c in head):
        what = "it looks like a text file"
    else:
        what = f"it starts with {head[:4]!r}"
    raise DatasetError(f"{path}: cannot read: not a .npz archive (no zip signature; {what})")


def _check_sizes(path: Path) -> None:
    """Each member's declared array no larger than the bytes the archive holds for it: a
    300-byte file declaring a 10⁷ x 10⁷ array made numpy try to allocate 728 TiB."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(f)
            if dtype.hasobject:
                continue  # refused by name below
            need = math.prod(int(n) for n in shape) * dtype.itemsize
            if need > info.file_size:
                raise DatasetError(
                    f"{path}: member {info.filename!r} declares a {shape} {dtype} array "
                    f"({need:,} bytes) but holds {info.file_size:,} bytes: the file is "
                    "damaged or not what it says")


def _members(path: Path) -> dict[str, np.ndarray]:
    _check_signature(path)
    out: dict[str, np.ndarray] = {}
    try:
        _check_sizes(path)
        with np.load(path, allow_pickle=False) as z:
            for k in z.files:
                try:
                    v = z[k]
                except ValueError as e:
                    if "allow_pickle" not in str(e):
                        raise
                    raise DatasetError(
                        f"{path}: array {k!r} holds Python objects; psae never unpickles data "
                        "files: store numeric (or string-label) arrays"
                    ) from None
                if not isinstance(v, np.ndarray):
                    raise DatasetError(f"{path}: member {k!r} is not a .npy array")
                out[k] = v
    except DatasetError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error,
            NotImplementedError, RuntimeError, MemoryError) as e:
        # zlib.error: a damaged deflate stream; RuntimeError: an encrypted member;
        # NotImplementedError: a compression zipfile lacks
        raise DatasetError(f"{path}: cannot read .npz ({type(e).__name__}: {e})") from e
    return out


def _finite(a: np.ndarray, path: Path, key: str) -> np.ndarray:
    bad = first_nonfinite(a)
    if bad is not None:
        raise DatasetError(f"{path}: {key} row {bad[0]} contains {bad[1]}")
    return a


def _labels(y: np.ndarray, path: Path, key: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DatasetError(f"{path}: {key} must be 1-D, has shape {y.shape}")
    return _finite(y, path, key)


def _features(X: np.ndarray, path: Path, key: str) -> tuple[np.ndarray, tuple[int, ...] | None]:
    X = np.asarray(X)
    if X.ndim < 2:
        raise DatasetError(f"{path}: {key} must have at least 2 dimensions, has {X.shape}")
    if X.dtype.kind not in "iufb":
        raise DatasetError(f"{path}: {key} must be numeric, has dtype {X.dtype}")
    # checked before the reshape below, which cannot infer a width from zero rows
    if len(X) == 0:
        raise DatasetError(
            f"{path}: {key} has no rows (shape {X.shape}): store at least one sample"
        )
    if X[0].size == 0:
        raise DatasetError(f"{path}: {key} has no features (shape {X.shape})")
    X = _channels_last(X)
    shape = tuple(int(s) for s in X.shape[1:]) if X.ndim > 2 else None
    return _finite(X.reshape(len(X), -1), path, key), shape


def _channels_last(X: np.ndarray) -> np.ndarray:
    """Images as (N, H, W) or (N, H, W, C): a single channel's axis dropped, and PyTorch's
    channels-first (N, C, H, W) moved last, so that they are drawn as images."""
    if X.ndim == 4 and X.shape[1] in (1, 3) and X.shape[3] not in (1, 3, 4):
        X = np.moveaxis(X, 1, -1)
    if X.ndim == 4 and X.shape[3] == 1:
        X = X[..., 0]
    return X


def read_npz(path: Path) -> RawData:
    """Decode a ``.npz`` file; every array is checked for shape, dtype and NaN/inf."""
    d = _members(path)
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
    (ytr, yte), classes = encode_labels([ytr, yte], path)
    notes: tuple[str, ...] = ()
    raw = d["X_train"] if "X_train" in d else d["X"]
    if raw.ndim == 4 and tuple(raw.shape[1:]) != shape:
        # what was done, only: a (N, 3, 8, 8) file kept its 3 channels, and was told one dropped
        done = ("its single channel dropped" if raw.shape[1] == 1 or raw.shape[3] == 1
                else "channels moved last")
        notes += (f"images laid out as (N, H, W[, C]) from {tuple(raw.shape)}: {done}",)
    used = {"X_train", "y_train", "X_test", "y_test"} if "X_train" in d else {"X", "y"}
    if unused := sorted(set(d) - used):
        notes += (f"arrays not read: {', '.join(unused)} (psae reads "
                  f"{', '.join(sorted(used))}{'; labels for CA go in y' if 'y' in used else ''})",)
    if shape is None and (side := _square_side(Xtr.shape[1])):
        shape = (side, side)
        notes += (SQUARE_NOTE,)
    return RawData(Xtr, ytr, Xte, yte, shape, classes, notes=notes)


def _square_side(d: int) -> int | None:
    """The side of a square image of ``d`` pixels, from 4×4 up (flat rows of an .npz are most
    often images stored flat: drawn as line plots, their atoms and filters said nothing)."""
    side = int(round(d ** 0.5))
    return side if side >= 4 and side * side == d else None
