"""The data of a reproduction: named data sets and user files (``--data``), their identity
(SHA-256) and the splits the protocol carves from them.

A file without a test split gets one carved from its rows (:data:`TEST_FRACTION`); the
validation split is always carved from the training rows. Both are stratified by label where
the labels allow it (every class twice, enough rows for every class on both sides) and seeded,
so a resumed run sees the same rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from ..datasets import Dataset, LabelColumn
from ..datasets._base import without
from ..errors import InputError, ParameterError
from ..io.digest import sha256_tree
from .paper.settings import DATASETS, DataProtocol

__all__ = ["TEST_FRACTION", "SPLIT_SEED", "MIN_ROWS", "UserData", "Splits", "load_user_data",
           "load_splits", "split_dataset"]

TEST_FRACTION = 0.2
SPLIT_SEED = 0
MIN_ROWS = 20  # fewer cannot give a training, a validation and a test split worth the name


@dataclass(frozen=True)
class UserData:
    """A ``--data`` file, loaded: its key in the run, where it came from, and its rows."""

    key: str
    path: str
    sha256: str
    label_column: LabelColumn
    dataset: Dataset = field(repr=False)
    header: bool | None = None

    @property
    def labelled(self) -> bool:
        return self.dataset.y_train is not None

    @property
    def n_train(self) -> int:
        """Training rows once the test split is carved (where the file has none)."""
        n = len(self.dataset.X_train)
        return n if self.dataset.X_test is not None else n - math.ceil(TEST_FRACTION * n)

    def fingerprint(self) -> dict:
        """What decides the results: the bytes, the label column and a header said (not
        where the file is)."""
        fp = {"sha256": self.sha256, "label_column": self.dataset.label_column}
        return fp | ({"header": self.header} if self.header is not None else {})

    def describe(self) -> dict:
        """The report's account of the file (path, checksum, classes, reader notes)."""
        ds = self.dataset
        classes = _class_names(ds)
        return {"source": self.path, "sha256": self.sha256,
                "label_column": ds.label_column,
                "classes": ", ".join(classes) if classes else "none (no labels)",
                "reader_notes": "; ".join(without(ds.notes, "no_test"))}


def _class_names(ds: Dataset) -> list[str] | None:
    if ds.y_train is None:
        return None
    if ds.classes is not None:
        return [str(c) for c in ds.classes]
    ys = [ds.y_train] + ([] if ds.y_test is None else [ds.y_test])
    return [str(v) for v in np.unique(np.concatenate(ys))]


def _key(name: str, taken: set[str]) -> str:
    """A file-name-safe key for the data set, distinct from the named sets and earlier files."""
    base = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-") or "data"
    if base in DATASETS:
        base += "-file"
    key, i = base, 1
    while key in taken:
        i += 1
        key = f"{base}-{i}"
    return key


def _check_rows(ds: Dataset, path: str) -> None:
    n = len(ds.X_train) + (0 if ds.X_test is None else len(ds.X_test))
    if n < MIN_ROWS:
        raise InputError(f"--data {path}: {n} rows; a reproduction needs at least {MIN_ROWS} "
                         "(training, validation and test rows)")
    if ds.y_train is not None and len(np.unique(ds.y_train)) < 2:
        raise InputError(f"--data {path}: every training row has the same label; CA needs two "
                         "classes or more (to go on without labels: --label-column none for a "
                         ".csv, or leave out the labels of an .npz)")


def _read(path: str, label_column: LabelColumn, data_dir: str | None,
          header: bool | None = None) -> Dataset:
    from .. import datasets

    p = Path(path).expanduser()
    if not p.exists():
        hint = f" (the named data set is chosen with --datasets {path})" \
            if path in DATASETS else ""
        raise InputError(f"--data {path}: no such file or folder{hint}")
    is_csv = p.suffix.lower() == ".csv"
    ds = datasets.load(p, root=data_dir, label_column=label_column if is_csv else "auto",
                       header=header if is_csv else None)
    _check_rows(ds, path)
    return ds


def load_user_data(paths: list[str], label_column: LabelColumn = "auto",
                   data_dir: str | None = None, header: bool | None = None) -> list[UserData]:
    """Read every ``--data`` path with psae's readers (their errors unchanged) and hash it.

    ``label_column`` applies to the ``.csv`` files (as ``psae fit --label-column``); naming
    one when no path is a ``.csv`` is an error, not a silent no-op.
    """
    csv = any(str(p).lower().endswith(".csv") for p in paths)
    if label_column != "auto" and not csv:
        raise ParameterError("--label-column applies to .csv files only, and no --data path "
                             "is one")
    if header is not None and not csv:
        raise ParameterError("--header applies to .csv files only, and no --data path is one")
    out: list[UserData] = []
    for path in paths:
        ds = _read(str(path), label_column, data_dir, header)
        key = _key(ds.name, {u.key for u in out})
        out.append(UserData(key, str(path), sha256_tree(Path(path).expanduser()),
                            label_column, ds, header))
    return out


# ------------------------------------------------------------------------------------ splits
@dataclass
class Splits:
    """The rows of one data set as the protocol uses them (``y_*`` None without labels)."""

    label: str
    shape: tuple | None
    X_train: np.ndarray
    y_train: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray | None
    X_fit: np.ndarray  # grid-train part
    y_fit: np.ndarray | None
    X_val: np.ndarray
    y_val: np.ndarray | None
    classes: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> bool:
        return self.y_train is not None


def _take(y: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    return None if y is None else y[idx]


def _strata(y: np.ndarray | None, n_part: int, n: int) -> np.ndarray | None:
    """``y`` where a stratified split of ``n_part`` of ``n`` rows is possible, else None."""
    if y is None:
        return None
    counts = np.unique(y, return_counts=True)[1]
    k = len(counts)
    return y if counts.min() >= 2 and k <= n_part <= n - k else None


def _part_size(size: int | float, n: int) -> int:
    return math.ceil(size * n) if isinstance(size, float) else int(size)  # sklearn's rounding


def carve(X: np.ndarray, y: np.ndarray | None, size: int | float):
    """``(X_rest, y_rest, X_part, y_part, stratified)``: ``size`` rows (a count or a fraction)
    split off, seeded, stratified where the labels allow."""
    n = len(X)
    strata = _strata(y, _part_size(size, n), n)
    rest, part = train_test_split(np.arange(n), test_size=size, stratify=strata,
                                  random_state=SPLIT_SEED)
    return X[rest], _take(y, rest), X[part], _take(y, part), strata is not None


def subset(X: np.ndarray, y: np.ndarray | None, n: int | None):
    """At most ``n`` rows, stratified where the labels allow (all rows when ``n`` is None)."""
    if n is None or n >= len(X):
        return X, y
    keep, _ = train_test_split(np.arange(len(X)), train_size=n,
                               stratify=_strata(y, len(X) - n, len(X)), random_state=SPLIT_SEED)
    return X[keep], _take(y, keep)


def _how(stratified: bool) -> str:
    return f"{'stratified by label' if stratified else 'random'}, seed {SPLIT_SEED}"


def split_dataset(ds: Dataset, proto: DataProtocol, label: str) -> Splits:
    """Final train/test (the file's test split, or one carved), subsets where the protocol
    says, and the grid's fit/validation parts carved from the training rows."""
    notes = []
    X_train, y_train, X_test, y_test = ds.X_train, ds.y_train, ds.X_test, ds.y_test
    if X_test is None:
        n = len(X_train)
        X_train, y_train, X_test, y_test, strat = carve(X_train, y_train, TEST_FRACTION)
        notes.append(f"test split: {TEST_FRACTION:.0%} of the file's {n} rows ({len(X_test)}) "
                     f"carved out, {_how(strat)}; the file has no test split")
    X_train, y_train = subset(X_train, y_train, proto.train_limit)
    X_test, y_test = subset(X_test, y_test, proto.test_limit)
    X_rest, y_rest, X_val, y_val, strat = carve(X_train, y_train, proto.n_val)
    share = f"{proto.n_val:.0%}" if isinstance(proto.n_val, float) else f"{proto.n_val}"
    notes.append(f"validation split: {share} of the {len(X_train)} training rows "
                 f"({len(X_val)}), {_how(strat)}")
    X_fit, y_fit = subset(X_rest, y_rest, proto.grid_train)
    return Splits(label, tuple(ds.shape) if ds.shape else None, X_train, y_train, X_test, y_test,
                  X_fit, y_fit, X_val, y_val, _class_names(ds), notes)


def load_splits(name: str, proto: DataProtocol, data_dir: str | None) -> Splits:
    """A named data set's splits (see :func:`split_dataset`)."""
    from .. import datasets

    ds = datasets.load(name, root=data_dir, grayscale=proto.grayscale)
    # the copy that was read names it: the official CIFAR-10 release is not the JPEG copy
    return split_dataset(ds, proto, datasets.label_for(name, ds.source))
