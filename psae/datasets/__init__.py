"""Data sets: MNIST, CIFAR-10, UCI optdigits and scikit-learn's digits, plus generic files.

>>> from psae import datasets
>>> ds = datasets.load("mnist")            # doctest: +SKIP
>>> ds.X_train.shape, ds.shape             # doctest: +SKIP
((60000, 784), (28, 28))

Files are looked for in ``root/<name>/`` and ``root/`` where ``root`` is :func:`data_root`.
Pixels are returned raw as float32 (MNIST and CIFAR 0..255, optdigits and digits 0..16).
Decoded arrays are cached (native dtype, ``.npy``) keyed by the sources' checksums.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import download as _download
from ._base import (
    Dataset,
    DatasetError,
    DatasetNotFoundError,
    RawData,
    data_root,
    stratified_subset,
)
from .arrays import load_arrays, read_arrays
from .cache import Cache, resolve_cache_dir
from .checksums import verify_digests
from .cifar import read_cifar_python
from .idx import MNIST_FILES, find_mnist, read_mnist
from .imagefolder import is_archive, read_image_folder
from .optdigits import OPTDIGITS_FILES, find_optdigits, read_optdigits, sk_digits

__all__ = [
    "NAMES",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "data_root",
    "describe",
    "load",
    "load_arrays",
]

#: the data sets known by name
NAMES: tuple[str, ...] = ("mnist", "cifar10", "optdigits", "digits")

_GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma weights

Reader = Callable[[], RawData]


# ---------------------------------------------------------------------------------------------
# locating files
# ---------------------------------------------------------------------------------------------
def _dirs(name: str, root: Path) -> list[Path]:
    return [root / name, root]


def _find_cifar(root: Path) -> tuple[Path, str] | None:
    """The first CIFAR-10 source found: (path, "python" | "images")."""
    for d in _dirs("cifar10", root):
        batches = d / "cifar-10-batches-py"
        if (batches / "data_batch_1").is_file():
            return batches, "python"
        if (d / "cifar-10-python.tar.gz").is_file():
            return d / "cifar-10-python.tar.gz", "python"
        if (d / "cifar10-jpeg.tar.gz").is_file():
            return d / "cifar10-jpeg.tar.gz", "images"
        if d != root and (d / "train").is_dir():
            return d, "images"
    return None


_CIFAR_FILES = ("cifar-10-python.tar.gz", "cifar-10-batches-py", "cifar10-jpeg.tar.gz")


def _expected(name: str) -> list[str]:
    if name == "mnist":
        return [f"{f}.gz" for f in MNIST_FILES]
    if name == "optdigits":
        return list(OPTDIGITS_FILES)
    if name == "cifar10":
        return [
            "cifar-10-python.tar.gz (or its extracted cifar-10-batches-py/)",
            "cifar10-jpeg.tar.gz (or any train/<class>/*.jpg, test/<class>/*.jpg image folder)",
        ]
    return []


def _find(name: str, root: Path) -> list[Path] | None:
    if name == "mnist":
        return find_mnist(_dirs(name, root))
    if name == "optdigits":
        return find_optdigits(_dirs(name, root))
    hit = _find_cifar(root)
    return None if hit is None else [hit[0]]


def _not_found(name: str, root: Path, cause: str = "") -> DatasetNotFoundError:
    dirs = " or ".join(f"{d}/" for d in _dirs(name, root))
    files = "\n  ".join(_expected(name))
    urls = "\n  ".join(_download.url_for(name, f) for f in _download.URLS.get(name, {}))
    note = " (gzipped or not)" if name == "mnist" else ""
    alt = " one of" if name == "cifar10" else ""
    msg = (
        f"data set {name!r} not found{': ' + cause if cause else ''}.\n"
        f"Put{alt} these files{note} in {dirs}:\n  {files}\n"
        f"Official source:\n  {urls}\n"
        "Use load(..., download=True) to fetch them, or point root= / $PSAE_DATA at the "
        "directory holding them."
    )
    return DatasetNotFoundError(msg)


def _fetch(name: str, root: Path) -> None:
    """Download the missing files of ``name`` into ``root/<name>/``."""
    target = root / name
    have = _dirs(name, root)
    for fn in _download.URLS[name]:
        if any((d / fn).is_file() for d in have):
            continue
        if name == "mnist" and any((d / fn[:-3]).is_file() for d in have):
            continue
        url = _download.url_for(name, fn)
        try:
            _download.download_file(url, target / fn)
        except _download.DownloadError as e:
            raise _not_found(name, root, str(e)) from e


def _locate(name: str, root: Path, download: bool) -> tuple[list[Path], Reader]:
    files = _find(name, root)
    if files is None:
        if not download:
            raise _not_found(name, root, "download=False")
        _fetch(name, root)
        files = _find(name, root)
        if files is None:  # pragma: no cover - download wrote elsewhere
            raise _not_found(name, root)
    if name == "mnist":
        return files, lambda: read_mnist(files)
    if name == "optdigits":
        return files, lambda: read_optdigits(files)
    path = files[0]
    if (
        path.is_dir()
        and path.name == "cifar-10-batches-py"
        or path.name.startswith("cifar-10-python")
    ):
        return files, lambda: read_cifar_python(path)
    return files, lambda: read_image_folder(path)


def _path_reader(p: Path) -> Reader:
    if p.is_dir():
        if (p / "data_batch_1").is_file():
            return lambda: read_cifar_python(p)
        files = find_mnist([p])
        if files is not None:
            return lambda: read_mnist(files)
        files = find_optdigits([p])
        if files is not None:
            return lambda: read_optdigits(files)
        return lambda: read_image_folder(p)
    if p.name.startswith("cifar-10-python"):
        return lambda: read_cifar_python(p)
    if is_archive(p):
        return lambda: read_image_folder(p)
    raise ValueError(
        f"{p}: unsupported file type (expected .npz, .csv, a directory, or a .tar/.tar.gz/"
        ".tgz/.zip image-folder archive)"
    )


# ---------------------------------------------------------------------------------------------
# caching
# ---------------------------------------------------------------------------------------------
def _fingerprint(path: Path, store: Cache, verify: bool) -> list[Any]:
    """What identifies a source: file checksum, or for a directory its files' size and mtime."""
    if path.is_file():
        d = store.digests(path)
        if verify:
            verify_digests(path, d)
        return [path.name, d["sha256"]]
    entries = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for fn in sorted(filenames):
            st = os.stat(os.path.join(dirpath, fn))
            rel = os.path.relpath(os.path.join(dirpath, fn), path)
            entries.append([rel, st.st_size, st.st_mtime_ns])
    return [path.name, Cache.make_key("dir", entries)]


def _cached(name: str, sources: list[Path], reader: Reader, store: Cache, verify: bool) -> RawData:
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
        )
    raw = reader()
    store.put(
        name,
        key,
        raw.arrays(),
        {"shape": None if raw.shape is None else list(raw.shape), "classes": raw.classes},
        [str(s.resolve()) for s in sources],
    )
    return raw


# ---------------------------------------------------------------------------------------------
# post-processing
# ---------------------------------------------------------------------------------------------
def _to_gray(X: np.ndarray) -> np.ndarray:
    n = len(X)
    X3 = X.reshape(n, -1, 3)
    out = np.empty((n, X3.shape[1]), dtype=np.float32)
    step = 4096
    for i in range(0, n, step):
        out[i : i + step] = X3[i : i + step].astype(np.float32) @ _GRAY
    return out


def _own(a: np.ndarray, dtype: type) -> np.ndarray:
    """``a`` as a C-contiguous, writeable array of ``dtype`` (copying cache memory maps)."""
    if isinstance(a, np.memmap) or not a.flags.writeable:
        return np.array(a, dtype=dtype, order="C")
    return np.ascontiguousarray(a, dtype=dtype)


def _limit_test(limit: int, n_train: int, n_test: int, n_classes: int) -> int:
    k = math.ceil(limit * n_test / max(n_train, 1))
    return min(n_test, max(k, n_classes))


def _finish(
    name: str,
    raw: RawData,
    source: str | tuple[str, ...],
    *,
    limit: int | None,
    grayscale: bool,
    normalize: bool,
    seed: int,
) -> Dataset:
    Xtr, ytr, Xte, yte, shape = raw.X_train, raw.y_train, raw.X_test, raw.y_test, raw.shape
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        rng = np.random.default_rng(seed)
        n_tr = len(Xtr)
        idx = stratified_subset(ytr, n_tr, int(limit), rng)
        Xtr = Xtr[idx]
        ytr = None if ytr is None else ytr[idx]
        if Xte is not None:
            n_cls = 0 if yte is None else len(np.unique(yte))
            k = _limit_test(int(limit), n_tr, len(Xte), n_cls)
            idx = stratified_subset(yte, len(Xte), k, rng)
            Xte = Xte[idx]
            yte = None if yte is None else yte[idx]
    if grayscale and shape is not None and len(shape) == 3 and shape[2] == 3:
        Xtr = _to_gray(Xtr)
        Xte = None if Xte is None else _to_gray(Xte)
        shape = shape[:2]
    Xtr = _own(Xtr, np.float32)
    Xte = None if Xte is None else _own(Xte, np.float32)
    if normalize:
        from psae.preprocessing import Normalizer

        norm = Normalizer().fit(Xtr)
        Xtr = np.ascontiguousarray(norm.transform(Xtr), dtype=np.float32)
        Xte = None if Xte is None else np.ascontiguousarray(norm.transform(Xte), dtype=np.float32)
    ytr = None if ytr is None else _own(ytr, np.int64)
    yte = None if yte is None else _own(yte, np.int64)
    return Dataset(
        name=name,
        X_train=Xtr,
        y_train=ytr,
        X_test=Xte,
        y_test=yte,
        shape=None if shape is None else tuple(int(s) for s in shape),
        classes=None if raw.classes is None else list(raw.classes),
        source=source,
    )


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------
def _strip_suffix(p: Path) -> str:
    n = p.name
    for suf in (".tar.gz", ".tgz", ".tar", ".zip", ".npz", ".csv"):
        if n.lower().endswith(suf):
            return n[: -len(suf)]
    return n


def load(
    name: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    limit: int | None = None,
    grayscale: bool = False,
    normalize: bool = False,
    cache: bool | str | os.PathLike[str] = True,
    download: bool = True,
    seed: int = 0,
    verify: bool = True,
    label_column: int | None = None,
) -> Dataset:
    """Load a data set by name (:data:`NAMES`) or from a path.

    Parameters
    ----------
    name
        ``"mnist"``, ``"cifar10"``, ``"optdigits"``, ``"digits"``; or a path to a ``.npz`` /
        ``.csv`` file (see :func:`load_arrays`), or to a directory or ``.tar``/``.tar.gz``/
        ``.tgz``/``.zip`` archive in image-folder layout (``train/<class>/*.png|jpg``,
        ``test/<class>/*``), a ``cifar-10-batches-py`` directory or ``cifar-10-python.tar.gz``.
    root
        Data directory (default :func:`data_root`); files are looked for in ``root/<name>/``
        then ``root/``.
    limit
        Keep at most ``limit`` training samples; the test split is cut in the same proportion
        (``ceil(limit * n_test / n_train)``, but at least one per class). Both subsets are
        stratified by label, keep the original order, and depend only on ``seed``.
    grayscale
        Convert RGB images to luminance ``0.299 R + 0.587 G + 0.114 B`` (``shape`` (H, W)).
    normalize
        Apply :class:`psae.preprocessing.Normalizer`, fitted on the training split.
    cache
        ``True``: cache decoded arrays in ``$PSAE_CACHE``, else ``root/.cache`` (the per-user
        cache dir if that is read-only); a path: cache there; ``False``: no cache.
    download
        Fetch missing named data sets from their official source (:data:`download.URLS`).
    seed
        Seed of the ``limit`` subset. (The ``digits`` train/test split is fixed.)
    verify
        Check known files against their published checksums.
    label_column
        For ``.csv`` paths: index of the label column (``None``: unlabelled).

    Raises
    ------
    DatasetNotFoundError
        The files are missing and could not be downloaded; the message lists what is expected
        and where.
    DatasetError
        A file is damaged, inconsistent or fails its checksum.
    """
    post = {"limit": limit, "grayscale": grayscale, "normalize": normalize, "seed": seed}
    key = os.fspath(name)
    lname = key.lower()
    if lname in NAMES and not (isinstance(name, os.PathLike)):
        r = data_root(root)
        if lname == "digits":
            return _finish("digits", sk_digits(), "sklearn", **post)
        files, reader = _locate(lname, r, download)
        store = Cache(resolve_cache_dir(cache, r))
        raw = _cached(lname, files, reader, store, verify)
        source: str | tuple[str, ...] = (
            str(files[0]) if len(files) == 1 else tuple(str(f) for f in files)
        )
        return _finish(lname, raw, source, **post)
    p = Path(key).expanduser()
    if not p.exists():
        raise DatasetNotFoundError(
            f"{key!r} is neither a known data set ({', '.join(NAMES)}) nor an existing path"
        )
    if p.is_file() and p.suffix.lower() in (".npz", ".csv"):
        raw = read_arrays(p, label_column)
        return _finish(_strip_suffix(p), raw, str(p), **post)
    reader = _path_reader(p)
    store = Cache(resolve_cache_dir(cache, data_root(root)))
    raw = _cached(_strip_suffix(p), [p], reader, store, verify)
    return _finish(_strip_suffix(p), raw, str(p), **post)


def describe(root: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """What is known and present, per data set in :data:`NAMES`.

    Each dict holds ``name``; ``root`` (the data dir) and ``looked_in`` (the directories
    searched); ``files`` (expected file names; for CIFAR-10 the alternatives, any one suffices;
    for MNIST the ``.gz`` names, the uncompressed files count too); ``present`` (those of
    ``files`` found); ``paths`` (where they were found); ``complete``; ``urls`` (official
    download URLs); ``source`` (what :func:`load` would read, ``None`` if incomplete).
    """
    r = data_root(root)
    out = []
    for name in NAMES:
        if name == "digits":
            out.append(
                {
                    "name": name,
                    "root": str(r),
                    "looked_in": [],
                    "files": [],
                    "present": [],
                    "paths": [],
                    "complete": True,
                    "urls": [],
                    "source": "sklearn",
                }
            )
            continue
        dirs = _dirs(name, r)
        if name == "mnist":
            alts = {f"{f}.gz": [f"{f}.gz", f] for f in MNIST_FILES}
        elif name == "optdigits":
            alts = {f: [f] for f in OPTDIGITS_FILES}
        else:
            alts = {f: [f] for f in _CIFAR_FILES}
        present, paths = [], []
        for f, cands in alts.items():
            hits = [d / c for d in dirs for c in cands if (d / c).exists()]
            if hits:
                present.append(f)
                paths.extend(str(h) for h in hits)
        if name == "cifar10" and (r / name / "train").is_dir():
            paths.append(str(r / name))
        found = _find(name, r)
        out.append(
            {
                "name": name,
                "root": str(r),
                "looked_in": [str(d) for d in dirs],
                "files": list(alts),
                "present": present,
                "paths": paths,
                "complete": found is not None,
                "urls": [_download.url_for(name, f) for f in _download.URLS[name]],
                "source": None if found is None else [str(f) for f in found],
            }
        )
    return out
