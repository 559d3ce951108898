"""The paper's preprocessing (section IV-B) as a scikit-learn transformer."""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .errors import InputError, ParameterError
from .validation import checked_array, validated

__all__ = ["Normalizer"]


class Normalizer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Per-dimension z-score, clipped to ``±clip`` and mapped affinely onto ``[low, high]``.

    Section IV-B of the paper: zero mean and unit variance per dimension, then into (0, 1).
    SPEC.md settles the map: clip to ±3, then onto [0.1, 0.9]. A constant dimension gets std 1.
    Fit on the training set only and apply the same map to every other split.

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_features,)
        Per-dimension mean and standard deviation (1 where the dimension is constant).
    """

    def __init__(self, clip: float = 3.0, low: float = 0.1, high: float = 0.9):
        self.clip = clip
        self.low = low
        self.high = high

    def _check_params(self) -> None:
        for name in ("clip", "low", "high"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and not isinstance(value, bool)
                    and math.isfinite(value)):
                raise ParameterError(f"{name} must be a finite number, got {value!r}")
        if not self.clip > 0:
            raise ParameterError(f"clip must be > 0, got {self.clip}")
        if not self.low < self.high:
            raise ParameterError(f"low must be < high, got low={self.low}, high={self.high}")

    def fit(self, X, y=None) -> Normalizer:
        """Learn the per-dimension mean and standard deviation of ``X``."""
        self._check_params()
        X = validated(self, X, dtype=[np.float64, np.float32])
        mean = X.mean(axis=0, dtype=np.float64)
        std = X.std(axis=0, dtype=np.float64)
        std[std < 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
        self.mean_ = mean
        self.scale_ = std
        return self

    def transform(self, X):
        """Map ``X`` into ``[low, high]``; keeps float32 input float32."""
        check_is_fitted(self)
        self._check_params()  # set_params after fit changes the map
        X = validated(self, X, dtype=[np.float64, np.float32], reset=False)
        dt = X.dtype
        Z = X - self.mean_.astype(dt)  # one new array; the rest is done in place
        Z /= self.scale_.astype(dt)
        np.clip(Z, -self.clip, self.clip, out=Z)
        width = (self.high - self.low) / (2 * self.clip)
        Z *= dt.type(width)
        Z += dt.type(self.low + self.clip * width)
        return Z

    def inverse_transform(self, X):
        """Undo the affine map and the z-score (clipped values stay clipped); keeps float32
        input float32."""
        check_is_fitted(self)
        self._check_params()
        X = checked_array(X)  # no feature-name check: the map's output, as StandardScaler's
        if X.shape[1] != self.n_features_in_:
            raise InputError(f"X has {X.shape[1]} features, but Normalizer was fitted on "
                             f"{self.n_features_in_}")
        dt = X.dtype
        width = (self.high - self.low) / (2 * self.clip)
        Z = (X - dt.type(self.low)) / dt.type(width) - dt.type(self.clip)
        return Z * self.scale_.astype(dt) + self.mean_.astype(dt)

    def _state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(params, arrays)`` of the fitted map, as :mod:`psae.persistence` stores them."""
        check_is_fitted(self)
        return self.get_params(), {"mean": self.mean_, "scale": self.scale_}

    @classmethod
    def _from_state(cls, params: dict, arrays: dict[str, np.ndarray], where: str = "normalizer"
                    ) -> Normalizer:
        """Rebuild a fitted normaliser from :meth:`_state`'s output: its parameters checked as
        ``fit`` checks them, then its arrays (exactly ``mean`` and ``scale``, floating point,
        finite, scales > 0)."""
        from .persistence import ModelFormatError, check_shapes

        if not isinstance(params, dict):
            raise ModelFormatError(f"{where}: the normalizer's parameters (config.json field "
                                   f"'normalizer.params') must be an object, got {params!r}")
        try:
            nz = cls(**params)
        except TypeError as e:
            raise ModelFormatError(f"{where}: unexpected normalizer parameters ({e})") from e
        try:
            nz._check_params()
        except ParameterError as e:
            raise ModelFormatError(f"{where}: the normalizer's parameters (config.json field "
                                   f"'normalizer.params') are not usable: {e}") from e
        if set(arrays) != {"mean", "scale"}:
            raise ModelFormatError(f"{where}: expected exactly the tensors 'mean' and 'scale', "
                                   f"found {sorted(arrays)}")
        if arrays["mean"].ndim != 1:
            raise ModelFormatError(f"{where}: tensor 'mean' has shape {arrays['mean'].shape}, "
                                   "expected one value per feature")
        d = arrays["mean"].shape[0]
        check_shapes(arrays, {"mean": (d,), "scale": (d,)}, where)
        for name in ("mean", "scale"):
            a = arrays[name]
            if a.dtype.kind != "f":
                raise ModelFormatError(f"{where}: tensor {name!r} has dtype {a.dtype}, "
                                       "expected a floating-point dtype")
            bad = ~np.isfinite(a) | ((a <= 0) if name == "scale" else False)
            if bad.any():
                raise ModelFormatError(
                    f"{where}: tensor {name!r} holds {int(bad.sum())} value(s) that are not "
                    f"{'finite and > 0' if name == 'scale' else 'finite'} (the first at index "
                    f"{int(np.argmax(bad))}); the file is damaged: restore or refit the model")
        nz.mean_, nz.scale_, nz.n_features_in_ = arrays["mean"], arrays["scale"], d
        return nz

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
