"""A measure's mean ± std over seeds, as every renderer reads, compares and writes it.

Both protocols' summaries hold ``{"mean", "std", "n"}`` per measure, which :func:`summarize`
makes from the seeds' values; :func:`read` turns one into
a :data:`Stat` (or None), :func:`below` and :func:`apart` say whether two intervals are
clearly ordered, :func:`mean_std` writes one for a table.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .cells import finite

__all__ = ["Stat", "summarize", "read", "below", "apart", "mean_std"]

Stat = tuple[float, float, int]
"""(mean, population std over seeds, number of seeds)."""


def summarize(values: list) -> dict:
    """Mean and population std over seeds; a measure never computed (CA without labels) has
    mean None and n 0, while a failed fit's NaN stays in and shows."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if not v.size:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(v.size)}


def read(entry: Mapping | None) -> Stat | None:
    """A summary entry as a :data:`Stat`; None when missing, never computed or not finite."""
    if not isinstance(entry, Mapping):
        return None
    mean = finite(entry.get("mean"))
    if mean is None or not entry.get("n"):
        return None
    return mean, finite(entry.get("std")) or 0.0, int(entry["n"])


def below(a: Stat, b: Stat) -> bool:
    """a's mean + std under b's mean − std: clearly lower (needs 2 seeds each)."""
    return a[2] >= 2 and b[2] >= 2 and a[0] + a[1] < b[0] - b[1]


def apart(a: Stat, b: Stat) -> bool:
    """The two mean ± std intervals do not overlap, either way round."""
    return below(a, b) or below(b, a)


def mean_std(st: Stat | None, percent: bool = False) -> str:
    """``0.1234 ± 0.0056`` (one seed: the mean alone; ``percent``: ``97.12 ± 0.30 %``)."""
    if st is None:
        return "—"
    if percent:
        return f"{100 * st[0]:.2f} ± {100 * st[1]:.2f} %"
    return f"{st[0]:.4g}" if st[2] == 1 else f"{st[0]:.4g} ± {st[1]:.2g}"
