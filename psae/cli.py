"""The ``psae`` command line: fit, encode, evaluate, datasets, reproduce."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from ._version import __version__
from .cli_options import add_model_options, model_params

__all__ = ["main", "build_parser"]


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True,
                   help="a data-set name (mnist, cifar10, optdigits, digits) or a file: .npz "
                        "(X, y or X_train, y_train, X_test, y_test) or .csv")
    p.add_argument("--data-dir", default=None,
                   help="where named data sets live (default: $PSAE_DATA or a per-user dir)")
    p.add_argument("--label-column", type=int, default=None,
                   help="for .csv input: index of the label column (default: no labels)")
    p.add_argument("--limit", type=int, default=None,
                   help="keep a stratified subset of at most this many training samples")
    p.add_argument("--grayscale", action="store_true", help="convert colour images to gray")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="psae",
        description="Sparse autoencoders penalised by the squared smoothed L0 norm (PSAE) and "
                    "their baselines: train, encode, evaluate, and reproduce the paper's Fig. 2.",
    )
    parser.add_argument("--version", action="version", version=f"psae {__version__}")
    parser.add_argument("--threads", type=int, default=None,
                        help="fixed torch CPU threads for every step (default: auto: one for "
                             "small fits, for large ones the faster of one and all, measured "
                             "while training; see SparseAutoencoder's threads)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("fit", help="train a model on a data set and write a model directory",
                       description="Train a sparse autoencoder on the training split of --data "
                                   "(normalised as in the paper unless --no-normalize) and "
                                   "write a model directory (safetensors + JSON).")
    _add_data_args(p)
    add_model_options(p)
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--no-normalize", action="store_true",
                   help="train on the data as given (skip the paper's normalisation)")
    p.add_argument("--distributed", action="store_true",
                   help="train data-parallel on torch.distributed (run under torchrun)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("encode", help="write the codes of a data set under a fitted model",
                       description="Encode --data with a fitted model (one matrix multiply per "
                                   "batch) and write the codes to .npy, .npz or .csv.")
    p.add_argument("--model", required=True, help="model directory written by 'psae fit'")
    _add_data_args(p)
    p.add_argument("--split", default="test", choices=["train", "test"],
                   help="which split to encode when the data has both (default test)")
    p.add_argument("--out", required=True, help="output file: .npy, .npz or .csv")

    p = sub.add_parser("evaluate", help="print RE, S, SSD, L0 statistics and CA of a model",
                       description="Evaluate a fitted model on the test split of --data (or "
                                   "all of it): reconstruction error, Hoyer sparseness, its "
                                   "spread (SSD), per-sample L0 and dead units, and with labels "
                                   "and a training split the softmax classification accuracy.")
    p.add_argument("--model", required=True, help="model directory written by 'psae fit'")
    _add_data_args(p)
    p.add_argument("--threshold", type=float, default=None,
                   help="|h| above this counts as active (default 0.01)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")

    p = sub.add_parser("datasets", help="list known data sets, where they are looked for, and "
                                        "which are present",
                       description="List the data sets psae knows, the files each needs, the "
                                   "directory searched and what is present there.")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("models", help="list the sparsity mechanisms (--penalty values)",
                       description="List every registered sparsity mechanism: its --penalty "
                                   "name, label, training cost, knobs and reproduce grid.")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")

    from .reproduce.cli import add_parser as add_reproduce

    add_reproduce(sub)
    return parser


def _load(args, need_test: bool = False):
    from . import datasets

    kw = {}
    if args.label_column is not None:
        kw["label_column"] = args.label_column
    path = Path(args.data)
    if path.suffix.lower() in (".npz", ".csv") and path.exists():
        ds = datasets.load_arrays(path, **kw)
        if args.limit or args.grayscale:
            raise SystemExit("psae: --limit and --grayscale apply to named data sets only")
        return ds
    return datasets.load(args.data, root=args.data_dir, limit=args.limit,
                         grayscale=args.grayscale)


def cmd_fit(args) -> int:
    from . import bundle
    from .estimator import SparseAutoencoder
    from .preprocessing import Normalizer

    ds = _load(args)
    model = SparseAutoencoder(**model_params(args), threads=args.threads or "auto",
                              verbose=not args.quiet)
    X = ds.X_train
    normalizer = None
    if not args.no_normalize:
        normalizer = Normalizer().fit(X)
        X = normalizer.transform(X)
    rank = 0
    if args.distributed or "WORLD_SIZE" in os.environ:
        from .distributed import process_group

        with process_group(model.device) as comm:
            model.fit(X)
            rank = comm.rank
    else:
        model.fit(X)
    if rank == 0:
        bundle.save_model(model, args.out, normalizer=normalizer,
                          extra={"data": str(args.data), "source": str(ds.source)})
        last = model.history_[-1]
        print(json.dumps({"model": str(args.out), "penalty": model.penalty,
                          "n_components": model.n_components, "epochs": model.n_iter_,
                          "final_loss": last["loss"],
                          "seconds": round(model.fit_time_, 3)}))
    return 0


def _transform_inputs(model_dir, X):
    from .bundle import load_model

    model, normalizer = load_model(model_dir, with_normalizer=True)
    if normalizer is not None:
        X = normalizer.transform(X)
    return model, X


def cmd_encode(args) -> int:
    from .fileio import atomic_path, atomic_write

    ds = _load(args)
    X = ds.X_train if args.split == "train" or ds.X_test is None else ds.X_test
    model, X = _transform_inputs(args.model, X)
    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix == ".npy":
        with atomic_path(out, ".npy") as tmp:
            codes = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                              shape=(X.shape[0], model.n_components))
            model.transform(X, out=codes)
            codes.flush()
            del codes
    elif suffix in (".npz", ".csv"):
        import io

        H = model.transform(X)
        buf = io.BytesIO()
        if suffix == ".npz":
            np.savez_compressed(buf, H=H)
        else:
            np.savetxt(buf, H, delimiter=",", fmt="%.7g")
        atomic_write(out, buf.getvalue())
    else:
        raise SystemExit(f"psae: --out must end in .npy, .npz or .csv, got {out.name!r}")
    print(json.dumps({"codes": str(out), "shape": [int(X.shape[0]), model.n_components]}))
    return 0


def cmd_evaluate(args) -> int:
    from . import metrics

    ds = _load(args)
    X_eval, y_eval = (ds.X_test, ds.y_test) if ds.X_test is not None else (ds.X_train, ds.y_train)
    model, Xn = _transform_inputs(args.model, X_eval)
    H = model.transform(Xn)
    t = metrics.DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    labelled = ds.X_test is not None and ds.y_train is not None and ds.y_test is not None
    H_train = model.transform(_transform_inputs(args.model, ds.X_train)[1]) if labelled else None
    result = metrics.evaluate(Xn, H, model.inverse_transform(H), H_train=H_train,
                              y_train=ds.y_train, y=ds.y_test if labelled else None, threshold=t)
    result.pop("L0_mean")
    if "S_note" in result:
        raise ValueError(result["S_note"])
    rows = [("RE", f"{result['RE']:.6f}"), ("S", f"{result['S']:.4f}"),
            ("SSD", f"{result['SSD']:.4f}"), ("zero codes", str(result["zero_codes"])),
            ("L0 mean [min, max]", f"{result['L0']['mean']:.2f} [{result['L0']['min']}, "
                                   f"{result['L0']['max']}] at |h| > {t:g}"),
            ("dead units", f"{100 * result['dead_units']:.1f}%")]
    if "CA" in result:
        rows.append(("CA", f"{100 * result['CA']:.2f}%"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    text = json.dumps(result)
    print(text)
    if args.json:
        from .fileio import atomic_write

        atomic_write(args.json, text + "\n")
    return 0


def cmd_datasets(args) -> int:
    from . import datasets

    info = datasets.describe(args.data_dir)
    if args.json:
        print(json.dumps(info, indent=1, default=str))
        return 0
    for d in info:
        state = "present" if d.get("complete") else "missing"
        print(f"{d['name']:<10} {state:<8} {d.get('root', '')}")
        for f in d.get("files", []):
            mark = "x" if f in d.get("present", []) else " "
            print(f"    [{mark}] {f}")
    return 0


def cmd_models(args) -> int:
    from . import sparsity

    if args.markdown:
        print(sparsity.markdown_table())
        return 0
    for name in sparsity.names():
        m = sparsity.get(name)
        print(f"{name:<8} {m.label:<20} {m.summary}\n{'':<9}cost: {m.formula}")
    return 0


COMMANDS = {"models": cmd_models, "fit": cmd_fit, "encode": cmd_encode, "evaluate": cmd_evaluate,
            "datasets": cmd_datasets}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``psae`` command."""
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            print(f"psae: error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
            return 2
        import torch

        torch.set_num_threads(args.threads)
    handler = COMMANDS.get(args.command) or getattr(args, "handler", None)
    try:
        return handler(args)
    except (ValueError, FileNotFoundError, FloatingPointError, TypeError) as e:
        print(f"psae {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
