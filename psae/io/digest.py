"""File digests: the one place psae reads a file to hash it (ownership records, data
fingerprints of a run)."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

from .tree import tree_files

__all__ = ["hash_file", "sha256_file", "sha256_tree", "Tee"]


def hash_file(h, path: str | os.PathLike[str], limit: int | None = None):
    """Feed the file's bytes (its first ``limit`` bytes) to the hash object ``h``; returns it."""
    left = math.inf if limit is None else limit
    with open(path, "rb") as f:
        while left > 0:
            block = f.read(int(min(left, 1 << 20)))
            if not block:
                break
            h.update(block)
            left -= len(block)
    return h


class Tee:
    """Several hash objects fed as one (a file read once for SHA-256 and MD5)."""

    def __init__(self, *hashes):
        self.hashes = hashes

    def update(self, block: bytes) -> None:
        for h in self.hashes:
            h.update(block)


def sha256_tree(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file; of a folder, of its files' relative paths and contents in order
    (through linked folders, as the image-folder reader reads them)."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(tree_files(path))
    for f in files:
        if f is not path:
            h.update(f.relative_to(path).as_posix().encode() + b"\0")
        hash_file(h, f)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike[str], limit: int | None = None) -> str:
    """Hex SHA-256 of a file (of its first ``limit`` bytes)."""
    return hash_file(hashlib.sha256(), path, limit).hexdigest()
