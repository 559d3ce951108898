"""One cell of a reproduction: the model it fits, the scores it records, the arrays it keeps."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import encode, measures, metrics
from ..estimator import SparseAutoencoder
from ..io.atomic import atomic_write
from .labels import penalty_of
from .paper.settings import DataProtocol

__all__ = ["Planned", "cell_key", "score_keys", "SELECTION", "SWEEP_FACTORS", "make_model", "score",
           "raw_scores", "threshold_sweep", "failed_scores", "cell_arrays", "save_npz",
           "save_atoms", "load_atoms", "finite"]

N_FILTERS = 64
N_RECONS = 8
SCORE_KEYS = ("RE", "FVU", "S", "SSD", "CA", "zero_codes", "L0", "L0_mean", "L0_std",
              "dead_units")


def score_keys() -> tuple[str, ...]:
    """What a cell keeps of :func:`psae.metrics.evaluate`: the built-in measures and every
    measure registered in :mod:`psae.measures` with a ``compute``."""
    return SCORE_KEYS + tuple(m.key for m in measures.computed())
# validation measure that picks a model's grid point, and whether higher is better: CA where
# the data have labels, RE (the only measure left that says how good a code is) where not
SELECTION = {"CA": True, "RE": False}
# multiples of a fit's inference threshold θ at which the sweep scores its codes (0: raw codes)
SWEEP_FACTORS = (0.0, 0.5, 1.0, 2.0)


class Planned(NamedTuple):
    """One cell of a run's plan: what will be fitted (or found finished), and its share of
    the run's work (for the progress bar). ``point`` is the grid point of a grid cell, the
    target of a matched one (None: the dense RAE), and None for a final fit, whose point is
    the one validation chose (known once its grid has run)."""

    dataset: str
    model: str
    kind: str  # one its protocol's CellRules.kinds names: "grid", "final", "matched", ...
    point: int | None
    seed: int
    cost: float = 0.0

    @classmethod
    def of(cls, cell: dict) -> Planned:
        """The plan entry of a finished cell (a final fit keeps its chosen point unset)."""
        point = None if cell["kind"] == "final" else cell["point"]
        return cls(cell["dataset"], cell["model"], cell["kind"], point, cell["seed"])


def cell_key(dataset: str, model: str, kind: str, point: int | None, seed: int) -> str:
    """The name of one cell's files: ``digits__psae__grid1__seed0`` (a grid point),
    ``__final1__`` (the final fit at the chosen point), ``__matched10__`` (the matched
    protocol's target; ``matcheddense`` for RAE)."""
    if kind == "matched":
        point = point or "dense"
    return f"{dataset}__{model}__{kind}{point}__seed{seed}"


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


def _kept(scores: dict) -> dict:
    """What a cell keeps of :func:`psae.metrics.evaluate`'s scores: :func:`score_keys`, the
    L0 statistics both as evaluate gives them and as the flat measures ``L0_mean`` and
    ``L0_std`` (a validation cell keeps only those)."""
    flat = dict(scores, L0_mean=scores["L0"]["mean"], L0_std=scores["L0"]["std"])
    return {k: flat.get(k) for k in score_keys()}


def score(est, Xtr, ytr, Xev, yev, threshold: float) -> tuple[dict, np.ndarray]:
    """Every measure of ``est`` on ``Xev`` (CA None without labels) and the codes."""
    H = est.transform(Xev)
    labelled = ytr is not None and yev is not None
    # the training codes only feed the CA classifier: sparse ones go to it as a sparse matrix
    H_train = encode.sparse_transform(est, est._check_input(Xtr)) if labelled else None
    scores = metrics.evaluate(Xev, H, est.inverse_transform(H), H_train=H_train,
                              y_train=ytr, y=yev, threshold=threshold)
    return _kept(scores), H


def raw_scores(est, Xev) -> dict | None:
    """The measures of the code layer's own output, before the inference threshold trims it
    (the second view of a fit that has one; CA aside, which the sweep gives); None without
    a threshold: those codes are the only ones."""
    if getattr(est, "inference_threshold_", None) is None:
        return None
    H = est.transform(Xev, raw=True)
    scores = _kept(metrics.evaluate(Xev, H, est.inverse_transform(H)))
    return {k: v for k, v in scores.items() if k != "CA"}


def threshold_sweep(est, Xtr, ytr, Xev, yev, at_theta: dict | None = None) -> list[dict]:
    """RE, FVU, mean L0 and CA of the codes trimmed at each of :data:`SWEEP_FACTORS` times the
    fit's inference threshold θ (|h| ≤ t set to zero; factor 0 keeps the raw codes): how much
    of a model's reconstruction and accuracy lives in the activations the threshold removes.
    ``at_theta``: the cell's own scores, which are those at θ (not computed again). Empty for
    a fit without a threshold (its codes have exact zeros already)."""
    theta = getattr(est, "inference_threshold_", None)
    if theta is None:
        return []
    labelled = ytr is not None and yev is not None
    H_ev = est.transform(Xev, raw=True)
    H_tr = est.transform(Xtr, raw=True) if labelled else None
    rows = []
    for f in SWEEP_FACTORS:
        t = f * theta
        if f == 1.0 and at_theta is not None:
            rows.append({"factor": f, "threshold": t, "L0_mean": at_theta["L0"]["mean"],
                         **{k: at_theta.get(k) for k in ("RE", "FVU", "CA")}})
            continue
        H = np.where(np.abs(H_ev) > t, H_ev, 0).astype(H_ev.dtype)
        Y = est.inverse_transform(H)
        rows.append({
            "factor": f, "threshold": t,
            "L0_mean": float(metrics.l0_counts(H, metrics.DEFAULT_THRESHOLD).mean()),
            "RE": metrics.reconstruction_error(Xev, Y),
            "FVU": metrics.fraction_of_variance_unexplained(Xev, Y),
            "CA": metrics.classification_accuracy(
                np.where(np.abs(H_tr) > t, H_tr, 0).astype(H_tr.dtype), ytr, H, yev)
            if labelled else None,
        })
    return rows


def save_atoms(path: Path, est) -> np.ndarray:
    """A fit's decoder atoms as unit vectors in float16, for the stability of its seeds;
    returns them as :func:`load_atoms` will read them."""
    A = np.asarray(est.components_, dtype=np.float64)
    n = np.linalg.norm(A, axis=1, keepdims=True)
    atoms = np.divide(A, n, out=np.zeros_like(A), where=n > 0).astype(np.float16)
    save_npz(path, {"atoms": atoms})
    return atoms.astype(np.float32)


def load_atoms(path: Path) -> np.ndarray | None:
    """The atoms :func:`save_atoms` wrote (None when the file is missing or unreadable)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["atoms"].astype(np.float32)
    except (OSError, KeyError, ValueError):
        return None


def failed_scores(kind: str, threshold: float, labelled: bool = True) -> dict:
    """NaN for every measure of a fit that diverged (CA stays None without labels)."""
    nan = float("nan")
    scores = {"RE": nan, "FVU": nan, "S": nan, "SSD": nan, "CA": nan if labelled else None,
              "zero_codes": nan, "dead_units": nan,
              **{m.key: nan for m in measures.computed()}}
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
