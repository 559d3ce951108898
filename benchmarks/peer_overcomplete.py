"""psae's TopK against a peer's, overcomplete's ``TopKSAE``, on the same data, in one run.

Issue 19 asks psae to train faster than overcomplete (a vision SAE toolkit) at equal precision
and quality. Both fit MNIST 784 → 1000 with at most k = 25 active units a row, batch 256, Adam
at psae's default step (fused Adam on both sides), the same epochs over all training rows, on
the same centred input (psae's Normalizer, minus its 0.5 midpoint: overcomplete's decoder has
no bias). Each library trains with its own recipe: psae through ``SparseAutoencoder.fit``
(Gao et al.'s AuxK on dead units only, its hand-derived step), overcomplete through its
``train_sae`` loop with its defaults (gradient clipping at norm 1, its AuxK over half of all
units every step, unit-norm dictionary), monitoring off (its fastest setting); so the epoch
ratio measures each library's recipe, loss design included. Epoch time counts each side's
shuffle and batch gathering. Quality is scored alike on both, in the precision each trained
in: FVU and dead units on the test rows, CA of the test codes through psae's classifier. In
bf16 psae keeps float32 outputs and elementwise work, where CPU autocast leaves overcomplete's
activations and loss in bf16, so "equal precision" means the products' precision.
Configurations run in interleaved rounds (round r seeds both with r) so that machine load falls
on all alike; then psae fits once more for as many epochs as its median epoch fits into the
peer's ``epochs`` epochs (``*_same_time``; first epochs and fixed costs aside), to compare
quality at equal seconds as well as at equal epochs.

overcomplete is not a psae dependency. Its SAE code needs only torch and einops, but the
package's ``__init__`` imports its vision models (timm, torchvision, OpenCV), which would pull
another torch; install it with ``pip install --no-deps overcomplete==0.3.0 einops`` and this
script loads the ``overcomplete.sae`` subpackage alone.

Prints one JSON object on stdout; progress goes to stderr. ``--smoke`` runs a tiny version.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import statistics
import sys
import time
import types

import numpy as np
import torch

from psae import Normalizer, SparseAutoencoder, datasets, metrics
from psae.training.precision import native_bf16


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def overcomplete_sae() -> types.ModuleType:
    """``overcomplete.sae`` without the package ``__init__`` (and its vision imports)."""
    if "overcomplete.sae" in sys.modules:
        return sys.modules["overcomplete.sae"]
    spec = importlib.util.find_spec("overcomplete")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("overcomplete is not installed: pip install --no-deps "
                         "overcomplete==0.3.0 einops")
    if "overcomplete" not in sys.modules:
        package = types.ModuleType("overcomplete")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["overcomplete"] = package
    return importlib.import_module("overcomplete.sae")


def load(args) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ds = datasets.load("digits") if args.smoke else datasets.load("mnist", root=args.data_dir)
    nz = Normalizer().fit(ds.X_train)
    Xtr, Xte = ((nz.transform(X) - 0.5).astype(np.float32) for X in (ds.X_train, ds.X_test))
    return Xtr, ds.y_train, Xte, ds.y_test


def quality(encode, decode, Xtr, ytr, Xte, yte) -> dict:
    """FVU and dead units on the test rows, CA of the codes: one scorer for both libraries."""
    Htr, Hte = encode(Xtr), encode(Xte)
    return {"FVU": metrics.fraction_of_variance_unexplained(Xte, decode(Hte)),
            "CA": metrics.classification_accuracy(Htr, ytr, Hte, yte),
            "L0": float(metrics.l0_counts(Hte, threshold=0).mean()),  # exact zeros: TopK's
            "dead_fraction": metrics.dead_units(Hte, threshold=0)}


def fit_psae(precision: str, data, args, seed: int, epochs: int | None = None) -> dict:
    Xtr, ytr, Xte, yte = data
    m = SparseAutoencoder(n_components=args.components, penalty="topk", k=args.k,
                          epochs=epochs or args.epochs, batch_size=args.batch, precision=precision,
                          threads=args.threads, random_state=seed, device="cpu")
    t0 = time.perf_counter()
    m.fit(Xtr)
    wall = time.perf_counter() - t0
    epochs = [h["seconds"] for h in m.history_]
    res = {"epoch_s": statistics.median(epochs[1:] or epochs), "fit_s": wall,
           "epochs": len(epochs), "precision": m.precision_}
    return res | quality(m.transform, m.inverse_transform, Xtr, ytr, Xte, yte)


def fit_overcomplete(precision: str, data, args, seed: int) -> dict:
    sae = overcomplete_sae()
    Xtr, ytr, Xte, yte = data
    torch.manual_seed(seed)
    model = sae.TopKSAE(Xtr.shape[1], nb_concepts=args.components, top_k=args.k)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, fused=True)  # as psae's trainer
    X = torch.from_numpy(Xtr)
    g = torch.Generator().manual_seed(seed)
    bf16 = precision == "bf16"
    # overcomplete's loop times each epoch only when it monitors, and monitoring costs a
    # .item() per step; so epochs are timed here, one train_sae call each, monitoring off.
    epochs = []
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        t1 = time.perf_counter()
        order = torch.randperm(len(X), generator=g)
        batches = [X[order[i:i + args.batch]] for i in range(0, len(X), args.batch)]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            sae.train_sae(model, batches, sae.losses.top_k_auxiliary_loss, opt, nb_epochs=1,
                          monitoring=0, device="cpu")
        epochs.append(time.perf_counter() - t1)
    wall = time.perf_counter() - t0
    model.eval()

    def encode(A):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model.encode(torch.from_numpy(A))[1].float().numpy()

    def decode(H):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model.decode(torch.from_numpy(H)).float().numpy()

    res = {"epoch_s": statistics.median(epochs[1:] or epochs), "fit_s": wall,
           "epochs": len(epochs), "precision": precision}
    return res | quality(encode, decode, Xtr, ytr, Xte, yte)


ROUND_KEYS = ("epoch_s", "FVU", "CA", "dead_fraction")


def configs(precisions: list[str]) -> dict:
    """Each library at each precision, psae first within a precision."""
    fits = {"psae": fit_psae, "overcomplete": fit_overcomplete}
    return {f"{lib}_{prec}": (fit, prec) for prec in precisions for lib, fit in fits.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--components", type=int, default=1000)
    p.add_argument("--k", type=int, default=25)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precisions", default=None,
                   help="comma-separated, of fp32 and bf16; default fp32, and bf16 too where "
                        "the CPU runs it natively (without, both libraries' bf16 epochs take "
                        "about 8 times their fp32 ones here)")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    native = native_bf16(torch.device("cpu"))
    precisions = (args.precisions or ("fp32,bf16" if native else "fp32")).split(",")
    runs = configs(precisions)
    if args.smoke:
        args.components, args.k, args.epochs, args.rounds, args.batch = 32, 4, 2, 1, 64
    torch.set_num_threads(args.threads)
    overcomplete_sae()  # fail before any fitting when the peer is missing
    data = load(args)
    # psae's default step (SparseAutoencoder._learning_rate, which needs a fitted batch size)
    args.lr = min(1e-2, 1.0 / data[0].shape[1]) * (args.batch / 128) ** 0.5
    load_before = os.getloadavg()[0]
    rounds: list[dict[str, dict]] = []
    for r in range(args.rounds):
        rounds.append({})
        for name, (fit, precision) in runs.items():
            log(f"round {r + 1}: {name}")
            rounds[-1][name] = fit(precision, data, args, r)
    out = {}
    for name in runs:
        last = rounds[-1][name]
        out[name] = last | {"epoch_s": statistics.median(rd[name]["epoch_s"] for rd in rounds),
                            "rounds": [{k: rd[name][k] for k in ROUND_KEYS} for rd in rounds]}
    ratio = {prec: [rd[f"psae_{prec}"]["epoch_s"] / rd[f"overcomplete_{prec}"]["epoch_s"]
                    for rd in rounds] for prec in precisions}
    for prec in precisions:  # quality at equal training time: psae given the peer's seconds
        epochs = max(1, round(args.epochs / statistics.median(ratio[prec])))
        log(f"psae_{prec}_same_time: {epochs} epochs")
        out[f"psae_{prec}_same_time"] = fit_psae(prec, data, args, 0, epochs)
    print(json.dumps({"benchmark": "peer_overcomplete", "rows": len(data[0]),
                      "features": data[0].shape[1], "n_components": args.components,
                      "k": args.k, "batch": args.batch, "epochs": args.epochs,
                      "learning_rate": args.lr, "rounds": args.rounds, "threads": args.threads,
                      "torch": torch.__version__, "cores": os.cpu_count(),
                      "native_bf16": native, "versions": {
                          lib: importlib.metadata.version(lib) for lib in ("psae", "overcomplete")},
                      "overcomplete_clip_grad": 1.0,
                      "loadavg_1min_before": load_before, "loadavg_1min": os.getloadavg()[0],
                      "results": out,
                      "epoch_ratio_psae_to_overcomplete": {
                          prec: statistics.median(v) for prec, v in ratio.items()},
                      "epoch_ratio_rounds": ratio}))


if __name__ == "__main__":
    main()
