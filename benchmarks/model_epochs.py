"""Each model's training epoch against the plain autoencoder's (RAE), measured in one run.

Fits every registered model on the same MNIST rows (12,000 by default) at M = 1000, bf16 where
the hardware has it, batch 256, a fixed thread count, for a few epochs each, in interleaved
rounds so that machine load falls on all alike; reports each model's median epoch seconds
(epochs after the first), its ratio to RAE's in the same round, the training step each took
(hand-derived or autograd) and the dead units at the end. Target (issue 19): every ratio at
most 1.3.

Prints one JSON object on stdout; progress goes to stderr. ``--smoke`` runs a tiny version.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

from psae import Normalizer, SparseAutoencoder, datasets, sparsity

MODELS = {"rae": ("none", {}), "l1": ("l1", {}), "kl": ("kl", {}), "l0": ("l0", {}),
          "psae": ("sql0", {}), "topk": ("topk", {"k": 25}), "batchtopk": ("batchtopk", {"k": 25}),
          "jumprelu": ("jumprelu", {}), "sqjumprelu": ("sqjumprelu", {})}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def data(args) -> np.ndarray:
    if args.smoke:
        return np.random.default_rng(0).uniform(size=(512, 64)).astype(np.float32)
    ds = datasets.load("mnist", root=args.data_dir, limit=args.rows)
    return Normalizer().fit_transform(ds.X_train).astype(np.float32)


def one_fit(penalty: str, params: dict, X: np.ndarray, args) -> dict:
    from psae.training import trainer as trainer_module

    seen = {}
    original = trainer_module.Trainer.__init__

    def spy(self, *a, **k):  # which step the fit took, read off its trainer
        original(self, *a, **k)
        seen["step"] = "hand-derived" if self.rule.hand_derived else "autograd"

    trainer_module.Trainer.__init__ = spy
    try:
        if "k" in params:  # TopK's k = 25 of 1000, scaled for a smaller layer
            params = {"k": max(1, min(params["k"], args.components // 4))}
        m = SparseAutoencoder(n_components=args.components, penalty=penalty, epochs=args.epochs,
                              batch_size=args.batch, precision=args.precision,
                              threads=args.threads, random_state=0, device="cpu", **params)
        t0 = time.perf_counter()
        m.fit(X)
        wall = time.perf_counter() - t0
    finally:
        trainer_module.Trainer.__init__ = original
    epochs = [h["seconds"] for h in m.history_]
    return {"epoch_s": statistics.median(epochs[1:] or epochs), "wall_s": wall,
            "dead_fraction": m.dead_fraction_, "step": seen.get("step"),
            "precision": m.precision_}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--rows", type=int, default=12000)
    p.add_argument("--components", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default="auto")
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated subset (rae is always measured, as the reference)")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    names = ["rae"] + [m for m in args.models.split(",") if m in MODELS and m != "rae"]
    if args.smoke:
        args.components, args.epochs, args.rounds, args.batch = 16, 4, 1, 64
    X = data(args)
    load_before = os.getloadavg()[0]
    rounds: list[dict[str, dict]] = []
    for r in range(args.rounds):
        rounds.append({})
        for name in names:
            penalty, params = MODELS[name]
            log(f"round {r + 1}: {name}")
            rounds[-1][name] = one_fit(penalty, params, X, args)
    out = {}
    for name in names:
        ratios = [rd[name]["epoch_s"] / rd["rae"]["epoch_s"] for rd in rounds]
        last = rounds[-1][name]
        out[name] = {"epoch_s": statistics.median(rd[name]["epoch_s"] for rd in rounds),
                     "ratio_to_rae": statistics.median(ratios), "ratios": ratios,
                     "step": last["step"], "dead_fraction": last["dead_fraction"],
                     "precision": last["precision"]}
    print(json.dumps({"benchmark": "model_epochs", "rows": len(X), "features": X.shape[1],
                      "n_components": args.components, "batch": args.batch,
                      "epochs": args.epochs, "rounds": args.rounds, "threads": args.threads,
                      "torch": torch.__version__, "cores": os.cpu_count(),
                      "loadavg_1min_before": load_before, "loadavg_1min": os.getloadavg()[0],
                      "models": sorted(sparsity.names()), "results": out,
                      "worst_ratio": max(v["ratio_to_rae"] for v in out.values())}))


if __name__ == "__main__":
    main()
