"""The ``psae reproduce`` subcommand."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from ..errors import ParameterError
from ..reproduce.labels import models
from ..reproduce.paper.settings import DATA_RULE, DATASETS
from .data import add_header_arg

__all__ = ["add_parser"]


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _models(text: str) -> list[str]:
    """Model names, a penalty name taken for its model (``sql0`` is psae, ``none`` rae)."""
    from .. import sparsity

    out = []
    for name in _names(text):
        try:
            key = sparsity.by_key(name).key
        except ParameterError:
            key = name  # RunConfig names the unknown ones with the choices
        out.append(key)
    return list(dict.fromkeys(out))


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "reproduce", help="reproduce the paper's Fig. 2 (RE, S, SSD, CA) with plots and a report",
        description="Compare the sparse autoencoders on each data set. --protocol paper "
                    "(the paper's Fig. 2): each model's own knobs chosen on a validation split "
                    "of the training set by classification accuracy, the chosen point retrained "
                    "on the full training set for every seed and scored once on the test set. "
                    "--protocol matched: every model trained to each of a few target mean L0s "
                    "(TopK's k, the others' steered weight) until its validation RE converges, "
                    "and compared there. Writes "
                    "results.json/.csv, figures/, report.html and report.md to --out, the "
                    "seed-0 final models to models/ and a feature-explorer page per model to "
                    "explore/. Finished cells are kept: --resume continues a killed run. "
                    + DATA_RULE)
    p.add_argument("--datasets", type=_names, default=None,
                   help=f"comma-separated, from {','.join(DATASETS)} (default: digits, bundled "
                        "with scikit-learn: runs anywhere in a few minutes; none when --data "
                        "is given)")
    p.add_argument("--data", action="append", default=[], metavar="PATH",
                   help="a data file of your own, read as 'psae fit --data' reads it: .npz "
                        "(X, y or X_train, y_train, X_test, y_test), .csv, an image folder "
                        "(train/<class>/*.png) or its .tar/.tar.gz/.zip; repeat for more. A "
                        "file without a test split gets 20%% of its rows carved out "
                        "(stratified, seed 0); a file without labels gets every measure but "
                        "CA, and its models are chosen by validation RE")
    p.add_argument("--label-column", default="auto",
                   help="the label column of the .csv --data files, as for 'psae fit': an "
                        "index, a header name, 'auto' or 'none' (default: auto)")
    add_header_arg(p)
    p.add_argument("--models", type=_models, default=None,
                   help=f"comma-separated, from {','.join(models())} (or the penalty names: "
                        "sql0 for psae, none for rae; default: all)")
    p.add_argument("--data-dir", default=None,
                   help="where the data sets live (default: $PSAE_DATA or a per-user dir)")
    p.add_argument("--out", type=os.path.expanduser, default="runs/reproduce",
                   help="output directory (default runs/reproduce)")
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds per final model (default 3; 1 with --quick; with --report-only, "
                        "the run's own)")
    p.add_argument("--quick", action="store_true",
                   help="cut-down run (1 seed, small grids, subsets, fewer epochs); the report "
                        "says so")
    p.add_argument("--device", default="auto",
                   help="auto (a GPU where there is one; the default), cpu, cuda or cuda:N")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out, skipping every finished cell (the same "
                        "command run again does so too)")
    p.add_argument("--recheck", action="store_true",
                   help="with --resume, when psae's training code changed since the run's "
                        "cells were fitted: fit the cheapest finished cell of each model and "
                        "data set again and go on only if they come out identical (timings "
                        "aside); run.json records the check")
    p.add_argument("--force", action="store_true",
                   help="write into an --out that holds other files too (psae never replaces "
                        "or removes them)")
    p.add_argument("--report-only", action="store_true",
                   help="write results, figures and report from the finished cells of the run "
                        "in --out, training nothing (a partial run reports what it has; each "
                        "mean says over how many seeds)")
    p.add_argument("--epochs", type=int, default=None,
                   help="override every data set's epochs (matched protocol: its schedule and "
                        "its cap)")
    p.add_argument("--n-components", type=int, default=None,
                   help="override every data set's hidden size")
    p.add_argument("--protocol", default="paper", metavar="{paper,matched,both}",
                   help="paper: each model's knobs picked by validation CA (Fig. 2); matched: "
                        "every model at the same target mean L0s, trained to convergence "
                        "(docs/protocol.md); both; or a protocol registered with "
                        "psae.reproduce.protocols (default: paper)")
    p.add_argument("--jobs", type=int, default=1,
                   help="cells fitted at once, each group of a model's cells in one worker "
                        "process with --threads divided among them (default 1: one cell "
                        "at a time in this process)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_reproduce)
    return p


def _recorded_seeds(out: str) -> int | None:
    """The seed count ``out``'s run was started with (a resume fits and a report shows all of
    them unless ``--seeds`` says otherwise); None where there is no readable record."""
    try:
        seeds = json.loads((Path(out) / "run.json").read_text())["fingerprint"]["seeds"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return seeds if isinstance(seeds, int) and seeds >= 1 else None


def cmd_reproduce(args) -> int:
    from ..datasets import parse_header, parse_label_column
    from ..datasets._base import told
    from ..reproduce.runner import RunConfig, run
    from .data import note

    # a run continued or reported keeps its own seed count unless --seeds says otherwise: a
    # resume without it fell back to the default and shrank a 2-seed run to 1
    seeds = args.seeds if args.seeds is not None else (
        _recorded_seeds(args.out) or (1 if args.quick else 3))
    named = args.datasets if args.datasets is not None else ([] if args.data else ["digits"])
    cfg = RunConfig(
        # an empty --models ("," or "") names no model: an error, not all of them
        datasets=named, models=list(models()) if args.models is None else args.models,
        out=args.out, seeds=seeds,
        data_dir=args.data_dir, quick=args.quick, device=args.device, resume=args.resume,
        progress=not args.quiet, command="psae " + shlex.join(sys.argv[1:]),
        overrides={"epochs": args.epochs, "n_components": args.n_components},
        threads=getattr(args, "threads", None) or "auto",
        data=args.data, label_column=parse_label_column(args.label_column),
        header=parse_header(args.header),
        protocol_name=args.protocol, report_only=args.report_only, force=args.force,
        recheck=args.recheck, jobs=args.jobs,
    )
    for u in cfg.user.values():
        for text in told(u.dataset.notes):
            note(f"{u.path}: {text}")
    results = run(cfg)
    print(json.dumps({"out": str(args.out), "seconds": round(results["seconds"], 1),
                      "report": str(cfg.out / "report.html")}))
    return 0
