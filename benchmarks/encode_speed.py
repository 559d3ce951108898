"""Encoding speed of PSAE against sparse coding by OMP and by dictionary learning, on real MNIST.

A PSAE code is one matrix multiply and a sigmoid; sparse coding solves an optimisation problem
per sample. This script

1. trains ``SparseAutoencoder`` (1000 codes, penalty ``sql0``) on a random subset of the MNIST
   training images normalised with ``psae.Normalizer``;
2. times ``SparseAutoencoder.transform`` on the MNIST test images (median over repeats);
3. times scikit-learn's ``SparseCoder(transform_algorithm="omp")`` with ``k`` = the PSAE test
   codes' mean L0 (rounded) non-zeros, on a subset of the test images, with a dictionary of
   1000 atoms: the PSAE decoder atoms ``model.components_`` row-normalised (default) or the
   atoms learned by the dictionary learner (``--omp-dictionary dl``);
4. fits ``MiniBatchDictionaryLearning`` (1000 atoms) and times its ``transform`` with its
   default transform algorithm (OMP with its default number of non-zeros) on the same subset;
5. scores every code by ``psae.metrics.classification_accuracy`` (softmax on codes of a
   training subset, tested on codes of a test subset), so that speed is not bought with quality.

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import sklearn
import torch
from sklearn.decomposition import MiniBatchDictionaryLearning, SparseCoder
from sklearn.exceptions import ConvergenceWarning

from psae import Normalizer, SparseAutoencoder, datasets, metrics


def log(msg: str) -> None:
    """Progress message on stderr."""
    print(msg, file=sys.stderr, flush=True)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls (after one untimed warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    """``fn()`` and its wall time in seconds."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def load_data(args: argparse.Namespace) -> tuple[np.ndarray, ...]:
    """Normalised MNIST: (X_train subset, y_train subset, X_test, y_test), float32."""
    if args.smoke:
        from sklearn.datasets import load_digits  # bundled: no data files needed

        X, y = load_digits(return_X_y=True)
        X, y = X.astype(np.float32), y.astype(np.int64)
        Xtr, ytr, Xte, yte = X[:300], y[:300], X[300:400], y[300:400]
    else:
        ds = datasets.load("mnist", root=args.data_dir)
        rng = np.random.default_rng(args.seed)
        idx = np.sort(rng.permutation(ds.X_train.shape[0])[: args.n_train])
        Xtr, ytr = ds.X_train[idx], ds.y_train[idx]
        Xte, yte = ds.X_test[: args.n_test], ds.y_test[: args.n_test]
    nz = Normalizer().fit(Xtr)
    return (nz.transform(Xtr).astype(np.float32), ytr, nz.transform(Xte).astype(np.float32),
            yte)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with ``--smoke``'s small sizes filled in."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("PSAE_DATA", "/work/shared/data"))
    p.add_argument("--n-train", type=int, default=10000, help="MNIST training images used")
    p.add_argument("--n-test", type=int, default=10000, help="MNIST test images PSAE encodes")
    p.add_argument("--n-timed", type=int, default=1000,
                   help="test images OMP and dictionary learning encode (timed)")
    p.add_argument("--n-ca-train", type=int, default=3000,
                   help="training images whose codes train the CA classifier (all methods)")
    p.add_argument("--n-components", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=8, help="PSAE epochs (over the 4 sigma stages)")
    p.add_argument("--dl-fit-samples", type=int, default=2048,
                   help="training images the dictionary learner sees (its LARS fit of 1000 "
                        "atoms takes ~10 s per 256-image batch on 2 cores)")
    p.add_argument("--dl-max-iter", type=int, default=1,
                   help="MiniBatchDictionaryLearning epochs over the training subset")
    p.add_argument("--omp-dictionary", choices=["psae", "dl"], default="psae",
                   help="OMP dictionary: PSAE decoder atoms or the learned dictionary")
    p.add_argument("--extra-k", type=int, default=10,
                   help="also time OMP with this many non-zeros (0: skip), a check on a "
                        "PSAE L0 that rounds to almost nothing")
    p.add_argument("--repeats", type=int, default=5, help="timing repeats of PSAE (median)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true",
                   help="tiny run on sklearn's bundled digits, 1 repeat (for tests)")
    args = p.parse_args(argv)
    if args.smoke:
        args.n_components, args.epochs, args.repeats = 32, 4, 1
        args.n_timed, args.n_ca_train, args.dl_fit_samples = 50, 300, 300
        if args.threads is None:
            args.threads = 1
    return args


def run_psae(args, Xtr, ytr, Xte, yte, n_timed: int, n_ca: int) -> tuple[object, dict]:
    """Fit PSAE, time its transform (all test rows, the timed subset, fp32 against bf16
    interleaved) and score its codes."""
    model = SparseAutoencoder(n_components=args.n_components, penalty="sql0",
                              epochs=args.epochs, device="cpu", random_state=args.seed)
    log(f"fit PSAE M={args.n_components}, {args.epochs} epochs")
    model.fit(Xtr)
    H_te = model.transform(Xte)
    psae_s = median_seconds(lambda: model.transform(Xte), args.repeats)
    psae_timed_s = median_seconds(lambda: model.transform(Xte[:n_timed]), args.repeats)
    # the same fitted model's transform in each precision, interleaved round by round
    rounds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(max(3, args.repeats)):
        for p in rounds:
            model.set_params(precision=p)
            rounds[p].append(median_seconds(lambda: model.transform(Xte), 1))
    model.set_params(precision="auto")
    t32, t16 = (float(np.median(rounds[p])) for p in ("fp32", "bf16"))
    log(f"transform fp32 {Xte.shape[0] / t32:.0f}/s, bf16 {Xte.shape[0] / t16:.0f}/s")
    l0 = metrics.l0_stats(H_te)
    ca = metrics.classification_accuracy(model.transform(Xtr[:n_ca]), ytr[:n_ca],
                                         H_te[:n_timed], yte[:n_timed])
    log(f"PSAE: {Xte.shape[0] / psae_s:.0f} samples/s, mean L0 {l0['mean']:.1f}, CA {ca:.4f}")
    return model, {
        "psae_samples_per_s": Xte.shape[0] / psae_s,
        "psae_samples_per_s_timed_subset": n_timed / psae_timed_s,
        "precision": getattr(model, "precision_", None),
        "fp32_samples_per_s": Xte.shape[0] / t32,
        "bf16_samples_per_s": Xte.shape[0] / t16,
        "bf16_speedup_vs_fp32": t32 / t16,
        "mean_l0": l0["mean"],
        "l0_threshold": l0["threshold"],
        "mean_l0_at_1e-3": metrics.l0_stats(H_te, 1e-3)["mean"],
        "psae_code_quantiles": dict(zip(("q50", "q90", "q99", "max"), (float(v) for v in (
            *np.quantile(H_te, [0.5, 0.9, 0.99]), H_te.max())), strict=True)),
        "psae_dead_units": metrics.dead_units(H_te),
        "ca_psae": ca,
        "psae_fit_s": model.fit_time_,
    }


def run_dict_learning(args, Xtr, ytr, Xte, yte, n_timed: int, n_ca: int) -> tuple[object, dict]:
    """Fit ``MiniBatchDictionaryLearning``, time its transform and score its codes."""
    M = args.n_components
    log(f"fit MiniBatchDictionaryLearning ({M} atoms, max_iter={args.dl_max_iter})")
    dl = MiniBatchDictionaryLearning(n_components=M, max_iter=args.dl_max_iter,
                                     random_state=args.seed)
    n_dl = min(args.dl_fit_samples, Xtr.shape[0])
    _, dl_fit_s = timed(lambda: dl.fit(Xtr[:n_dl]))
    C_te, dl_s = timed(lambda: dl.transform(Xte[:n_timed]))
    log(f"DL transform: {n_timed / dl_s:.1f} samples/s ({dl.transform_algorithm}); computing CA")
    return dl, {
        "dl_samples_per_s": n_timed / dl_s,
        "dl_transform_algorithm": dl.transform_algorithm,
        # scikit-learn's OMP default: int(min(max(n_features / 10, 1), n_atoms)) non-zeros
        "dl_transform_n_nonzero_coefs": dl.transform_n_nonzero_coefs
        or int(min(max(Xtr.shape[1] / 10, 1), M)),
        "ca_dl": metrics.classification_accuracy(dl.transform(Xtr[:n_ca]), ytr[:n_ca], C_te,
                                                 yte[:n_timed]),
        "dl_fit_s": dl_fit_s,
        "dl_fit_samples": n_dl,
    }


def run_omp(atoms: np.ndarray, k: int, Xtr, ytr, Xte, yte, n_timed: int,
            n_ca: int) -> tuple[float, float]:
    """OMP with ``k`` non-zeros on row-normalised ``atoms``: samples per second, CA."""
    atoms = atoms.astype(np.float64)
    norms = np.linalg.norm(atoms, axis=1, keepdims=True)
    atoms = atoms / np.where(norms > 0, norms, 1.0)
    coder = SparseCoder(dictionary=atoms, transform_algorithm="omp",
                        transform_n_nonzero_coefs=k)
    O_te, omp_s = timed(lambda: coder.transform(Xte[:n_timed]))
    log(f"OMP k={k}: {n_timed / omp_s:.1f} samples/s; computing CA")
    return n_timed / omp_s, metrics.classification_accuracy(
        coder.transform(Xtr[:n_ca]), ytr[:n_ca], O_te, yte[:n_timed])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    Xtr, ytr, Xte, yte = load_data(args)
    data = (Xtr, ytr, Xte, yte, min(args.n_timed, Xte.shape[0]),
            min(args.n_ca_train, Xtr.shape[0]))
    n_timed, n_ca = data[4:]
    log(f"data: train {Xtr.shape}, test {Xte.shape}; timed subset {n_timed}, CA train {n_ca}")
    model, psae = run_psae(args, *data)
    # fitted before OMP: its atoms may be OMP's dictionary
    dl, dl_out = run_dict_learning(args, *data)
    k = max(1, int(round(psae["mean_l0"])))
    atoms = model.components_ if args.omp_dictionary == "psae" else dl.components_
    omp_rate, ca_omp = run_omp(atoms, k, *data)
    extra = {}
    if args.extra_k > 0:
        x_rate, ca_x = run_omp(atoms, args.extra_k, *data)
        extra = {"extra_k": args.extra_k, "omp_extra_k_samples_per_s": x_rate,
                 "speedup_vs_omp_extra_k": psae["psae_samples_per_s"] / x_rate,
                 "ca_omp_extra_k": ca_x}

    print(json.dumps({
        "speedup_vs_omp": psae["psae_samples_per_s"] / omp_rate,
        "speedup_vs_dict_learning": psae["psae_samples_per_s"] / dl_out["dl_samples_per_s"],
        **psae,
        "omp_samples_per_s": omp_rate,
        "omp_n_nonzero_coefs": k,
        "omp_dictionary": ("psae decoder atoms (components_), row-normalised"
                           if args.omp_dictionary == "psae"
                           else "MiniBatchDictionaryLearning atoms, row-normalised"),
        "ca_omp": ca_omp,
        **dl_out,
        **extra,
        "n_components": args.n_components,
        "n_train": int(Xtr.shape[0]),
        "n_test_psae": int(Xte.shape[0]),
        "n_test_timed": n_timed,
        "n_ca_train": n_ca,
        "n_ca_test": n_timed,
        "psae_epochs": args.epochs,
        "dataset": "digits (smoke)" if args.smoke else "mnist",
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "loadavg_1min": os.getloadavg()[0],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
