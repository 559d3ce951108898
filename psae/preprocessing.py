"""The paper's preprocessing (section IV-B) as a scikit-learn transformer."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .errors import ParameterError
from .validation import validated

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
        """Undo the affine map and the z-score (clipped values stay clipped)."""
        check_is_fitted(self)
        X = np.asarray(X, dtype=np.float64)
        width = (self.high - self.low) / (2 * self.clip)
        Z = (X - self.low) / width - self.clip
        return Z * self.scale_ + self.mean_

    def _state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(params, arrays)`` of the fitted map, as :mod:`psae.persistence` stores them."""
        check_is_fitted(self)
        return self.get_params(), {"mean": self.mean_, "scale": self.scale_}

    @classmethod
    def _from_state(cls, params: dict, arrays: dict[str, np.ndarray], where: str = "normalizer"
                    ) -> Normalizer:
        """Rebuild a fitted normaliser from :meth:`_state`'s output (shapes checked)."""
        from .persistence import ModelFormatError, check_shapes

        try:
            nz = cls(**params)
        except TypeError as e:
            raise ModelFormatError(f"{where}: unexpected normalizer parameters ({e})") from e
        d = arrays["mean"].shape[0] if "mean" in arrays else 0
        check_shapes(arrays, {"mean": (d,), "scale": (d,)}, where)
        nz.mean_, nz.scale_, nz.n_features_in_ = arrays["mean"], arrays["scale"], d
        return nz

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
