"""``psae explore``: a fitted model's feature-explorer page for a data set's rows.

:func:`write_model_page` is the step shared with ``psae reproduce``: a model (a bare
autoencoder or a pipeline with its preprocessing) and raw rows in, a page out, with the rows
bounded by a stratified sample so that the page stays small enough to commit.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..cli_data import (
    add_data_args,
    add_force_arg,
    check_features,
    input_paths,
    load_data,
    note,
    pick_split,
    threshold,
)
from ..errors import ParameterError
from ..metrics import DEFAULT_THRESHOLD
from .page import write_explorer

__all__ = ["add_parser", "write_model_page", "DEFAULT_MAX_SAMPLES"]

DEFAULT_MAX_SAMPLES = 2000  # MNIST, M = 500: 0.7 MB (0.9 MB for all 10,000); 0: no cap


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a count >= 0, got {text!r}")
    return v


DESCRIPTION = (
    "Encode the test split of --data (or, where it has none, its training rows, which is then "
    "said) with a model written by 'psae fit', 'psae reproduce' or psae.save(), and write "
    "OUT/index.html: one self-contained page with every unit's atom, its strongest inputs and "
    "its statistics."
)


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``psae explore`` on the subcommand parsers ``sub``."""
    p = sub.add_parser("explore", description=DESCRIPTION,
                       help="write a feature-explorer page (index.html) for a fitted model")
    p.add_argument("--model", required=True,
                   help="model directory (an autoencoder, or one with its preprocessing)")
    add_data_args(p)
    p.add_argument("--split", default=None, choices=["train", "test"],
                   help="which split to show (default: test where the data has one, else "
                        "train, which is then said)")
    p.add_argument("--out", required=True, help="directory to write index.html into")
    add_force_arg(p, "write into a directory that holds other files too (psae's own page "
                     "there is replaced; a user's file is never replaced)")
    p.add_argument("--max-samples", type=_count, default=DEFAULT_MAX_SAMPLES,
                   help="show at most this many rows, a stratified sample (seed 0); 0 shows "
                        f"all (default: {DEFAULT_MAX_SAMPLES})")
    p.add_argument("--top-n", type=int, default=16,
                   help="strongest inputs shown per unit (default: 16)")
    p.add_argument("--threshold", type=threshold, default=DEFAULT_THRESHOLD,
                   help="|h| above this counts as active, a number >= 0 (default: "
                        f"{DEFAULT_THRESHOLD})")
    p.add_argument("--title", default=None, help="page title (default: the model directory)")
    p.set_defaults(handler=cmd_explore)
    return p


def _labels(y: np.ndarray | None, classes: Sequence[str] | None):
    """Labels the page can index (0..k-1) and their names: a file's own integer labels (say
    3 and 7, or -1 and 1) are renumbered, their values kept as the names."""
    if y is None or classes is not None:
        return y, classes
    values, y = np.unique(y, return_inverse=True)
    return y.astype(np.int64), [str(v) for v in values]


def _page_shape(shape: Sequence[int] | None) -> tuple[int, ...] | None:
    """The image shape when the page can draw it ((H, W) or (H, W, 3)), else None: plots."""
    if shape is None:
        return None
    shape = tuple(int(s) for s in shape)
    ok = len(shape) == 2 or (len(shape) == 3 and shape[2] == 3)
    return shape if ok else None


def sample_rows(y: np.ndarray | None, n: int, max_samples: int, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_samples`` of ``n`` rows (all when 0), stratified by ``y``."""
    from ..datasets._base import stratified_subset

    if max_samples == 0 or max_samples >= n:
        return np.arange(n)
    return stratified_subset(y, n, max_samples, np.random.default_rng(seed))


def write_model_page(out_dir: str | Path, model, X: np.ndarray, y: np.ndarray | None = None,
                     *, classes: Sequence[str] | None = None,
                     image_shape: Sequence[int] | None = None,
                     max_samples: int = DEFAULT_MAX_SAMPLES, title: str = "",
                     meta: Mapping[str, object] | None = None,
                     threshold: float = DEFAULT_THRESHOLD,
                     top_n: int = 16) -> tuple[Path, int]:
    """Encode (a stratified sample of) the raw rows ``X`` with ``model`` (a
    ``SparseAutoencoder`` or a pipeline with its ``Normalizer``), write
    ``out_dir/index.html`` and return its path and the number of rows shown."""
    from ..bundle import split

    normalizer, sae = split(model)
    idx = sample_rows(y, len(X), max_samples)
    X = np.asarray(X)[idx]
    y, classes = _labels(None if y is None else np.asarray(y)[idx], classes)
    H = sae.transform(X if normalizer is None else normalizer.transform(X))
    path = write_explorer(out_dir, H, sae.components_, X, y=y, classes=classes,
                          image_shape=_page_shape(image_shape), title=title, meta=meta,
                          threshold=threshold, top_n=top_n)
    return path, len(idx)


def cmd_explore(args) -> int:
    from ..bundle import load, split
    from ..ownership import check_output_dir

    if args.top_n < 1:
        raise ParameterError(f"--top-n must be at least 1, got {args.top_n}")
    check_output_dir(args.out, force=args.force, inputs=input_paths(args), writes=["index.html"])
    ds = load_data(args)
    X, y, which = pick_split(ds, args.split, "exploring")
    model = load(args.model)
    normalizer, sae = split(model)
    check_features(args.model, sae.n_features_in_, X, args.data, {})
    if normalizer is None:
        note(f"{args.model} carries no preprocessing (saved without a Normalizer): its codes "
             "are taken of the data as given")
    shown = len(sample_rows(y, len(X), args.max_samples))
    meta = {"model": f"{sae.penalty}, {sae.n_components} units ({args.model})",
            "data": f"{ds.source}, {which} split: "
                    + (f"{shown} of {len(X)} rows (stratified)" if shown < len(X)
                       else f"all {len(X)} rows"),
            "preprocessing": "Normalizer" if normalizer is not None else "none"}
    path, _ = write_model_page(args.out, model, X, y, classes=ds.classes, image_shape=ds.shape,
                               max_samples=args.max_samples, title=args.title or str(args.model),
                               meta=meta, threshold=args.threshold, top_n=args.top_n)
    print(json.dumps({"page": str(path), "bytes": path.stat().st_size, "split": which,
                      "samples": shown, "of": len(X), "units": sae.n_components}))
    return 0
