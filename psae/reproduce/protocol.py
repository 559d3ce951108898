"""The reproduction protocol for the paper's Fig. 2: models, per-data-set settings and grids.

The paper gives no hidden sizes, σ schedule, λ, β, ρ, epochs or optimiser (SPEC.md). psae fixes
them here, documents them in every report, and picks each model's own knobs by validation
classification accuracy on a split carved from the training set; the test set chooses nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from .. import sparsity
from ..errors import ParameterError

__all__ = ["models", "penalty_of", "label_of", "DATASETS", "DataProtocol", "protocol_for",
           "grid_for"]


def models() -> tuple[str, ...]:
    """Model names of the reproduction (the registry's keys: rae, l1, kl, psae, l0, ...)."""
    return sparsity.keys()


def penalty_of(model: str) -> str:
    """The ``SparseAutoencoder`` penalty of a reproduction model name (``"psae"`` → sql0)."""
    return sparsity.by_key(model).name


def label_of(model: str) -> str:
    """Display name of a reproduction model (``"psae"`` → PSAE)."""
    return sparsity.by_key(model).label


DATASETS = ("mnist", "cifar10", "optdigits", "digits")
DATASET_LABELS = {"mnist": "MNIST", "cifar10": "CIFAR-10 (JPEG copy)", "optdigits": "OPTDIGITS",
                  "digits": "digits (scikit-learn)"}


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


FULL = {
    "digits": DataProtocol(n_components=100, epochs=100),
    "optdigits": DataProtocol(n_components=100, epochs=100),
    "mnist": DataProtocol(n_components=500, epochs=10, n_val=10000, grid_train=10000,
                          note="grid points fitted on 10,000 of the 50,000 non-validation "
                               "images to bound the cost; final fits use all 60,000"),
    "cifar10": DataProtocol(n_components=400, epochs=6, n_val=10000, grid_train=10000,
                            note="colour, 3,072 inputs; grid points fitted on 10,000 of the "
                                 "40,000 non-validation images; final fits use all 50,000"),
}

QUICK = {
    "digits": DataProtocol(n_components=80, epochs=40),
    "optdigits": DataProtocol(n_components=80, epochs=40),
    "mnist": DataProtocol(n_components=200, epochs=8, n_val=1000, train_limit=4000,
                          test_limit=1000),
    "cifar10": DataProtocol(n_components=200, epochs=6, n_val=1000, train_limit=4000,
                            test_limit=1000),
}

def protocol_for(dataset: str, quick: bool = False, **overrides) -> DataProtocol:
    """The documented protocol of ``dataset`` (quick: the cut-down one), with overrides."""
    table = QUICK if quick else FULL
    if dataset not in table:
        raise ParameterError(f"unknown data set {dataset!r}; choose from {', '.join(DATASETS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(table[dataset], **overrides)


def grid_for(model: str, quick: bool = False) -> list[dict]:
    """The hyperparameter points tried for ``model`` (its own knobs only; the registry's)."""
    mech = sparsity.by_key(model)
    return [{k: list(v) if isinstance(v, tuple | list) else v for k, v in p.items()}
            for p in (mech.quick_grid if quick else mech.grid)]
