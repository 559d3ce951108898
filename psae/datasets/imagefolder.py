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
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from ..io.tree import walk_links
from ._base import DatasetError, RawData
from .cifar import CIFAR10_CLASSES
from .members import check_declared, read_capped

__all__ = ["IMAGE_EXTENSIONS", "MAX_IMAGE_PIXELS", "is_archive", "read_image_folder"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "test")
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
#: the most pixels one image may claim (4096 x 4096); PIL's own limit is five times more
MAX_IMAGE_PIXELS = 1 << 24
#: returns one entry's bytes (read with the cap of :mod:`.members`)
Fetch = Callable[[], bytes]
_ZIP_ENCRYPTED = 0x1  # general-purpose flag bit 0
_ZIP_METHODS = {
    0: "stored", 8: "deflate", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstandard",
    95: "xz", 98: "ppmd", 99: "WinZip AES",
}  # fmt: skip


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


def _regular_files(path: Path) -> Iterator[tuple[str, bool, Fetch | None]]:
    """The directory form of :func:`_entries`; only regular files are read (a FIFO or a device
    named ``x.png`` would block or never end), as in archives. A linked folder is followed
    (a class kept elsewhere, ``train/cat -> /data/cats``); one that leads to a folder read
    already (a loop) is an error, never a class silently left out."""
    def repeat(link: str, real: str) -> None:
        raise DatasetError(f"{link} leads to {real}, a folder read already (a link loop, or "
                           "two links to one folder)")

    for dirpath, _, filenames in walk_links(path, repeat):
        rel_dir = Path(dirpath).relative_to(path).as_posix()
        if rel_dir != ".":
            yield rel_dir, True, None
        for fn in sorted(filenames):
            rel = f"{rel_dir}/{fn}" if rel_dir != "." else fn
            f = Path(dirpath) / fn
            if fn.lower().endswith(IMAGE_EXTENSIONS) and f.is_file():
                yield rel, False, partial(_read_file, f)


def _read_file(f: Path) -> bytes:
    with open(f, "rb") as fo:
        return read_capped(fo, str(f), os.fstat(fo.fileno()).st_size)


def _zip_members(path: Path) -> Iterator[tuple[str, bool, Fetch | None]]:
    """The ``.zip`` form of :func:`_entries`."""
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.is_dir():
                yield info.filename.rstrip("/"), True, None
            elif info.filename.lower().endswith(IMAGE_EXTENSIONS):
                yield info.filename, False, partial(_read_zip_member, z, info, path)
            else:
                yield info.filename, False, None


def _read_zip_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    """One member's bytes; refused when encrypted, compressed in a way Python cannot undo, or
    larger than :data:`.members.MAX_MEMBER_BYTES` (declared or actual)."""
    where = f"{path}:{info.filename}"
    if info.flag_bits & _ZIP_ENCRYPTED:
        raise DatasetError(
            f"{where}: the member is encrypted (password-protected); psae reads only "
            "unencrypted archives: re-pack it without a password"
        )
    check_declared(info.file_size, where)
    try:
        fo = z.open(info)
    except (NotImplementedError, RuntimeError) as e:  # an unknown method, or its module missing
        method = _ZIP_METHODS.get(info.compress_type, "unknown")
        raise DatasetError(
            f"{where}: compression method {info.compress_type} ({method}) is not supported "
            f"({e}); re-pack the archive with deflate (the zip default)"
        ) from None
    with fo:
        return read_capped(fo, where, info.file_size)


def _tar_members(path: Path) -> Iterator[tuple[str, bool, Fetch | None]]:
    """The tar form of :func:`_entries`, in one streaming pass; members that are neither files
    nor directories (devices, links) are skipped, but a link named as an image is refused
    when the layout asks for it."""
    mode = "r|gz" if path.name.lower().endswith((".tar.gz", ".tgz")) else "r|*"
    with tarfile.open(path, mode) as tar:
        for m in tar:
            if m.isdir():
                yield m.name, True, None
            elif m.isfile():
                fetch = None
                if m.name.lower().endswith(IMAGE_EXTENSIONS):
                    fetch = partial(_read_tar_member, tar, m, f"{path}:{m.name}")
                yield m.name, False, fetch
            elif (m.islnk() or m.issym()) and m.name.lower().endswith(IMAGE_EXTENSIONS):
                # a streamed tar cannot go back for the linked bytes; skipped, the image was
                # silently missing from the data set (the folder it was packed from had it)
                yield m.name, False, partial(_refuse_link, m, f"{path}:{m.name}")


def _refuse_link(m: tarfile.TarInfo, where: str) -> bytes:
    kind = "hard link" if m.islnk() else "symbolic link"
    raise DatasetError(f"{where}: the image is a {kind} to {m.linkname!r} inside the tar, which "
                       "psae does not follow: re-pack with the files themselves (GNU tar: "
                       "--hard-dereference, or -h for symbolic links)")


def _read_tar_member(tar: tarfile.TarFile, m: tarfile.TarInfo, where: str) -> bytes:
    check_declared(m.size, where)
    fo = tar.extractfile(m)
    assert fo is not None
    return read_capped(fo, where, m.size)


def _entries(path: Path) -> Iterator[tuple[str, bool, Fetch | None]]:
    """``(relative path, is_dir, fetch)`` for every entry, in one pass; ``fetch()`` returns an
    image's bytes (capped) and must be called before the next entry is asked for (a tar is
    streamed), or not at all for entries outside the layout."""
    if path.is_dir():
        return _regular_files(path)
    if path.name.lower().endswith(".zip"):
        return _zip_members(path)
    return _tar_members(path)


def _open_header(data: bytes, where: str) -> Image.Image:
    """The image, opened lazily (header only, nothing decoded yet).

    PNG and JPEG are opened by their plugins directly: ``Image.open`` refuses a huge header
    with PIL's own error, before the size can be named here.
    """
    for cls in (PngImagePlugin.PngImageFile, JpegImagePlugin.JpegImageFile):
        try:
            return cls(io.BytesIO(data))
        except SyntaxError:  # not this format (or a damaged header): let Image.open say
            continue
    try:
        # PNG and JPEG only, as the file names say: any other format Pillow knows was decoded
        # too (EPS through Ghostscript, TIFF, GIF) whatever the file was called
        return Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
    except Image.DecompressionBombError as e:
        raise DatasetError(f"{where}: image too large to decode ({e})") from None


def _check_size(im: Image.Image, where: str) -> None:
    """Refuse a header that claims more than :data:`MAX_IMAGE_PIXELS` before decoding."""
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        raise DatasetError(
            f"{where}: image header claims {w}x{h} pixels, more than psae decodes "
            f"({MAX_IMAGE_PIXELS:,} pixels per image); the file is damaged or not a data-set image"
        )


def _decode(data: bytes, where: str, want: tuple[tuple[int, int], str] | None) -> np.ndarray:
    """An image as uint8 HWC RGB. ``want``: the ``(width, height)`` every image must have and
    the first image that had it, checked from the header before anything is decoded."""
    try:
        with _open_header(data, where) as im:
            _check_size(im, where)
            if want is not None and im.size != want[0]:
                w, h = im.size
                raise DatasetError(
                    f"{where}: image size {w}x{h} differs from {want[0][0]}x{want[0][1]} of "
                    f"{want[1]} (mixed image sizes)"
                )
            return _rgb8(im)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"{where}: cannot decode image ({e})") from e


def _rgb8(im: Image.Image) -> np.ndarray:
    """The image as uint8 RGB. A 16-bit grey PNG is scaled to 8 bits (``round(v / 257)``):
    PIL's own conversion clipped every value above 255 to 255. Pillow opens it as ``I;16``,
    before 10.3 as ``I`` (a PNG or JPEG holds no wider integers)."""
    if im.mode.startswith("I;16") or im.mode == "I":
        grey = np.clip(np.asarray(im).astype(np.float64), 0, 65535) / 257.0
        return np.repeat(np.rint(grey).astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


_Items = dict[str, list[tuple[str, str, np.ndarray]]]  # split -> (class, file, image)


def _collect(path: Path) -> tuple[_Items, set[tuple[str, str]], tuple[int, ...] | None]:
    """The decoded images of the layout per split, every ``(split, class)`` folder seen, and
    the common image shape; only members inside the layout are read."""
    items: _Items = {s: [] for s in SPLITS}
    class_dirs: set[tuple[str, str]] = set()
    want: tuple[tuple[int, int], str] | None = None
    shape: tuple[int, ...] | None = None
    for rel, is_dir, fetch in _entries(path):
        sc = _split_class(rel, is_dir)
        if sc is None:
            continue
        split, cls, fn = sc
        class_dirs.add((split, cls))
        if fn is None or fetch is None:
            continue
        where = f"{path}:{rel}" if not path.is_dir() else str(path / rel)
        img = _decode(fetch(), where, want)
        if want is None:
            want, shape = ((img.shape[1], img.shape[0]), where), img.shape
        items[split].append((cls, fn, img))
    return items, class_dirs, shape


def read_image_folder(path: str | os.PathLike[str]) -> RawData:
    """Decode an image-folder directory or archive into uint8 HWC rows.

    Samples are ordered by split, class and file name. Class names follow the canonical
    CIFAR-10 order when they are exactly its ten classes, else sorted folder names. A
    missing ``test/`` split gives ``X_test = None``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    try:
        items, class_dirs, shape = _collect(path)
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
        raise DatasetError(f"{path}: class folder(s) with no {'/'.join(IMAGE_EXTENSIONS)} "
                           f"image: {', '.join(empty)} (psae reads PNG and JPEG only)")
    names = sorted({c for _, c in counts})
    classes = list(CIFAR10_CLASSES) if sorted(CIFAR10_CLASSES) == names else names
    index = {c: i for i, c in enumerate(classes)}
    assert shape is not None
    notes: tuple[str, ...] = ()
    if _all_gray(items):  # decoded as RGB: three equal channels would triple the features
        items = {s: [(c, f, img[..., 0]) for c, f, img in lst] for s, lst in items.items()}
        shape, notes = shape[:2], (ONE_CHANNEL_NOTE,)

    def stack(lst: list[tuple[str, str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        lst.sort(key=lambda t: (index[t[0]], t[1]))
        X = np.empty((len(lst), int(np.prod(shape))), dtype=np.uint8)
        for i, (_, _, img) in enumerate(lst):
            X[i] = img.reshape(-1)
        return X, np.array([index[c] for c, _, _ in lst], dtype=np.int64)

    Xtr, ytr = stack(items["train"])
    Xte, yte = stack(items["test"]) if items["test"] else (None, None)
    return RawData(Xtr, ytr, Xte, yte, tuple(int(s) for s in shape), classes, notes=notes)


ONE_CHANNEL_NOTE = "every image is grey (R = G = B): read as one channel"


def _all_gray(items: _Items) -> bool:
    """Whether every decoded image has three equal channels (stops at the first that has not)."""
    return all(np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
               for lst in items.values() for _, _, img in lst)
