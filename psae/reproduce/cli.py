"""The ``psae reproduce`` subcommand."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from .protocol import DATASETS, models

__all__ = ["add_parser"]


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "reproduce", help="reproduce the paper's Fig. 2 (RE, S, SSD, CA) with plots and a report",
        description="Train RAE, SAE+L1, SAE+Ber, PSAE (and the unsquared-L0 ablation) on each "
                    "data set: each model's own knobs chosen on a validation split of the "
                    "training set by classification accuracy, the chosen point retrained on the "
                    "full training set for every seed and scored once on the test set. Writes "
                    "results.json/.csv, figures/, report.html and report.md to --out. Finished "
                    "cells are kept: --resume continues a killed run.")
    p.add_argument("--datasets", type=_names, default=["digits"],
                   help=f"comma-separated, from {','.join(DATASETS)} (default: digits, bundled "
                        "with scikit-learn: runs anywhere in a few minutes)")
    p.add_argument("--models", type=_names, default=None,
                   help=f"comma-separated, from {','.join(models())} (default: all)")
    p.add_argument("--data-dir", default=None,
                   help="where the data sets live (default: $PSAE_DATA or a per-user dir)")
    p.add_argument("--out", default="runs/reproduce", help="output directory")
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds per final model (default 3; 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="cut-down run (1 seed, small grids, subsets, fewer epochs); the report "
                        "says so")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out, skipping every finished cell")
    p.add_argument("--epochs", type=int, default=None, help="override every data set's epochs")
    p.add_argument("--n-components", type=int, default=None,
                   help="override every data set's hidden size")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_reproduce)
    return p


def cmd_reproduce(args) -> int:
    from .runner import RunConfig, run

    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    cfg = RunConfig(
        datasets=args.datasets, models=args.models or list(models()), out=args.out, seeds=seeds,
        data_dir=args.data_dir, quick=args.quick, device=args.device, resume=args.resume,
        progress=not args.quiet, command="psae " + shlex.join(sys.argv[1:]),
        overrides={"epochs": args.epochs, "n_components": args.n_components},
        threads=getattr(args, "threads", None) or "auto",
    )
    results = run(cfg)
    print(json.dumps({"out": str(args.out), "seconds": round(results["seconds"], 1),
                      "report": str(cfg.out / "report.html")}))
    return 0
