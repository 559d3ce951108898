"""Checking arrays handed to psae's estimators, with errors in psae's words.

scikit-learn's checks are kept (shapes, dtypes, feature counts, feature names) but their
ValueErrors become :class:`~psae.errors.InputError`, and NaN or infinity is caught first with
the row and column of the first bad value instead of scikit-learn's advice about estimators
that accept missing values.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_array, validate_data

from .errors import InputError

__all__ = ["check_finite", "checked_array", "tensor_values", "validated"]


def _numbers(X) -> np.ndarray | None:
    """``X`` as an array, an object one (a list holding None, a DataFrame with a nullable or
    object column) read as float64 with its missing values as NaN; None where it is no array
    of numbers (scikit-learn's own checks then say what it is)."""
    try:
        A = np.asarray(X)
        if A.dtype.kind != "O":
            return A
        if hasattr(X, "to_numpy"):  # pandas: pd.NA is no float, its na_value is
            return X.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(X, dtype=np.float64)  # None reads as NaN
    except Exception:
        return None


def check_finite(X, name: str = "X") -> None:
    """Raise :class:`InputError` naming the first NaN or infinite entry of an array of
    numbers."""
    A = _numbers(X)
    if A is None or A.dtype.kind not in "fc" or A.size == 0:
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


def tensor_values(X):
    """A torch tensor as a numpy array of its values (one that requires grad, or lives on a
    GPU, made numpy raise its own RuntimeError; numpy has no bf16); anything else as it is."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu()
        X = (X.float() if X.dtype == torch.bfloat16 else X).numpy()
    return X


def validated(estimator, X, **kwargs):
    """``sklearn.utils.validation.validate_data`` with psae's finiteness message and errors;
    a torch tensor is read as its values (:func:`tensor_values`)."""
    X = tensor_values(X)
    check_finite(X)
    try:
        return validate_data(estimator, X, **kwargs)
    except InputError:
        raise
    except ValueError as e:
        raise InputError(str(e)) from e


def checked_array(X, name: str = "X") -> np.ndarray:
    """``X`` (a tensor read as its values) as a float64 or float32 2-D array, with psae's NaN
    message and errors; no feature-name check, for arrays in a model's own output space (codes
    to decode, a normaliser's output to map back)."""
    X = tensor_values(X)
    check_finite(X, name)
    try:
        return check_array(X, dtype=[np.float64, np.float32])
    except ValueError as e:
        raise InputError(str(e)) from e
