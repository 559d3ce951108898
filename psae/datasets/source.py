"""The record each named data set declares: its files, how to find and read them, where to get them.

A data set is one module that builds a :class:`Source` (its files, checksums, label and the
reproduction protocols' settings) plus one entry in :mod:`.registry`;
:func:`psae.datasets.load` and :func:`psae.datasets.describe` only ever go through these records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._base import RawData

__all__ = ["Finder", "Reader", "Source", "find_all"]

#: ``find(dirs)``: the files to read, from the first of ``dirs`` that has them, or ``None``
Finder = Callable[[list[Path]], list[Path] | None]
#: ``read(paths)``: decode what a finder (or :attr:`Source.claim`) returned
Reader = Callable[[list[Path]], RawData]


def find_all(dirs: list[Path], files: Mapping[str, tuple[str, ...]]) -> list[Path] | None:
    """One path per entry of ``files`` (the first accepted name present), all from the first of
    ``dirs`` that holds every one of them."""
    for d in dirs:
        found = []
        for names in files.values():
            hit = next((d / n for n in names if (d / n).is_file()), None)
            if hit is None:
                break
            found.append(hit)
        else:
            return found
    return None


@dataclass(frozen=True)
class Source:
    """One named data set.

    ``files`` maps each expected file name (as :func:`describe` lists it) to the names accepted on
    disk; ``finder(dirs)`` looks in ``root/<name>/`` then ``root/`` (default: one of each of
    ``files`` from the same directory, :func:`find_all`). ``urls`` (file -> official URL)
    seeds :data:`psae.datasets.download.URLS`. ``expected`` are the lines a "not found" message
    lists (default: the file names) and ``put`` how it asks for them. ``claim(path)`` says
    whether a path given to ``load`` is this data set's (default: ``find([path])`` for a
    directory). ``bundled`` names where a set that needs no files comes from (``"sklearn"``).
    ``label_of`` and ``notes_of`` refine the display label and add notes from the paths read.
    ``checksums`` maps a file name to its published ``(algorithm, hex digest)`` pairs (any one
    must match). ``settings`` holds the reproduction protocols' settings for this data set:
    protocol (``"paper"``, ``"matched"``) -> ``"full"``/``"quick"`` -> the keyword arguments of
    that protocol's record (:mod:`psae.reproduce` reads them; without them a data set is run
    by the protocols' rule for a user's file).
    """

    name: str
    label: str
    read: Reader
    files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    finder: Finder | None = None
    urls: Mapping[str, str] = field(default_factory=dict)
    expected: tuple[str, ...] = ()
    put: str = "these files"
    claim: Callable[[Path], list[Path] | None] | None = None
    bundled: str | None = None
    label_of: Callable[[list[Path]], str] | None = None
    notes_of: Callable[[list[Path]], tuple[str, ...]] | None = None
    checksums: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    settings: Mapping[str, Mapping[str, Mapping[str, object]]] = field(default_factory=dict)

    def find(self, dirs: list[Path]) -> list[Path] | None:
        """The files to read, from ``root/<name>/`` or ``root/`` (``dirs``), or ``None``."""
        if self.bundled is not None:
            return []
        return find_all(dirs, self.files) if self.finder is None else self.finder(dirs)

    def claims(self, path: Path) -> list[Path] | None:
        """The files to read when ``path`` itself is given to ``load``, or ``None``."""
        if self.bundled is not None:
            return None
        if self.claim is not None:
            return self.claim(path)
        return self.find([path]) if path.is_dir() else None

    def label_for(self, paths: list[Path]) -> str:
        """Display label of the data read from ``paths`` (e.g. ``"CIFAR-10 (JPEG copy)"``)."""
        return self.label if self.label_of is None else self.label_of(paths)

    def notes_for(self, paths: list[Path]) -> tuple[str, ...]:
        """What the user should know about the data read from ``paths``."""
        return () if self.notes_of is None else self.notes_of(paths)
