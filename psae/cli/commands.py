"""The ``psae`` command line: fit, encode, evaluate, explore, datasets, models, reproduce.

Errors psae raises about the user's data, options or files (:class:`~psae.errors.PsaeError`,
and OS errors such as a full disk) end in one line of psae's words, with exit status 2 for an
option the command cannot use (as argparse's usage errors) and 1 for a run that failed on its
data, files or fit; Ctrl-C is 130. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from .._version import __version__
from ..datasets.registry import SOURCES
from ..errors import ParameterError, PsaeError
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
from .options import add_model_options, model_params

__all__ = ["main", "build_parser"]


def _add_model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, type=os.path.expanduser,  # --model=~/m too
                   help="model directory written by 'psae fit' or psae.save()")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="psae",
        description="Sparse autoencoders penalised by the squared smoothed L0 norm (PSAE) and "
                    "their baselines: train, encode, evaluate, and reproduce the paper's Fig. 2.",
    )
    parser.add_argument("--version", action="version", version=f"psae {__version__}")
    threads_help = ("fixed torch CPU threads for every step (default: auto: one for small "
                    "fits, for large ones the faster of one and all, measured while training; "
                    "see SparseAutoencoder's threads)")
    parser.add_argument("--threads", type=int, default=None, help=threads_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("fit", help="train a model on a data set and write a model directory",
                       description="Train a sparse autoencoder on the training split of --data "
                                   "(normalised as in the paper unless --no-normalize) and "
                                   "write a model directory (safetensors + JSON) holding the "
                                   "autoencoder and its preprocessing.")
    add_data_args(p)
    add_model_options(p)
    p.add_argument("--out", type=os.path.expanduser, required=True,
                   help="model directory to write: new, empty, or an earlier psae model")
    add_force_arg(p, "write into a directory that holds other files too (only psae's own "
                     "files there are replaced; a user's file is never replaced)")
    p.add_argument("--no-normalize", action="store_true",
                   help="train on the data as given (skip the paper's normalisation)")
    p.add_argument("--distributed", action="store_true",
                   help="train data-parallel on torch.distributed (run under torchrun)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("encode", help="write the codes of a data set under a fitted model",
                       description="Encode --data with a fitted model (its preprocessing, then "
                                   "one matrix multiply per batch) and write the codes to "
                                   ".npy, .npz or .csv.")
    _add_model_arg(p)
    add_data_args(p)
    p.add_argument("--split", default=None, choices=["train", "test"],
                   help="which split to encode (default: test where the data has one, else "
                        "train, which is then said)")
    p.add_argument("--out", type=os.path.expanduser, required=True,
                   help="output file: .npy, .npz or .csv")
    add_force_arg(p, "replace --out even if psae did not write it (never an input)")

    p = sub.add_parser("evaluate", help="print a model's measures: RE, S, SSD, L0, CA",
                       description="Evaluate a fitted model on the test split of --data (or, "
                                   "where it has none, its training rows, which is then said): "
                                   "reconstruction error, Hoyer sparseness, its spread (SSD), "
                                   "per-sample L0 and dead units, and, with labels and both "
                                   "splits, the softmax classification accuracy (CA).")
    _add_model_arg(p)
    add_data_args(p)
    p.add_argument("--threshold", type=threshold, default=None,
                   help="|h| above this counts as active, a number >= 0 (default: "
                        f"{DEFAULT_THRESHOLD})")
    p.add_argument("--json", default=None, type=os.path.expanduser,
                   help="also write the results to this JSON file")
    add_force_arg(p, "replace the --json file even if psae did not write it")

    p = sub.add_parser("datasets", help="list known data sets, where they are looked for, and "
                                        "which are present; download them",
                       description="List the data sets psae knows, the files each needs, the "
                                   "directory searched and what is present there; with "
                                   "--download, fetch the missing ones from their official "
                                   "sources (checksummed).")
    p.add_argument("--data-dir", default=None,
                   help="the data directory (default: $PSAE_DATA or a per-user dir)")
    p.add_argument("--download", default=None, metavar="NAMES",
                   help="comma-separated data sets to download into --data-dir ("
                        + ", ".join(n for n, s in SOURCES.items() if s.bundled is None) + ")")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("models", help="list the sparsity mechanisms (--penalty values)",
                       description="List every registered sparsity mechanism: its --penalty "
                                   "name, label and training cost (--markdown: also its knobs, "
                                   "their defaults and its reproduce grid).")
    p.add_argument("--markdown", action="store_true",
                   help="print a Markdown table with each mechanism's knobs and grid")

    from .reproduce import add_parser as add_reproduce

    add_reproduce(sub)
    from .explore import add_parser as add_explore; add_explore(sub)  # noqa: E702, I001
    for command in sub.choices.values():  # `psae fit --threads 2` as well as `psae --threads 2 fit`
        command.add_argument("--threads", type=int, default=argparse.SUPPRESS, help=threads_help)
    return parser


# ------------------------------------------------------------------------------------ fit
def cmd_fit(args) -> int:
    from .. import bundle, persistence
    from ..estimator import SparseAutoencoder
    from ..preprocessing import Normalizer

    persistence.check_writable(args.out, args.force, inputs=input_paths(args))  # before training
    ds = load_data(args)
    model = SparseAutoencoder(**model_params(args), threads=args.threads or "auto",
                              verbose=not args.quiet)
    X = ds.X_train
    normalizer = None
    if not args.no_normalize:
        normalizer = Normalizer().fit(X)
        X = normalizer.transform(X)
    rank = 0
    if args.distributed or "WORLD_SIZE" in os.environ:
        from ..distributed import process_group

        with process_group(model.device) as comm:
            model.fit(X)
            rank = comm.rank
    else:
        model.fit(X)
    if rank == 0:
        extra = {"data": str(args.data), "source": str(ds.source),
                 "label_column": ds.label_column, "grayscale": bool(args.grayscale)}
        if ds.feature_names is not None:  # `psae encode` takes a file's columns by these names
            extra["columns"] = list(ds.feature_names)
        bundle.save(bundle.pipeline(normalizer, model), args.out, extra=extra, force=args.force)
        print(json.dumps({"model": str(args.out), "penalty": model.penalty,
                          "n_components": model.n_components, "epochs": model.n_iter_,
                          "final_loss": model.history_[-1]["loss"],
                          "seconds": round(model.fit_time_, 3)}))
    return 0


# ------------------------------------------------------------------------------------ encode
class _Loaded:
    """A saved model with its preprocessing, applied to raw rows."""

    def __init__(self, model_dir, data: str):
        from ..bundle import load_with_extra, split

        self.dir, self.data = model_dir, data
        model, self.extra = load_with_extra(model_dir)
        self.normalizer, self.model = split(model)
        if self.normalizer is None:
            note(f"{model_dir} carries no preprocessing (saved without a Normalizer): its "
                 "codes are taken of the data as given")
        self.columns = model_columns(self.normalizer, self.model, self.extra)
        self._said: set[str] = set()

    def _note_once(self, text: str) -> None:  # evaluate prepares test and training rows
        if text not in self._said:
            self._said.add(text)
            note(text)

    def prepare(self, X: np.ndarray, names=None) -> np.ndarray:
        """``X`` (columns named ``names``, where the file names them) as the model reads it:
        its columns in the model's order, preprocessed."""
        X = match_columns(self.dir, X, names, self.columns, self.data, say=self._note_once)
        check_features(self.dir, self.model.n_features_in_, X, self.data, self.extra)
        if self.normalizer is None:
            return X
        with warnings.catch_warnings():  # the columns were matched by name above
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return self.normalizer.transform(X)

    def codes(self, X: np.ndarray, names=None) -> np.ndarray:
        return self.transform(self.prepare(X, names))

    def transform(self, Xn: np.ndarray, out=None) -> np.ndarray:
        """The model's codes of prepared rows."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return self.model.transform(Xn, out=out)


def _write_npy_codes(out: Path, loaded: _Loaded, Xn: np.ndarray, force: bool) -> None:
    """Stream codes into a memory-mapped ``.npy`` whose disk space is reserved first: a full
    disk is then an error before the map is touched, never a SIGBUS."""
    from ..io.atomic import allocate, atomic_path

    shape = (Xn.shape[0], loaded.model.n_components)
    header = 128  # numpy's .npy header for a 2-D float32 array fits in 128 bytes
    need = header + 4 * shape[0] * shape[1]
    with atomic_path(out, ".npy", replace=force, need=need) as tmp:
        codes = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        allocate(tmp, os.path.getsize(tmp))
        loaded.transform(Xn, out=codes)
        codes.flush()
        del codes


def cmd_encode(args) -> int:
    from ..io.atomic import atomic_write
    from ..io.ownership import check_output_file

    out = Path(args.out)  # --out's type has expanded ~
    suffix = out.suffix.lower()
    if suffix not in (".npy", ".npz", ".csv"):
        raise ParameterError(f"--out must end in .npy, .npz or .csv, got {out.name!r}")
    check_output_file(out, force=args.force, inputs=input_paths(args))
    ds = load_data(args)
    X, y, split = pick_split(ds, args.split, "encoding")
    rows = split_rows(ds, split)
    if rows is not None and suffix != ".npz":
        note(f"the codes are of {len(rows)} rows picked from {args.data}'s {split} rows "
             "(--limit or --hold-out-test), in that order: --out FILE.npz writes their row "
             "numbers beside them ('index')")
    loaded = _Loaded(args.model, args.data)
    Xn = loaded.prepare(X, ds.feature_names)
    model = loaded.model
    if suffix == ".npy":
        _write_npy_codes(out, loaded, Xn, args.force)
    else:
        import io

        H = loaded.transform(Xn)
        buf = io.BytesIO()
        if suffix == ".npz":
            # the rows' numbers in the file's split where they are a pick of it, and their
            # labels: a code can be matched to its row
            extra = {"index": rows} if rows is not None else {}
            np.savez_compressed(buf, H=H, **extra, **({} if y is None else {"y": y}))
        else:
            np.savetxt(buf, H, delimiter=",", fmt="%.7g")
        atomic_write(out, buf.getvalue(), replace=args.force)
    print(json.dumps({"codes": str(out), "shape": [int(X.shape[0]), model.n_components]}))
    return 0


# ------------------------------------------------------------------------------------ evaluate
def _ca_inputs(ds, split: str):
    """``(X_train, y_train, y, why_not)`` for CA: labels and both splits, or the reason."""
    if ds.y_train is None:
        return None, None, None, f"{ds.source} has no labels"
    if split != "test":
        return None, None, None, (f"{ds.source} has no test split (CA trains a classifier on "
                                  "training codes and scores held-out ones)")
    if ds.y_test is None:
        return None, None, None, f"{ds.source} has no test labels"
    if len(np.unique(ds.y_train)) < 2:
        return None, None, None, (f"every training row of {ds.source} has the same label (a "
                                  "classifier needs two classes or more)")
    return ds.X_train, ds.y_train, ds.y_test, None


def _evaluate_rows(result: dict, t: float) -> list[tuple[str, str]]:
    rows = [("samples", f"{result['n_samples']} ({result['split']} split)"),
            ("RE", f"{result['RE']:.6f}"), ("FVU", f"{result['FVU']:.4f}")]
    if result.get("S_note"):
        rows += [("S", "undefined: " + result["S_note"]), ("SSD", "undefined")]
    else:
        rows += [("S", f"{result['S']:.4f}"), ("SSD", f"{result['SSD']:.4f}")]
    rows += [("zero codes", str(result["zero_codes"])),
             ("L0 mean ± std [min, max]", f"{result['L0']['mean']:.2f} ± "
                                          f"{result['L0']['std']:.2f} [{result['L0']['min']}, "
                                          f"{result['L0']['max']}] at |h| > {t:g}"),
             ("dead units", f"{100 * result['dead_units']:.1f}%"),
             ("CA", f"{100 * result['CA']:.2f}%" if result.get("CA") is not None
              else "not computed: " + result["CA_note"])]
    from ..measures import computed

    rows += [(m.title, f"{result[m.key]:.4g}") for m in computed()]  # registered measures
    return rows


def cmd_evaluate(args) -> int:
    from .. import metrics
    from ..io.ownership import check_output_file

    if args.json:
        check_output_file(args.json, force=args.force, inputs=input_paths(args), option="--json")
    ds = load_data(args)
    X, _, split = pick_split(ds, None, "measuring")
    loaded = _Loaded(args.model, args.data)
    Xn = loaded.prepare(X, ds.feature_names)
    H = loaded.transform(Xn)
    t = metrics.DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    X_train, y_train, y, why_not = _ca_inputs(ds, split)
    result = metrics.evaluate(Xn, H, loaded.model.inverse_transform(H),
                              H_train=None if why_not else loaded.codes(X_train,
                                                                        ds.feature_names),
                              y_train=y_train, y=y, threshold=t)
    result = {"split": split, **result}
    if why_not:
        result["CA"], result["CA_note"] = None, why_not
    if result.get("S_note"):  # NaN is not JSON: say undefined instead
        result["S"] = result["SSD"] = None
    rows = _evaluate_rows(result, t)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    text = json.dumps(result)
    print(text)
    if args.json:
        from ..io.atomic import atomic_write

        atomic_write(args.json, text + "\n", replace=args.force)
    return 0


# ------------------------------------------------------------------------------------ datasets
def cmd_datasets(args) -> int:
    from .. import datasets

    if args.download:
        for name in [n.strip() for n in args.download.split(",") if n.strip()]:
            if name not in datasets.NAMES:
                raise ParameterError(f"--download: unknown data set {name!r}; choose from "
                                f"{', '.join(datasets.NAMES)}")
            ds = datasets.load(name, root=args.data_dir, download=True)
            bundled = datasets.SOURCES[name].bundled is not None  # nothing on disk to name
            where = ("(ships with scikit-learn: nothing downloaded)" if bundled
                     else f"in {datasets.data_root(args.data_dir)}")
            print(f"{name}: {len(ds.X_train)} training and "
                  f"{0 if ds.X_test is None else len(ds.X_test)} test samples {where}",
                  file=sys.stderr)
    info = datasets.describe(args.data_dir)
    if args.json:
        print(json.dumps(info, indent=1, default=str))
        return 0
    for d in info:
        state = "bundled" if d.get("bundled") else "present" if d.get("complete") else "missing"
        print(f"{d['name']:<10} {state:<8} {d.get('root', '')}")
        for f in d.get("files", []):
            mark = "x" if f in d.get("present", []) else " "
            print(f"    [{mark}] {f}")
    return 0


def cmd_models(args) -> int:
    from .. import sparsity

    if args.markdown:
        print(sparsity.markdown_table())
        return 0
    for name in sparsity.names():
        m = sparsity.get(name)
        print(f"{name:<8} {m.label:<20} {m.summary}\n{'':<9}cost: {m.formula}")
    return 0


COMMANDS = {"models": cmd_models, "fit": cmd_fit, "encode": cmd_encode,
            "evaluate": cmd_evaluate, "datasets": cmd_datasets}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``psae`` command."""
    try:  # building the parser imports most of psae: Ctrl-C may land there too
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        print("psae: interrupted", file=sys.stderr)
        return 130
    _one_line_warnings()
    if args.threads is not None and args.threads < 1:
        print(f"psae: error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    handler = COMMANDS.get(args.command) or getattr(args, "handler", None)
    try:
        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)
        return handler(args)
    except (PsaeError, OSError) as e:
        print(f"psae {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return exit_status(e)
    except KeyboardInterrupt:
        print(f"psae {args.command}: interrupted; {_kept(args)}", file=sys.stderr)
        return 130


def exit_status(e: BaseException) -> int:
    """2 for a command that cannot run as given (an option's value, as argparse's own usage
    errors), 1 for one that ran into its data, files or fit: a script can tell the two."""
    return 2 if isinstance(e, ParameterError) else 1


def _one_line_warnings() -> None:
    """Warnings (a restarted fit, bf16 without hardware support) as one line each, in the
    command's voice, instead of Python's file-and-line form."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"psae: warning: {_one_line(message)}", file=sys.stderr)

    warnings.showwarning = show


def _one_line(e: BaseException | Warning | str) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _kept(args) -> str:
    """What an interrupted command leaves: finished work is kept, nothing is half-written."""
    out = getattr(args, "out", None) or getattr(args, "json", None)
    if args.command == "reproduce":
        return (f"the cells finished so far are kept in {out}; run the same command again to "
                "continue from them")
    if out is None:
        return "nothing was written"
    return f"{out} was not written (whatever was there before is intact)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
