"""Model directories: ``config.json``, ``model.safetensors`` (and ``normalizer.safetensors``).

This module knows the format, not the estimators: it writes and reads ``(config, arrays)``;
:mod:`psae.estimator` and :mod:`psae.preprocessing` turn themselves into and back from those,
and :mod:`psae.bundle` puts a whole saved unit together. No pickle anywhere.

Writes never lose what is on disk, and a reader never finds the folder missing. A new model is
built in a temporary folder beside the target, then exchanged with the old one in one atomic
step (``renameat2(RENAME_EXCHANGE)``; where the system lacks it, file by file, config last). A
folder holding files psae did not write (:mod:`psae.io.ownership`) is refused unless ``force``;
even then only psae's own files are replaced, one atomic rename each, config last, and a user's
file with one of psae's names is never replaced. Loading reads every file through one handle
on the folder and checks the format version, each file's SHA-256 and every tensor's shape; a
save seen half-way is read again.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_bytes
from safetensors.numpy import save as save_bytes

from ._version import __version__
from .errors import ModelFormatError, OwnershipError
from .io import ownership
from .io.atomic import dir_mode, file_mode, fsync_dir, remove_stale, temp_prefix
from .io.ownership import MODEL_CONFIG as CONFIG
from .io.ownership import MODEL_FORMAT as FORMAT
from .io.ownership import MODEL_NORMALIZER as NORMALIZER
from .io.ownership import MODEL_WEIGHTS as WEIGHTS

__all__ = ["ModelFormatError", "FORMAT_VERSION", "write_model", "read_model", "read_normalizer",
           "is_model_dir", "check_shapes", "check_writable", "jsonable", "OWN_FILES"]

FORMAT_VERSION = 1
OWN_FILES = (CONFIG, WEIGHTS, NORMALIZER)
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plain(v):
    """``v`` with numpy's scalars (``np.bool_`` too) and arrays as Python's, tuples as lists,
    at any depth: ``np.True_`` written as the string "True" made a model that never loaded."""
    if isinstance(v, np.generic | np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    return v


def _is_json(v) -> bool:
    if isinstance(v, list):
        return all(_is_json(x) for x in v)
    return isinstance(v, str | int | float | bool | type(None))


def jsonable(params: Mapping) -> dict:
    """Estimator parameters as JSON values (tuples as lists, numpy scalars as Python's; a
    RandomState as None; anything else as its text)."""
    out = {}
    for k, v in params.items():
        v = _plain(v)
        if not _is_json(v):
            v = None if k == "random_state" else str(v)
        out[k] = v
    return out


def check_shapes(arrays: Mapping[str, np.ndarray], shapes: Mapping[str, tuple], where: str
                 ) -> None:
    """Every tensor of ``shapes`` present in ``arrays`` with exactly that shape."""
    for name, shape in shapes.items():
        got = None if name not in arrays else tuple(arrays[name].shape)
        if got != tuple(shape):
            raise ModelFormatError(f"{where}: tensor {name!r} has shape {got}, expected "
                                   f"{tuple(shape)}")


# ----------------------------------------------------------------------------------- writing
def is_model_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a psae model config."""
    try:
        cfg = json.loads((Path(path) / CONFIG).read_text())
    except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested too deep
        return False
    return isinstance(cfg, dict) and cfg.get("format") == FORMAT


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())  # on disk before the swap, so a crash cannot leave empty files
    os.chmod(path, file_mode())


def _write_files(tmp: Path, config: dict, arrays: Mapping[str, np.ndarray],
                 normalizer: tuple[dict, Mapping[str, np.ndarray]] | None) -> None:
    weights = save_bytes({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    files = {WEIGHTS: weights}
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "psae_version": __version__,
              **config, "weights_sha256": _sha256(weights)}
    if normalizer is not None:
        params, n_arrays = normalizer
        files[NORMALIZER] = save_bytes(dict(n_arrays))
        config["normalizer"] = {"params": jsonable(params),
                                "sha256": _sha256(files[NORMALIZER])}
    files[CONFIG] = json.dumps(config, indent=1).encode()
    try:
        for name, data in files.items():
            _write_file(tmp / name, data)
    except OSError as e:
        if e.errno in _NO_SPACE:
            raise ownership.disk_full(tmp.parent / tmp.name.split(".psae-tmp-")[0].lstrip("."),
                                      e, sum(len(d) for d in files.values())) from e
        raise
    os.chmod(tmp, dir_mode())


_libc = None


def _exchange(a: Path, b: Path) -> bool:
    """Swap the directories ``a`` and ``b`` in one atomic step; False where the system has
    no such call (the caller then falls back)."""
    global _libc
    if not hasattr(os, "posix_fallocate"):  # not Linux-like: no renameat2
        return False
    try:
        _libc = _libc or ctypes.CDLL(None, use_errno=True)
        fn = _libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(tmp: Path, target: Path) -> None:
    """Put the finished ``tmp`` in place of ``target`` (absent, or holding only psae's
    files): one atomic exchange, so a reader always finds a whole model there."""
    if not target.exists():
        os.rename(tmp, target)
        return
    if _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old model
        return
    _replace_own_files(tmp, target)


def _replace_own_files(tmp: Path, target: Path) -> None:
    """Move psae's files from ``tmp`` into ``target`` one by one (config last); leave every
    other file of ``target`` alone. While the files are mixed (new weights beside the old
    config), target's manifest vouches for both; a save cut off there (an error, Ctrl-C)
    puts the old files back from links kept in ``tmp``, so the old model still loads."""
    owned = {n for n in OWN_FILES if (target / n).exists() and ownership.owns_file(target / n)}
    names = [n for n in (WEIGHTS, NORMALIZER, CONFIG) if (tmp / n).exists()]
    for name in names:
        ownership.record_file(tmp / name, as_name=name, into=target)
    kept = _keep_old(target, tmp, owned)
    placed = []
    try:
        for name in (WEIGHTS, NORMALIZER, CONFIG):
            src = tmp / name
            if src.exists():
                os.replace(src, target / name)
                placed.append(name)
            elif name != CONFIG and name in owned:
                (target / name).unlink(missing_ok=True)
    except BaseException:
        _put_back(target, kept, placed)
        raise
    finally:
        ownership.forget(target, names)  # the config now vouches for the files there
    shutil.rmtree(tmp, ignore_errors=True)


def _keep_old(target: Path, tmp: Path, owned: set[str]) -> dict[str, Path]:
    """A second name in ``tmp`` (a hard link, or a copy where links fail) for each of
    target's own files, to put back should the save be cut off."""
    kept = {}
    for name in owned:
        keep = tmp / f"old.{name}"
        try:
            os.link(target / name, keep)
        except OSError:
            shutil.copy2(target / name, keep)
        kept[name] = keep
    return kept


def _put_back(target: Path, kept: dict[str, Path], placed: list[str]) -> None:
    """Undo a cut-off :func:`_replace_own_files`: the old files back under their names, and
    a new file the old model did not have removed."""
    for name in (WEIGHTS, NORMALIZER, CONFIG):
        if name in kept:
            os.replace(kept[name], target / name)
        elif name in placed:
            (target / name).unlink(missing_ok=True)


def _only_model(target: Path) -> bool:
    """Whether ``target`` holds nothing but a model's own files (and psae's bookkeeping): only
    then may the whole folder be exchanged for the new one."""
    return all(e.name in OWN_FILES or e.name == ownership.MANIFEST
               or ownership.is_temporary(e.name) for e in target.iterdir())


def check_writable(path: str | os.PathLike[str], force: bool = False, inputs=()) -> None:
    """Raise :class:`ModelFormatError` if saving to ``path`` would be refused (so that a long
    fit can be refused before it starts rather than after)."""
    target = Path(path).expanduser().absolute()
    try:
        ownership.check_output_dir(target, force=force, inputs=inputs, writes=OWN_FILES)
    except OwnershipError as e:
        raise ModelFormatError(str(e)) from None


def _temp_dir(target: Path, in_place: bool) -> tuple[Path, bool]:
    """Where the new files are written first: beside ``target``, or, where its parent is not
    the user's to write (``--out /results/alice`` under a root-owned ``/results``, which the
    up-front check passes), inside the existing ``target``, whose psae files are then replaced
    one by one. Returns that folder and whether the save is in place."""
    try:
        return _fresh_temp(target.parent, target.name, target), in_place
    except OSError as e:
        if not target.is_dir() or e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
    return _fresh_temp(target, CONFIG, target), True


def _fresh_temp(where: Path, name: str, target: Path) -> Path:
    """A new temporary folder in ``where`` for writing ``name`` (a gone writer's removed
    first); a full disk is said as one for ``target``."""
    remove_stale(where / name)
    try:
        return Path(tempfile.mkdtemp(dir=where, prefix=temp_prefix(name)))
    except OSError as e:
        if e.errno in _NO_SPACE:
            raise ownership.disk_full(target, e) from e
        raise


def write_model(path: str | os.PathLike[str], config: dict, arrays: Mapping[str, np.ndarray], *,
                normalizer: tuple[dict, Mapping[str, np.ndarray]] | None = None,
                force: bool = False) -> Path:
    """Write a model directory: ``config`` (JSON-able) and ``arrays`` (the autoencoder's
    tensors), optionally a normaliser's ``(params, arrays)``; returns the directory.

    A directory that holds files psae did not write is refused (:class:`ModelFormatError`)
    unless ``force``; with ``force`` only psae's own files in it are replaced.
    """
    check_writable(path, force)
    # a symlinked --out: write into the folder it names, never replace the link
    target = Path(os.path.realpath(Path(path).expanduser().absolute()))
    # only a folder holding the model alone is exchanged whole (never the user's files, other
    # psae output beside it, or the working directory, --out .)
    in_place = target.is_dir() and (not _only_model(target)
                                    or Path.cwd().is_relative_to(target))
    ownership.make_dirs(target.parent)
    tmp, in_place = _temp_dir(target, in_place)
    try:
        _write_files(tmp, config, arrays, normalizer)
        if in_place:
            _replace_own_files(tmp, target)
        else:
            _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(target.parent)
    try:
        ownership.record_dir(target)
    except OSError as e:
        # the model is saved; a parent psae may not write (--out /results/alice under a
        # root-owned /results) just cannot list it, and the folder's own config still says
        # it is psae's
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
    return target


# ----------------------------------------------------------------------------------- reading
class _Torn(Exception):
    """The folder changed while it was read (a save in progress): read it again."""


def _parse_config(raw: bytes, cfg_path: Path) -> dict:
    try:
        config = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"{cfg_path}: not valid JSON ({e})") from e
    except RecursionError:
        raise ModelFormatError(f"{cfg_path}: JSON nested too deep to be a psae model config"
                               ) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFormatError(f"{cfg_path}: not a psae model config")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{cfg_path}: model format version {version!r} (written by psae "
            f"{config.get('psae_version', '?')}) is not supported by psae {__version__}, which "
            f"reads format version {FORMAT_VERSION}"
        )
    return config


class _Snapshot:
    """Files read through one handle on a model folder: a save that exchanges the folder
    cannot mix an old config with new weights, and any change while reading is noticed."""

    def __init__(self, path: Path, last: bool):
        self.path, self.last = path, last
        try:
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:
            raise ModelFormatError(f"{path}: no such model directory") from None
        except NotADirectoryError:
            raise ModelFormatError(f"{path}: no such model directory (it is a file)") from None

    def close(self) -> None:
        os.close(self.fd)

    def changed(self) -> bool:
        """Whether this read may have met a save half-way: ``path`` now names another folder,
        or (a save file by file replaces the config last) this is not the last attempt."""
        if not self.last:
            return True
        try:
            now, then = os.stat(self.path), os.fstat(self.fd)
        except OSError:
            return True
        return (now.st_ino, now.st_dev) != (then.st_ino, then.st_dev)

    def read(self, name: str) -> bytes | None:
        """The bytes of the regular file ``name`` (None where absent). Opened without
        blocking: a FIFO under a model's file name hung the reader."""
        file = self.path / name
        try:
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0), dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise ModelFormatError(f"{file}: cannot be opened ({e.strerror})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ModelFormatError(f"{file}: not a regular file")
        with os.fdopen(fd, "rb") as f:
            try:
                return f.read()
            except OSError as e:
                raise ModelFormatError(f"{file}: cannot be read ({e.strerror})") from None

    def tensors(self, name: str, sha256: str | None, what: str) -> dict[str, np.ndarray]:
        file = self.path / name
        data = self.read(name)
        if data is None:
            if self.changed():
                raise _Torn(file)
            raise ModelFormatError(f"{file}: missing {what} file")
        actual = _sha256(data)
        if sha256 != actual:
            if self.changed():
                raise _Torn(file)
            raise ModelFormatError(
                f"{file}: checksum mismatch (config says {sha256}, file has {actual}); the "
                "file is truncated or was altered")
        try:
            return load_bytes(data)
        except (SafetensorError, ValueError, KeyError, TypeError) as e:
            # KeyError, TypeError: a dtype numpy has no type for (BF16, F8_E4M3)
            raise ModelFormatError(f"{file}: unreadable safetensors file ({type(e).__name__}: "
                                   f"{e}); psae writes float32 tensors") from e


def _read_once(path: Path, last: bool = True
               ) -> tuple[dict, dict[str, np.ndarray], tuple | None]:
    snap = _Snapshot(path, last)
    try:
        raw = snap.read(CONFIG)
        if raw is None:
            if snap.changed():
                raise _Torn(path)
            raise ModelFormatError(f"{path / CONFIG}: missing model config")
        config = _parse_config(raw, path / CONFIG)
        arrays = snap.tensors(WEIGHTS, config.get("weights_sha256"), "weights")
        entry = config.get("normalizer")
        part = None
        if entry is not None:
            if not isinstance(entry, dict):
                raise ModelFormatError(f"{path / CONFIG}: 'normalizer' is not an object")
            params = entry.get("params") or {}
            if not isinstance(params, dict):
                raise ModelFormatError(f"{path / CONFIG}: 'normalizer.params' is not an object")
            part = (dict(params), snap.tensors(NORMALIZER, entry.get("sha256"), "normalizer"))
        if snap.read(CONFIG) != raw:  # the file-by-file fallback replaced it meanwhile
            raise _Torn(path)
        return config, arrays, part
    finally:
        snap.close()


_RETRIES = 6  # 1 + 2 + ... + 32 ms: a file-by-file save replaces its config within that


def read_bundle(path: str | os.PathLike[str]
                ) -> tuple[dict, dict[str, np.ndarray], tuple[dict, dict] | None]:
    """``(config, arrays, normalizer's (params, arrays) or None)`` of a model directory, read
    as one consistent whole, checksums verified; a save seen half-way is read again."""
    path = Path(path)
    for attempt in range(_RETRIES):
        try:
            return _read_once(path, last=False)
        except _Torn:
            time.sleep(0.001 * 2 ** attempt)
    try:
        return _read_once(path, last=True)
    except _Torn as e:
        raise ModelFormatError(f"{e}: the model kept changing while it was read (another "
                               "process is saving into it); try again") from None


def read_model(path: str | os.PathLike[str]) -> tuple[dict, dict[str, np.ndarray]]:
    """The autoencoder's ``(config, arrays)`` of a model directory, checksums verified."""
    config, arrays, _ = read_bundle(path)
    return config, arrays


def read_normalizer(path: str | os.PathLike[str], config: dict
                    ) -> tuple[dict, dict[str, np.ndarray]] | None:
    """The saved normaliser's ``(params, arrays)``, or None when the model has none."""
    if config.get("normalizer") is None:
        return None
    return read_bundle(path)[2]
