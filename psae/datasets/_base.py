"""Shared pieces: the :class:`Dataset` record, errors, data locations and stratified subsets."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NotFoundError, ParameterError, PsaeError

__all__ = [
    "Dataset",
    "DatasetError",
    "DatasetOptionError",
    "DatasetNotFoundError",
    "Note",
    "RawData",
    "has_note",
    "told",
    "without",
    "data_root",
    "stratified_subset",
]


class Note(str):
    """A remark about loaded data (it is the remark's text). ``kind`` marks one that commands
    act on or show elsewhere instead of printing it: ``"no_test"`` (no test split: a
    command says what it does about it), ``"gray"`` (colour converted to gray), ``"square"``
    (flat rows drawn as square images: said in the report's data table)."""

    kind: str

    def __new__(cls, text: str, kind: str = "") -> Note:
        note = super().__new__(cls, text)
        note.kind = kind
        return note


def told(notes) -> list[str]:
    """The notes a command prints: those without a ``kind``."""
    return [n for n in notes if not getattr(n, "kind", "")]


def without(notes, kind: str) -> tuple[str, ...]:
    """``notes`` less those of ``kind``."""
    return tuple(n for n in notes if getattr(n, "kind", "") != kind)


def has_note(notes, kind: str) -> bool:
    """Whether one of ``notes`` is of ``kind``."""
    return any(getattr(n, "kind", "") == kind for n in notes)


class DatasetError(PsaeError, ValueError):
    """A data file is damaged, inconsistent or fails its checksum."""


class DatasetOptionError(DatasetError, ParameterError):
    """A reading option (``label_column``) that names nothing in the file: a data-set error,
    and an unusable option value, for which the command line exits 2."""


class DatasetNotFoundError(NotFoundError):
    """A data set's files are missing (and could not be downloaded)."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded data set: float32 ``(N, D)`` features and int64 labels for train and test.

    ``shape`` is the image shape of one row (``None`` for generic arrays), ``classes`` the class
    names indexed by label, ``source`` the path(s) the data came from (``"sklearn"`` for digits).
    ``y_*`` may be ``None`` for unlabelled array files and ``X_test``/``y_test`` for files
    without a test split. ``label_column`` is the ``.csv`` column taken as the label (its header
    name, or its index in a file without header; ``None`` otherwise); ``notes`` are short remarks
    for the user (an auto-detected label column, a missing test split, a lossy copy).
    ``rows_train``/``rows_test``: where the rows are a subset or a reordering of the source's
    split (``limit``, a carved test split), each row's position in it; ``None``: all of them,
    in the source's order. ``feature_names``: the columns' names where the file gives them (a
    ``.csv`` header, the label's column left out), else ``None``.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray | None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    shape: tuple[int, ...] | None = None
    classes: list[str] | None = field(default=None)
    source: str | tuple[str, ...] = ""
    label_column: str | int | None = None
    notes: tuple[str, ...] = ()
    rows_train: np.ndarray | None = None
    rows_test: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None

    @property
    def n_features(self) -> int:
        """Number of columns of ``X_train``."""
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int | None:
        """Number of classes (``None`` if unlabelled)."""
        return None if self.classes is None else len(self.classes)

    def __repr__(self) -> str:
        test = None if self.X_test is None else self.X_test.shape
        return (
            f"Dataset(name={self.name!r}, X_train={self.X_train.shape}, X_test={test}, "
            f"shape={self.shape}, n_classes={self.n_classes}, source={self.source!r})"
        )


@dataclass
class RawData:
    """Decoded arrays before post-processing (native dtypes, e.g. uint8 pixels)."""

    X_train: np.ndarray
    y_train: np.ndarray | None
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    shape: tuple[int, ...] | None
    classes: list[str] | None
    label_column: str | int | None = None
    notes: tuple[str, ...] = ()
    feature_names: tuple[str, ...] | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"X_train": self.X_train}
        for k in ("y_train", "X_test", "y_test"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        return out


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Where data sets live: ``root`` if given, else ``$PSAE_DATA``, else a per-user data dir.

    The per-user dir is ``$XDG_DATA_HOME/psae`` (default ``~/.local/share/psae``) on Linux,
    ``~/Library/Application Support/psae`` on macOS and ``%LOCALAPPDATA%\\psae`` on Windows.
    The directory is not created.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("PSAE_DATA")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "psae"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "psae"
    xdg = os.environ.get("XDG_DATA_HOME")
    base_path = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base_path / "psae"


def stratified_subset(
    y: np.ndarray | None, n_total: int, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices (sorted, original order kept) of at most ``k`` of ``n_total`` samples.

    With labels, classes keep their proportions (largest-remainder allocation) and every class
    present gets at least one sample when ``k`` allows; without labels a uniform random subset.
    """
    if k >= n_total:
        return np.arange(n_total)
    if y is None:
        return np.sort(rng.choice(n_total, size=k, replace=False))
    labels, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    quota = counts * (k / n_total)
    alloc = np.floor(quota).astype(np.int64)
    if k >= len(labels):
        alloc = np.maximum(alloc, 1)
    alloc = np.minimum(alloc, counts)
    # distribute the rest by largest remainder (ties broken by class order), or trim the excess
    rest = k - int(alloc.sum())
    order = np.argsort(-(quota - np.floor(quota)), kind="stable")
    i = 0
    while rest > 0:
        c = order[i % len(order)]
        if alloc[c] < counts[c]:
            alloc[c] += 1
            rest -= 1
        i += 1
    while rest < 0:
        c = int(np.argmax(alloc))
        alloc[c] -= 1
        rest += 1
    chosen = [
        rng.choice(np.flatnonzero(inverse == c), size=int(a), replace=False)
        for c, a in enumerate(alloc)
        if a > 0
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.arange(0)
