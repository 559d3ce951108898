"""One cell of a reproduction: the model it fits, the scores it records, the arrays it keeps."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from .. import metrics
from ..estimator import SparseAutoencoder
from ..fileio import atomic_write
from .protocol import DataProtocol, penalty_of

__all__ = ["SCORE_KEYS", "SELECTION", "make_model", "score", "failed_scores", "cell_arrays",
           "save_npz", "finite"]

N_FILTERS = 64
N_RECONS = 8
SCORE_KEYS = ("RE", "FVU", "S", "SSD", "CA", "zero_codes", "L0", "L0_mean", "L0_std",
              "dead_units")
# validation measure that picks a model's grid point, and whether higher is better: CA where
# the data have labels, RE (the only measure left that says how good a code is) where not
SELECTION = {"CA": True, "RE": False}


def finite(x) -> float | None:
    """``x`` as a float when it is a finite number, else None (missing, NaN, a failed fit)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def make_model(model: str, params: dict, proto: DataProtocol, seed: int, device: str,
               threads: int | str) -> SparseAutoencoder:
    """The unfitted autoencoder of one cell."""
    kw = dict(params)
    if "sigmas" in kw:
        kw["sigmas"] = tuple(kw["sigmas"])
    return SparseAutoencoder(n_components=proto.n_components, penalty=penalty_of(model),
                             epochs=proto.epochs, batch_size=proto.batch_size,
                             device=device, threads=threads, random_state=seed, **kw)


def score(est, Xtr, ytr, Xev, yev, threshold: float) -> tuple[dict, np.ndarray]:
    """Every measure of ``est`` on ``Xev`` (CA None without labels) and the codes."""
    H = est.transform(Xev)
    labelled = ytr is not None and yev is not None
    scores = metrics.evaluate(Xev, H, est.inverse_transform(H),
                              H_train=est.transform(Xtr) if labelled else None,
                              y_train=ytr, y=yev, threshold=threshold)
    return {k: scores.get(k) for k in SCORE_KEYS}, H


def failed_scores(kind: str, threshold: float, labelled: bool = True) -> dict:
    """NaN for every measure of a fit that diverged (CA stays None without labels)."""
    nan = float("nan")
    scores = {"RE": nan, "FVU": nan, "S": nan, "SSD": nan, "CA": nan if labelled else None,
              "zero_codes": nan, "dead_units": nan}
    if kind == "grid":
        return dict(scores, L0_mean=nan, L0_std=nan)
    return dict(scores, L0={"mean": nan, "std": nan, "min": nan, "max": nan,
                            "threshold": threshold})


def cell_arrays(est, H, X, threshold: float) -> dict[str, np.ndarray]:
    """What the figures need of a final cell: per-sample S and L0, the most active units'
    atoms, a few inputs and their reconstructions."""
    active = (np.abs(H) > threshold).mean(axis=0)
    top = np.argsort(-active, kind="stable")[:N_FILTERS]
    inputs = X[:N_RECONS]
    return {
        "S": metrics.hoyer_sparseness(H),
        "L0": metrics.l0_counts(H, threshold).astype(np.int64),
        "filters": est.components_[top].astype(np.float32),
        "inputs": inputs.astype(np.float32),
        "recons": est.inverse_transform(est.transform(inputs)).astype(np.float32),
    }


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(path, buf.getvalue())
