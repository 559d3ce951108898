"""What psae owns on disk: one rule for every writer.

psae replaces or removes only what it can show it wrote. A directory psae writes files into
keeps a hidden manifest (``.psae-manifest.json``) of those files with their sizes and SHA-256
and of the subdirectories psae made there; a model directory describes itself (its
``config.json`` names psae's format and holds the hashes of the weights beside it). Anything
else is the user's: a folder holding such entries is refused as an output unless ``force``, and
even then the user's entries are never replaced. A recorded file whose bytes changed since psae
wrote it is the user's too.

Commands check their outputs with :func:`check_output_dir` / :func:`check_output_file` before
any work starts, so a refused output costs nothing; :mod:`psae.io.atomic` records each file as it
lands and refuses to replace one psae does not own.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import DiskFullError, OwnershipError
from .digest import sha256_file

__all__ = [
    "MANIFEST", "MODEL_CONFIG", "MODEL_WEIGHTS", "MODEL_NORMALIZER", "MODEL_FORMAT",
    "sha256_file", "record_file", "make_dirs", "owns_file", "foreign_entries",
    "check_output_dir", "check_output_file", "check_not_input", "disk_full", "is_temporary",
    "file_mode", "dir_mode", "record_dir", "adopt", "forget",
]

MANIFEST = ".psae-manifest.json"
TEMP_TAG = ".psae-tmp-"  # the marker of psae's temporaries (see atomic.temp_prefix)
# a model directory's own files: its config records the others' hashes
MODEL_CONFIG, MODEL_WEIGHTS, MODEL_NORMALIZER = "config.json", "model.safetensors", \
    "normalizer.safetensors"
MODEL_FORMAT = "psae.SparseAutoencoder"


def is_temporary(name: str) -> bool:
    """Whether ``name`` is one of psae's temporaries (a hidden name carrying the marker)."""
    return name.startswith(".") and TEMP_TAG in name


def disk_full(path: str | os.PathLike[str], e: OSError, need: int | None = None
              ) -> DiskFullError:
    """The psae error for a write to ``path`` that ran out of space: the path, the space
    free there and, where known, the space needed."""
    free = None
    with contextlib.suppress(OSError):
        st = os.statvfs(Path(path).parent)
        free = st.f_bavail * st.f_frsize
    parts = [f"{path}: no space left on device"]
    if need is not None:
        parts.append(f"needs {_size(need)}")
    if free is not None:
        parts.append(f"{_size(free)} free")
    return DiskFullError(e.errno or errno.ENOSPC,
                         parts[0] + (f" ({', '.join(parts[1:])})" if parts[1:] else "")
                         + "; free some space or write elsewhere (nothing was replaced)")


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)  # pragma: no cover


# ---------------------------------------------------------------------------------- manifest
def _read(directory: Path) -> dict:
    try:
        m = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested too deep
        return {"files": {}, "dirs": []}
    if not isinstance(m, dict):
        return {"files": {}, "dirs": []}
    files = m.get("files") if isinstance(m.get("files"), dict) else {}
    dirs = m.get("dirs") if isinstance(m.get("dirs"), list) else []
    return {"files": files, "dirs": [d for d in dirs if isinstance(d, str)]}


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[dict]:
    """The manifest of ``directory``, read under an exclusive lock on the directory and
    written back atomically when the block ends (a writer in another process waits)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for left in directory.glob(f"{MANIFEST}{TEMP_TAG}*"):  # a killed writer's, under
            with contextlib.suppress(OSError):  # the lock no other writer is mid-write
                left.unlink()
        m = _read(directory)
        was = json.dumps(m, sort_keys=True)
        yield m
        if json.dumps(m, sort_keys=True) == was and (directory / MANIFEST).exists():
            return  # nothing to record: a folder psae may no longer write stays unwritten
        tmp = directory / f"{MANIFEST}{TEMP_TAG}{os.getpid()}"
        try:
            with open(tmp, "w") as f:
                json.dump({"format": "psae.manifest", "version": 1, **m}, f, indent=0,
                          sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, file_mode())
            os.replace(tmp, directory / MANIFEST)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise disk_full(directory / MANIFEST, e) from e
            raise
    finally:
        os.close(fd)  # closing releases the lock


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


def _stamp(path: Path) -> dict:
    """What tells a file unchanged without reading it: size, mtime and inode."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def _core(entry: dict) -> dict:
    return {k: entry.get(k) for k in ("sha256", "size", "mtime_ns", "ino")}


def record_file(path: str | os.PathLike[str], *, as_name: str | None = None,
                entry: dict | None = None, append: bool = False,
                into: str | os.PathLike[str] | None = None) -> dict:
    """Record ``path`` (written by psae) in its directory's manifest (``into``'s, when it is
    about to be moved there), under ``as_name`` when it is a temporary about to be renamed:
    the entry it replaces is kept as ``was`` (the one the file on disk still matches) until
    the rename is recorded too. ``entry``: the hash already taken. ``append``: a log psae goes
    on appending to, owned while its recorded beginning is unchanged. Returns the entry."""
    path = Path(path)
    if entry is None:
        entry = {"sha256": sha256_file(path), **_stamp(path)}
        if append:
            entry["append"] = True
    directory = Path(into) if into is not None else path.parent
    name = as_name or path.name
    with _locked(directory) as m:
        old = m["files"].get(name)
        if as_name is not None and isinstance(old, dict):
            now = directory / name
            was = next((e for e in (old, old.get("was")) if isinstance(e, dict)
                        and _matches(_core(e), now)), None)
            m["files"][name] = {**entry, **({"was": _core(was)} if was else {})}
        else:
            m["files"][name] = dict(entry)
    return entry


def forget(directory: str | os.PathLike[str], names: Iterable[str]) -> None:
    """Drop ``names`` from ``directory``'s manifest (their files vouch for themselves), and
    the manifest itself once it records nothing."""
    directory = Path(directory)
    if not (directory / MANIFEST).exists():
        return
    with _locked(directory) as m:
        for n in names:
            m["files"].pop(n, None)
        empty = not m["files"] and not m["dirs"]
    if empty:
        with contextlib.suppress(OSError):
            (directory / MANIFEST).unlink()


def _record_dir(path: Path) -> None:
    with _locked(path.parent) as m:
        if path.name not in m["dirs"]:
            m["dirs"].append(path.name)
            m["dirs"].sort()


def make_dirs(path: str | os.PathLike[str], mode: int | None = None) -> Path:
    """``mkdir -p`` that records every directory it makes in its parent's manifest (where the
    parent has one, or was made here) and gives each a manifest of its own: so a later check
    can tell psae's folders from the user's."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir() if mode is None else d.mkdir(mode=mode)
        except FileExistsError:
            continue
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise disk_full(d, e) from e
            raise
        with _locked(d):
            pass  # an empty manifest: this folder is psae's
        if (d.parent / MANIFEST).exists():
            _record_dir(d)
    return path


def record_dir(path: str | os.PathLike[str]) -> None:
    """Record an existing directory psae made (e.g. a model directory swapped into place) in
    its parent's manifest, where the parent has one."""
    path = Path(path)
    if (path.parent / MANIFEST).exists():
        _record_dir(path)


# --------------------------------------------------------------------------------- ownership
def _model_files(directory: Path) -> set[str]:
    """The files of ``directory`` that its psae model config vouches for (by hash)."""
    try:
        cfg = json.loads((directory / MODEL_CONFIG).read_text())
    except (OSError, ValueError, RecursionError):
        return set()
    if not isinstance(cfg, dict) or cfg.get("format") != MODEL_FORMAT:
        return set()
    owned = {MODEL_CONFIG}
    hashes = {MODEL_WEIGHTS: cfg.get("weights_sha256"),
              MODEL_NORMALIZER: (cfg.get("normalizer") or {}).get("sha256")
              if isinstance(cfg.get("normalizer"), dict) else None}
    for name, digest in hashes.items():
        f = directory / name
        if digest and f.is_file() and not f.is_symlink() and sha256_file(f) == digest:
            owned.add(name)
    return owned


def _matches(entry, path: Path) -> bool:
    """Whether ``path`` has the bytes the manifest ``entry`` recorded (or, for a write cut
    between record and rename, the bytes it replaced)."""
    if not isinstance(entry, dict) or path.is_symlink() or not path.is_file():
        return False
    try:
        stamp = _stamp(path)
        if not entry.get("append") and entry.get("mtime_ns") is not None and all(
                entry.get(k) == stamp[k] for k in ("size", "mtime_ns", "ino")):
            return True  # untouched since psae recorded it: no need to read it
        size = stamp["size"]
        if entry.get("append"):
            return size >= entry.get("size", -1) and sha256_file(path, limit=entry["size"]) \
                == entry.get("sha256")
        wanted = [e for e in (entry, entry.get("was")) if isinstance(e, dict)
                  and e.get("size") == size]
        return bool(wanted) and sha256_file(path) in {e.get("sha256") for e in wanted}
    except OSError:
        return False


def owns_file(path: str | os.PathLike[str]) -> bool:
    """Whether the existing file ``path`` is one psae wrote and nobody changed since."""
    path = Path(path)
    if path.name in _model_files(path.parent):
        return True
    return _matches(_read(path.parent)["files"].get(path.name), path)


def foreign_entries(directory: str | os.PathLike[str], _prefix: str = "") -> list[str]:
    """Everything under ``directory`` psae cannot show it wrote, as relative paths (a file
    changed since psae wrote it is marked so); psae's temporaries are not listed."""
    directory = Path(directory)
    m = _read(directory)
    model = _model_files(directory)
    out: list[str] = []
    for e in sorted(directory.iterdir(), key=lambda p: p.name):
        name, rel = e.name, _prefix + e.name
        if name == MANIFEST or is_temporary(name):
            continue
        if e.is_symlink() or not (e.is_dir() or e.is_file()):
            out.append(rel)
        elif e.is_dir():
            inner = foreign_entries(e, rel + "/")
            known = (name in m["dirs"] or (e / MANIFEST).exists()
                     or (e / MODEL_CONFIG).is_file() and MODEL_CONFIG not in inner)
            if known or not any(e.iterdir()):  # an empty folder holds nothing to lose
                out.extend(inner)
            else:
                out.append(rel + "/")
        elif name in model:
            continue
        elif name in m["files"]:
            if not _matches(m["files"][name], e):
                out.append(rel + " (changed since psae wrote it)")
        else:
            out.append(rel)
    return out


def _shown(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _writable_ancestor(path: Path, option: str) -> None:
    p = path
    while not p.exists():
        p = p.parent
    if not p.is_dir():
        raise OwnershipError(f"{option} {path}: {p} is a file, not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise OwnershipError(f"{option} {path}: {p} is not writable")


def check_not_input(out: str | os.PathLike[str], inputs: Iterable, option: str = "--out"
                    ) -> None:
    """Refuse an output that is, holds or lies inside one of the command's inputs."""
    out_real = Path(os.path.realpath(out))
    for given in inputs:
        if given is None or not os.path.exists(given):
            continue
        src = Path(os.path.realpath(given))
        same = out_real == src or (out_real.exists() and os.path.samefile(out_real, src))
        if same or src.is_relative_to(out_real) or out_real.is_relative_to(src):
            raise OwnershipError(f"{option} {out} would overwrite this command's input {given}; "
                                 "choose another output")


def check_output_dir(path: str | os.PathLike[str], *, force: bool = False,
                     inputs: Iterable = (), option: str = "--out",
                     writes: Iterable[str] = ()) -> None:
    """Refuse, before any work, an output directory psae may not write: a file, an input of
    the command, an unwritable place, or (unless ``force``) one holding the user's files.
    ``writes``: the names the command writes there; a user's entry under one of them is
    refused even with ``force``, since psae never replaces it."""
    path = Path(path).expanduser().absolute()
    check_not_input(path, inputs, option)
    if path.is_symlink() and not path.exists():  # said now, not as a bare errno after the work
        raise OwnershipError(f"{option} {path} is a symbolic link to {os.readlink(path)}, "
                             "which does not exist: make that folder, or choose another")
    if not path.exists():
        _writable_ancestor(path, option)
        return
    if not path.is_dir():
        raise OwnershipError(f"{option} {path} exists and is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise OwnershipError(f"{option} {path} is not writable")
    foreign = foreign_entries(path)
    if foreign and not force:
        raise OwnershipError(
            f"{path} is not empty and holds files psae did not write ({_shown(foreign)}); "
            f"choose a new or empty directory, or pass --force (force=True) to write there "
            "beside them (psae never replaces or removes them)")
    names = set(writes)
    clash = [f for f in foreign if f.split("/")[0].split(" (")[0] in names]
    if clash:
        raise OwnershipError(
            f"{path} holds {_shown(clash)}, which psae did not write but would have to "
            "replace; even with --force psae never replaces a user's file: move them or "
            "choose another directory")


def check_output_file(path: str | os.PathLike[str], *, force: bool = False,
                      inputs: Iterable = (), option: str = "--out") -> None:
    """Refuse, before any work, an output file psae may not write: an input of the command,
    a directory, an unwritable place, or (unless ``force``) a file psae did not write."""
    path = Path(path).expanduser().absolute()
    check_not_input(path, inputs, option)
    if path.name in ("", ".", ".."):
        raise OwnershipError(f"{option} {path} names a directory, not a file")
    if not path.exists():
        _writable_ancestor(path, option)
        return
    if path.is_dir() or not path.is_file():
        raise OwnershipError(f"{option} {path} exists and is not a regular file")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OwnershipError(f"{option} {path}: {path.parent} is not writable")
    if not force and not owns_file(path):
        raise OwnershipError(f"{option} {path} exists and psae did not write it (or it changed "
                             "since); choose another name, or pass --force to replace it")


def adopt(directory: str | os.PathLike[str], names: Iterable[str], append: Iterable[str] = (),
          dirs: Iterable[str] = (), last: str | None = None) -> None:
    """Record the existing files ``names`` and folders ``dirs`` (relative paths) under
    ``directory`` as psae's, with the folders above them: for output written by psae before
    it kept manifests, recognised by the caller from a file only psae writes there. Each
    manifest is written once; ``last`` (a name in ``names``) is recorded after all the others,
    so that an adoption cut short is recognisable (``last`` unrecorded) and done again.
    ``append``: those of ``names`` that are logs psae appends to."""
    directory = Path(directory)
    append = set(append)
    files: dict[Path, dict[str, dict]] = {directory: {}}
    folders: dict[Path, set[str]] = {directory: set()}

    def walk(rel: str, include_last: bool) -> Path | None:
        parent, parts = directory, Path(rel).parts
        for part in parts if include_last else parts[:-1]:
            child = parent / part
            if child.is_symlink() or not child.is_dir():
                return None
            folders.setdefault(parent, set()).add(part)
            if not (child / MODEL_CONFIG).exists():  # a model folder describes itself
                folders.setdefault(child, set())
                files.setdefault(child, {})
            parent = child
        return parent

    for rel in dirs:
        walk(rel, include_last=True)
    for rel in names:
        f = directory / rel
        if rel == last or f.is_symlink() or not f.is_file():
            continue
        parent = walk(rel, include_last=False)
        if parent is not None:
            entry = {"sha256": sha256_file(f), **_stamp(f)}
            files.setdefault(parent, {})[f.name] = {**entry, **({"append": True}
                                                              if rel in append else {})}
    for d in sorted(set(files) | set(folders), key=lambda p: len(p.parts), reverse=True):
        with _locked(d) as m:
            m["files"].update(files.get(d, {}))
            m["dirs"] = sorted(set(m["dirs"]) | folders.get(d, set()))
    if last is not None and (directory / last).is_file():
        record_file(directory / last)
