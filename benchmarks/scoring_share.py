"""Scoring's share of a matched cell: the seconds a cell spends scoring a fitted model (codes of
the training and test rows, RE, S, SSD, L0 and the CA classifier, as
``psae.reproduce.cells.score`` does) against the seconds of its fit (issue 19: scoring at most
10 % of a cell's time).

Each model is fitted as the matched protocol fits it (seed 0, one target, the data set's
protocol) at each thread count asked for, then scored once. Reported per thread count and
model: fit seconds, scoring seconds, the share ``score / (fit + score)`` and the CA. The load
average before and after says what else ran.

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

from psae import Normalizer, datasets
from psae.reproduce.cells import score
from psae.reproduce.matched.settings import (
    MatchedProtocol,
    make_matched_model,
    matched_for,
    matched_models,
)

MODELS = ("rae", "l1", "kl", "l0", "psae", "jumprelu", "sqjumprelu", "topk", "batchtopk")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def one(model: str, target: int, proto: MatchedProtocol, ds, Xtr, Xte, threads: int) -> dict:
    torch.set_num_threads(threads)
    est = make_matched_model(model, None if model == "rae" else target, proto, seed=0,
                             device="cpu", threads=threads)
    t0 = time.perf_counter()
    est.fit(Xtr)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores, _ = score(est, Xtr, ds.y_train, Xte, ds.y_test, 0.01)
    score_s = time.perf_counter() - t0
    return {"fit_s": round(fit_s, 3), "score_s": round(score_s, 3),
            "share": round(score_s / (fit_s + score_s), 4), "epochs": est.n_iter_,
            "CA": scores["CA"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--dataset", default="optdigits")
    p.add_argument("--target", type=int, default=None, help="default: the protocol's largest")
    p.add_argument("--threads", default="1,2", help="thread counts, one set of fits each")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        ds = datasets.load("digits")
        proto = MatchedProtocol(32, (4,), 8, 8, 4)
        models, target, threads = ("rae", "topk", "psae"), 4, (1,)
    else:
        ds = datasets.load(args.dataset, root=args.data_dir)
        proto = matched_for(args.dataset, quick=False)
        models = tuple(matched_models([m for m in args.models.split(",") if m in MODELS]))
        target = args.target or max(proto.targets)
        threads = tuple(int(t) for t in args.threads.split(","))
    nz = Normalizer().fit(ds.X_train)
    Xtr, Xte = (nz.transform(X).astype(np.float32) for X in (ds.X_train, ds.X_test))
    load_before = os.getloadavg()[0]
    out: dict[str, dict] = {}
    for t in threads:
        out[str(t)] = {}
        for m in models:
            out[str(t)][m] = one(m, target, proto, ds, Xtr, Xte, t)
            log(f"{t} thread(s) {m}: {out[str(t)][m]}")
    shares = [r["share"] for row in out.values() for r in row.values()]
    print(json.dumps({
        "benchmark": "scoring_share", "dataset": ds.name, "rows": len(Xtr),
        "n_components": proto.n_components, "target": target, "threads": list(threads),
        "cores": os.cpu_count(), "torch": torch.__version__,
        "loadavg_1min_before": load_before, "loadavg_1min": os.getloadavg()[0],
        "results": out, "max_share": max(shares), "all_at_most_10pct": max(shares) <= 0.10}))


if __name__ == "__main__":
    main()
