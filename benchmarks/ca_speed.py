"""The CA classifier on sparse codes: the sparse-matrix path against the dense one, one run.

Fits TopK (k = 25) and PSAE (target_l0 = 25, its codes trimmed onto the target) on MNIST at
M = 1000 for a few epochs, then scores CA on their codes through both of the classifier's
paths, interleaved in one process: each path's seconds and CA (issue 19: scoring at most 10 %
of a cell's time, CA unchanged within 0.05 points).

Prints one JSON object on stdout; progress goes to stderr. ``--smoke`` runs a tiny version.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

import psae.classifier as classifier
from psae import Normalizer, SparseAutoencoder, datasets, metrics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.smoke:
        ds = datasets.load("digits")
        M, k, epochs = 64, 6, 4
    else:
        ds = datasets.load("mnist", root=args.data_dir)
        M, k, epochs = 1000, 25, 2
    nz = Normalizer().fit(ds.X_train)
    Xtr, Xte = (nz.transform(X).astype(np.float32) for X in (ds.X_train, ds.X_test))
    out = {"benchmark": "ca_speed", "threads": args.threads, "cores": os.cpu_count(),
           "torch": torch.__version__, "loadavg_1min_before": os.getloadavg()[0],
           "n_train": len(Xtr), "n_components": M, "results": {}}
    for name, kw in (("topk", {"penalty": "topk", "k": k}),
                     ("psae", {"penalty": "sql0", "target_l0": k})):
        print(f"fitting {name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        m = SparseAutoencoder(n_components=M, epochs=2 * epochs if name == "psae" else epochs,
                              random_state=0, device="cpu", threads=args.threads, **kw).fit(Xtr)
        res = {"fit_s": time.perf_counter() - t0}
        Htr, Hte = m.transform(Xtr), m.transform(Xte)
        res["density"] = float(np.count_nonzero(Htr) / Htr.size)
        for path, below in (("sparse", 0.2), ("dense", 0.0)):
            classifier.SPARSE_BELOW = below
            t0 = time.perf_counter()
            ca = metrics.classification_accuracy(Htr, ds.y_train, Hte, ds.y_test)
            res[path] = {"CA": ca, "seconds": time.perf_counter() - t0}
        classifier.SPARSE_BELOW = 0.2
        res["speedup"] = res["dense"]["seconds"] / res["sparse"]["seconds"]
        res["ca_difference_points"] = 100 * abs(res["sparse"]["CA"] - res["dense"]["CA"])
        out["results"][name] = res
    out["loadavg_1min"] = os.getloadavg()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
