"""File digests: the one place psae reads a file to hash it (ownership records, data
fingerprints of a run)."""

from __future__ import annotations

import hashlib
import math
import os

__all__ = ["hash_file", "sha256_file"]


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


def sha256_file(path: str | os.PathLike[str], limit: int | None = None) -> str:
    """Hex SHA-256 of a file (of its first ``limit`` bytes)."""
    return hash_file(hashlib.sha256(), path, limit).hexdigest()
