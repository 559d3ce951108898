"""Every measure a reproduction reports, declared once: its key in the results, how tables,
answers and figures name it, and which direction is better.

A new measure is one entry here (plus the line in :mod:`psae.metrics` that computes it); the
tables, answers, claims, figures and the CSV read their columns from the tuples below.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Measure", "MEASURES", "measure", "higher_is_better", "PAPER_TABLE", "MATCHED_TABLE",
           "FIG2", "MATCHED_PANELS", "SUMMARY", "MATCHED_SUMMARY", "RAW", "CSV"]


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
)}


def measure(key: str) -> Measure:
    """The measure called ``key`` (a ``raw_`` prefix, the raw-code view, names the same one)."""
    return MEASURES[key.removeprefix("raw_")]


def higher_is_better(key: str) -> bool | None:
    return measure(key).higher


# which measures each view shows, in order
PAPER_TABLE = ("RE", "FVU", "S", "SSD", "CA", "L0_mean", "L0_std", "dead_units")
MATCHED_TABLE = ("L0_mean", "L0_std", "CA", "RE", "FVU", "S", "SSD", "dead_units", "stability")
FIG2 = ("RE", "S", "SSD", "CA")
MATCHED_PANELS = ("CA", "RE", "L0_std", "stability")
SUMMARY = ("RE", "FVU", "S", "SSD", "CA", "dead_units", "zero_codes")
"""Summarised over seeds for the paper protocol (L0 comes from each cell's L0 record)."""
MATCHED_SUMMARY = ("RE", "FVU", "S", "SSD", "CA", "dead_units")
RAW = ("RE", "FVU", "S", "SSD", "L0_mean", "L0_std")
"""Measures of the raw codes (before the inference threshold), summarised as ``raw_<key>``."""
CSV = ("RE", "FVU", "S", "SSD", "CA", "L0_mean", "L0_std", "dead_units", "zero_codes")
