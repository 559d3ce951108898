"""CIFAR-10 in its canonical python format (pickled batches), read with a restricted unpickler."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ._base import DatasetError, RawData
from .members import read_capped

__all__ = [
    "CIFAR10_CLASSES",
    "RestrictedUnpickler",
    "read_cifar_python",
    "safe_load_pickle",
]

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the globals numpy arrays need; anything else is refused."""

    def __init__(self, file: Any, *, source: str = "<pickle>", **kw: Any):
        super().__init__(file, **kw)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            found = super().find_class(module, name)
            if name == "ndarray":  # only ever _reconstruct's class argument, never called
                return _NDARRAY
            if name == "_reconstruct":
                return self._reconstruct(found)
            if name == "dtype":
                return self._dtype(found)
            return found
        raise DatasetError(
            f"{self.source}: refusing to unpickle forbidden global {module}.{name} "
            "(only numpy arrays, dicts, lists, bytes, str and ints are allowed)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise DatasetError(f"{self.source}: refusing persistent id in pickle")

    def _dtype(self, real):
        """numpy's ``dtype``, refusing object dtypes: an object array whose shape outruns its
        list made numpy's ``__setstate__`` crash the process (a CIFAR batch holds none)."""
        def dtype(*args, **kwargs):
            made = real(*args, **kwargs)
            if made.hasobject:
                raise DatasetError(f"{self.source}: object array in pickle")
            return made
        return dtype

    def _reconstruct(self, real):
        """numpy's ``_reconstruct`` as a pickled array calls it, ``(ndarray, (0,), b'b')``:
        an empty array that the pickle's own bytes then fill. Any other call (a pickle
        calling ``ndarray((10**8,), dtype('O'))`` made numpy allocate 800 MB before the size
        check ran) is refused."""
        def reconstruct(cls, shape, dtype):
            if cls is not _NDARRAY or tuple(shape) != (0,):
                raise DatasetError(f"{self.source}: refusing an array built other than numpy "
                                   "pickles one")
            return real(np.ndarray, shape, dtype)
        return reconstruct


class _ArrayToken:
    """What the unpickler hands out for ``numpy.ndarray``: a token that only
    ``_reconstruct`` accepts, so that a pickle cannot call the class itself."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise DatasetError("refusing a pickle that calls numpy.ndarray itself (a pickled "
                           "array never does)")


_NDARRAY = _ArrayToken()


def _check_value(v: Any, source: str, depth: int = 0, budget: list[int] | None = None,
                 seen: set[int] | None = None) -> None:
    """Refuse what a CIFAR batch never holds. ``budget``: the pickle's size in bytes, which
    its arrays together may not exceed: each array's bytes come from the pickle, and a
    crafted one (zero strides over a 1-byte buffer) would else expand to any size when
    copied (208 bytes became a 307 MB batch)."""
    seen = set() if seen is None else seen
    if depth > 4:
        raise DatasetError(f"{source}: pickle nested too deeply")
    if isinstance(v, bool) or v is None or isinstance(v, float):
        raise DatasetError(f"{source}: unexpected {type(v).__name__} value in pickle")
    if isinstance(v, (bytes, str, int)):
        return
    if isinstance(v, np.ndarray):
        if v.dtype.hasobject:
            raise DatasetError(f"{source}: object array in pickle")
        if budget is not None and id(v) not in seen:
            seen.add(id(v))
            budget[0] -= v.nbytes
            if budget[0] < 0:
                raise DatasetError(f"{source}: its arrays hold more bytes ({v.nbytes:,} in a "
                                   f"{v.shape} array) than the pickle itself: not a CIFAR "
                                   "batch, refused")
        return
    if isinstance(v, list):
        for x in v:
            _check_value(x, source, depth + 1, budget, seen)
        return
    if isinstance(v, dict):
        for k, x in v.items():
            if not isinstance(k, (bytes, str)):
                raise DatasetError(f"{source}: non-string key {k!r} in pickle")
            _check_value(x, source, depth + 1, budget, seen)
        return
    raise DatasetError(f"{source}: unexpected {type(v).__name__} value in pickle")


def safe_load_pickle(data: bytes, source: str) -> dict[Any, Any]:
    """Unpickle one CIFAR batch (a dict) with :class:`RestrictedUnpickler` and validate it."""
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), source=source, encoding="bytes").load()
    except DatasetError:
        raise
    except Exception as e:  # any malformed pickle
        raise DatasetError(f"{source}: cannot unpickle ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise DatasetError(f"{source}: expected a dict, got {type(obj).__name__}")
    _check_value(obj, source, budget=[len(data)])
    return obj


def _get(d: dict[Any, Any], key: str, source: str) -> Any:
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise DatasetError(f"{source}: batch has no {key!r} entry")


def _decode_batch(d: dict[Any, Any], source: str) -> tuple[np.ndarray, np.ndarray]:
    data = _get(d, "data", source)
    labels = _get(d, "labels", source)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DatasetError(f"{source}: 'data' must be a 2-D uint8 array")
    if data.shape[1] != 3072:
        raise DatasetError(f"{source}: rows have {data.shape[1]} values, expected 3072")
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{source}: 'labels' must be a list of integers")
    if len(y) != len(data):
        raise DatasetError(f"{source}: {len(data)} images but {len(y)} labels")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DatasetError(f"{source}: labels outside 0..9")
    # CHW rows -> HWC rows, so the layout matches decoded image files
    X = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).reshape(len(data), 3072)
    return np.ascontiguousarray(X), y.astype(np.int64)


def _read_members(path: Path) -> dict[str, tuple[bytes, str]]:
    """Batch name -> (pickle bytes, source label), from a directory or a tar archive."""
    wanted = {*TRAIN_BATCHES, TEST_BATCH, META}
    out: dict[str, tuple[bytes, str]] = {}
    if path.is_dir():
        for n in wanted:
            f = path / n
            if f.is_file():
                with open(f, "rb") as fo:
                    out[n] = (read_capped(fo, str(f), os.fstat(fo.fileno()).st_size), str(f))
        return out
    try:
        with tarfile.open(path, "r|*") as tar:
            for m in tar:
                base = m.name.rsplit("/", 1)[-1]
                if m.isfile() and base in wanted and base not in out:
                    fo = tar.extractfile(m)
                    assert fo is not None
                    where = f"{path}:{m.name}"
                    out[base] = (read_capped(fo, where, m.size), where)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DatasetError(f"{path}: corrupt or truncated archive ({e})") from e
    return out


def read_cifar_python(path: str | os.PathLike[str]) -> RawData:
    """Read ``cifar-10-python.tar.gz`` or an extracted ``cifar-10-batches-py/`` directory."""
    path = Path(path)
    members = _read_members(path)
    missing = [n for n in (*TRAIN_BATCHES, TEST_BATCH) if n not in members]
    if missing:
        raise DatasetError(f"{path}: missing CIFAR-10 batch file(s): {', '.join(missing)}")
    parts = []
    for n in (*TRAIN_BATCHES, TEST_BATCH):
        data, src = members[n]
        parts.append(_decode_batch(safe_load_pickle(data, src), src))
    Xtr = np.concatenate([p[0] for p in parts[:5]])
    ytr = np.concatenate([p[1] for p in parts[:5]])
    Xte, yte = parts[5]
    classes = list(CIFAR10_CLASSES)
    if META in members:
        data, src = members[META]
        meta = safe_load_pickle(data, src)
        names = meta.get(b"label_names", meta.get("label_names"))
        if isinstance(names, list) and len(names) == 10:
            classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return RawData(Xtr, ytr, Xte, yte, (32, 32, 3), classes)
