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

import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from . import download as _download
from ._base import Dataset, DatasetError, DatasetNotFoundError, RawData, data_root
from .arrays import (
    ARRAY_SUFFIXES,
    LabelColumn,
    load_arrays,
    parse_header,
    parse_label_column,
    read_arrays,
)
from .cache import Cache, cached, resolve_cache_dir
from .finish import check_limit, finish
from .imagefolder import is_archive, read_image_folder
from .locate import locate, search_dirs
from .registry import NAMES, SOURCES
from .source import Source

__all__ = [
    "NAMES",
    "SOURCES",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "LabelColumn",
    "Source",
    "data_root",
    "describe",
    "label_for",
    "load",
    "load_arrays",
    "parse_header",
    "parse_label_column",
    "read_arrays",
]


def _path_reader(p: Path) -> tuple[Callable[[], RawData], tuple[str, ...]]:
    """How to decode a path given to :func:`load` (a data set's own layout first, else an image
    folder), and the notes that go with it."""
    for src in SOURCES.values():
        hit = src.claims(p)
        if hit is not None:
            return partial(src.read, hit), src.notes_for(hit)
    if p.is_dir() or is_archive(p):
        return partial(read_image_folder, p), ()
    raise ParameterError(
        f"{p}: unsupported file type (expected .npz, .csv, a directory, or a .tar/.tar.gz/"
        ".tgz/.zip image-folder archive)"
    )


def _strip_suffix(p: Path) -> str:
    n = p.name
    for suf in (".tar.gz", ".tgz", ".tar", ".zip", *ARRAY_SUFFIXES):
        if n.lower().endswith(suf):
            return n[: -len(suf)]
    return n


def _csv_only(label_column: LabelColumn, what: object, header: bool | None = None) -> None:
    if label_column not in ("auto", None):
        raise ParameterError(f"label_column applies to .csv files only, not to {what}")
    if header is not None:
        raise ParameterError(f"header applies to .csv files only, not to {what}")


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
    label_column: LabelColumn = "auto",
    header: bool | None = None,
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
        On by default, so a first ``load("mnist")`` just works; a failed download raises
        :class:`DatasetNotFoundError` and leaves no folder it made behind.
    seed
        Seed of the ``limit`` subset. (The ``digits`` train/test split is fixed.)
    verify
        Check known files against their published checksums.
    label_column
        For ``.csv`` paths: an index (negative counts from the end), a header name, ``None`` (no
        labels) or ``"auto"``: the header column named ``label``, ``target``, ``class`` or ``y``,
        if any (one holding measurements, numbers with fractions or a value per row, is an
        error that asks which), or without a header the one column of class names (see
        :func:`load_arrays`).
        Anything but ``"auto"``/``None`` is an error for other sources.
    header
        For ``.csv`` paths: True or False says whether the first line is a header (one of
        numbers, such as wavelengths, reads as data unless said); None decides. Anything but
        None is an error for other sources.

    Raises
    ------
    DatasetNotFoundError
        The files are missing and could not be downloaded; the message lists what is expected
        and where.
    DatasetError
        A file is damaged, inconsistent or fails its checksum.
    """
    check_limit(limit, seed)
    post = {"limit": limit, "grayscale": grayscale, "normalize": normalize, "seed": seed}
    key = os.fspath(name)
    src = None if isinstance(name, os.PathLike) else SOURCES.get(key.lower())
    if src is not None:
        _csv_only(label_column, f"the {src.name!r} data set", header)
        r = data_root(root)
        if src.bundled is not None:
            return finish(src.name, src.read([]), src.bundled, notes=src.notes_for([]), **post)
        files = locate(src, r, download)
        store = Cache(resolve_cache_dir(cache, r))
        raw = cached(src.name, files, partial(src.read, files), store, verify)
        source = str(files[0]) if len(files) == 1 else tuple(str(f) for f in files)
        return finish(src.name, raw, source, notes=src.notes_for(files), **post)
    if not key.strip():  # Path("") is ".": an unset --data "$VAR" read the working tree
        raise DatasetNotFoundError("the data set name or path is empty")
    p = Path(key).expanduser()
    if not p.exists():
        raise DatasetNotFoundError(
            f"{key!r} is neither a known data set ({', '.join(NAMES)}) nor an existing path"
        )
    if p.is_file() and p.suffix.lower() in ARRAY_SUFFIXES:
        return finish(_strip_suffix(p), read_arrays(p, label_column, header), str(p), **post)
    _csv_only(label_column, p, header)
    reader, notes = _path_reader(p)
    store = Cache(resolve_cache_dir(cache, data_root(root)))
    raw = cached(_strip_suffix(p), [p], reader, store, verify)
    return finish(_strip_suffix(p), raw, str(p), notes=notes, **post)


def label_for(name: str, source: str | Sequence[str] | None = None) -> str:
    """Display label of a named data set (e.g. ``"MNIST"``), refined by the path(s) it was read
    from (``Dataset.source``): ``label_for("cifar10", ds.source)`` is ``"CIFAR-10 (JPEG copy)"``
    for the image-folder copy. Other names are returned as they are."""
    src = SOURCES.get(name.lower())
    if src is None:
        return name
    if source is None:
        source = ()
    elif isinstance(source, str):
        source = (source,)
    return src.label_for([Path(s) for s in source])


def _present(src: Source, dirs: list[Path]) -> tuple[list[str], list[str]]:
    """Which of ``src.files`` are there, and every path where one was found."""
    present, paths = [], []
    for f, cands in src.files.items():
        hits = [d / c for d in dirs for c in cands if (d / c).exists()]
        if hits:
            present.append(f)
            paths.extend(str(h) for h in hits)
    return present, paths


#: display names of the libraries a bundled data set comes from (``Source.bundled``)
_LIBRARIES = {"sklearn": "scikit-learn"}


def _bundled_with(library: str) -> str:
    return f"bundled with {_LIBRARIES.get(library, library)}"


def describe(root: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """What is known and present, per data set in :data:`NAMES`.

    Each dict holds ``name`` and ``label`` (display label, e.g. ``"CIFAR-10 (JPEG copy)"``);
    ``root`` (the data dir; for a set that ships with a library, where it comes from instead,
    e.g. ``"bundled with scikit-learn"``: it is never in the data dir), ``bundled`` (whether
    it does) and ``looked_in`` (the directories searched, none for a bundled set); ``files``
    (expected file names; for CIFAR-10 the alternatives, any one suffices; for MNIST the
    ``.gz`` names, the uncompressed files count too); ``present`` (those of ``files`` found);
    ``paths`` (where they were found); ``complete`` (whether :func:`load` can read it without
    a download); ``urls`` (official download URLs); ``source`` (what :func:`load` would read,
    ``None`` if incomplete; ``"sklearn"`` for digits).
    """
    r = data_root(root)
    out = []
    for src in SOURCES.values():
        dirs = [] if src.bundled is not None else search_dirs(src.name, r)
        present, paths = _present(src, dirs)
        found = src.find(dirs)
        # a layout that is not one fixed file (an image folder) shows where it was found
        paths += [str(f) for f in found or [] if str(f) not in paths]
        out.append(
            {
                "name": src.name,
                "label": src.label if found is None else src.label_for(found),
                "root": str(r) if src.bundled is None else _bundled_with(src.bundled),
                "bundled": src.bundled is not None,
                "looked_in": [str(d) for d in dirs],
                "files": list(src.files),
                "present": present,
                "paths": paths,
                "complete": found is not None,
                "urls": [_download.url_for(src.name, f) for f in _download.URLS.get(src.name, {})],
                "source": src.bundled or (None if found is None else [str(f) for f in found]),
            }
        )
    return out
