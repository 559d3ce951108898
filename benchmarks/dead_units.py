"""Dead units of the exact-sparse models, and why they stay dead (issue 19: at most 5 % dead at
convergence, or said why).

Each model is fitted as the matched protocol fits it (MNIST, M = 1000, target 25, seed 0, the
rule's stop), once with its own way of reviving units (``revive="auto"``: AuxK for TopK and
BatchTopK, none for the JumpReLUs) and once with ``revive="resample"`` (dead units re-pointed at
poorly reconstructed inputs). Reported per fit: the units never active on the test rows
(|h| > 0.01), and for those the largest pre-activation ``a = W₁x + b`` over the test rows: AuxK
reconstructs the residual from the ReLU of the dead units' largest pre-activations, so a unit
whose pre-activation is negative on every input gets no gradient from it and cannot come back.
(The sign argument is AuxK's: a JumpReLU unit is dead under its own threshold θ, which may be
positive.) Also the test FVU and CA, the epochs and fit seconds, so that what reviving costs
is on the same line. With resampling, the fitted model is the state at the end of an epoch,
after that epoch's resampling: units re-pointed then (``resampled_last_epoch``) have not been
trained and can fire on test rows, so ``dead_test`` undercounts what training leaves dead.

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

MODELS = ("topk", "batchtopk", "jumprelu", "sqjumprelu")
REVIVE = ("auto", "resample")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def one(model: str, revive: str, proto: MatchedProtocol, target: int, data, threads: int
        ) -> dict:
    Xtr, ytr, Xte, yte = data
    est = make_matched_model(model, target, proto, seed=0, device="cpu", threads=threads)
    est.set_params(revive=revive)
    t0 = time.perf_counter()
    est.fit(Xtr)
    seconds = time.perf_counter() - t0
    H = est.transform(Xte)
    dead = ~(np.abs(H) > metrics.DEFAULT_THRESHOLD).any(axis=0)
    a_max = (Xte.astype(np.float64) @ np.asarray(est.encoder_weight_, np.float64).T
             + np.asarray(est.encoder_bias_, np.float64)).max(axis=0)
    return {"fit_s": round(seconds, 2), "epochs": est.n_iter_,
            "stopped_by_rule": bool(est.stopped_early_),
            "dead_test": round(float(dead.mean()), 4),
            "dead_training": round(float(est.dead_fraction_), 4),
            "dead_with_negative_preactivation": (
                round(float((a_max[dead] < 0).mean()), 4) if dead.any() else None),
            "median_max_preactivation_dead": (
                round(float(np.median(a_max[dead])), 4) if dead.any() else None),
            "median_max_preactivation_alive": (
                round(float(np.median(a_max[~dead])), 4) if (~dead).any() else None),
            "resampled_last_epoch": est.history_[-1].get("resampled", 0),
            "l0_test": round(float(metrics.l0_counts(H).mean()), 3),
            "fvu_test": round(metrics.fraction_of_variance_unexplained(
                Xte, est.inverse_transform(H)), 4),
            "ca_test": metrics.classification_accuracy(est.transform(Xtr), ytr, H, yte)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--target", type=int, default=25)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--revive", default=",".join(REVIVE))
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.smoke:
        ds = datasets.load("digits")
        proto = MatchedProtocol(32, (4,), 8, 16, 4)
        args.target, models, revives = 4, ("topk", "jumprelu"), REVIVE
    else:
        ds = datasets.load("mnist", root=args.data_dir)
        proto = MatchedProtocol(1000, (args.target,), 20, 100, args.target)
        models = tuple(m for m in args.models.split(",") if m in MODELS)
        revives = tuple(r for r in args.revive.split(",") if r in REVIVE)
    nz = Normalizer().fit(ds.X_train)
    data = (nz.transform(ds.X_train).astype(np.float32), ds.y_train,
            nz.transform(ds.X_test).astype(np.float32), ds.y_test)
    load_before = os.getloadavg()[0]
    out = {}
    for m in models:
        for r in revives:
            log(f"{m}/{r} ...")
            out[f"{m}/{r}"] = one(m, r, proto, args.target, data, args.threads)
            log(f"{m}/{r}: {out[f'{m}/{r}']}")
    print(json.dumps({
        "benchmark": "dead_units", "dataset": ds.name, "rows": len(data[0]),
        "n_components": proto.n_components, "target": args.target, "threads": args.threads,
        "cores": os.cpu_count(), "torch": torch.__version__,
        "loadavg_1min_before": load_before, "loadavg_1min": os.getloadavg()[0],
        "results": out}))


if __name__ == "__main__":
    main()
