"""Time to target: each model's wall seconds and epochs until the stopping rule ends its fit on
target, MNIST at M = 1000 and target mean L0 25 (issue 19: every model converged on target in
at most 60 s on 2 idle cores).

Every model is fitted as the matched protocol fits it (``early_stopping=True``, the protocol's
fixed knobs, an epoch cap it should not reach) on the MNIST training rows, bf16 where the
hardware has it, a fixed thread count; TopK and BatchTopK take k = 25, the penalised models
``target_l0=25``, RAE is the dense reference. Reported per model: fit seconds (training,
validation and calibration; not loading), epochs, whether the rule (not the cap) stopped it,
the mean L0 of the test rows' codes and its miss against the target, their FVU (and that of
the raw codes, without the inference threshold), and the dead units. Models run one after
another; the load average before and after says what else ran.

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

from psae import Normalizer, datasets, metrics
from psae.reproduce.matched.settings import MatchedProtocol, make_matched_model

MODELS = ("rae", "l1", "kl", "l0", "psae", "jumprelu", "sqjumprelu", "topk", "batchtopk")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _fvu(X: np.ndarray, Y: np.ndarray) -> float:
    return float(((X - Y) ** 2).sum() / ((X - X.mean(axis=0)) ** 2).sum())


def one(model: str, proto: MatchedProtocol, target: int, Xtr, Xte, threads: int,
        batch_size: int | str) -> dict:
    est = make_matched_model(model, None if model == "rae" else target, proto, seed=0,
                             device="cpu", threads=threads)
    est.set_params(batch_size=batch_size)
    t0 = time.perf_counter()
    est.fit(Xtr)
    seconds = time.perf_counter() - t0
    H = est.transform(Xte)
    l0 = float((np.abs(H) > metrics.DEFAULT_THRESHOLD).sum(axis=1).mean())
    fvu, fvu_raw = (_fvu(Xte, est.inverse_transform(est.transform(Xte, raw=raw)))
                    for raw in (False, True))
    return {"fit_s": round(seconds, 2), "epochs": est.n_iter_,
            "stopped_by_rule": bool(est.stopped_early_), "l0_test": round(l0, 3),
            "l0_miss": None if model == "rae" else round(l0 / target - 1, 4),
            "fvu_test": round(fvu, 4), "fvu_test_raw_codes": round(fvu_raw, 4),
            "dead_fraction": round(float(est.dead_fraction_), 4),
            "precision": est.precision_, "batch_size": est.batch_size_,
            "on_target_5pct": model == "rae" or abs(l0 / target - 1) <= 0.05}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--target", type=int, default=25)
    p.add_argument("--epochs", type=int, default=20, help="the schedule (as the protocol's)")
    p.add_argument("--max-epochs", type=int, default=100, help="the cap")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batch-size", default="auto",
                   help="the protocol's 'auto', or a number (its step size scales by √B)")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.smoke:
        ds = datasets.load("digits")
        proto = MatchedProtocol(32, (4,), 8, 16, 4)
        args.target, models = 4, ("rae", "topk", "psae")
    else:
        ds = datasets.load("mnist", root=args.data_dir)
        proto = MatchedProtocol(1000, (args.target,), args.epochs, args.max_epochs,
                                args.target)
        models = tuple(m for m in args.models.split(",") if m in MODELS)
    nz = Normalizer().fit(ds.X_train)
    Xtr, Xte = (nz.transform(X).astype(np.float32) for X in (ds.X_train, ds.X_test))
    load_before = os.getloadavg()[0]
    out = {}
    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    for m in models:
        log(f"{m} ...")
        out[m] = one(m, proto, args.target, Xtr, Xte, args.threads, batch)
        log(f"{m}: {out[m]}")
    print(json.dumps({
        "benchmark": "time_to_target", "dataset": ds.name, "rows": len(Xtr),
        "features": Xtr.shape[1], "n_components": proto.n_components, "target": args.target,
        "epochs": proto.epochs, "max_epochs": proto.max_epochs, "threads": args.threads,
        "cores": os.cpu_count(),
        "torch": torch.__version__, "loadavg_1min_before": load_before,
        "loadavg_1min": os.getloadavg()[0], "results": out,
        "slowest_fit_s": max(v["fit_s"] for v in out.values()),
        "all_on_target": all(v["on_target_5pct"] for v in out.values()),
        "all_stopped_by_rule": all(v["stopped_by_rule"] for v in out.values())}))


if __name__ == "__main__":
    main()
