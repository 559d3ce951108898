"""``psae reproduce``: the paper's Fig. 2, fairly tuned, and every model at equal sparsity, as
results files, figures and a report; :func:`compare` does the same from Python."""

from .api import Results, compare
from .labels import label_of, models, penalty_of
from .paper.settings import DATASETS, grid_for, protocol_for
from .runner import RunConfig, run

__all__ = ["compare", "Results", "RunConfig", "run", "models", "label_of", "penalty_of",
           "DATASETS", "grid_for", "protocol_for"]
