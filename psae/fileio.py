"""Every file psae writes goes through here: atomic, durable, and with ordinary permissions.

A file is written to a temporary name in its own directory, flushed and fsynced, given the mode
an ordinary file gets under the user's umask (``mkstemp`` would leave 0600, ``mkdtemp`` 0700),
then moved over the target with ``os.replace``: a reader sees the old file or the new one, never
half of one, and a crash leaves at worst a hidden temporary that the next write to the same name
removes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import ParameterError

__all__ = [
    "atomic_write",
    "atomic_path",
    "file_mode",
    "dir_mode",
    "fsync_dir",
    "remove_stale",
    "temp_prefix",
]

_TEMP_TAG = ".psae-tmp-"


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (threads may race a
    set-and-restore)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new ordinary file under the current umask (0644 under umask 022)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Mode of a new ordinary directory under the current umask (0755 under umask 022)."""
    return 0o777 & ~_umask()


def temp_prefix(name: str) -> str:
    """Prefix of psae's temporaries for the target ``name``: hidden, tagged, with the pid, so
    that :func:`remove_stale` can tell a dead writer's leftovers from a live one's."""
    return f".{name}{_TEMP_TAG}{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


# leftovers of psae before 0.2 (no pid in the name): ``.name.tmp-XXXX``, ``.name.old-PID``
_LEGACY = (".tmp-", ".old-")


def remove_stale(target: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries that interrupted writes of ``target`` left beside it.

    Only names psae itself makes are touched (``.<name>.psae-tmp-<pid>-*`` whose process is gone,
    and the older ``.<name>.tmp-*`` / ``.<name>.old-*``); returns what was removed.
    """
    target = Path(target)
    parent, name = target.parent, target.name
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    ours = re.compile(re.escape(f".{name}{_TEMP_TAG}") + r"(\d+)-")
    for entry in parent.iterdir():
        if not entry.name.startswith(f".{name}."):
            continue
        m = ours.match(entry.name)
        if m:
            if _pid_alive(int(m.group(1))):
                continue
        elif not any(entry.name.startswith(f".{name}{tag}") for tag in _LEGACY):
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, the file
    written there is fsynced, given the umask's mode and moved over ``path``.

    For writers that want a file name rather than bytes (``np.save``, ``savefig``, memmaps):
    ``with atomic_path(out, ".npy") as tmp: np.save(tmp, a)``. On error the temporary goes.
    """
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise ParameterError(f"{str(path)!r} is a directory reference, not a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike[str], data: bytes | str | Callable[[Path], None]) -> Path:
    """Write ``data`` (bytes, text as UTF-8, or a function that writes a given path) to
    ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path, suffix=path.suffix or ".tmp") as tmp:
        if callable(data):
            data(tmp)
        else:
            tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path
