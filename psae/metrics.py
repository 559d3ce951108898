"""The paper's four measures (eq. 13–15 and CA) and the code statistics sparse-code users expect.

All functions take NumPy arrays (anything ``np.asarray`` accepts). Codes ``H`` have shape (N, M).
Hoyer sparseness is undefined for an all-zero code: such codes get NaN in the per-sample array and
are left out of the mean and of SSD (count them with :func:`zero_codes`).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from . import measures
from .errors import InputError, ParameterError

__all__ = [
    "atom_stability",
    "distinct_atom_share",
    "calibrated_threshold",
    "reconstruction_error",
    "hoyer_sparseness",
    "mean_sparseness",
    "sparsity_std",
    "zero_codes",
    "classification_accuracy",
    "l0_counts",
    "l0_stats",
    "dead_units",
    "fraction_of_variance_unexplained",
    "evaluate",
    "DEFAULT_THRESHOLD",
]

DEFAULT_THRESHOLD = 1e-2
"""A code entry counts as active (non-zero) when ``|h| > DEFAULT_THRESHOLD``."""


_ROWS = 1024
"""Rows per chunk where a measure works in float64 on float32 codes: a float64 copy of a
60,000 × 1,000 code is 480 MB, and on this kind of host fresh memory costs more to touch
than the arithmetic done in it (MNIST's scoring spent seconds there)."""


def _as_2d(A, name: str, keep_float: bool = False, sparse: bool = False) -> np.ndarray:
    """``A`` checked (numeric, 2-D, non-empty, finite), as float64; ``keep_float``: a float32
    or float64 array as it is (no copy), for measures that compare or sum in float64 by
    themselves; ``sparse``: a scipy sparse matrix taken, as CSR (the CA's codes)."""
    if sp.issparse(A):
        if not sparse:
            raise InputError(f"{name} must be a dense array, got a scipy sparse matrix "
                             f"({type(A).__name__}): give {name}.toarray()")
        return _sparse_2d(A, name)
    A = np.asarray(A)
    if A.dtype == object or not np.issubdtype(A.dtype, np.number):
        raise InputError(f"{name} must be numeric, got dtype {A.dtype}")
    if A.ndim != 2:
        raise InputError(f"{name} must have shape (N, M), got shape {A.shape}")
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise InputError(f"{name} is empty: shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise InputError(f"{name} contains NaN or infinite values")
    if keep_float and A.dtype in (np.float32, np.float64):
        return A
    return A.astype(np.float64, copy=False)


def _sparse_2d(A, name: str) -> sp.csr_matrix:
    A = sp.csr_matrix(A)
    if not np.issubdtype(A.dtype, np.number) or np.issubdtype(A.dtype, np.complexfloating):
        raise InputError(f"{name} must be numeric, got dtype {A.dtype}")
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise InputError(f"{name} is empty: shape {A.shape}")
    if not np.all(np.isfinite(A.data)):
        raise InputError(f"{name} contains NaN or infinite values")
    return A if A.dtype in (np.float32, np.float64) else A.astype(np.float64)


def _cut(A: np.ndarray, t: float, above: bool = True):
    """``t`` in ``A``'s float type such that ``A > cut`` (``above``) or ``A < cut`` holds exactly
    where ``A > t`` or ``A < t`` does in real numbers: against a float32 array a threshold is
    compared in float32 (NumPy 2 for a Python float, NumPy 1 for any scalar), and rounding it
    to the nearest float32 can move it past a value of ``A``; rounded down (up for ``<``), it
    cannot."""
    if A.dtype != np.float32:
        return np.float64(t)
    c = np.float32(t)
    if (float(c) > t) if above else (float(c) < t):
        c = np.nextafter(c, np.float32(-np.inf if above else np.inf))
    return c


def _above(H: np.ndarray, threshold: float) -> np.ndarray:
    """``|h| > threshold``, exactly, whatever ``H``'s float type (:func:`_cut`)."""
    return np.abs(H) > _cut(H, threshold)


def _pair(X, X_hat) -> tuple[np.ndarray, np.ndarray]:
    X = _as_2d(X, "X", keep_float=True)
    X_hat = _as_2d(X_hat, "X_hat", keep_float=True)
    if X.shape != X_hat.shape:
        raise InputError(f"X and X_hat differ in shape: {X.shape} vs {X_hat.shape}")
    return X, X_hat


def _row_squared_errors(X: np.ndarray, X_hat: np.ndarray) -> np.ndarray:
    """``Σ_i (x_i − y_i)²`` per row, in float64, a block of rows at a time (:data:`_ROWS`)."""
    out = np.empty(X.shape[0])
    for s in range(0, X.shape[0], _ROWS):
        d = X[s:s + _ROWS].astype(np.float64) - X_hat[s:s + _ROWS]
        out[s:s + _ROWS] = (d * d).sum(axis=1)
    return out


def reconstruction_error(X, X_hat, per_sample: bool = False):
    """Eq. (13): ``(1/D) Σ_i (x_i − y_i)²`` per sample; their mean unless ``per_sample``."""
    X, X_hat = _pair(X, X_hat)
    re = _row_squared_errors(X, X_hat) / X.shape[1]
    return re if per_sample else float(re.mean())


def fraction_of_variance_unexplained(X, X_hat) -> float:
    """FVU ``Σ‖x − x̂‖² / Σ‖x − x̄‖²`` with x̄ the mean of the evaluated set: 1 for predicting
    the mean, 0 for exact reconstruction (taken around the mean, not around zero)."""
    X, X_hat = _pair(X, X_hat)
    mean = X.mean(axis=0, dtype=np.float64)
    total = float(_row_squared_errors(X, np.broadcast_to(mean, X.shape)).sum())
    if total == 0:
        raise InputError("X is constant: the fraction of variance unexplained is undefined")
    return float(_row_squared_errors(X, X_hat).sum()) / total


def hoyer_sparseness(H) -> np.ndarray:
    """Eq. (14), per sample: ``S(h) = (√M − ‖h‖₁/‖h‖₂) / (√M − 1)`` in [0, 1]; NaN for h = 0."""
    H = _as_2d(H, "H", keep_float=True)
    M = H.shape[1]
    if M < 2:
        raise InputError("Hoyer sparseness needs at least 2 code units")
    S = np.full(H.shape[0], np.nan)
    for s in range(0, H.shape[0], _ROWS):  # float64 a chunk at a time (_ROWS)
        A = np.abs(H[s:s + _ROWS], dtype=np.float64)
        peak = A.max(axis=1)
        nz = peak > 0  # exactly the rows zero_codes does not count
        A = A[nz] / peak[nz, None]  # ‖h‖₁/‖h‖₂ is scale-free; scaled, no norm underflows to 0
        S[s:s + _ROWS][nz] = ((np.sqrt(M) - A.sum(axis=1) / np.sqrt((A**2).sum(axis=1)))
                              / (np.sqrt(M) - 1.0))
    return np.clip(S, 0.0, 1.0, out=S)


def _defined(S: np.ndarray) -> np.ndarray:
    S = S[~np.isnan(S)]
    if S.size == 0:
        raise InputError("every code is all-zero: Hoyer sparseness is undefined")
    return S


def mean_sparseness(H) -> float:
    """Mean Hoyer sparseness S over the codes that are not all-zero (Fig. 2b)."""
    return float(_defined(hoyer_sparseness(H)).mean())


def sparsity_std(H) -> float:
    """Eq. (15) with its square restored: population std of per-sample S (SSD, Fig. 2c)."""
    return float(_defined(hoyer_sparseness(H)).std())


def zero_codes(H) -> int:
    """Number of all-zero codes (left out of S and SSD)."""
    H = _as_2d(H, "H", keep_float=True)
    return int(np.count_nonzero(~H.any(axis=1)))


def _check_labels(H: np.ndarray, y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {y.shape}")
    if y.shape[0] != H.shape[0]:
        raise InputError(f"{name} has {y.shape[0]} labels but the codes have {H.shape[0]} rows")
    return y


def classification_accuracy(
    H_train, y_train, H_test, y_test, *, C: float = 1.0, tol: float = 1e-5,
    max_iter: int = 2000, stable: float | None = 5e-4,
) -> float:
    """CA: test accuracy of a softmax (multinomial logistic) classifier fitted on training codes
    (arrays, or scipy sparse matrices).

    The codes are standardised first (an affine map the one-layer classifier could absorb; it
    only conditions the problem); ``C`` is the inverse L2 strength of scikit-learn's
    ``LogisticRegression``, whose objective :class:`psae.classifier.SoftmaxClassifier` solves
    to convergence: the largest gradient entry below ``tol`` (on dense codes, which it solves in
    whitened coordinates, that test is tightened by the square root of the codes' largest
    eigenvalue), or the
    training accuracy moving
    by less than ``stable`` (0.05 points) over each of two windows of 50 iterations: the
    accuracy has stopped moving (None: the gradient test only).
    """
    from .classifier import SoftmaxClassifier

    # float32 codes stay float32, and sparse ones sparse: the classifier takes them as they are
    H_train = _as_2d(H_train, "H_train", keep_float=True, sparse=True)
    H_test = _as_2d(H_test, "H_test", keep_float=True, sparse=True)
    if H_train.shape[1] != H_test.shape[1]:
        raise InputError(
            f"H_train has {H_train.shape[1]} units but H_test has {H_test.shape[1]}"
        )
    y_train = _check_labels(H_train, y_train, "y_train")
    y_test = _check_labels(H_test, y_test, "y_test")
    if np.unique(y_train).size < 2:
        raise InputError("y_train must hold at least 2 classes")
    clf = SoftmaxClassifier(C=C, tol=tol, max_iter=max_iter, stable=stable).fit(
        H_train, y_train)
    if not np.isin(y_test, clf.classes_).any():  # int labels against str ones: CA 0, silently
        raise InputError(f"none of y_test's labels is among y_train's classes (y_test holds "
                         f"{_plain(y_test[0])!r}, y_train {_plain(clf.classes_[0])!r}): give "
                         "both the same kind of labels")
    if not clf.converged_:
        warnings.warn(f"the CA classifier stopped at max_iter={max_iter} iterations before it "
                      "converged: this CA may be short of the converged one; raise max_iter",
                      ConvergenceWarning, stacklevel=2)
    return float(np.mean(clf.predict(H_test) == y_test))


def _plain(v):
    """A numpy scalar as the Python value it holds (its repr without ``np.int64(...)``)."""
    return v.item() if isinstance(v, np.generic) else v


def _check_threshold(threshold: float) -> None:
    if not 0 <= threshold < float("inf"):  # NaN fails too
        raise ParameterError(f"threshold must be a finite number >= 0, got {threshold}")


def l0_counts(H, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Exact L0 per sample: the number of entries with ``|h| > threshold``."""
    _check_threshold(threshold)
    return np.count_nonzero(_above(_as_2d(H, "H", keep_float=True), threshold), axis=1)


def l0_stats(H, threshold: float = DEFAULT_THRESHOLD) -> dict[str, float]:
    """Mean, std, min and max of the per-sample active count at ``threshold``."""
    c = l0_counts(H, threshold)
    return {
        "mean": float(c.mean()),
        "std": float(c.std()),
        "min": int(c.min()),
        "max": int(c.max()),
        "threshold": float(threshold),
    }


def _matched_atoms(A, B) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unit atoms of ``A`` and ``B``, their cosines and the Hungarian matching's row and
    column indices (the one-to-one pairing of largest total cosine)."""
    from scipy.optimize import linear_sum_assignment

    A, B = _as_2d(A, "A").astype(np.float64), _as_2d(B, "B").astype(np.float64)
    if A.shape[1] != B.shape[1]:
        raise InputError(f"atoms have {A.shape[1]} and {B.shape[1]} features: not comparable")

    def unit(M):
        n = np.linalg.norm(M, axis=1, keepdims=True)
        return np.divide(M, n, out=np.zeros_like(M), where=n > 0)

    A, B = unit(A), unit(B)
    cos = A @ B.T
    rows, cols = linear_sum_assignment(cos, maximize=True)
    return A, B, cos, rows, cols


def atom_stability(A, B) -> float:
    """Mean cosine similarity of two dictionaries' atoms after the best one-to-one matching
    (Hungarian): 1 when ``B`` holds ``A``'s atoms in any order, lower the more two fits (two
    seeds) disagree. ``A``, ``B``: (n_atoms, n_features), e.g. ``components_`` of two models;
    with unequal counts the smaller set is matched. Atoms of zero norm match nothing (0)."""
    _, _, cos, rows, cols = _matched_atoms(A, B)
    return float(cos[rows, cols].mean())


def _nearest_other(U) -> np.ndarray:
    """Each unit atom's largest cosine with another non-zero atom of its own dictionary (-1
    when there is none)."""
    G = U @ U.T
    np.fill_diagonal(G, -np.inf)
    G[:, ~U.any(axis=1)] = -np.inf  # a zero atom resembles nothing
    return G.max(axis=1, initial=-1.0)


SAME_FEATURE_COSINE = 0.5
"""The least cosine at which two fits' atoms can count as one feature: unrelated dictionaries
of MNIST's shape (1000 atoms, 784 features) match at cosines about 0.1, and their nearest-other
test alone would pass about 30 % of pairs."""


def distinct_atom_share(A, B, min_cosine: float = SAME_FEATURE_COSINE) -> float:
    """Share of matched atom pairs (as in :func:`atom_stability`) that are one distinct feature
    both fits found: the pair's cosine is at least ``min_cosine`` and exceeds each atom's
    nearest other atom in its own dictionary. :func:`atom_stability` is high for a dictionary
    whose atoms all resemble one another, whatever the seed; this counts only atoms the other
    fit reproduces more closely than their own dictionary does. 1 for a model against itself
    in any order, unless atoms are duplicated (a copy is no distinct feature); zero-norm atoms
    are never distinct."""
    A, B, cos, rows, cols = _matched_atoms(A, B)
    live = A[rows].any(axis=1) & B[cols].any(axis=1)
    bar = np.maximum(_nearest_other(A)[rows], _nearest_other(B)[cols])
    # the margin: a duplicated atom's two cosines come from different products and may differ
    # in the last bits, which must not make a copy distinct
    pair = cos[rows, cols]
    return float(np.mean(live & (pair >= min_cosine) & (pair > bar + 1e-6)))


def calibrated_threshold(H, target_l0: float, floor: float = DEFAULT_THRESHOLD) -> float:
    """The threshold θ ≥ ``floor`` at which the codes ``H`` have mean L0 ``target_l0``
    (|h| > θ counts as active): the (target·N + 1)-th largest |h|, so that exactly
    round(target·N) entries stay above it when there are no ties; where values tie there, the
    next value down when it keeps a count nearer the target (or the cut would keep none).
    Codes already sparser than the target at ``floor`` keep ``floor``: a threshold can remove
    activity, never add it."""
    # |H| as given: float32 codes give float32 values, and θ is one of them (exact as a float)
    H = np.abs(_as_2d(H, "H", keep_float=True))
    keep = int(round(float(target_l0) * H.shape[0]))
    if keep <= 0:
        return float(max(floor, H.max(initial=0.0)))
    above = H > _cut(H, floor)
    n_above = int(np.count_nonzero(above))
    if keep >= n_above:
        return float(floor)
    # only entries above the floor can hold the threshold; in a sparse code they are few, and
    # partitioning the many equal zeros is slow: 33 against 200 ms on a 6,000 x 1,000 code 3 %
    # full, which the stopping rule calibrates once an epoch (a dense code partitions whole)
    vals = H[above] if n_above < H.size // 2 else H.ravel()
    theta = max(floor, float(np.partition(vals, vals.size - keep - 1)[vals.size - keep - 1]))
    kept = int(np.count_nonzero(vals > _cut(vals, theta)))
    if kept == keep:
        return theta
    # entries tied at θ: cutting them all can leave far fewer than keep (sigmoid codes saturate
    # to exactly 1.0 in float32, and a target under the saturated count put the mean L0 at 0);
    # the next value down keeps them all, and the count nearer the target wins (the one that
    # keeps them, where both are as near: an all-zero code carries nothing)
    lower = vals[vals < _cut(vals, theta, above=False)]
    below = max(floor, float(lower.max())) if lower.size else floor
    if kept == 0 or abs(int(np.count_nonzero(vals > _cut(vals, below))) - keep) <= keep - kept:
        return below
    return theta


def dead_units(H, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Fraction of units never active (``|h| > threshold``) on any sample of ``H``."""
    _check_threshold(threshold)
    active = _above(_as_2d(H, "H", keep_float=True), threshold).any(axis=0)
    return float(1.0 - active.mean())


def evaluate(X, H, X_hat, *, H_train=None, y_train=None, y=None,
             threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Every measure of one set of codes, as ``psae evaluate`` and ``psae reproduce`` report it.

    ``X`` the evaluated inputs, ``H`` their codes, ``X_hat`` their reconstructions. Returns RE,
    S and SSD (NaN, with ``S_note`` saying why, when every code is all-zero), the number of
    all-zero codes, the per-sample L0's statistics (``L0``: mean, std, min, max and the
    threshold, as :func:`l0_stats`) and dead units; CA too when the training codes and both
    label sets are given.
    """
    if _as_2d(H, "H", keep_float=True).shape[1] < 2:  # RE, L0 and CA are still measures of one unit
        S, why = np.full(np.shape(H)[0], np.nan), "one code unit: Hoyer sparseness needs at least 2"
    else:
        S, why = hoyer_sparseness(H), "every code is all-zero: Hoyer sparseness is undefined"
    defined = S[~np.isnan(S)]
    l0 = l0_stats(H, threshold)
    out = {
        "n_samples": int(np.shape(H)[0]),
        "RE": reconstruction_error(X, X_hat),
        "FVU": fraction_of_variance_unexplained(X, X_hat),
        "S": float(defined.mean()) if defined.size else float("nan"),
        "SSD": float(defined.std()) if defined.size else float("nan"),
        "zero_codes": zero_codes(H),
        "L0": l0,
        "dead_units": dead_units(H, threshold),
    }
    if not defined.size:
        out["S_note"] = why
    for m in measures.computed():  # measures registered beyond these (psae.measures)
        out[m.key] = float(m.compute(X, H, X_hat))
    if H_train is not None and y_train is not None and y is not None:
        out["CA"] = classification_accuracy(H_train, y_train, H, y)
    return out
