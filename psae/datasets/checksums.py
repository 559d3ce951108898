"""File hashing and verification against the published checksums the data sets declare."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from ..io.digest import Tee, hash_file
from ._base import DatasetError
from .registry import SOURCES

__all__ = ["file_digests", "known_digests", "verify_digests", "verify_file"]


def file_digests(path: str | os.PathLike[str]) -> dict[str, str]:
    """sha256 and md5 of a file, computed in one pass."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    try:
        hash_file(Tee(sha, md5), path)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise DatasetError(f"{path}: cannot read file: {e}") from e
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def known_digests(name: str) -> list[tuple[str, str]]:
    """Accepted ``(algorithm, hex)`` pairs for a file name (empty if none is published), as
    the named data sets' records declare them."""
    return [pair for src in SOURCES.values() for pair in src.checksums.get(name, ())]


def verify_digests(
    path: str | os.PathLike[str],
    digests: dict[str, str],
    expected: Iterable[tuple[str, str]] | None = None,
    advice: str = ("The file is damaged or not the published version; delete it (it can be "
                   "downloaded again) or load with verify=False."),
) -> None:
    """Raise :class:`DatasetError` unless ``digests`` match one of ``expected``.

    ``expected`` defaults to the published checksums for the file's name; a file with no
    published checksum passes. ``advice`` ends the message: what to do about it.
    """
    exp = list(expected) if expected is not None else known_digests(Path(path).name)
    if not exp:
        return
    for algo, hexd in exp:
        if digests.get(algo, "").lower() == hexd.lower():
            return
    want = " or ".join(f"{a} {h}" for a, h in exp)
    got = ", ".join(f"{a} {digests[a]}" for a, _ in exp if a in digests)
    raise DatasetError(f"{path}: checksum mismatch: expected {want}, got {got}. {advice}")


def verify_file(
    path: str | os.PathLike[str], expected: Iterable[tuple[str, str]] | None = None
) -> dict[str, str]:
    """Hash ``path`` and check it against ``expected`` (default: the published table)."""
    d = file_digests(path)
    verify_digests(path, d, expected)
    return d
