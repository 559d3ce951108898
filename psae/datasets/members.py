"""Reading one member of an archive (or one file of a folder) with a size cap.

A member's header may claim any size, and a few kilobytes of compressed zeros can inflate to
gigabytes, so every member is checked against :data:`MAX_MEMBER_BYTES` twice: by the size its
header declares, before anything is decompressed, and by the bytes actually read, which never
exceed the cap by more than one.
"""

from __future__ import annotations

from typing import BinaryIO

from ._base import DatasetError

__all__ = ["MAX_MEMBER_BYTES", "check_declared", "read_capped"]

#: the most bytes psae reads from one archive member or image file (a CIFAR-10 batch is 31 MB)
MAX_MEMBER_BYTES = 64 << 20


def _too_big(where: str, what: str) -> DatasetError:
    cap = MAX_MEMBER_BYTES
    return DatasetError(
        f"{where}: {what}, more than psae reads from one file ({cap:,} bytes = {cap >> 20} MiB); "
        "remove or shrink it"
    )


def check_declared(size: int | None, where: str) -> None:
    """Refuse a member whose header declares more than :data:`MAX_MEMBER_BYTES`."""
    if size is not None and size > MAX_MEMBER_BYTES:
        raise _too_big(where, f"declares {size:,} bytes")


def read_capped(f: BinaryIO, where: str, declared: int | None = None) -> bytes:
    """All of ``f``, refused (without reading more than the cap plus one byte) when it is
    larger than :data:`MAX_MEMBER_BYTES`; ``declared`` is checked first."""
    check_declared(declared, where)
    data = f.read(MAX_MEMBER_BYTES + 1)
    if len(data) > MAX_MEMBER_BYTES:
        # the header said less (or nothing): the bytes are what count
        raise _too_big(where, f"holds more than {MAX_MEMBER_BYTES:,} bytes")
    return data
