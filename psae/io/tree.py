"""Walking a user's folder the way psae reads it: through linked folders (a class kept
elsewhere, ``train/cat -> /data/cats``), each real folder once, so that a link loop ends."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["tree_files", "walk_links"]


def walk_links(root: str | os.PathLike[str],
               on_repeat: Callable[[str, str], None] | None = None
               ) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(root)`` top-down with linked folders followed and folder names sorted. A
    folder that leads to one walked already (a loop, or two links to one folder) is left
    out, after ``on_repeat(link, real)`` (which may raise) is told."""
    seen = {os.path.realpath(root)}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            real = os.path.realpath(os.path.join(dirpath, d))
            if real in seen:
                if on_repeat is not None:
                    on_repeat(os.path.join(dirpath, d), real)
                continue
            seen.add(real)
            keep.append(d)
        dirnames[:] = keep
        yield dirpath, dirnames, filenames


def tree_files(root: Path) -> list[Path]:
    """The regular files under ``root``, through linked folders (:func:`walk_links`)."""
    return [p for dirpath, _, filenames in walk_links(root)
            for p in (Path(dirpath) / f for f in filenames) if p.is_file()]
