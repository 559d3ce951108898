"""A measure's mean ± std over seeds, as every renderer reads, compares and writes it.

Both protocols' summaries hold ``{"mean", "std", "n"}`` per measure, which :func:`summarize`
makes from the seeds' values; :func:`read` turns one into a :data:`Stat` (or None);
:func:`below` and :func:`apart` say whether two models' means differ clearly (Welch's t-test at
5 %, two-sided), :func:`mean_std` writes one for a table.

"Clear" was once "the mean ± std intervals do not overlap". With 3 seeds that is about t > 2,
and rows so marked had Welch p-values up to 0.17 (a helper's review of the v2 report): too weak
for the word.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .cells import finite

__all__ = ["Stat", "SIGNIFICANCE", "summarize", "read", "welch_p", "below", "apart", "mean_std"]

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


SIGNIFICANCE = 0.05
"""The two-sided p-value under which two means differ clearly."""


def welch_p(a: Stat, b: Stat) -> float | None:
    """Two-sided p-value of Welch's t-test that a and b have one mean, from their summaries
    (population std over n seeds, made the sample std here); None under 2 seeds each."""
    from scipy import stats as scipy_stats

    (ma, sa, na), (mb, sb, nb) = a, b
    if na < 2 or nb < 2:
        return None
    va, vb = sa * sa / (na - 1), sb * sb / (nb - 1)  # sample variance / n
    if va + vb == 0:
        return 0.0 if ma != mb else 1.0
    t = (ma - mb) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va * va / (na - 1) + vb * vb / (nb - 1))
    return float(2 * scipy_stats.t.sf(abs(t), df))


def below(a: Stat, b: Stat) -> bool:
    """a's mean clearly lower than b's: lower, with Welch's p < 5 % (needs 2 seeds each)."""
    p = welch_p(a, b)
    return p is not None and a[0] < b[0] and p < SIGNIFICANCE


def apart(a: Stat, b: Stat) -> bool:
    """The two means differ clearly, either way round."""
    return below(a, b) or below(b, a)


def mean_std(st: Stat | None, percent: bool = False) -> str:
    """``0.1234 ± 0.0056`` (one seed: the mean alone; ``percent``: ``97.12 ± 0.30 %``)."""
    if st is None:
        return "—"
    if percent:  # one seed has no spread: "± 0.00 %" read as a measured one
        return (f"{100 * st[0]:.2f} %" if st[2] == 1
                else f"{100 * st[0]:.2f} ± {100 * st[1]:.2f} %")
    return f"{st[0]:.4g}" if st[2] == 1 else f"{st[0]:.4g} ± {st[1]:.2g}"
