"""``psae explore``: a fitted model's feature-explorer page for a data set's rows (the page
itself is :func:`psae.explore.model_page.write_model_page`'s, shared with ``psae reproduce``)."""

from __future__ import annotations

import argparse
import json
import os
import warnings

from ..errors import ParameterError
from ..explore.model_page import DEFAULT_MAX_SAMPLES, sample_rows, write_model_page
from ..metrics import DEFAULT_THRESHOLD
from .data import (
    add_data_args,
    add_force_arg,
    check_features,
    input_paths,
    load_data,
    match_columns,
    model_columns,
    note,
    pick_split,
    split_rows,
    threshold,
)

__all__ = ["add_parser"]


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
    p.add_argument("--model", required=True, type=os.path.expanduser,
                   help="model directory (an autoencoder, or one with its preprocessing)")
    add_data_args(p)
    p.add_argument("--split", default=None, choices=["train", "test"],
                   help="which split to show (default: test where the data has one, else "
                        "train, which is then said)")
    p.add_argument("--out", type=os.path.expanduser, required=True,
                   help="directory to write index.html into")
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


def cmd_explore(args) -> int:
    from ..bundle import load_with_extra, split
    from ..io.ownership import check_output_dir

    if args.top_n < 1:
        raise ParameterError(f"--top-n must be at least 1, got {args.top_n}")
    check_output_dir(args.out, force=args.force, inputs=input_paths(args), writes=["index.html"])
    ds = load_data(args)
    X, y, which = pick_split(ds, args.split, "exploring")
    model, extra = load_with_extra(args.model)
    normalizer, sae = split(model)
    X = match_columns(args.model, X, ds.feature_names, model_columns(normalizer, sae, extra),
                      args.data)
    check_features(args.model, sae.n_features_in_, X, args.data, extra)
    if normalizer is None:
        note(f"{args.model} carries no preprocessing (saved without a Normalizer): its codes "
             "are taken of the data as given")
    shown = len(sample_rows(y, len(X), args.max_samples))
    meta = {"model": f"{sae.penalty}, {sae.n_components} units ({args.model})",
            # what the user named (a path, or a data set), not a tuple of its files
            "data": f"{_data_label(ds, args.data)}, {which} split: "
                    + (f"{shown} of {len(X)} rows (stratified)" if shown < len(X)
                       else f"all {len(X)} rows"),
            "preprocessing": "Normalizer" if normalizer is not None else "none"}
    with warnings.catch_warnings():  # the columns were matched by name above
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        path, _ = write_model_page(args.out, model, X, y, classes=ds.classes,
                                   image_shape=ds.shape, max_samples=args.max_samples,
                                   title=args.title or str(args.model), meta=meta,
                                   threshold=args.threshold, top_n=args.top_n,
                                   rows=split_rows(ds, which))
    print(json.dumps({"page": str(path), "bytes": path.stat().st_size, "split": which,
                      "samples": shown, "of": len(X), "units": sae.n_components}))
    return 0


def _data_label(ds, data: str) -> str:
    """A named set's label (``MNIST``, ``CIFAR-10 (JPEG copy)``), else the path given."""
    from ..datasets import NAMES, label_for

    return label_for(ds.name, ds.source) if ds.name in NAMES else str(data)
