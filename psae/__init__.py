"""psae: sparse autoencoders penalised by the squared smoothed L0 norm, and their baselines."""

from ._version import __version__
from .estimator import SparseAutoencoder
from .preprocessing import Normalizer
from .training import TrainingDivergedError

__all__ = ["SparseAutoencoder", "Normalizer", "TrainingDivergedError", "__version__"]


def __getattr__(name):
    # datasets pulls in image and archive readers: import it only when asked for.
    if name in ("datasets", "metrics", "penalties"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'psae' has no attribute {name!r}")
