"""Checking arrays handed to psae's estimators, with errors in psae's words.

scikit-learn's checks are kept (shapes, dtypes, feature counts, feature names) but their
ValueErrors become :class:`~psae.errors.InputError`, and NaN or infinity is caught first with
the row and column of the first bad value instead of scikit-learn's advice about estimators
that accept missing values.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import validate_data

from .errors import InputError

__all__ = ["check_finite", "validated"]


def check_finite(X, name: str = "X") -> None:
    """Raise :class:`InputError` naming the first NaN or infinite entry of a float array."""
    try:
        A = np.asarray(X)
    except Exception:  # not array-like: leave it to scikit-learn's own checks
        return
    if A.dtype.kind not in "fc" or A.size == 0:
        return
    bad = ~np.isfinite(A)
    if not bad.any():
        return
    where = np.argwhere(bad)[0]
    value = A[tuple(where)]
    what = "NaN" if np.isnan(value) else "infinity"
    place = f"row {where[0]}" + (f", column {where[1]}" if A.ndim > 1 else "")
    raise InputError(f"{name} contains {what} ({int(bad.sum())} non-finite value(s), the first "
                     f"at {place}); psae needs finite numbers: drop or impute those rows first")


def validated(estimator, X, **kwargs):
    """``sklearn.utils.validation.validate_data`` with psae's finiteness message and errors;
    a torch tensor is read as its values (one that requires grad, or lives on a GPU, made
    numpy raise its own RuntimeError)."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu()
        X = (X.float() if X.dtype == torch.bfloat16 else X).numpy()  # numpy has no bf16
    check_finite(X)
    try:
        return validate_data(estimator, X, **kwargs)
    except InputError:
        raise
    except ValueError as e:
        raise InputError(str(e)) from e
