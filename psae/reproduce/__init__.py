"""``psae reproduce``: the paper's Fig. 2, fairly tuned, as results files, figures and a report."""

from .protocol import DATASETS, grid_for, label_of, models, penalty_of, protocol_for
from .runner import RunConfig, run

__all__ = ["RunConfig", "run", "models", "label_of", "penalty_of", "DATASETS", "grid_for",
           "protocol_for"]
