"""Image-folder data sets: ``train/<class>/*.png|jpg|jpeg`` and ``test/<class>/*``.

The layout may be a directory or a ``.tar``, ``.tar.gz``/``.tgz`` or ``.zip`` archive (possibly
with one leading directory). Archives are read in one streaming pass and decoded in-process.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from ._base import DatasetError, RawData
from .cifar import CIFAR10_CLASSES

__all__ = ["IMAGE_EXTENSIONS", "is_archive", "read_image_folder"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "test")
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")


def is_archive(path: Path) -> bool:
    """Whether ``path``'s name ends like a supported archive."""
    return path.name.lower().endswith(_ARCHIVE_SUFFIXES)


def _split_class(rel: str, is_dir: bool) -> tuple[str, str, str | None] | None:
    """``(split, class, file)`` for an entry of the layout (``file`` None for a class dir)."""
    parts = [p for p in PurePosixPath(rel).parts if p not in ("", ".")]
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return None
    n = 2 if is_dir else 3
    if len(parts) < n or parts[-n] not in SPLITS:
        return None
    if is_dir:
        return parts[-2], parts[-1], None
    return parts[-3], parts[-2], parts[-1]


def _entries(path: Path) -> Iterator[tuple[str, bool, bytes | None]]:
    """``(relative path, is_dir, bytes or None)`` for every entry, in one pass."""
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            rel_dir = Path(dirpath).relative_to(path).as_posix()
            if rel_dir != ".":
                yield rel_dir, True, None
            for fn in sorted(filenames):
                rel = f"{rel_dir}/{fn}" if rel_dir != "." else fn
                if fn.lower().endswith(IMAGE_EXTENSIONS):
                    yield rel, False, (Path(dirpath) / fn).read_bytes()
        return
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.is_dir():
                    yield info.filename.rstrip("/"), True, None
                else:
                    data = (
                        z.read(info) if info.filename.lower().endswith(IMAGE_EXTENSIONS) else None
                    )
                    yield info.filename, False, data
        return
    mode = "r|gz" if name.endswith((".tar.gz", ".tgz")) else "r|*"
    with tarfile.open(path, mode) as tar:
        for m in tar:
            if m.isdir():
                yield m.name, True, None
            elif m.isfile():
                data = None
                if m.name.lower().endswith(IMAGE_EXTENSIONS):
                    fo = tar.extractfile(m)
                    assert fo is not None
                    data = fo.read()
                yield m.name, False, data


def _decode(data: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f"{where}: cannot decode image ({e})") from e


def read_image_folder(path: str | os.PathLike[str]) -> RawData:
    """Decode an image-folder directory or archive into uint8 HWC rows.

    Samples are ordered by split, class and file name. Class names follow the canonical
    CIFAR-10 order when they are exactly its ten classes, else sorted folder names. A
    missing ``test/`` split gives ``X_test = None``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    items: dict[str, list[tuple[str, str, np.ndarray]]] = {s: [] for s in SPLITS}
    class_dirs: set[tuple[str, str]] = set()
    shape: tuple[int, ...] | None = None
    first: str | None = None
    try:
        for rel, is_dir, data in _entries(path):
            sc = _split_class(rel, is_dir)
            if sc is None:
                continue
            split, cls, fn = sc
            class_dirs.add((split, cls))
            if fn is None or data is None:
                continue
            where = f"{path}:{rel}" if not path.is_dir() else str(path / rel)
            img = _decode(data, where)
            if shape is None:
                shape, first = img.shape, where
            elif img.shape != shape:
                raise DatasetError(
                    f"{where}: image size {img.shape[1]}x{img.shape[0]} differs from "
                    f"{shape[1]}x{shape[0]} of {first} (mixed image sizes)"
                )
            items[split].append((cls, fn, img))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise DatasetError(f"{path}: corrupt or truncated archive ({e})") from e
    except OSError as e:
        if isinstance(e, FileNotFoundError) and not path.exists():
            raise
        raise DatasetError(f"{path}: corrupt or unreadable ({e})") from e
    if not items["train"]:
        raise DatasetError(f"{path}: no images found in the layout train/<class>/*.png|jpg")
    counts: dict[tuple[str, str], int] = {}
    for s in SPLITS:
        for cls, _, _ in items[s]:
            counts[(s, cls)] = counts.get((s, cls), 0) + 1
    empty = sorted(f"{s}/{c}" for s, c in class_dirs if counts.get((s, c), 0) == 0)
    if empty:
        raise DatasetError(f"{path}: empty class folder(s): {', '.join(empty)}")
    names = sorted({c for _, c in counts})
    classes = list(CIFAR10_CLASSES) if sorted(CIFAR10_CLASSES) == names else names
    index = {c: i for i, c in enumerate(classes)}
    assert shape is not None

    def stack(lst: list[tuple[str, str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        lst.sort(key=lambda t: (index[t[0]], t[1]))
        X = np.empty((len(lst), int(np.prod(shape))), dtype=np.uint8)
        for i, (_, _, img) in enumerate(lst):
            X[i] = img.reshape(-1)
        return X, np.array([index[c] for c, _, _ in lst], dtype=np.int64)

    Xtr, ytr = stack(items["train"])
    Xte, yte = stack(items["test"]) if items["test"] else (None, None)
    return RawData(Xtr, ytr, Xte, yte, tuple(int(s) for s in shape), classes)
