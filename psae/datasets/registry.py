"""The named data sets, in the order :func:`psae.datasets.describe` lists them.

Adding a data set: one module that builds a :class:`~psae.datasets.source.Source`, and one
entry here.
"""

from __future__ import annotations

from . import cifar10, digits, mnist, optdigits
from .source import Source

__all__ = ["NAMES", "SOURCES"]

#: name -> record
SOURCES: dict[str, Source] = {
    s.name: s for s in (mnist.SOURCE, cifar10.SOURCE, optdigits.SOURCE, digits.SOURCE)
}
#: the data sets known by name
NAMES: tuple[str, ...] = tuple(SOURCES)
