"""The reproduction protocol for the paper's Fig. 2: models, per-data-set settings and grids.

The paper gives no hidden sizes, σ schedule, λ, β, ρ, epochs or optimiser (SPEC.md). psae fixes
them here, documents them in every report, and picks each model's own knobs by validation
classification accuracy on a split carved from the training set; the test set chooses nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ... import sparsity
from ...datasets.registry import SOURCES
from ...errors import ParameterError

__all__ = ["DATASETS", "DataProtocol", "protocol_for",
           "protocol_for_data", "DATA_RULE", "grid_for"]


@dataclass(frozen=True)
class DataProtocol:
    """How one data set is run.

    n_components: code units M. epochs: total epochs of every fit (spread over the σ stages for
    PSAE and L0). n_val: validation samples carved (stratified) from the training set for the
    grid. grid_train: training samples (from the rest) each grid point is fitted on; None = all.
    train_limit/test_limit: stratified subsets of the final training and test sets; None = all.
    """

    n_components: int
    epochs: int
    batch_size: int = 128
    n_val: int | float = 0.2
    grid_train: int | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    grayscale: bool = False
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _table(kind: str) -> dict[str, DataProtocol]:
    """Each named data set's paper protocol, as its record in :mod:`psae.datasets` sets it."""
    return {name: DataProtocol(**src.settings["paper"][kind])
            for name, src in SOURCES.items() if "paper" in src.settings}


FULL, QUICK = _table("full"), _table("quick")
DATASETS = tuple(FULL)


def _given(overrides: dict) -> dict:
    return {k: v for k, v in overrides.items() if v is not None}


def protocol_for(dataset: str, quick: bool = False, **overrides) -> DataProtocol:
    """The documented protocol of ``dataset`` (quick: the cut-down one), with overrides."""
    table = QUICK if quick else FULL
    if dataset not in table:
        raise ParameterError(f"unknown data set {dataset!r}; choose from {', '.join(DATASETS)}")
    return replace(table[dataset], **_given(overrides))


DATA_RULE = (
    "Data psae has no protocol for (--data) get one by rule, scaled from the digits/OPTDIGITS "
    "and MNIST protocols: hidden size M = 1.5 D rounded to tens, within [20, 500] (quick: "
    "1.25 D within [20, 200]); epochs such that a fit sees about 400,000 samples, within "
    "[10, 100] (quick: 160,000 within [5, 40]); 20 % of the training rows for validation, at "
    "most 10,000, and grid points fitted on at most 10,000 of the rest (quick: at most 4,000 "
    "training and 1,000 test rows). --n-components and --epochs override."
)


def _clip(v: float, lo: int, hi: int) -> int:
    return int(min(max(round(v), lo), hi))


def protocol_for_data(n_train: int, n_features: int, quick: bool = False,
                      **overrides) -> DataProtocol:
    """The protocol of a data set with no entry here, by :data:`DATA_RULE` from its
    ``n_train`` training rows (before validation is carved) and ``n_features``."""
    if quick:
        n = min(n_train, 4000)
        proto = DataProtocol(n_components=_clip(1.25 * n_features / 10, 2, 20) * 10,
                             epochs=_clip(160_000 / max(n, 1), 5, 40), train_limit=4000,
                             test_limit=1000, note="protocol by rule (data without one)")
    else:
        n_val = 0.2 if 0.2 * n_train <= 10_000 else 10_000
        proto = DataProtocol(n_components=_clip(1.5 * n_features / 10, 2, 50) * 10,
                             epochs=_clip(400_000 / max(n_train, 1), 10, 100), n_val=n_val,
                             grid_train=10_000,
                             note="protocol by rule (data without one)")
    return replace(proto, **_given(overrides))


def grid_for(model: str, quick: bool = False, n_components: int | None = None
             ) -> list[dict]:
    """The hyperparameter points tried for ``model`` (its own knobs only; the registry's);
    with ``n_components``, those a layer that wide can take: TopK's k of 25 and 50 on a file
    whose rule gives M = 20 stopped the whole run. Points are dropped from the end of the
    grid (k rising), so a point keeps its index."""
    mech = sparsity.by_key(model)
    grid = [{k: list(v) if isinstance(v, tuple | list) else v for k, v in p.items()}
            for p in (mech.quick_grid if quick else mech.grid)]
    if n_components is None:
        return grid
    fits = [p for p in grid if p.get("k", 0) <= n_components]
    if not fits:
        ks = [p["k"] for p in grid if "k" in p]
        raise ParameterError(
            f"every grid point of {model} asks for more active units than the hidden size "
            f"n_components={n_components} (k in {', '.join(map(str, ks))}): give "
            f"--n-components of at least {min(ks, default=1)}")
    return fits
