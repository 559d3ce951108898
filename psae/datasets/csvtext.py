"""Generic numeric ``.csv`` files, with an optional header row and label column."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ParameterError
from ._base import DatasetError, RawData
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


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, cells)`` of the non-blank lines."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            return [(i, ln.strip().split(",")) for i, ln in enumerate(f, 1) if ln.strip()]
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not a text file ({e})") from e


def _column(j: int, header: list[str] | None) -> str:
    if header is not None and j < len(header):
        return f"column {header[j]!r}"
    return f"column index {j}"


def _parse(path: Path, rows: list[tuple[int, list[str]]], header: list[str] | None) -> np.ndarray:
    width = len(rows[0][1])
    values = []
    for lineno, cells in rows:
        if len(cells) != width:
            raise DatasetError(f"{path}, line {lineno}: {len(cells)} columns, expected {width}")
        try:
            values.append([float(c) for c in cells])
        except ValueError:
            j = next(j for j, c in enumerate(cells) if not _is_number(c))
            raise DatasetError(
                f"{path}, line {lineno}: non-numeric value {cells[j]!r} in {_column(j, header)}"
            ) from None
    a = np.array(values, dtype=np.float64)
    bad = first_nonfinite(a)
    if bad is not None:
        i, what = bad
        j = int(np.flatnonzero(~np.isfinite(a[i]))[0])
        raise DatasetError(
            f"{path}, line {rows[i][0]}: row {i} contains {what} (in {_column(j, header)})"
        )
    return a


def _auto(header: list[str] | None) -> _Choice:
    if header is None:
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


def _named(path: Path, name: str, header: list[str] | None) -> _Choice:
    if header is None:
        raise DatasetError(
            f"{path}: label_column={name!r} names a column, but the file has no header row; "
            "give the column's index instead"
        )
    want = name.strip()
    hits = [j for j, h in enumerate(header) if h == want]
    hits = hits or [j for j, h in enumerate(header) if h.lower() == want.lower()]
    if not hits:
        raise DatasetError(
            f"{path}: no column named {name!r}; the header's columns are "
            + ", ".join(repr(h) for h in header)
        )
    return hits[0], header[hits[0]], ()


def _choose(path: Path, spec: LabelColumn, header: list[str] | None, width: int) -> _Choice:
    """Which column is the label, what :attr:`Dataset.label_column` records, and notes."""
    if spec is None:
        return None, None, ()
    if isinstance(spec, str):
        return _auto(header) if spec == "auto" else _named(path, spec, header)
    if isinstance(spec, bool) or not isinstance(spec, (int, np.integer)):
        raise ParameterError(
            f"label_column must be an int, a column name, 'auto' or None, got {spec!r}"
        )
    if not -width <= spec < width:
        raise DatasetError(f"{path}: label_column {spec} out of range ({width} columns)")
    j = int(spec) % width
    return j, (j if header is None else header[j]), ()


def read_csv(path: Path, label_column: LabelColumn = "auto") -> RawData:
    """Decode a comma-separated numeric file; a first line with a non-numeric cell is a header.

    ``label_column``: an int index (negative counts from the end), a header name, ``None`` (no
    labels) or ``"auto"``: the header column named one of :data:`AUTO_LABEL_NAMES`
    (case-insensitive; ``label`` before ``target``, ``class``, ``y``), else no labels.
    """
    rows = _lines(path)
    header = None
    if rows and not all(_is_number(c) for c in rows[0][1]):
        header_line, cells = rows.pop(0)
        header = [c.strip().strip("\"'").strip() for c in cells]
    if not rows:
        raise DatasetError(f"{path}: no data rows")
    a = _parse(path, rows, header)
    if header is not None and len(header) != a.shape[1]:
        raise DatasetError(
            f"{path}, line {header_line}: the header has {len(header)} columns, "
            f"the data rows {a.shape[1]}"
        )
    col, recorded, notes = _choose(path, label_column, header, a.shape[1])
    y = None
    if col is not None:
        y = a[:, col]
        a = np.delete(a, col, axis=1)
        if a.shape[1] == 0:
            raise DatasetError(f"{path}: no feature columns besides the label")
    (y,), classes = encode_labels([y], path)
    return RawData(a.astype(np.float32), y, None, None, None, classes, recorded, notes)
