"""Finding a named data set's files under a data root, and fetching the missing ones."""

from __future__ import annotations

import shlex
from pathlib import Path

from . import download as _download
from ._base import DatasetNotFoundError
from .source import Source

__all__ = ["locate", "not_found", "search_dirs"]


def search_dirs(name: str, root: Path) -> list[Path]:
    """Where a data set's files are looked for: ``root/<name>/``, then ``root/``."""
    return [root / name, root]


def not_found(src: Source, root: Path, cause: str = "") -> DatasetNotFoundError:
    """The error that says what is missing, where it was looked for and how to get it, in
    words for both the command line and Python."""
    dirs = " or ".join(f"{d}/" for d in search_dirs(src.name, root))
    files = "; ".join(src.expected or tuple(src.files))
    urls = " ".join(_download.url_for(src.name, f) for f in _download.URLS.get(src.name, {}))
    if urls:
        how = (
            f"Get it with `psae datasets --download {src.name} --data-dir "
            f"{shlex.quote(str(root))}` (in Python: datasets.load({src.name!r}, root=..., "
            f"download=True)), or put {src.put} there yourself (official source: {urls})."
        )
    else:
        how = f"Put {src.put} there."
    cause = f"; {cause}" if cause else ""
    return DatasetNotFoundError(
        f"data set {src.name!r} not found in {dirs} (looked for {files}){cause}.\n{how}"
    )


def _fetch(src: Source, root: Path) -> None:
    """Download the files of ``src`` that ``root/<name>/`` lacks into it: the set must end
    whole in one folder (skipping a file found in ``root/`` instead left two half sets,
    which no later call could complete)."""
    into = root / src.name
    for fn in _download.URLS.get(src.name, {}):
        if any((into / alt).is_file() for alt in src.files.get(fn, (fn,))):
            continue
        url = _download.url_for(src.name, fn)
        try:
            _download.download_file(url, into / fn)
        except _download.DownloadError as e:
            raise not_found(src, root, str(e)) from e


def _make_dirs(d: Path) -> list[Path]:
    """Make ``d`` and its missing ancestors; those made, deepest first.

    Made here rather than by the file writer, so that this call knows exactly which folders
    are its own and can take them back (with nothing in them) if the download fails.
    """
    missing = []
    while not d.exists() and d.parent != d:
        missing.append(d)
        d = d.parent
    made: list[Path] = []
    for m in reversed(missing):
        try:
            m.mkdir()
        except FileExistsError:  # made meanwhile by someone else: theirs, not ours
            continue
        except OSError:
            _remove_empty(made[::-1])
            raise
        made.append(m)
    return made[::-1]


def _remove_empty(dirs: list[Path]) -> None:
    """Remove ``dirs`` (deepest first) while they are empty; ``rmdir`` never removes a file,
    so a verified download that arrived before a later failure stays."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:  # not empty, or already gone: its parents stay too
            return


def locate(src: Source, root: Path, download: bool) -> list[Path]:
    """The files to read for ``src``, downloading them first if missing and ``download``.

    A download that fails leaves no new empty folders: only folders this call created, and
    only while empty, are removed again.
    """
    files = src.find(search_dirs(src.name, root))
    if files is not None:
        return files
    if not download:
        raise not_found(src, root, "not downloaded (download=False)")
    try:
        created = _make_dirs(root / src.name) if _download.URLS.get(src.name) else []
    except OSError as e:  # a data dir that cannot be made (read-only, not a folder)
        raise not_found(src, root, f"cannot make a folder to download into ({e})") from e
    if _download.URLS.get(src.name) and not (root / src.name).is_dir():
        raise not_found(src, root, f"{root / src.name} is not a folder to download into")
    try:
        _fetch(src, root)
        files = src.find(search_dirs(src.name, root))
        if files is None:  # pragma: no cover - download wrote elsewhere
            raise not_found(src, root)
    except BaseException:
        _remove_empty(created)
        raise
    return files
