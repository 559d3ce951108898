"""Published checksums of known data files, file hashing and verification."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from ._base import DatasetError

__all__ = ["KNOWN", "file_digests", "known_digests", "verify_digests", "verify_file"]

#: file name -> accepted ``(algorithm, hex digest)`` pairs.
KNOWN: dict[str, list[tuple[str, str]]] = {
    # MNIST, gzipped as distributed (sha256 as published with the copy in shared/data)
    "train-images-idx3-ubyte.gz": [
        ("sha256", "db8f937d487057fb14a9f0fbe97f0bc8d311ab41b750d41e1ff37c43b9e55e19")
    ],
    "train-labels-idx1-ubyte.gz": [
        ("sha256", "51fc562b6747b666fbf6e84ce29d43c3cb5f9c388c664d43b33f02095313405a")
    ],
    "t10k-images-idx3-ubyte.gz": [
        ("sha256", "cfeddb84311ecf044fc6a5b0f6ee8a24d265d4e83e388400186eb114082f4209")
    ],
    "t10k-labels-idx1-ubyte.gz": [
        ("sha256", "e41c74e484045d39b462a7790a4af51301bd9b0b24f0154798d713ec68c45920")
    ],
    # MNIST, uncompressed originals
    "train-images-idx3-ubyte": [
        ("md5", "6bbc9ace898e44ae57da46a324031adb"),
        ("sha256", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    ],
    "train-labels-idx1-ubyte": [
        ("sha256", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5")
    ],
    "t10k-images-idx3-ubyte": [
        ("sha256", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7")
    ],
    "t10k-labels-idx1-ubyte": [
        ("sha256", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2")
    ],
    # UCI optdigits
    "optdigits.tra": [
        ("sha256", "e1b683cc211604fe8fd8c4417e6a69f31380e0c61d4af22e93cc21e9257ffedd")
    ],
    "optdigits.tes": [
        ("sha256", "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8")
    ],
    # CIFAR-10: official python release (md5 from the CIFAR page) and the JPEG image-folder copy
    "cifar-10-python.tar.gz": [("md5", "c58f30108f718f92721af3b95e74349a")],
    "cifar10-jpeg.tar.gz": [
        ("sha256", "0bfcb68717a0ecb0d51ed61034906a773d48d424d94b766a46d7d1c55702a4d9")
    ],
}

_CHUNK = 1 << 20


def file_digests(path: str | os.PathLike[str]) -> dict[str, str]:
    """sha256 and md5 of a file, computed in one pass."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                sha.update(chunk)
                md5.update(chunk)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise DatasetError(f"{path}: cannot read file: {e}") from e
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def known_digests(name: str) -> list[tuple[str, str]]:
    """Accepted ``(algorithm, hex)`` pairs for a file name (empty if none is published)."""
    return list(KNOWN.get(name, []))


def verify_digests(
    path: str | os.PathLike[str],
    digests: dict[str, str],
    expected: Iterable[tuple[str, str]] | None = None,
) -> None:
    """Raise :class:`DatasetError` unless ``digests`` match one of ``expected``.

    ``expected`` defaults to the published checksums for the file's name; a file with no
    published checksum passes.
    """
    exp = list(expected) if expected is not None else known_digests(Path(path).name)
    if not exp:
        return
    for algo, hexd in exp:
        if digests.get(algo, "").lower() == hexd.lower():
            return
    want = " or ".join(f"{a} {h}" for a, h in exp)
    got = ", ".join(f"{a} {digests[a]}" for a, _ in exp if a in digests)
    raise DatasetError(
        f"{path}: checksum mismatch: expected {want}, got {got}. The file is damaged or not "
        "the published version; delete it (it can be downloaded again) or load with verify=False."
    )


def verify_file(
    path: str | os.PathLike[str], expected: Iterable[tuple[str, str]] | None = None
) -> dict[str, str]:
    """Hash ``path`` and check it against ``expected`` (default: the published table)."""
    d = file_digests(path)
    verify_digests(path, d, expected)
    return d
