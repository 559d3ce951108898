"""Generic numeric ``.csv`` files, with an optional header row and label column."""

from __future__ import annotations

import contextlib
import csv
import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from ._base import DatasetError, DatasetOptionError, RawData
from .arraychecks import encode_labels, first_nonfinite

__all__ = ["AUTO_LABEL_NAMES", "LabelColumn", "read_csv"]

#: what ``label_column``: an index (negative counts from the end), a header name, ``"auto"``
#: or ``None`` (no labels)
LabelColumn = int | str | None
#: header names taken as the label by ``label_column="auto"``, most specific first
AUTO_LABEL_NAMES = ("label", "target", "class", "y")

_Choice = tuple[int | None, str | int | None, tuple[str, ...]]  # index, as recorded, notes


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _records(path: Path) -> Iterator[tuple[int, int, list[str]]]:
    """``(first line, last line, cells)`` of each non-blank record, quotes removed as RFC 4180
    has them (``"0","1"`` are the numbers 0 and 1; a quoted cell may hold a comma or span
    lines); a file that is not UTF-8 text or not valid CSV is a :class:`DatasetError`."""
    start = 1  # the line the next record starts on
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, skipinitialspace=True, strict=True)
            for cells in reader:
                cells = [c.strip() for c in cells]
                if any(cells):
                    yield start, reader.line_num, cells
                start = reader.line_num + 1
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not a text file ({e})") from e
    except csv.Error as e:  # an unclosed quote, a NUL byte, a cell over the csv module's limit
        raise DatasetError(f"{path}, line {start}: not a valid CSV row ({e})") from e


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, cells)`` of the non-blank records."""
    return [(start, cells) for start, _, cells in _records(path)]


INDEX_NAMES = ("", "Unnamed: 0")
"""What pandas writes above its row index (``to_csv`` keeps the index unless ``index=False``)."""


def _pandas_names(cells: list[str]) -> bool:
    """Whether ``cells`` are pandas' default column names, 0, 1, …, k−1 (after an index's empty
    name or not): a header of numbers."""
    names = cells[1:] if cells and cells[0] in INDEX_NAMES else cells
    return len(names) >= 2 and names == [str(j) for j in range(len(names))]


def _has_header(rows: list[tuple[int, list[str]]]) -> bool:
    """Whether the first row names the columns: pandas' default names 0..k−1, or a non-empty
    non-numeric cell that is not a class name, i.e. all its cells are text, or a text cell sits
    above a number (an empty cell is a missing value, not a name)."""
    if len(rows) > 1 and _pandas_names(rows[0][1]):
        return True
    first = [bool(c) and not _is_number(c) for c in rows[0][1]]
    if not any(first):
        return False
    if all(first) or len(rows) == 1:
        return True
    below = rows[1][1]
    return any(t and j < len(below) and _is_number(below[j]) for j, t in enumerate(first))


def _column(j: int, header: list[str] | None) -> str:
    if header is not None and j < len(header):
        return f"column {header[j]!r}"
    return f"column index {j}"


def _check_widths(path: Path, rows: list[tuple[int, list[str]]]) -> int:
    """The common number of columns, else an error naming the first row that differs."""
    width = len(rows[0][1])
    for lineno, cells in rows:
        if len(cells) != width:
            raise DatasetError(f"{path}, line {lineno}: {len(cells)} columns, expected {width}")
    return width


def _text_columns(rows: list[tuple[int, list[str]]]) -> list[int]:
    """Columns in which no cell is a number (class names, in a file without header); only
    those whose first cell is text are scanned, so an all-numeric file costs one row."""
    first = rows[0][1]
    maybe = [j for j, c in enumerate(first) if not _is_number(c)]
    return [j for j in maybe if not any(_is_number(cells[j]) for _, cells in rows)]


def _parse(
    path: Path, rows: list[tuple[int, list[str]]], header: list[str] | None, skip: int | None
) -> np.ndarray:
    """The numeric cells of every column but ``skip`` (the label's), as float64."""
    values = []
    for lineno, cells in rows:
        row = cells if skip is None else cells[:skip] + cells[skip + 1 :]
        try:
            values.append([float(c) for c in row])
        except ValueError:
            j = next(j for j, c in enumerate(cells) if j != skip and not _is_number(c))
            if not cells[j]:
                raise DatasetError(f"{path}, line {lineno}: a missing value (empty cell) in "
                                   f"{_column(j, header)}; fill it in or drop the row") from None
            raise DatasetError(
                f"{path}, line {lineno}: non-numeric value {cells[j]!r} in "
                f"{_column(j, header)}; if that column holds class names, make it the label "
                "column (label_column / --label-column); if it names the samples, remove it"
            ) from None
    a = np.array(values, dtype=np.float64).reshape(len(rows), -1)
    bad = first_nonfinite(a)
    if bad is not None:
        i, what = bad
        j = int(np.flatnonzero(~np.isfinite(a[i]))[0])
        j += int(skip is not None and j >= skip)  # the column's index in the file
        raise DatasetError(
            f"{path}, line {rows[i][0]}: row {i} contains {what} (in {_column(j, header)})"
        )
    return a


def _label_values(
    path: Path, rows: list[tuple[int, list[str]]], col: int, header: list[str] | None
) -> np.ndarray:
    """The label column: numbers when every cell is one, else the cells as class names
    (encoded like string labels of an ``.npz``, by :func:`encode_labels`)."""
    cells = [c[col] for _, c in rows]
    for (lineno, _), c in zip(rows, cells, strict=True):
        if not c:
            raise DatasetError(f"{path}, line {lineno}: empty label in {_column(col, header)}")
    if not all(_is_number(c) for c in cells):
        return np.array(cells, dtype=str)
    y = np.array([float(c) for c in cells], dtype=np.float64)
    bad = first_nonfinite(y[:, None])
    if bad is not None:
        raise DatasetError(
            f"{path}, line {rows[bad[0]][0]}: row {bad[0]} contains {bad[1]} "
            f"(in {_column(col, header)})"
        )
    return y


def _is_row_index(header: list[str] | None, first_column) -> bool:
    """Whether the first column is pandas' row index: unnamed, beside other columns, and
    distinct finite whole numbers (a row number, not a feature). ``first_column``: its values, or
    a thunk giving them (ValueError: not all numbers)."""
    if header is None or len(header) < 2 or header[0] not in INDEX_NAMES:
        return False  # a lone column is the data, whatever its name
    try:
        index = np.asarray(first_column() if callable(first_column) else first_column, float)
    except ValueError:
        return False
    whole = np.isfinite(index).all() and (index == np.round(index)).all()
    return bool(whole) and np.unique(index).size == index.size


def _drop_index(rows: list[tuple[int, list[str]]], header: list[str] | None
                ) -> tuple[list[tuple[int, list[str]]], list[str] | None, tuple[str, ...]]:
    """Without pandas' row index (:func:`_is_row_index`)."""
    if not _is_row_index(header, lambda: [float(cells[0]) for _, cells in rows]):
        return rows, header, ()
    return [(n, cells[1:]) for n, cells in rows], header[1:], INDEX_NOTE


INDEX_NOTE = ("dropped the first column, an unnamed row index (pandas' to_csv writes it unless "
              "index=False)",)


def _auto(header: list[str] | None, text: list[int], ids: tuple[int, ...] = ()) -> _Choice:
    """The label column ``"auto"`` takes: a label-like header name, or in a file without header
    the one column of class names (``text``: the columns holding no number; ``ids``: those of
    them with a value per row or nearly, sample names rather than classes)."""
    if header is None:
        if len(text) == 1 and text[0] not in ids:
            j = text[0]
            return j, j, (f"label column: index {j} (auto-detected: its values are class names)",)
        if len(text) == 1:
            return None, None, (f"column index {text[0]} holds text, but nearly every row has its "
                                "own value (sample names?): read without labels "
                                "(label_column=<index> takes it anyway)",)
        return None, None, ("no header row: read without labels (label_column=<index> picks one)",)
    found = [(AUTO_LABEL_NAMES.index(h.lower()), j) for j, h in enumerate(header)
             if h.lower() in AUTO_LABEL_NAMES]  # fmt: skip
    if not found:
        cols = ", ".join(header)
        return None, None, (f"no label column in the header ({cols}): read without labels",)
    j = min(found)[1]
    notes = [f"label column: {header[j]!r} (auto-detected)"]
    others = [header[k] for _, k in sorted(found) if k != j]
    if others:
        notes.append(f"also label-like, kept as features: {', '.join(map(repr, others))}")
    return j, header[j], tuple(notes)


def _check_named_labels(path: Path, spec: LabelColumn, header: list[str] | None,
                        col: int | None, y: np.ndarray | None) -> None:
    """A column ``"auto"`` took for its name must hold classes: numbers with a fraction (a
    ``y`` or ``target`` of measurements) or a value per row (an id) were taken as 149
    classes of 150 rows, CA 0 %, with only a note."""
    if spec != "auto" or header is None or col is None or y is None or y.dtype.kind != "f":
        return
    whole, distinct = bool(np.all(y == np.round(y))), len(np.unique(y))
    if whole and not (len(y) >= 20 and distinct >= 0.9 * len(y)):
        return
    what = (f"numbers with fractions (e.g. {float(y[y != np.round(y)][0]):g})"
            if not whole else f"{distinct} distinct values in {len(y)} rows")
    raise DatasetOptionError(
        f"{path}: column {header[col]!r} is named like a label but holds {what}, not classes: "
        f"give label_column=None (--label-column none) to read it as a feature, or "
        f"label_column={header[col]!r} to take its values as classes anyway")


def _named(path: Path, name: str, header: list[str] | None) -> _Choice:
    if header is None:
        raise DatasetOptionError(
            f"{path}: label_column={name!r} names a column, but the file has no header row; "
            "give the column's index instead"
        )
    want = name.strip()
    hits = [j for j, h in enumerate(header) if h == want]
    hits = hits or [j for j, h in enumerate(header) if h.lower() == want.lower()]
    if not hits:
        raise DatasetOptionError(
            f"{path}: no column named {name!r}; the header's columns are "
            + ", ".join(repr(h) for h in header)
        )
    return hits[0], header[hits[0]], ()


def _choose(
    path: Path, spec: LabelColumn, header: list[str] | None, width: int,
    rows: list[tuple[int, list[str]]] | None,
) -> _Choice:
    """Which column is the label, what :attr:`Dataset.label_column` records, and notes
    (``rows`` None: every cell is a number, so no column holds class names)."""
    if spec is None:
        return None, None, ()
    if isinstance(spec, str):
        if spec == "auto":
            text = [] if header is not None or rows is None else _text_columns(rows)
            ids = tuple(j for j in text if len(rows) >= 10  # a few rows: classes, surely
                        and len({cells[j] for _, cells in rows}) >= 0.9 * len(rows))
            return _auto(header, text, ids)
        return _named(path, spec, header)
    if isinstance(spec, bool) or not isinstance(spec, (int, np.integer)):
        raise ParameterError(
            f"label_column must be an int, a column name, 'auto' or None, got {spec!r}"
        )
    if not -width <= spec < width:
        raise DatasetOptionError(f"{path}: label_column {spec} out of range ({width} columns)")
    j = int(spec) % width
    return j, (j if header is None else header[j]), ()


PANDAS_NOTE = ("first row 0, 1, 2, … read as a header (pandas' default column names)",)


def _head(path: Path) -> tuple[list[tuple[int, list[str]]], int]:
    """The first two non-blank records (what :func:`_has_header` looks at) and the line the
    first one ends on."""
    with contextlib.closing(_records(path)) as records:  # the file closes here, not at GC
        head = list(itertools.islice(records, 2))
    return [(start, cells) for start, _, cells in head], (head[0][1] if head else 0)


def _read_numeric(path: Path, label_column: LabelColumn, header: bool | None = None
                  ) -> RawData | None:
    """A file whose every cell below the header is a finite number, read by numpy's C parser:
    its peak memory is about the float64 array's, where the general reader's lists of
    strings took 30 times the data (1.86 GB for 20,000 × 785 cells). None for anything else,
    which the general reader then reads or explains line by line."""
    try:
        head, first_end = _head(path)
        if not head or _odd_quotes(path):  # a quote left open: loadtxt reads to the end
            return None
        has = _has_header(head) if header is None else header
        header = [c.strip("\"'").strip() for c in head[0][1]] if has else None
        with warnings.catch_warnings():  # "input contained no data": said below in our words
            warnings.simplefilter("ignore", UserWarning)
            a = np.loadtxt(path, delimiter=",", dtype=np.float64, comments=None,
                           quotechar='"', encoding="utf-8-sig", ndmin=2,
                           skiprows=first_end if header else 0)
    except ValueError:  # DatasetError too: the line reader then says where
        return None
    if a.shape[0] == 0 or (header is not None and len(header) != a.shape[1]) \
            or first_nonfinite(a) is not None:
        return None
    pandas_names = header is not None and _pandas_names(header)
    a, header, index_note = _drop_index_column(a, header)
    col, recorded, notes = _choose(path, label_column, header, a.shape[1], None)
    if col is not None and a.shape[1] == 1:
        raise DatasetError(f"{path}: no feature columns besides the label")
    keep = np.ones(a.shape[1], bool)
    if col is not None:
        keep[col] = False
    X = np.empty((a.shape[0], int(keep.sum())), np.float32)
    for j, src in enumerate(np.flatnonzero(keep)):  # a column at a time: no second float64 copy
        X[:, j] = a[:, src]
    y = None if col is None else a[:, col].copy()
    _check_named_labels(path, label_column, header, col, y)
    (y,), classes = encode_labels([y], path)
    notes = index_note + (PANDAS_NOTE if pandas_names else ()) + notes
    return RawData(X, y, None, None, None, classes, recorded, notes,
                   _feature_names(header, col))


def _odd_quotes(path: Path) -> bool:
    """Whether the file holds an odd number of ``"``: a quoted cell never closed (a file cut
    off mid-cell), which the csv module rejects and numpy's parser takes as ending there."""
    n = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b'"')
    return n % 2 == 1


def _drop_index_column(a: np.ndarray, header: list[str] | None
                       ) -> tuple[np.ndarray, list[str] | None, tuple[str, ...]]:
    """:func:`_drop_index` for a parsed array."""
    if not _is_row_index(header, a[:, 0]):
        return a, header, ()
    return a[:, 1:], header[1:], INDEX_NOTE


def read_csv(path: Path, label_column: LabelColumn = "auto", header: bool | None = None
             ) -> RawData:
    """Decode a comma-separated numeric file (RFC 4180: quoted cells are unquoted, so
    ``"0","1"`` are numbers). A first line with a text cell that is not a class name (see
    :func:`_has_header`) is a header. The label column may hold numbers or class names.

    ``label_column``: an int index (negative counts from the end), a header name, ``None`` (no
    labels) or ``"auto"``: the header column named one of :data:`AUTO_LABEL_NAMES`
    (case-insensitive; ``label`` before ``target``, ``class``, ``y``), in a file without header
    the one column of class names, else no labels. ``header``: True or False says whether the
    first line is a header (a header of numbers, such as wavelengths, reads as data unless
    said); None decides as above.
    """
    fast = _read_numeric(path, label_column, header)
    return fast if fast is not None else _read_general(path, label_column, header)


def _read_general(path: Path, label_column: LabelColumn, header_row: bool | None = None
                  ) -> RawData:
    """:func:`read_csv` for any file, as lists of strings first: class names, missing values
    and bad cells are found and named with their line."""
    rows = _lines(path)
    header = header_line = None
    if rows and (_has_header(rows) if header_row is None else header_row):
        header_line, cells = rows.pop(0)
        header = [c.strip().strip("\"'").strip() for c in cells]
    if not rows:
        raise DatasetError(f"{path}: no data rows")
    _check_widths(path, rows)
    pandas_names = header is not None and _pandas_names(header)
    rows, header, index_note = _drop_index(rows, header)
    width = len(rows[0][1])
    if header is not None and len(header) != width:
        raise DatasetError(
            f"{path}, line {header_line}: the header has {len(header)} columns, "
            f"the data rows {width}"
        )
    col, recorded, notes = _choose(path, label_column, header, width, rows)
    notes = index_note + (PANDAS_NOTE if pandas_names else ()) + notes
    if col is not None and width == 1:
        raise DatasetError(f"{path}: no feature columns besides the label")
    a = _parse(path, rows, header, col)
    y = None if col is None else _label_values(path, rows, col, header)
    _check_named_labels(path, label_column, header, col, y)
    (y,), classes = encode_labels([y], path)
    return RawData(a.astype(np.float32), y, None, None, None, classes, recorded, notes,
                   _feature_names(header, col))


def _feature_names(header: list[str] | None, label: int | None) -> tuple[str, ...] | None:
    """The header's names of the feature columns (the label's left out)."""
    if header is None:
        return None
    return tuple(h for j, h in enumerate(header) if j != label)
