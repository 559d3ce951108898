"""``psae reproduce``: the paper's Fig. 2, fairly tuned, as results files, figures and a report."""

from .protocol import DATASETS, LABELS, MODELS, grid_for, protocol_for
from .runner import RunConfig, run

__all__ = ["RunConfig", "run", "MODELS", "LABELS", "DATASETS", "grid_for", "protocol_for"]
