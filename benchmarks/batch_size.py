"""Batch size and step size by measurement: quality and speed of MNIST fits against batch size.

Trains PSAE (and SAE+L1) on MNIST (M = 1000) for a fixed number of epochs at batch sizes
128 ... 1024, with Adam's step size scaled by sqrt(B / 128) from the default min(1e-2, 1/D)
(and, for comparison, unscaled), and reports test CA (the converged softmax classifier), RE, mean
L0 and fit seconds per setting. The defaults of SparseAutoencoder are chosen from this table
(benchmarks/README.md).

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from psae import Normalizer, SparseAutoencoder, datasets, metrics

ROOT = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--data", default="mnist")
    p.add_argument("--n-components", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-sizes", default="128,256,512,1024")
    p.add_argument("--penalties", default="sql0,l1")
    p.add_argument("--scalings", default="sqrt,none", help="step-size scalings to compare")
    p.add_argument("--smoke", action="store_true", help="digits, tiny (for tests)")
    args = p.parse_args(argv)
    if args.smoke:
        args.data, args.n_components, args.epochs = "digits", 16, 4
        args.batch_sizes, args.penalties, args.scalings = "64,256", "sql0", "sqrt"
    ds = datasets.load(args.data, root=args.data_dir)
    nz = Normalizer().fit(ds.X_train)
    Xtr, Xte = nz.transform(ds.X_train), nz.transform(ds.X_test)
    base = min(1e-2, 1.0 / Xtr.shape[1])
    rows = []
    for penalty in args.penalties.split(","):
        for scaling in args.scalings.split(","):
            for B in (int(b) for b in args.batch_sizes.split(",")):
                if scaling == "none" and B == 128:
                    continue  # the same run as sqrt at 128
                lr = base * ((B / 128) ** 0.5 if scaling == "sqrt" else 1.0)
                t = time.perf_counter()
                m = SparseAutoencoder(n_components=args.n_components, penalty=penalty,
                                      epochs=args.epochs, batch_size=B, learning_rate=lr,
                                      random_state=0, device="cpu").fit(Xtr)
                fit_s = time.perf_counter() - t
                H = m.transform(Xte)
                r = metrics.evaluate(Xte, H, m.inverse_transform(H), H_train=m.transform(Xtr),
                                     y_train=ds.y_train, y=ds.y_test)
                row = {"penalty": penalty, "batch_size": B, "scaling": scaling,
                       "learning_rate": lr, "CA": r["CA"], "RE": r["RE"],
                       "L0_mean": r["L0"]["mean"], "dead_units": r["dead_units"],
                       "fit_seconds": fit_s, "epoch_seconds": fit_s / args.epochs,
                       "final_loss": m.history_[-1]["loss"], "precision": m.precision_}
                rows.append(row)
                log(json.dumps(row))
    print(json.dumps({"data": args.data, "n_components": args.n_components,
                      "epochs": args.epochs, "rows": rows, "threads": torch.get_num_threads(),
                      "cores": os.cpu_count(), "loadavg_1min": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
