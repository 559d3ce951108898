"""The command line's data options: which data, which split, and what to tell the user.

Every command reads ``--data`` through :func:`psae.datasets.load` (names and files alike), says
what the loader noticed (the label column it took, a missing test split), and refuses options
that would have no effect instead of ignoring them.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..datasets.registry import NAMES
from ..errors import InputError, ParameterError

__all__ = ["add_data_args", "load_data", "pick_split", "check_features", "match_columns",
           "model_columns", "note", "threshold", "add_force_arg", "input_paths"]


def note(text: str) -> None:
    """One line for the user on stderr (stdout carries the command's JSON)."""
    print(f"psae: note: {text}", file=sys.stderr)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def threshold(text: str) -> float:
    """An activity threshold: a finite number >= 0 (|h| above it counts as active)."""
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not np.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return v


def add_force_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--force", action="store_true", help=what)


def input_paths(args) -> list[str]:
    """The files and folders this command reads (its outputs may be none of them)."""
    return [str(v) for v in (getattr(args, "data", None), getattr(args, "model", None))
            if v is not None]


def add_header_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--header", default="auto", choices=["auto", "yes", "no"],
                   help="for .csv input: whether the first line names the columns; 'auto' "
                        "takes a line with a text cell as one, so a header of numbers (such "
                        "as wavelengths) needs 'yes' (default: auto)")


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True,
                   help=f"a data-set name ({', '.join(NAMES)}) or a path: .npz "
                        "(X, y or X_train, y_train, X_test, y_test), .csv, an image folder "
                        "(train/<class>/*.png) or its .tar/.tar.gz/.zip")
    p.add_argument("--data-dir", default=None,
                   help="where named data sets live (default: $PSAE_DATA or a per-user dir); "
                        "decoded arrays are cached in DATA_DIR/.cache or $PSAE_CACHE")
    p.add_argument("--label-column", default="auto",
                   help="for .csv input: the label column, as an index (negative counts from "
                        "the end), a header name, 'auto' (a column named label, target, class "
                        "or y) or 'none' (default: auto)")
    add_header_arg(p)
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="keep a stratified subset of at most this many training samples (and "
                        "test samples in proportion) (default: all)")
    p.add_argument("--grayscale", action="store_true",
                   help="convert colour images to gray (an error for data without colour)")
    p.add_argument("--hold-out-test", action="store_true",
                   help="for a file without a test split: carve the one psae reproduce carves "
                        "(20 %% of the rows, stratified by label, seed 0) and keep it out of "
                        "training, so that fit and evaluate give the report's numbers")


def load_data(args):
    """The :class:`~psae.datasets.Dataset` that ``--data`` and its options describe."""
    from .. import datasets
    from ..datasets._base import has_note, told

    label = datasets.parse_label_column(args.label_column)
    header = datasets.parse_header(getattr(args, "header", "auto"))
    csv = str(args.data).lower().endswith(".csv")
    if label != "auto" and not csv:
        raise ParameterError(f"--label-column applies to .csv files only, not to {args.data}")
    if header is not None and not csv:
        raise ParameterError(f"--header applies to .csv files only, not to {args.data}")
    ds = datasets.load(args.data, root=args.data_dir, limit=args.limit,
                       grayscale=args.grayscale, label_column=label, header=header)
    if args.grayscale and not has_note(ds.notes, "gray"):
        raise ParameterError(f"--grayscale: {args.data} has no colour images to convert")
    for text in told(ds.notes):
        note(text)
    return _hold_out_test(ds, args.data) if getattr(args, "hold_out_test", False) else ds


def _hold_out_test(ds, data):
    """``ds`` with the test split ``psae reproduce`` carves from a file that has none."""
    import dataclasses

    from ..datasets._base import without
    from ..reproduce.data import SPLIT_SEED, TEST_FRACTION, carve

    if ds.X_test is not None:
        raise ParameterError(f"--hold-out-test: {data} has a test split of its own "
                             f"({len(ds.X_test)} rows); leave --hold-out-test out to use it")
    n = len(ds.X_train)
    # carved as reproduce carves its test split (same call, same rows), on the row numbers,
    # so that the rows each part took are known: encode writes them beside the codes
    rest, _, part, _, strat = carve(np.arange(n), ds.y_train, TEST_FRACTION)
    note(f"test split: {TEST_FRACTION:.0%} of {data}'s {n} rows ({len(part)}) held out, "
         f"{'stratified by label' if strat else 'random'}, seed {SPLIT_SEED}, as psae "
         "reproduce carves it")
    notes = without(ds.notes, "no_test")
    rows = np.arange(n) if ds.rows_train is None else ds.rows_train
    y = ds.y_train
    return dataclasses.replace(ds, X_train=ds.X_train[rest], X_test=ds.X_train[part],
                               y_train=None if y is None else y[rest],
                               y_test=None if y is None else y[part], notes=notes,
                               rows_train=rows[rest], rows_test=rows[part])


def split_rows(ds, name: str) -> np.ndarray | None:
    """The split's rows' positions in the source (None: all, in order); a carved test split's
    are positions among the file's rows, as its training rows' are."""
    return ds.rows_test if name == "test" else ds.rows_train


def pick_split(ds, split: str | None, purpose: str):
    """``(X, y, name)`` of the split to use: ``split`` ("train"/"test") or, when None, the test
    split where there is one; a missing test split is said, never papered over."""
    if split == "test" and ds.X_test is None:
        raise ParameterError(f"--split test: {ds.source} has no test split (only "
                             f"{len(ds.X_train)} training rows); use --split train")
    if split == "train" or ds.X_test is None:
        if split is None:
            note(f"{ds.source} has no test split: {purpose} its {len(ds.X_train)} training rows")
        return ds.X_train, ds.y_train, "train"
    return ds.X_test, ds.y_test, "test"


def check_features(model_dir, n_features_in: int, X: np.ndarray, data: str, extra: dict
                   ) -> None:
    """A clear error, with a hint, when ``X`` has not the model's number of features."""
    d = X.shape[1]
    if d == n_features_in:
        return
    hint = ""
    if d == n_features_in + 1 and str(data).lower().endswith(".csv"):
        hint = (" One extra column: is it the label? Name it with --label-column"
                + (f" (the model was trained with label column {extra['label_column']!r})"
                   if extra.get("label_column") is not None else "") + ".")
    elif d == 3 * n_features_in:
        hint = (" Three times as many: colour images where the model was trained on grey ones?"
                + (" It was trained with --grayscale: add it." if extra.get("grayscale") else
                   " Add --grayscale."))
    elif 3 * d == n_features_in:
        hint = " A third as many: was the model trained on colour images? Leave out --grayscale."
    raise InputError(f"{data} has {d} features per sample but the model in {model_dir} was "
                     f"trained on {n_features_in}.{hint}")


def _listed(names: list[str], most: int = 6) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _as_pandas_reads(names: list[str]) -> list[str]:
    """The names pandas gives a header that repeats one (``a, a, b`` → ``a, a.1, b``)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        out.append(n if n not in seen else f"{n}.{seen[n]}")
        seen[n] = seen.get(n, 0) + 1
    return out


def model_columns(normalizer, model, extra: dict) -> list | None:
    """The column names a saved model was fitted on: its first step's ``feature_names_in_``
    (fitted on a DataFrame), else those ``psae fit`` recorded from a CSV header, else None."""
    first = normalizer if normalizer is not None else model
    names = getattr(first, "feature_names_in_", None)
    return list(names) if names is not None else extra.get("columns")


def match_columns(model_dir, X: np.ndarray, names, expected, data: str, say=note
                  ) -> np.ndarray:
    """``X``'s columns in the order the model was fitted on, found by name: ``names`` are the
    file's (a ``.csv`` header; None without), ``expected`` the model's (None where it was fitted
    on unnamed columns), both without surrounding spaces (pandas keeps those psae strips), a
    repeated name read as pandas renames it. Columns in another order are put back in the
    model's; names that differ are an error naming them, since codes of the wrong columns are
    silently wrong. ``say``: how a note reaches the user."""
    if expected is None:
        return X
    expected = [str(n).strip() for n in expected]
    if names is None:
        say(f"{data} does not name its columns: they are taken in the order the model in "
            f"{model_dir} was fitted on ({_listed(expected, 3)})")
        return X
    names = [str(n).strip() for n in names]
    if len(set(names)) < len(names) and names != expected:
        names = _as_pandas_reads(names)
    if names == expected:
        return X
    if len(set(names)) == len(names) == len(expected) and set(names) == set(expected):
        say(f"{data} holds the model's columns in another order: taken by name")
        return X[:, [names.index(n) for n in expected]]
    missing = [n for n in expected if n not in names]
    unknown = [n for n in names if n not in expected]
    repeated = sorted({n for n in names if names.count(n) > 1})
    why = "; ".join(part for part in (
        f"missing {_listed(missing)}" if missing else "",
        f"not in the model {_listed(unknown)}" if unknown else "",
        f"named more than once {_listed(repeated)}" if repeated else "") if part)
    raise InputError(f"{data}'s columns do not match those the model in {model_dir} was fitted "
                     f"on: {why}. Name them as the model does ({_listed(expected, 3)})")
