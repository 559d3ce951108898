"""psae: sparse autoencoders penalised by the squared smoothed L0 norm, and their baselines."""

from ._version import __version__
from .bundle import load, save
from .errors import (
    DiskFullError,
    FitFailedError,
    InputError,
    ModelFormatError,
    NotFoundError,
    OwnershipError,
    ParameterError,
    PsaeError,
    TrainingCollapsedError,
    TrainingDivergedError,
)
from .estimator import SparseAutoencoder
from .preprocessing import Normalizer

__all__ = ["SparseAutoencoder", "Normalizer", "load", "save", "PsaeError", "ParameterError",
           "InputError", "ModelFormatError", "FitFailedError", "TrainingDivergedError",
           "TrainingCollapsedError", "OwnershipError", "DiskFullError", "NotFoundError",
           "__version__"]


def __getattr__(name):
    # datasets pulls in image and archive readers: import it only when asked for.
    if name in ("datasets", "metrics", "penalties", "sparsity", "distributed", "reproduce",
                "explore"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'psae' has no attribute {name!r}")
