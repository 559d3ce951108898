"""Model directories: ``config.json``, ``model.safetensors`` (and ``normalizer.safetensors``).

This module knows the format, not the estimators: it writes and reads ``(config, arrays)``;
:mod:`psae.estimator` and :mod:`psae.preprocessing` turn themselves into and back from those,
and :mod:`psae.bundle` puts a whole saved unit together. No pickle anywhere.

Writes never lose what is on disk. A new or psae-only directory is built beside the target and
swapped in (the old one is kept until the new one is in place). A directory holding files psae
did not write is refused unless ``force``, and even then only psae's own files are replaced,
one atomic rename each, config last. Temporaries left by a killed save are removed by the next
save into the same place. Loading checks the format version, each file's SHA-256 and every
tensor's shape.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from ._version import __version__
from .errors import ModelFormatError
from .fileio import dir_mode, file_mode, fsync_dir, remove_stale, temp_prefix

__all__ = ["ModelFormatError", "FORMAT_VERSION", "write_model", "read_model", "read_normalizer",
           "is_model_dir", "check_shapes", "check_writable", "jsonable", "OWN_FILES"]

FORMAT_VERSION = 1
FORMAT = "psae.SparseAutoencoder"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
NORMALIZER = "normalizer.safetensors"
OWN_FILES = (CONFIG, WEIGHTS, NORMALIZER)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def jsonable(params: Mapping) -> dict:
    """Estimator parameters as JSON values (tuples as lists; a RandomState as None)."""
    out = {}
    for k, v in params.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, np.integer | np.floating):
            v = v.item()
        if not isinstance(v, str | int | float | bool | list | type(None)):
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
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and cfg.get("format") == FORMAT


def _write_files(tmp: Path, config: dict, arrays: Mapping[str, np.ndarray],
                 normalizer: tuple[dict, Mapping[str, np.ndarray]] | None) -> None:
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, tmp / WEIGHTS)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "psae_version": __version__,
              **config, "weights_sha256": _sha256(tmp / WEIGHTS)}
    if normalizer is not None:
        params, n_arrays = normalizer
        save_file(dict(n_arrays), tmp / NORMALIZER)
        config["normalizer"] = {"params": params, "sha256": _sha256(tmp / NORMALIZER)}
    (tmp / CONFIG).write_text(json.dumps(config, indent=1))
    for f in tmp.iterdir():  # on disk before the swap, so a crash cannot leave empty files
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(f, file_mode())
    os.chmod(tmp, dir_mode())


def _foreign(target: Path) -> list[str]:
    """Entries of an existing ``target`` that psae did not write."""
    names = sorted(p.name for p in target.iterdir())
    if names and not is_model_dir(target):
        return names
    return [n for n in names if n not in OWN_FILES]


def _swap_in(tmp: Path, target: Path) -> None:
    """Replace ``target`` (absent, or holding only psae's files) by the finished ``tmp``."""
    old = None
    if target.exists():
        old = target.with_name(temp_prefix(target.name) + "old")
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _replace_own_files(tmp: Path, target: Path) -> None:
    """Move psae's files from ``tmp`` into ``target`` one by one (config last); leave every
    other file of ``target`` alone."""
    for name in (WEIGHTS, NORMALIZER, CONFIG):
        src = tmp / name
        if src.exists():
            os.replace(src, target / name)
        elif name != CONFIG:
            (target / name).unlink(missing_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)


def check_writable(path: str | os.PathLike[str], force: bool = False) -> None:
    """Raise :class:`ModelFormatError` if saving to ``path`` would be refused (so that a long
    fit can be refused before it starts rather than after)."""
    target = Path(path).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise ModelFormatError(f"{target} exists and is not a directory")
    foreign = _foreign(target) if target.is_dir() else []
    if foreign and not force:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        raise ModelFormatError(
            f"{target} is not empty and holds files psae did not write ({shown}); choose a new "
            "or empty directory, or pass --force (force=True) to write the model there, "
            "replacing only psae's own files")


def write_model(path: str | os.PathLike[str], config: dict, arrays: Mapping[str, np.ndarray], *,
                normalizer: tuple[dict, Mapping[str, np.ndarray]] | None = None,
                force: bool = False) -> Path:
    """Write a model directory: ``config`` (JSON-able) and ``arrays`` (the autoencoder's
    tensors), optionally a normaliser's ``(params, arrays)``; returns the directory.

    A directory that holds files psae did not write is refused (:class:`ModelFormatError`)
    unless ``force``; with ``force`` only psae's own files in it are replaced.
    """
    check_writable(path, force)
    target = Path(path).expanduser().absolute()
    # the working directory (--out .) is never swapped out from under the process
    in_place = target.is_dir() and (_foreign(target) or Path.cwd().is_relative_to(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=temp_prefix(target.name)))
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
    return target


# ----------------------------------------------------------------------------------- reading
def _read_config(path: Path) -> dict:
    cfg_path = path / CONFIG
    if not path.is_dir():
        raise ModelFormatError(f"{path}: no such model directory")
    if not cfg_path.is_file():
        raise ModelFormatError(f"{cfg_path}: missing model config")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"{cfg_path}: not valid JSON ({e})") from e
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


def _read_tensors(file: Path, sha256: str | None) -> dict[str, np.ndarray]:
    if not file.is_file():
        raise ModelFormatError(f"{file}: missing weights file")
    actual = _sha256(file)
    if sha256 != actual:
        raise ModelFormatError(
            f"{file}: checksum mismatch (config says {sha256}, file has {actual}); the file is "
            "truncated or was altered"
        )
    try:
        return load_file(file)
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFormatError(f"{file}: unreadable safetensors file ({e})") from e


def read_model(path: str | os.PathLike[str]) -> tuple[dict, dict[str, np.ndarray]]:
    """The autoencoder's ``(config, arrays)`` of a model directory, checksums verified."""
    path = Path(path)
    config = _read_config(path)
    return config, _read_tensors(path / WEIGHTS, config.get("weights_sha256"))


def read_normalizer(path: str | os.PathLike[str], config: dict
                    ) -> tuple[dict, dict[str, np.ndarray]] | None:
    """The saved normaliser's ``(params, arrays)``, or None when the model has none."""
    entry = config.get("normalizer")
    if entry is None:
        return None
    arrays = _read_tensors(Path(path) / NORMALIZER, entry.get("sha256"))
    return dict(entry.get("params") or {}), arrays
