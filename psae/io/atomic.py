"""Every file psae writes goes through here: atomic, durable, owned, and with ordinary
permissions.

A file is written to a temporary name in its own directory, flushed and fsynced, given the mode
an ordinary file gets under the user's umask (``mkstemp`` would leave 0600, ``mkdtemp`` 0700),
then moved over the target with ``os.replace``: a reader sees the old file or the new one, never
half of one. The target is replaced only when psae wrote it (:mod:`psae.io.ownership`), and the new
file is recorded in its directory's manifest. A full disk is a :class:`~psae.DiskFullError`
that names the path, with the old file intact and no temporary left. A crash leaves at worst a
hidden temporary carrying psae's marker, the host and the writer's pid and start time; the next
write beside it removes it once that writer is gone, and nothing else.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import DiskFullError, OwnershipError, ParameterError
from . import ownership
from .ownership import TEMP_TAG, dir_mode, disk_full, file_mode

__all__ = [
    "atomic_write",
    "atomic_path",
    "allocate",
    "file_mode",
    "dir_mode",
    "fsync_dir",
    "remove_stale",
    "temp_prefix",
]

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _start_time(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (tells a live writer from a reused pid)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def temp_prefix(name: str) -> str:
    """Prefix of psae's temporaries for the target ``name``: hidden, tagged with psae's
    marker, this host, this pid and its start time, so that :func:`remove_stale` can tell a
    gone writer's leftovers from a live one's and from any user file."""
    pid = os.getpid()
    return f".{name}{TEMP_TAG}h{_host()}-p{pid}-s{_start_time(pid) or 0}-"


def _writer_gone(host: str, pid: int, start: str) -> bool:
    if host != _host():
        return False  # another machine's writer (a shared folder): cannot tell, keep it
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass
    now = _start_time(pid)
    return now is not None and start != "0" and now != start  # the pid was reused


def remove_stale(target: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries that interrupted writes of ``target`` left beside it.

    Only names carrying psae's marker for ``target`` whose writer (same host, pid and start
    time) is gone; anything else, however it is named, is left alone. Returns what went.
    """
    target = Path(target)
    parent, name = target.parent, target.name
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    ours = re.compile(re.escape(f".{name}{TEMP_TAG}") + r"h([0-9a-f]{8})-p(\d+)-s(\d+)-")
    for entry in parent.iterdir():
        m = ours.match(entry.name)
        if not m or not _writer_gone(m.group(1), int(m.group(2)), m.group(3)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def allocate(path: str | os.PathLike[str], size: int) -> None:
    """Reserve ``size`` bytes for the file ``path`` on disk, so that a memory map of it can
    never meet a full disk (which is a SIGBUS, not an error) but fails here instead."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno in _NO_SPACE:
            raise
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    finally:
        os.close(fd)


def _check_target(path: Path, replace: bool) -> None:
    if path.name in ("", ".", ".."):
        raise ParameterError(f"{str(path)!r} is a directory reference, not a file name")
    if path.is_dir() and not path.is_symlink():
        raise OwnershipError(f"{path} is a directory; psae writes a file there only by name")
    if path.exists() and not replace and not ownership.owns_file(path):
        raise OwnershipError(
            f"{path} exists and psae did not write it (or it changed since); psae replaces "
            "only its own files: move it, or choose another output")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp", *, replace: bool = False,
                need: int | None = None, record: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, the file
    written there is fsynced, given the umask's mode, moved over ``path`` and recorded as
    psae's.

    For writers that want a file name rather than bytes (``np.save``, ``savefig``, memmaps):
    ``with atomic_path(out, ".npy") as tmp: np.save(tmp, a)``. An existing ``path`` psae did
    not write is refused unless ``replace`` (the user asked, e.g. ``--force`` on a file). On
    error the temporary goes; a full disk becomes a DiskFullError (``need``: bytes, if known).
    ``record=False`` is for psae's private places (the data cache, downloads checked by their
    published digests), which keep no manifest.
    """
    path = Path(path).expanduser()  # as the up-front checks read it (bash leaves --out=~/x)
    _check_target(path, replace or not record)
    if record:
        ownership.make_dirs(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name),
                                    suffix=suffix)
    except OSError as e:
        raise (disk_full(path, e, need) if e.errno in _NO_SPACE else e) from e
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, file_mode())
        # recorded before the rename and again after: a kill between the two leaves a
        # manifest that still vouches for the old file
        entry = ownership.record_file(tmp, as_name=path.name) if record else None
        os.replace(tmp, path)
        if record:
            ownership.record_file(path, entry=entry)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in _NO_SPACE and not isinstance(e, DiskFullError):
            raise disk_full(path, e, need) from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike[str], data: bytes | str | Callable[[Path], None], *,
                 replace: bool = False, record: bool = True) -> Path:
    """Write ``data`` (bytes, text as UTF-8, or a function that writes a given path) to
    ``path`` atomically; returns ``path``. ``replace``, ``record``: as for
    :func:`atomic_path`."""
    path = Path(path).expanduser()
    if isinstance(data, str):
        data = data.encode("utf-8")
    need = len(data) if isinstance(data, bytes) else None
    with atomic_path(path, suffix=path.suffix or ".tmp", replace=replace, need=need,
                     record=record) as tmp:
        if callable(data):
            data(tmp)
        else:
            tmp.write_bytes(data)
    return path
