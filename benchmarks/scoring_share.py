"""Scoring's share of a matched cell: the seconds a cell spends scoring a fitted model (codes of
the training and test rows, RE, S, SSD, L0 and the CA classifier, as
``psae.reproduce.cells.score`` does) against the seconds of its fit (issue 19: scoring at most
10 % of a cell's time).

Each model is fitted as the matched protocol fits it (seed 0, one target, the data set's
protocol) at each thread count asked for, then scored ``--rounds`` times (the median is
kept). Reported per thread count and model: fit seconds, scoring seconds, the share
``score / (fit + score)`` and the CA. The load average before and after says what else ran.

``--against REV`` also scores each fit with the CA classifier of git revision ``REV``
(``psae/classifier.py`` as it was there; or the classifier file ``REV``), interleaved round
by round with today's, and reports its seconds, share and CA beside them: a solver change
measured on the same fits, at the same load.

``--run DIR`` fits nothing: it scores the seed-0 models a matched run saved
(``DIR/models/<data>__<model>_matched``, on the run's full training split) and takes each
one's fit seconds from its cell (``DIR/cells``), as the run recorded them. Scoring the same
saved models under ``PYTHONPATH`` set to another checkout's root measures that code's scoring
(every module of it, not the classifier alone) on the same fits.

Prints one JSON object on stdout; progress goes to stderr. ``--smoke`` runs a tiny version
(digits, three models, one round).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from unittest import mock

import numpy as np
import scipy.sparse
import torch

import psae.classifier
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


def classifier_at(rev: str):
    """``SoftmaxClassifier`` of ``psae/classifier.py`` at git revision ``rev``, or of the
    file ``rev`` where that is a file."""
    path = rev
    if not os.path.isfile(rev):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        src = subprocess.run(["git", "-C", root, "show", f"{rev}:psae/classifier.py"],
                             check=True, capture_output=True, text=True).stdout
        path = os.path.join(tempfile.mkdtemp(), "classifier_at_rev.py")
        with open(path, "w") as f:
            f.write(src)
    spec = importlib.util.spec_from_file_location("classifier_at_rev", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Dense(module.SoftmaxClassifier):
        """A classifier from before 79cbebb takes dense codes only: today's scoring hands the
        training codes over as a sparse matrix where they are sparse."""

        def fit(self, H, y):
            return super().fit(H.toarray() if scipy.sparse.issparse(H) else H, y)

    return Dense


def timed_score(est, ds, Xtr, Xte, clf) -> tuple[float, dict]:
    # metrics.classification_accuracy imports the class from psae.classifier at each call
    with mock.patch.object(psae.classifier, "SoftmaxClassifier", clf):
        t0 = time.perf_counter()
        scores, _ = score(est, Xtr, ds.y_train, Xte, ds.y_test, 0.01)
        return time.perf_counter() - t0, scores


def one(model: str, target: int, proto: MatchedProtocol, ds, Xtr, Xte, threads: int,
        solvers: dict, rounds: int) -> dict:
    torch.set_num_threads(threads)
    est = make_matched_model(model, None if model == "rae" else target, proto, seed=0,
                             device="cpu", threads=threads)
    t0 = time.perf_counter()
    est.fit(Xtr)
    fit_s = time.perf_counter() - t0
    secs: dict[str, list[float]] = {name: [] for name in solvers}
    cas: dict[str, float] = {}
    for r in range(rounds):  # the order swaps each round: neither always scores first
        for name, clf in list(solvers.items())[::1 if r % 2 == 0 else -1]:
            s, scores = timed_score(est, ds, Xtr, Xte, clf)
            secs[name].append(s)
            cas[name] = scores["CA"]
    out = {"fit_s": round(fit_s, 3), "epochs": est.n_iter_}
    for name in solvers:
        sfx = "" if name == "today" else "_against"
        score_s = statistics.median(secs[name])
        out.update({f"score_s{sfx}": round(score_s, 3),
                    f"share{sfx}": round(score_s / (fit_s + score_s), 4),
                    f"CA{sfx}": cas[name]})
    return out


def saved(run: str, name: str, ds, Xtr, Xte, threads: int, rounds: int,
          models: tuple[str, ...] = MODELS) -> dict:
    """Score ``run``'s saved seed-0 models of data set ``name`` (:func:`one` without a fit)."""
    from psae import bundle

    torch.set_num_threads(threads)
    torch.optim.LBFGS([torch.zeros(1, requires_grad=True)])  # its one-time imports, untimed
    out = {}
    for model in models:
        path = os.path.join(run, "models", f"{name}__{model}_matched")
        if not os.path.isdir(path):
            continue
        pipe = bundle.load(path)
        cell = json.loads(open(_seed0_cell(run, name, model)).read())
        est, secs = pipe[-1], []
        for _ in range(rounds):
            s, scores = timed_score(est, ds, Xtr, Xte, psae.classifier.SoftmaxClassifier)
            secs.append(s)
        score_s, fit_s = statistics.median(secs), cell["fit_seconds"]
        out[model] = {"fit_s": round(fit_s, 3), "epochs": cell["n_epochs"],
                      "score_s": round(score_s, 3), "share": round(score_s / (fit_s + score_s), 4),
                      "CA": scores["CA"], "CA_run": cell["test"]["CA"],
                      "score_s_run": round(cell["seconds"] - fit_s, 3)}
        log(f"{model}: {out[model]}")
    return out


def _seed0_cell(run: str, name: str, model: str) -> str:
    config = json.loads(open(os.path.join(run, "models", f"{name}__{model}_matched",
                                          "config.json")).read())
    key = (config.get("extra") or {}).get("reproduce")
    if key is None:  # the model's config names its cell; else the first seed-0 cell on disk
        cells = sorted(f for f in os.listdir(os.path.join(run, "cells"))
                       if f.startswith(f"{name}__{model}__") and f.endswith("seed0.json"))
        key = cells[0][:-5]
    return os.path.join(run, "cells", f"{key}.json")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--dataset", default="optdigits")
    p.add_argument("--target", type=int, default=None, help="default: the protocol's largest")
    p.add_argument("--threads", default="1,2", help="thread counts, one set of fits each")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--rounds", type=int, default=3, help="scorings of each fit (median kept)")
    p.add_argument("--against", default=None, metavar="REV",
                   help="also score with the CA classifier of this git revision (or this file)")
    p.add_argument("--run", default=None, metavar="DIR",
                   help="score this matched run's saved seed-0 models instead of fitting "
                        "(at the run's explorer target; --target does not apply)")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.run and args.against:
        p.error("--run scores saved models with this checkout's code: to compare another "
                "revision, run this script again with PYTHONPATH set to its checkout")
    solvers = {"today": psae.classifier.SoftmaxClassifier}
    if args.against:
        solvers["against"] = classifier_at(args.against)
    if args.smoke:
        ds = datasets.load("digits")
        proto = MatchedProtocol(32, (4,), 8, 8, 4)
        models, target, threads = ("rae", "topk", "psae"), 4, (1,)
        args.rounds = 1
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
    if args.run:
        for t in threads:
            out[str(t)] = saved(args.run, ds.name, ds, Xtr, Xte, t, args.rounds,
                                tuple(m for m in args.models.split(",") if m in MODELS))
    for t in threads if not args.run else ():
        out[str(t)] = {}
        for m in models:
            out[str(t)][m] = one(m, target, proto, ds, Xtr, Xte, t, solvers, args.rounds)
            log(f"{t} thread(s) {m}: {out[str(t)][m]}")
    shares = [r["share"] for row in out.values() for r in row.values()]
    print(json.dumps({
        "benchmark": "scoring_share", "dataset": ds.name, "rows": len(Xtr),
        "n_components": proto.n_components, "target": target, "threads": list(threads),
        "rounds": args.rounds, "against": args.against,
        "cores": os.cpu_count(), "torch": torch.__version__,
        "loadavg_1min_before": load_before, "loadavg_1min": os.getloadavg()[0],
        "results": out, "max_share": max(shares), "all_at_most_10pct": max(shares) <= 0.10}))


if __name__ == "__main__":
    main()
