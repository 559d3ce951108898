"""Every measure psae reports, declared once: its key in the results, how tables, answers and
figures name it, which direction is better, and (for a measure beyond the built-in ones) how
to compute it.

``psae evaluate``, ``psae reproduce``'s cells, tables, answers, claims, figures and CSV read the
measures and the views below, so a new measure is one :func:`register` call::

    register(Measure("max_code", "max |h|", None, "largest activation",
                     compute=lambda X, H, X_hat: float(abs(H).max())),
             views=("paper_table", "summary", "csv"))

The built-in measures are computed by :func:`psae.metrics.evaluate` itself (RE, FVU, S, SSD,
L0, dead units, all-zero codes, CA) or by the matched protocol (atom stability).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["Measure", "MEASURES", "VIEWS", "register", "unregister", "computed"]


@dataclass(frozen=True)
class Measure:
    key: str
    """Key in a cell's scores and in the summaries (``"CA"``, ``"L0_std"``)."""
    title: str
    """Column title (``"mean L0"``)."""
    higher: bool | None
    """Higher is better (True), lower (False), or neither (None: no best is marked)."""
    axis: str
    """What a figure's panel calls it, direction included."""
    best: str = ""
    """How an answer names the best model (``"best CA"``); empty: answers do not rank it."""
    percent: bool = False
    """Shown as a percentage (accuracy)."""
    compute: Callable[[np.ndarray, np.ndarray, np.ndarray], float] | None = None
    """``(X, H, X_hat) -> value`` for a measure :func:`psae.metrics.evaluate` does not compute
    itself (None for the built-in ones)."""

    def value(self, v: float) -> str:
        """A mean as answers write it (``97.1 %``, ``0.0123``)."""
        return f"{100 * v:.1f} %" if self.percent else f"{v:.3g}"


MEASURES = {m.key: m for m in (
    Measure("RE", "RE", False, "RE (test reconstruction error, lower is better)", "lowest RE"),
    Measure("FVU", "FVU", False, "FVU (fraction of variance unexplained, lower is better)"),
    Measure("S", "S", True, "S (mean Hoyer sparseness of test codes, higher is sparser)",
            "sparsest codes (S)"),
    Measure("SSD", "SSD", False, "SSD (std of per-sample sparseness, lower is more even)",
            "most even sparsity among the sparse models (lowest SSD)"),
    Measure("CA", "CA", True, "CA (softmax accuracy on the codes, higher is better)",
            "best CA", percent=True),
    Measure("L0_mean", "mean L0", False, "mean test L0 (active units per sample)"),
    Measure("L0_std", "L0 std", False, "std of per-sample L0 (0 = every sample equally sparse)",
            "most even sparsity"),
    Measure("dead_units", "dead units", False, "fraction of units never active on test rows"),
    Measure("zero_codes", "all-zero codes", False, "test codes with no active unit"),
    Measure("stability", "atom stability", True,
            "atom stability across seeds (1 = the same atoms)"),
    Measure("stability_distinct", "distinct atoms kept", True,
            "share of matched atoms another seed reproduces at cosine >= 0.5 and more closely "
            "than the model's own nearest other atom (atom stability corrected for atoms that "
            "resemble each other)"),
)}


VIEWS: dict[str, list[str]] = {
    "paper_table": ["RE", "FVU", "S", "SSD", "CA", "L0_mean", "L0_std", "dead_units"],
    "matched_table": ["L0_mean", "L0_std", "CA", "RE", "FVU", "S", "SSD", "zero_codes",
                      "dead_units", "stability", "stability_distinct"],
    "matched_panels": ["CA", "RE", "L0_std", "stability"],
    # summarised over seeds (L0 comes from each cell's L0 record)
    "summary": ["RE", "FVU", "S", "SSD", "CA", "dead_units", "zero_codes"],
    "matched_summary": ["RE", "FVU", "S", "SSD", "CA", "dead_units", "zero_codes"],
    # measures of the raw codes (before the inference threshold), summarised as raw_<key>
    "raw": ["RE", "FVU", "S", "SSD", "L0_mean", "L0_std"],
    "csv": ["RE", "FVU", "S", "SSD", "CA", "L0_mean", "L0_std", "dead_units", "zero_codes"],
}
"""Which measures each view shows, in order; read when a view is drawn, so a measure
registered later appears in the views it names."""
FIG2 = ("RE", "S", "SSD", "CA")
"""The paper's Fig. 2, panels a–d: fixed."""


# keys psae.metrics.evaluate writes besides the measures: a measure may not take them
RESERVED = frozenset({"L0", "n_samples", "S_note", "CA_note", "split", "threshold"})


def register(m: Measure, views: Iterable[str] = ()) -> Measure:
    """Add ``m`` (computed by ``m.compute`` wherever codes are scored) to the named views."""
    if m.key in MEASURES or m.key in RESERVED:
        raise ValueError(f"a measure called {m.key!r} is already registered (or psae's own "
                         "key)")
    if m.compute is None:
        raise ValueError(f"measure {m.key!r} needs a compute(X, H, X_hat) function")
    views = list(dict.fromkeys(views))
    unknown = sorted(set(views) - set(VIEWS))
    if unknown:
        raise ValueError(f"unknown views {unknown}; choose from {sorted(VIEWS)}")
    MEASURES[m.key] = m
    for v in views:
        VIEWS[v].append(m.key)
    return m


def unregister(key: str) -> None:
    """Remove a registered measure from the registry and every view (the built-in ones stay:
    every renderer relies on them)."""
    if key in MEASURES and MEASURES[key].compute is None:
        raise ValueError(f"{key!r} is one of psae's own measures: it cannot be removed")
    MEASURES.pop(key, None)
    for keys in VIEWS.values():
        while key in keys:
            keys.remove(key)


def computed() -> list[Measure]:
    """The registered measures with a ``compute`` (beyond :func:`psae.metrics.evaluate`'s)."""
    return [m for m in MEASURES.values() if m.compute is not None]
