"""On-disk cache of decoded arrays, keyed by the checksums of their source files.

Layout of a cache directory::

    hashes.json                 # memo: absolute path -> size, mtime_ns, sha256, md5
    <name>-<key16>/manifest.json
    <name>-<key16>/X_train.npy  # native dtype (uint8 pixels), converted to float32 at load
    ...

An entry is written into a temporary directory and renamed into place, manifest last, so a
crash never leaves a half-written entry. The manifest records each array's shape, dtype, file
size and CRC-32; an entry that does not match is rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import mmap
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic
from ..io.tree import tree_files
from ._base import RawData
from .checksums import file_digests, verify_digests

__all__ = ["Cache", "cached", "resolve_cache_dir"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 2: labels renumbered to 0..K-1, grey image folders one channel;
# 3: 16-bit PNGs scaled to 8 bits, not clipped
_MEMO = "hashes.json"


def _writable_dir(d: Path) -> bool:
    """Whether ``d`` exists or can be made, and may be written.

    A parent without any write permission bit counts as read-only even for root, so a data
    dir shipped read-only is never written into.
    """
    if d.is_dir():
        return os.access(d, os.W_OK | os.X_OK) and bool(d.stat().st_mode & 0o222)
    parent = d.parent
    if parent.is_dir() and not parent.stat().st_mode & 0o222:
        return False
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(d, os.W_OK | os.X_OK)


def _user_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "psae"


def resolve_cache_dir(cache: bool | str | os.PathLike[str] | None, root: Path) -> Path | None:
    """The cache directory: ``cache`` if a path, else ``$PSAE_CACHE``, else ``root/.cache``.

    ``cache=False`` (or ``None``) disables caching. If ``root/.cache`` cannot be written (a
    read-only data dir) the per-user cache dir (``$XDG_CACHE_HOME/psae``) is used.
    """
    if cache is False or cache is None:
        return None
    if cache is not True:
        return Path(cache).expanduser()
    env = os.environ.get("PSAE_CACHE")
    if env:
        return Path(env).expanduser()
    d = root / ".cache"
    if _writable_dir(d):
        return d
    return _user_cache_dir()


def _crc32(path: Path) -> int:
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return zlib.crc32(b"")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return zlib.crc32(mm)


class Cache:
    """A cache directory (``None`` = no on-disk cache; digests are memoised in memory only)."""

    def __init__(self, directory: Path | None):
        self.directory = directory
        self._memo: dict[str, dict[str, Any]] | None = None

    # -- source digests -------------------------------------------------------------------
    def _load_memo(self) -> dict[str, dict[str, Any]]:
        if self._memo is None:
            self._memo = {}
            if self.directory is not None:
                try:
                    m = json.loads((self.directory / _MEMO).read_text())
                    if isinstance(m, dict):
                        self._memo = m
                except (OSError, ValueError):
                    pass
        return self._memo

    def digests(self, path: Path) -> dict[str, str]:
        """sha256/md5 of ``path``, re-hashed when its size, mtime, inode or ctime changed (a
        file swapped in with its old size and ``touch -r``'s mtime still has a new ctime)."""
        p = str(Path(path).resolve())
        st = os.stat(p)
        stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino,
                 "ctime_ns": st.st_ctime_ns}
        memo = self._load_memo()
        e = memo.get(p)
        # an entry that is not a dict with both digests (a damaged memo) is hashed afresh
        if (isinstance(e, dict) and all(e.get(k) == v for k, v in stamp.items())
                and isinstance(e.get("sha256"), str) and isinstance(e.get("md5"), str)):
            return {"sha256": e["sha256"], "md5": e["md5"]}
        d = file_digests(p)
        memo[p] = {**stamp, **d}
        if self.directory is not None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                atomic.atomic_write(self.directory / _MEMO, json.dumps(memo, indent=0),
                                    record=False)
            except OSError as e:  # the memo is an optimisation only
                log.debug("cannot write digest memo: %s", e)
        return d

    # -- entries ----------------------------------------------------------------------------
    @staticmethod
    def make_key(name: str, parts: list[Any]) -> str:
        blob = json.dumps([FORMAT_VERSION, name, parts], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def entry_dir(self, name: str, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{name}-{key[:16]}"

    def get(self, name: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """The cached arrays (read-only memory maps) and metadata, or ``None`` if absent,
        stale or damaged."""
        if self.directory is None:
            return None
        d = self.entry_dir(name, key)
        mpath = d / "manifest.json"
        if not mpath.is_file():
            return None
        try:
            manifest = json.loads(mpath.read_text())
            if manifest.get("version") != FORMAT_VERSION or manifest.get("key") != key:
                raise ValueError("manifest does not match")
            arrays = {}
            for k, info in manifest["arrays"].items():
                f = d / info["file"]
                if f.stat().st_size != info["size"] or _crc32(f) != info["crc32"]:
                    raise ValueError(f"{info['file']}: size or CRC-32 mismatch")
                # memory-mapped, read-only: the caller converts (copies) what it keeps
                a = np.load(f, mmap_mode="r", allow_pickle=False)
                if list(a.shape) != info["shape"] or a.dtype.str != info["dtype"]:
                    raise ValueError(f"{info['file']}: shape or dtype mismatch")
                arrays[k] = a
            return arrays, manifest.get("meta", {})
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("damaged cache entry %s (%s); rebuilding", d, e)
            shutil.rmtree(d, ignore_errors=True)
            return None

    def put(
        self,
        name: str,
        key: str,
        arrays: dict[str, np.ndarray],
        meta: dict[str, Any],
        sources: list[str],
    ) -> None:
        """Store an entry atomically; remove older entries built from the same sources."""
        if self.directory is None:
            return
        final = self.entry_dir(name, key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            atomic.remove_stale(final)
            tmp = Path(tempfile.mkdtemp(dir=self.directory, prefix=atomic.temp_prefix(final.name)))
            # mkdtemp makes 0700; an entry is an ordinary directory (its files follow the umask)
            os.chmod(tmp, atomic.dir_mode())
        except OSError as e:
            log.warning("cannot write cache in %s: %s", self.directory, e)
            return
        try:
            info = {}
            for k, a in arrays.items():
                buf = io.BytesIO()
                np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
                data = buf.getvalue()
                (tmp / f"{k}.npy").write_bytes(data)
                info[k] = {
                    "file": f"{k}.npy",
                    "shape": list(a.shape),
                    "dtype": a.dtype.str,
                    "size": len(data),
                    "crc32": zlib.crc32(data),
                }
            manifest = {
                "version": FORMAT_VERSION,
                "name": name,
                "key": key,
                "sources": sources,
                "meta": meta,
                "arrays": info,
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            atomic.fsync_dir(self.directory)
        except OSError as e:
            log.warning("cannot write cache entry %s: %s", final, e)
            shutil.rmtree(tmp, ignore_errors=True)
            return
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._prune(name, final, sources)

    def _prune(self, name: str, keep: Path, sources: list[str]) -> None:
        assert self.directory is not None
        for d in self.directory.glob(f"{name}-*"):
            if d == keep or not d.is_dir():
                continue
            try:
                m = json.loads((d / "manifest.json").read_text())
            except (OSError, ValueError):
                continue
            if m.get("name") == name and m.get("sources") == sources:
                shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
def _fingerprint(path: Path, store: Cache, verify: bool) -> list[Any]:
    """What identifies a source: file checksum, or for a directory its files' size, mtime,
    inode and ctime (an image swapped in at its old size with ``cp -p``'s or ``touch -r``'s
    mtime has a new inode or ctime; size and mtime alone served the old decode)."""
    if path.is_file():
        d = store.digests(path)
        if verify:
            verify_digests(path, d)
        return [path.name, d["sha256"]]
    entries = []
    for f in sorted(tree_files(path)):  # through linked folders, as the readers read them
        st = f.stat()
        entries.append([f.relative_to(path).as_posix(), st.st_size, st.st_mtime_ns,
                        st.st_ino, st.st_ctime_ns])
    return [path.name, Cache.make_key("dir", entries)]


def cached(
    name: str, sources: list[Path], reader: Callable[[], RawData], store: Cache, verify: bool
) -> RawData:
    """``reader()``'s arrays, from ``store`` when ``sources`` are unchanged (checksums verified
    against the published ones when ``verify``), else decoded and stored."""
    key = Cache.make_key(name, [_fingerprint(s, store, verify) for s in sources])
    hit = store.get(name, key)
    if hit is not None:
        arrays, meta = hit
        shape = meta.get("shape")
        return RawData(
            arrays["X_train"],
            arrays.get("y_train"),
            arrays.get("X_test"),
            arrays.get("y_test"),
            None if shape is None else tuple(shape),
            meta.get("classes"),
            notes=tuple(meta.get("notes") or ()),  # what the first read said, said again
        )
    raw = reader()
    store.put(
        name,
        key,
        raw.arrays(),
        {"shape": None if raw.shape is None else list(raw.shape), "classes": raw.classes,
         "notes": list(raw.notes)},
        [str(s.resolve()) for s in sources],
    )
    return raw
