"""Data larger than memory: ``np.memmap`` arrays and directories of ``.npy`` shards.

Such inputs are never loaded whole: ``fit`` streams them chunk by chunk, each chunk made of
batch-sized blocks from across the file, so that rows stored in order (class by class, document
by document) still make mixed batches (see :class:`psae.training.batches.StreamedBatches`), and
``transform`` reads and writes them in batches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError, NotFoundError

__all__ = ["ShardedArray", "open_shards", "is_streamed", "check_streamed", "CHECK_ROWS"]

CHECK_ROWS = 16384


class ShardedArray:
    """Read-only row-wise concatenation of ``.npy`` files, each opened as a memmap.

    Supports ``shape``, ``dtype``, ``len`` and row slicing ``A[i:j]`` (which may span shards).
    """

    _psae_streamed = True

    def __init__(self, paths):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise InputError("no .npy shards given")
        self._parts = []
        for p in self.paths:
            try:
                a = np.load(p, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise InputError(f"{p}: not a readable .npy array ({e})") from e
            if a.ndim != 2:
                raise InputError(f"{p}: shard must be 2-D (rows, features), got shape {a.shape}")
            self._parts.append(a)
        widths = {a.shape[1] for a in self._parts}
        dtypes = {a.dtype for a in self._parts}
        if len(widths) != 1:
            raise InputError(f"shards disagree on the number of features: {sorted(widths)}")
        if len(dtypes) != 1:
            raise InputError(f"shards disagree on dtype: {sorted(map(str, dtypes))}")
        self._starts = np.cumsum([0] + [a.shape[0] for a in self._parts])
        self.shape = (int(self._starts[-1]), widths.pop())
        self.dtype = dtypes.pop()
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if not isinstance(key, slice):
            return self._rows(key)
        start, stop, step = key.indices(self.shape[0])
        if step != 1:
            raise InputError("ShardedArray supports contiguous row slices only")
        pieces = []
        for k, a in enumerate(self._parts):
            lo, hi = self._starts[k], self._starts[k + 1]
            s, e = max(start, lo), min(stop, hi)
            if s < e:
                pieces.append(np.asarray(a[s - lo : e - lo]))
        if not pieces:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def _rows(self, key) -> np.ndarray:
        """``A[idx]`` for a 1-D array of row indices (a sample of rows, e.g. to calibrate an
        inference threshold), each shard read at its own rows only."""
        idx = np.asarray(key)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise TypeError("ShardedArray takes a row slice (A[i:j]) or a 1-D array of row "
                            f"indices, got {type(key).__name__}")
        n = self.shape[0]
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        idx = np.where(idx < 0, idx + n, idx)
        shard = np.searchsorted(self._starts, idx, side="right") - 1
        out = np.empty((idx.size, self.shape[1]), dtype=self.dtype)
        for k in np.unique(shard):
            at = shard == k
            out[at] = self._parts[k][idx[at] - self._starts[k]]
        return out


def open_shards(directory) -> ShardedArray:
    """All ``*.npy`` files of ``directory``, in name order, as one streamed array (hidden
    names, such as a write's temporaries, are not shards)."""
    d = Path(directory)
    if not d.is_dir():
        raise NotFoundError(f"{d}: no such directory of .npy shards")
    paths = sorted(p for p in d.glob("*.npy") if not p.name.startswith("."))
    if not paths:
        raise NotFoundError(f"{d}: holds no .npy shards")
    return ShardedArray(paths)


def is_streamed(X) -> bool:
    """True for inputs that must be streamed rather than loaded: memmaps and shard sets."""
    return isinstance(X, np.memmap) or getattr(X, "_psae_streamed", False)


def check_streamed(X, n_features: int | None = None, name: str = "the model",
                   min_samples: int = 1) -> None:
    """Check shape, dtype and finiteness chunk by chunk, without loading ``X`` whole; a fit
    asks for ``min_samples=2``, as it does of an in-memory ``X`` (one row has no spread to
    learn from)."""
    if len(X.shape) != 2:
        raise InputError(f"expected a 2-D array (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise InputError(f"empty array of shape {X.shape}")
    if X.shape[0] < min_samples:
        raise InputError(f"found {X.shape[0]} sample(s) (shape {X.shape}) while a minimum of "
                         f"{min_samples} is required")
    if not (np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.floating)):
        raise InputError(f"streamed data must be real numbers (integer or float), got dtype "
                         f"{X.dtype}")
    if n_features is not None and X.shape[1] != n_features:
        raise InputError(f"X has {X.shape[1]} features, but {name} is expecting "
                         f"{n_features} features as input")
    if np.issubdtype(X.dtype, np.floating):
        for s in range(0, X.shape[0], CHECK_ROWS):
            if not np.isfinite(X[s : s + CHECK_ROWS]).all():
                raise InputError(f"Input X contains NaN or infinity (rows {s}.."
                                 f"{min(s + CHECK_ROWS, X.shape[0]) - 1})")
