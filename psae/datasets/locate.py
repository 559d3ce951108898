"""Finding a named data set's files under a data root, and fetching the missing ones."""

from __future__ import annotations

from pathlib import Path

from . import download as _download
from ._base import DatasetNotFoundError
from .source import Source

__all__ = ["locate", "not_found", "search_dirs"]


def search_dirs(name: str, root: Path) -> list[Path]:
    """Where a data set's files are looked for: ``root/<name>/``, then ``root/``."""
    return [root / name, root]


def not_found(src: Source, root: Path, cause: str = "") -> DatasetNotFoundError:
    """The error that says what is missing, where it was looked for and where to get it."""
    dirs = " or ".join(f"{d}/" for d in search_dirs(src.name, root))
    files = "\n  ".join(src.expected or tuple(src.files))
    urls = "\n  ".join(_download.url_for(src.name, f) for f in _download.URLS.get(src.name, {}))
    msg = (
        f"data set {src.name!r} not found{': ' + cause if cause else ''}.\n"
        f"Put {src.put} in {dirs}:\n  {files}\n"
        + (f"Official source:\n  {urls}\n" if urls else "")
        + "Use load(..., download=True) to fetch them, or point root= / $PSAE_DATA at the "
        "directory holding them."
    )
    return DatasetNotFoundError(msg)


def _fetch(src: Source, root: Path) -> None:
    """Download the files of ``src`` that no search dir holds into ``root/<name>/``."""
    have = search_dirs(src.name, root)
    for fn in _download.URLS.get(src.name, {}):
        if any((d / alt).is_file() for d in have for alt in src.files.get(fn, (fn,))):
            continue
        url = _download.url_for(src.name, fn)
        try:
            _download.download_file(url, root / src.name / fn)
        except _download.DownloadError as e:
            raise not_found(src, root, str(e)) from e


def locate(src: Source, root: Path, download: bool) -> list[Path]:
    """The files to read for ``src``, downloading them first if missing and ``download``."""
    files = src.find(search_dirs(src.name, root))
    if files is None:
        if not download:
            raise not_found(src, root, "download=False")
        _fetch(src, root)
        files = src.find(search_dirs(src.name, root))
        if files is None:  # pragma: no cover - download wrote elsewhere
            raise not_found(src, root)
    return files
