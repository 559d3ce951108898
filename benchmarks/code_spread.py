"""How unevenly a saved model spreads its active units over samples, and why its mean L0 can
move between a data set's training and test rows.

For a saved model (``psae.save`` directory, e.g. a matched run's
``models/cifar10__psae_matched``) on a named data set: the per-sample L0 of its codes
(``transform``, so after its inference threshold) on the training and the test rows: mean,
quantiles, the share of all activations held by the top 5 % of samples, the share of samples
with no active unit; how the count follows the input's mean brightness (correlation, and the
mean L0 per brightness bin, the bins cut at the training rows' 10/25/50/75 % quantiles); the
test mean reweighted to the training rows' brightness mix (how much of a train/test gap the mix
explains); and how alike the model's own atoms are (mean cosine and mean |cosine| between two
atoms, and each atom's nearest other), which inflates the seed-stability measure when high.

Prints one JSON object on stdout. ``--smoke`` fits a tiny PSAE on the bundled digits instead.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
from sklearn.pipeline import make_pipeline

import psae
from psae import datasets, metrics

CUTS = (0.10, 0.25, 0.50, 0.75)


def spread(l0: np.ndarray) -> dict:
    top = np.sort(l0)[::-1][: max(1, len(l0) // 20)]
    q = np.quantile(l0, (0.5, 0.9, 0.95, 0.99))
    return {"mean": float(l0.mean()), "median": float(q[0]), "q90": float(q[1]),
            "q95": float(q[2]), "q99": float(q[3]), "max": int(l0.max()),
            "top5pct_share": float(top.sum() / max(l0.sum(), 1)),
            "zero_share": float((l0 == 0).mean())}


def by_brightness(l0: np.ndarray, bright: np.ndarray, cuts: np.ndarray) -> dict:
    b = np.digitize(bright, cuts)
    share = np.bincount(b, minlength=len(cuts) + 1) / len(b)
    mean = [float(l0[b == i].mean()) if (b == i).any() else None for i in range(len(cuts) + 1)]
    return {"corr_l0_brightness": float(np.corrcoef(l0, bright)[0, 1]),
            "bin_share": [float(s) for s in share], "bin_mean_l0": mean}


def atoms(components) -> dict:
    """How alike a dictionary's own atoms are (rows of ``components``)."""
    D = np.asarray(components, np.float64)
    D = D / np.maximum(np.linalg.norm(D, axis=1, keepdims=True), 1e-12)
    C = D @ D.T
    n = len(C)
    off = n * n - n
    return {"mean_cosine": float((C.sum() - np.trace(C)) / off),
            "mean_abs_cosine": float((np.abs(C).sum() - np.trace(C)) / off),
            "mean_nearest_other": float((C - 2 * np.eye(n)).max(axis=1).mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="a psae.save directory")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.smoke:
        ds = datasets.load("digits")
        est = make_pipeline(psae.Normalizer(), psae.SparseAutoencoder(
            n_components=32, target_l0=4, epochs=8, random_state=0, threads=args.threads))
        est.fit(ds.X_train)
    elif not args.model:
        p.error("--model is required (or --smoke)")
    else:
        ds = datasets.load(args.dataset, root=args.data_dir)
        est = psae.load(args.model)
    out, l0s, brights = {}, {}, {}
    for split, X in (("train", ds.X_train), ("test", ds.X_test)):
        l0s[split] = metrics.l0_counts(np.asarray(est.transform(X)))
        brights[split] = np.asarray(X, np.float64).mean(axis=1)
    cuts = np.quantile(brights["train"], CUTS)
    for split in ("train", "test"):
        out[split] = spread(l0s[split]) | by_brightness(l0s[split], brights[split], cuts)
    # the test rows' per-bin means, weighted by the training rows' share of each bin
    bins = out["test"]["bin_mean_l0"]
    reweighted = (float(np.dot(out["train"]["bin_share"], bins))
                  if all(m is not None for m in bins) else None)
    model = est[-1] if hasattr(est, "steps") else est
    print(json.dumps({
        "benchmark": "code_spread", "dataset": ds.name, "model": args.model or "smoke",
        "brightness_cuts": [float(c) for c in cuts], "splits": out,
        "test_mean_reweighted_to_train_brightness": reweighted, "atoms": atoms(model.components_),
        "threads": args.threads, "cores": os.cpu_count(), "torch": torch.__version__,
        "loadavg_1min": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
