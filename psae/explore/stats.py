"""Per-unit and per-sample numbers of a sparse code: pure NumPy, no model, no page.

Definitions (the page's legend repeats them):

* active: ``|h_ij| > threshold``;
* frequency of unit j: the share of samples on which it is active;
* mean activation: over the samples where the unit is active (NaN when dead); ``mean_all`` is
  over all samples;
* class selectivity: ``max_c (p_j(c) - pi_c) / (1 - pi_c)`` where ``p_j(c)`` is the share of
  class c among the samples that fire unit j and ``pi_c`` the share of class c among all
  samples. 0 when the unit fires on the classes in their base proportions, 1 when it fires on
  one class only; NaN for dead units or without labels. The maximising c is the unit's
  preferred class;
* contribution (default): each unit's share of ``sum_j mean_i h_ij^2 ||a_j||^2``, the energy
  the unit puts into the reconstructions (cross terms between atoms ignored);
* dead: never active on these samples; dense: active on more than ``DENSE_CUT`` of them.
"""

from __future__ import annotations

import numpy as np

from ..metrics import DEFAULT_THRESHOLD

__all__ = ["DENSE_CUT", "unit_stats", "sample_l0", "top_samples", "class_counts"]

DENSE_CUT = 0.5
# H is processed in blocks of rows so a (N, M) boolean/float temporary never has to exist whole
_BLOCK = 2048


def slab_units(n_samples: int) -> int:
    """How many units to process at once as a (units, samples) float64 slab: ~32 MB."""
    return int(max(1, min(256, 2**22 // max(n_samples, 1))))


def _check(H: np.ndarray, atoms: np.ndarray | None = None) -> np.ndarray:
    H = np.asarray(H)
    if H.ndim != 2:
        raise ValueError(f"H must be 2-D (samples, units), got shape {H.shape}")
    if atoms is not None:
        atoms = np.asarray(atoms)
        if atoms.ndim != 2 or atoms.shape[0] != H.shape[1]:
            raise ValueError(f"atoms must be ({H.shape[1]}, D), got shape {atoms.shape}")
    return H


def sample_l0(H: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Number of active units of each sample, shape (N,)."""
    H = _check(H)
    return np.concatenate(
        # in float64, as _moments compares: float32(0.1) rounds up, and an entry of exactly
        # 0.1 counted active for the unit's frequency but not for the sample's L0
        [(np.abs(np.asarray(H[i : i + _BLOCK], np.float64)) > threshold).sum(axis=1)
         for i in range(0, len(H), _BLOCK)]
        or [np.zeros(0, dtype=np.int64)]
    )


def _moments(H: np.ndarray, threshold: float) -> tuple[np.ndarray, ...]:
    """Per unit: active count, sum of active h, sum of all h, sum of h^2, max |h|."""
    M = H.shape[1]
    count = np.zeros(M, dtype=np.int64)
    s_act, s_all, s_sq, peak = (np.zeros(M) for _ in range(4))
    for i in range(0, len(H), _BLOCK):
        h = H[i : i + _BLOCK].astype(np.float64)
        act = np.abs(h) > threshold
        count += act.sum(axis=0)
        s_act += np.where(act, h, 0.0).sum(axis=0)
        s_all += h.sum(axis=0)
        s_sq += (h * h).sum(axis=0)
        if len(h):
            peak = np.maximum(peak, np.abs(h).max(axis=0))
    return count, s_act, s_all, s_sq, peak


def class_counts(
    H: np.ndarray, y: np.ndarray, n_classes: int, threshold: float = DEFAULT_THRESHOLD
) -> np.ndarray:
    """(M, n_classes): how many samples of each class fire each unit."""
    H = _check(H)
    y = np.asarray(y)
    out = np.zeros((H.shape[1], n_classes), dtype=np.int64)
    for i in range(0, len(H), _BLOCK):
        act = (np.abs(np.asarray(H[i : i + _BLOCK], np.float64)) > threshold).astype(np.int64)
        onehot = np.eye(n_classes, dtype=np.int64)[y[i : i + _BLOCK]]
        out += act.T @ onehot
    return out


def _selectivity(counts: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, ...]:
    """Normalised excess of the most over-represented class, and that class (-1 when none)."""
    base = np.bincount(y, minlength=n_classes) / max(len(y), 1)
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = counts / total
        # a class that is every sample has no room above its base rate: count it as 0 excess
        room = np.where(base < 1, 1 - base, np.inf)
        excess = (share - base) / room
    fired = total[:, 0] > 0
    top = np.where(fired, np.argmax(np.where(fired[:, None], excess, -np.inf), axis=1), -1)
    sel = np.where(fired, np.take_along_axis(excess, np.maximum(top, 0)[:, None], 1)[:, 0], np.nan)
    # a unit that fires on every class at its base rate prefers none: argmax over equal
    # excesses named class 0 (948 of an RAE's 1,000 units on MNIST)
    top = np.where(fired & (sel > 0), top, -1)
    return sel, top


def unit_stats(
    H: np.ndarray,
    atoms: np.ndarray,
    y: np.ndarray | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    n_classes: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-unit statistics of codes ``H`` (N, M) with decoder ``atoms`` (M, D).

    Returns arrays of length M: ``count``, ``frequency``, ``mean_active`` (NaN when dead),
    ``mean_all``, ``max_abs``, ``contribution`` (shares summing to 1, or all 0 for all-zero
    codes), ``dead``, ``dense``; with labels also ``selectivity`` (NaN when dead),
    ``preferred_class`` (-1 when dead) and ``class_counts`` (M, n_classes). See the module
    docstring for the definitions; ``n_classes`` defaults to ``max(y) + 1``.
    """
    H = _check(H, atoms)
    N, M = H.shape
    count, s_act, s_all, s_sq, peak = _moments(H, threshold)
    with np.errstate(invalid="ignore", divide="ignore"):
        freq = count / N if N else np.zeros(M)
        mean_active = np.where(count > 0, s_act / np.maximum(count, 1), np.nan)
        mean_all = s_all / N if N else np.zeros(M)
    norms2 = (np.asarray(atoms, dtype=np.float64) ** 2).sum(axis=1)
    energy = (s_sq / max(N, 1)) * norms2
    total = energy.sum()
    out = {
        "count": count,
        "frequency": freq,
        "mean_active": mean_active,
        "mean_all": mean_all,
        "max_abs": peak,
        "contribution": energy / total if total > 0 else np.zeros(M),
        "dead": count == 0,
        "dense": freq > DENSE_CUT,
    }
    if y is not None:
        y = np.asarray(y).astype(np.int64)
        if y.shape != (N,):
            raise ValueError(f"y must have shape ({N},), got {y.shape}")
        if len(y) and y.min() < 0:
            raise ValueError("labels must be non-negative integers")
        k = int(n_classes if n_classes is not None else (y.max() + 1 if len(y) else 1))
        counts = class_counts(H, y, k, threshold)
        out["selectivity"], out["preferred_class"] = _selectivity(counts, y, k)
        out["class_counts"] = counts
    return out


def top_samples(H: np.ndarray, top_n: int,
                threshold: float = DEFAULT_THRESHOLD) -> list[np.ndarray]:
    """For each unit, the indices of its at most ``top_n`` active samples with the largest
    ``|h|``, strongest first (signed codes rank by magnitude: a strongly negative code is as
    much the unit's business as a strongly positive one)."""
    H = _check(H)
    N, M = H.shape
    k = min(top_n, N)
    if k == 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(M)]
    out = []
    # columns in blocks: argpartition on a (block, N) slab keeps memory at block * N
    block = slab_units(N)
    for j0 in range(0, M, block):
        A = np.abs(np.asarray(H[:, j0 : j0 + block], dtype=np.float64)).T
        part = np.argpartition(-A, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(A, part, 1)
        order = np.argsort(-vals, axis=1, kind="stable")
        part, vals = np.take_along_axis(part, order, 1), np.take_along_axis(vals, order, 1)
        out.extend(p[v > threshold].astype(np.int64) for p, v in zip(part, vals, strict=True))
    return out
