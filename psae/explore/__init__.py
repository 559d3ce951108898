"""Feature explorer: a self-contained HTML page showing what each unit of a sparse code
learned (its atom, its top inputs, its statistics), built from plain arrays.

``write_explorer`` needs only codes, atoms and the inputs to display, never a model, so it
works with any encoder; ``unit_stats`` gives the page's per-unit numbers to other code.
"""

from .page import write_explorer
from .stats import DENSE_CUT, unit_stats

__all__ = ["write_explorer", "unit_stats", "DENSE_CUT"]
