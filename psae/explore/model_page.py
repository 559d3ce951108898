"""A fitted model's explorer page for raw rows: the step ``psae explore`` and ``psae
reproduce`` share. A model (a bare autoencoder or a pipeline with its preprocessing) and raw
rows in, a page out, with the rows bounded by a stratified sample so that the page stays small
enough to commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..metrics import DEFAULT_THRESHOLD
from .page import write_explorer

__all__ = ["write_model_page", "sample_rows", "DEFAULT_MAX_SAMPLES"]

DEFAULT_MAX_SAMPLES = 2000  # MNIST, M = 500: 0.7 MB (0.9 MB for all 10,000); 0: no cap


def _labels(y: np.ndarray | None, classes: Sequence[str] | None):
    """Labels the page can index (0..k-1) and their names: a file's own integer labels (say
    3 and 7, or -1 and 1) are renumbered, their values kept as the names."""
    if y is None or classes is not None:
        return y, classes
    values, y = np.unique(y, return_inverse=True)
    return y.astype(np.int64), [str(v) for v in values]


def _page_shape(shape: Sequence[int] | None) -> tuple[int, ...] | None:
    """The image shape when the page can draw it ((H, W) or (H, W, 3)), else None: plots."""
    if shape is None:
        return None
    shape = tuple(int(s) for s in shape)
    ok = len(shape) == 2 or (len(shape) == 3 and shape[2] == 3)
    return shape if ok else None


def sample_rows(y: np.ndarray | None, n: int, max_samples: int, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_samples`` of ``n`` rows (all when 0), stratified by ``y``."""
    from ..datasets._base import stratified_subset

    if max_samples == 0 or max_samples >= n:
        return np.arange(n)
    return stratified_subset(y, n, max_samples, np.random.default_rng(seed))


def write_model_page(out_dir: str | Path, model, X: np.ndarray, y: np.ndarray | None = None,
                     *, classes: Sequence[str] | None = None,
                     image_shape: Sequence[int] | None = None,
                     max_samples: int = DEFAULT_MAX_SAMPLES, title: str = "",
                     meta: Mapping[str, object] | None = None,
                     threshold: float = DEFAULT_THRESHOLD,
                     top_n: int = 16, rows: np.ndarray | None = None) -> tuple[Path, int]:
    """Encode (a stratified sample of) the raw rows ``X`` with ``model`` (a
    ``SparseAutoencoder`` or a pipeline with its ``Normalizer``), write
    ``out_dir/index.html`` and return its path and the number of rows shown. ``rows``: each
    row's number in the user's data where ``X`` is a pick of it (``Dataset.rows_test``), so
    that the page's "#n" is the row's own (else its index in ``X``)."""
    from ..bundle import split

    normalizer, sae = split(model)
    idx = sample_rows(y, len(X), max_samples)
    X = np.asarray(X)[idx]
    y, classes = _labels(None if y is None else np.asarray(y)[idx], classes)
    H = sae.transform(X if normalizer is None else normalizer.transform(X))
    path = write_explorer(out_dir, H, sae.components_, X, y=y, classes=classes,
                          image_shape=_page_shape(image_shape), title=title, meta=meta,
                          threshold=threshold, top_n=top_n,
                          sample_ids=idx if rows is None else np.asarray(rows)[idx])
    return path, len(idx)
