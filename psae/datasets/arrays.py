"""Generic array files: ``.npz`` and numeric ``.csv``."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ParameterError
from ._base import Dataset, DatasetNotFoundError, RawData
from .csvtext import LabelColumn, read_csv
from .finish import finish
from .npz import read_npz

__all__ = ["ARRAY_SUFFIXES", "LabelColumn", "load_arrays", "parse_header", "parse_label_column",
           "read_arrays"]

ARRAY_SUFFIXES = (".npz", ".csv")


def parse_header(text: str) -> bool | None:
    """A command-line ``--header`` value: ``auto`` (None), ``yes`` or ``no``."""
    t = str(text).strip().lower()
    if t in ("auto", "yes", "no"):
        return None if t == "auto" else t == "yes"
    raise ParameterError(f"--header must be auto, yes or no, got {text!r}")


def parse_label_column(text: str) -> LabelColumn:
    """A command-line ``--label-column`` value: ``none``, ``auto``, an int index, or a name."""
    t = text.strip()
    if t.lower() in ("none", "auto"):
        return None if t.lower() == "none" else "auto"
    try:
        return int(t)
    except ValueError:
        return t


def read_arrays(path: str | os.PathLike[str], label_column: LabelColumn = "auto",
                header: bool | None = None) -> RawData:
    """Decode a ``.npz`` or ``.csv`` file into :class:`RawData` (see :func:`load_arrays`)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        # None was the default before "auto": accepted, and the file's labels are kept
        if label_column not in ("auto", None):
            raise ParameterError("label_column applies to .csv files only")
        if header is not None:
            raise ParameterError("header applies to .csv files only")
        return read_npz(path)
    if suffix == ".csv":
        return read_csv(path, label_column, header)
    raise ParameterError(f"{path}: unsupported array file (expected .npz or .csv)")


def load_arrays(
    path: str | os.PathLike[str],
    *,
    label_column: LabelColumn = "auto",
    header: bool | None = None,
    limit: int | None = None,
    normalize: bool = False,
    seed: int = 0,
) -> Dataset:
    """Load a generic ``.npz`` or ``.csv`` file as a :class:`Dataset` (``shape=None`` if 2-D).

    ``.npz``: arrays ``X`` (and optional ``y``), or ``X_train``, ``y_train``, ``X_test``,
    ``y_test`` (labels optional). Features of more than 2 dimensions are flattened and their
    trailing shape kept as ``shape``. Integer labels are kept; other labels are encoded as
    indices into the sorted unique values (``classes``). NaN or infinite values are refused.
    ``.csv``: numeric, comma-separated, quoted cells unquoted (RFC 4180); a first line with a
    text cell (other than a class name) is a header. The label column may hold numbers or class
    names (encoded as for ``.npz``). ``label_column`` is an index (negative counts from the
    end), a header name, ``None`` (no labels) or ``"auto"`` (default): the header column named
    ``label``, ``target``, ``class`` or ``y`` (case-insensitive), if any; without a header, the
    one column of class names, if any. The column taken is recorded as
    ``Dataset.label_column``. ``header`` (``.csv``): True or False says whether the first line
    is a header; None (default) decides. There is no test split (``X_test is None``).
    """
    path = Path(path)
    raw = read_arrays(path, label_column, header)
    return finish(
        path.stem, raw, str(path), limit=limit, grayscale=False, normalize=normalize, seed=seed
    )
