"""Quality parity of bf16 against float32 training: the same models, data and seeds.

Trains every model of the registry at its default settings on MNIST (M = 1000) and OPTDIGITS
(M = 100) in ``precision="fp32"`` and ``"bf16"`` over 3 seeds, scores each on the test set (CA with
the converged softmax classifier, Hoyer S, mean L0, RE) and reports per (data set, model) the
means and stds in each precision, their differences and whether bf16 lands within the bounds of
issue 10: CA within 0.3 points, S within 0.02, mean L0 within 5 % of float32.

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from psae import Normalizer, SparseAutoencoder, datasets, metrics, sparsity

ROOT = Path(__file__).resolve().parents[1]
BOUNDS = {"CA": 0.003, "S": 0.02, "L0_mean": 0.05}  # L0: relative
SETS = {"mnist": {"n_components": 1000, "epochs": 8},
        "optdigits": {"n_components": 100, "epochs": 40}}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def score(model, Xtr, ytr, Xte, yte) -> dict:
    H = model.transform(Xte)
    r = metrics.evaluate(Xte, H, model.inverse_transform(H), H_train=model.transform(Xtr),
                         y_train=ytr, y=yte)
    return {"L0_mean": r["L0"]["mean"], **{k: float(r[k]) for k in ("CA", "S", "RE")}}


def compare(runs: dict[str, list[dict]]) -> dict:
    """Means, stds, differences and the verdict of one (data set, model)."""
    out = {}
    for p in ("fp32", "bf16"):
        out[p] = {k: {"mean": float(np.mean([r[k] for r in runs[p]])),
                      "std": float(np.std([r[k] for r in runs[p]]))} for k in runs[p][0]}
    diff, within = {}, {}
    for k, bound in BOUNDS.items():
        a, b = out["fp32"][k]["mean"], out["bf16"][k]["mean"]
        if k == "L0_mean":
            diff[k] = (b - a) / a if a else float("nan")
        else:
            diff[k] = b - a
        within[k] = bool(abs(diff[k]) <= bound)
    out["bf16_minus_fp32"] = diff  # L0_mean relative
    out["within_bounds"] = within
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--datasets", default="mnist,optdigits")
    p.add_argument("--models", default=None, help="registry keys (default: all)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=None, help="override every data set's")
    p.add_argument("--smoke", action="store_true", help="digits, tiny models (for tests)")
    args = p.parse_args(argv)
    sets = dict(SETS)
    if args.smoke:
        sets, args.datasets, args.seeds = {"digits": {"n_components": 20, "epochs": 4}}, \
            "digits", 1
    keys = args.models.split(",") if args.models else list(sparsity.keys())
    results: dict = {}
    t0 = time.perf_counter()
    for name in args.datasets.split(","):
        ds = datasets.load(name, root=args.data_dir)
        nz = Normalizer().fit(ds.X_train)
        Xtr, Xte = nz.transform(ds.X_train), nz.transform(ds.X_test)
        cfg = dict(sets[name], **({"epochs": args.epochs} if args.epochs else {}))
        for key in keys:
            runs: dict[str, list[dict]] = {"fp32": [], "bf16": []}
            for seed in range(args.seeds):
                for precision in ("fp32", "bf16"):  # interleaved: load drift hits both
                    m = SparseAutoencoder(penalty=sparsity.by_key(key).name, random_state=seed,
                                          precision=precision, device="cpu", **cfg).fit(Xtr)
                    runs[precision].append(dict(score(m, Xtr, ds.y_train, Xte, ds.y_test),
                                                fit_seconds=m.fit_time_))
                    log(f"{name} {key} seed {seed} {precision}: {runs[precision][-1]}")
            results.setdefault(name, {})[key] = compare(runs)
    print(json.dumps({"results": results, "bounds": BOUNDS, "seeds": args.seeds,
                      "threads": torch.get_num_threads(), "cores": os.cpu_count(),
                      "loadavg_1min": os.getloadavg()[0], "settings": sets,
                      "seconds": time.perf_counter() - t0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
