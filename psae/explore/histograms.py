"""Histogram counts for the page (the page draws them; these only count)."""

from __future__ import annotations

import numpy as np

from ..metrics import DEFAULT_THRESHOLD
from .stats import slab_units

__all__ = ["l0_histogram", "frequency_histogram", "activation_histograms"]


def l0_histogram(l0: np.ndarray, max_bins: int = 40) -> dict:
    """Counts of per-sample L0: one bin per integer while that is at most ``max_bins`` bins."""
    top = int(l0.max()) if len(l0) else 0
    if top + 1 <= max_bins:
        edges = np.arange(top + 2) - 0.5
    else:
        edges = np.linspace(-0.5, top + 0.5, max_bins + 1)
    counts, _ = np.histogram(l0, bins=edges)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def frequency_histogram(freq: np.ndarray, n_samples: int, bins: int = 30) -> dict:
    """Counts of log10(firing frequency) of the units that fire at all, from one sample
    (1/N) to every sample (1); dead units are counted apart because log10(0) has no bin."""
    lo = -np.log10(max(n_samples, 1))
    alive = freq[freq > 0]
    edges = np.linspace(lo, 0, bins + 1) if lo < 0 else np.array([-1.0, 0.0])
    counts, _ = (
        np.histogram(np.log10(alive), bins=edges)
        if len(alive)
        else (
            np.zeros(len(edges) - 1, dtype=np.int64),
            edges,
        )
    )
    return {"edges": edges.tolist(), "counts": counts.tolist(), "log10": True}


def activation_histograms(
    H: np.ndarray, threshold: float = DEFAULT_THRESHOLD, bins: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per unit, a histogram of its active codes over ``bins`` equal bins from their min to
    their max: (lo (M,), hi (M,), counts (M, bins)); lo = hi = 0 and no counts when dead."""
    N, M = H.shape
    lo, hi = np.zeros(M), np.zeros(M)
    counts = np.zeros((M, bins), dtype=np.int64)
    block = slab_units(N)
    for j0 in range(0, M, block):
        # a contiguous (units, samples) slab: one bincount over all its units at once
        A = np.asarray(H[:, j0 : j0 + block], dtype=np.float64).T
        act = np.abs(A) > threshold
        has = act.any(axis=1)
        a_lo = np.where(has, np.where(act, A, np.inf).min(axis=1), 0.0)
        a_hi = np.where(has, np.where(act, A, -np.inf).max(axis=1), 0.0)
        width = np.where(a_hi > a_lo, a_hi - a_lo, 1.0)
        b = np.clip(((A - a_lo[:, None]) / width[:, None] * bins).astype(np.int64), 0, bins - 1)
        rows = np.broadcast_to(np.arange(len(A))[:, None], A.shape)
        flat = (rows * bins + b)[act]
        counts[j0 : j0 + len(A)] = np.bincount(flat, minlength=len(A) * bins).reshape(-1, bins)
        lo[j0 : j0 + len(A)], hi[j0 : j0 + len(A)] = a_lo, a_hi
    return lo, hi, counts
