"""One training step of each sparse-code model against RAE's, with and without dead units.

The hand-derived steps (`psae.training.fused` for RAE, `psae.training.fused_sparse` for TopK,
BatchTopK and the JumpReLUs) with fused Adam and the unit-norm decoder where the model has one,
as the trainer runs them, at MNIST's shapes (D = 784, M = 1000, batch 256), bf16 where the
hardware has it, a fixed thread count; models interleaved round by round. With ``--dead N`` the
first N units are dead, so the top-k models run AuxK on them: as they start, firing on some rows
(the worst case for AuxK, which takes every dead unit positive somewhere in the batch), and
"silent", pushed below zero on every row as most dead units of a fitted TopK are (AuxK, exactly,
leaves them out; keys ending `/silent`). JumpReLU's thresholds start where
each unit fires on 25 of M inputs, a trained model's sparsity. Each sparse-code model runs twice:
as the trainer does (its code's products on the non-zeros where
`psae.training.sparse_products` says so) and with every product dense (keys ending `/dense`).
Reports each model's median step in milliseconds and its ratio to RAE's in the same round.

Prints one JSON object on stdout. ``--smoke`` runs a tiny version.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from psae import sparsity
from psae.training.fused import fused_gradients
from psae.training.fused_sparse import sparse_gradients
from psae.training.network import Autoencoder
from psae.training.objective import Objective
from psae.training.precision import resolve_precision
from psae.training.trainer import adam

MODELS = {"rae": ("none", {}), "topk": ("topk", {"k": 25}), "batchtopk": ("batchtopk", {"k": 25}),
          "jumprelu": ("jumprelu", {}), "sqjumprelu": ("sqjumprelu", {})}


def stepper(name: str, D: int, M: int, B: int, n_dead: int, precision: str,
            sparse: bool = True, silent: bool = False):
    penalty, settings = MODELS[name]
    settings = {k: min(v, M // 4) for k, v in settings.items()}
    obj = Objective.of(penalty, n_components=M, **settings)
    mech = sparsity.get(penalty)
    code = mech.code(M, dict(obj.settings)) if mech.code else "sigmoid"
    module = Autoencoder(D, M, code, mech.decoder, generator=torch.Generator().manual_seed(0),
                         pre_bias=mech.pre_bias)
    x = torch.rand(B, D, generator=torch.Generator().manual_seed(1))
    dead = torch.zeros(M, dtype=torch.bool)
    dead[:n_dead] = True
    if silent:  # the dead units' pre-activations below zero on every row
        with torch.no_grad():
            module.b1[:n_dead] = -1e3
    if hasattr(module.code, "start_firing"):  # JumpReLU at a trained model's L0 of 25
        with torch.no_grad():
            module.code.start_firing(torch.addmm(module.b1, x - module.b2, module.W1.t()),
                                     25 / M)
    opt = adam(module.parameters(), 1e-3)

    def step():
        if penalty == "none":
            fused_gradients(module, obj, x, None, precision, 0.0)
        else:
            sparse_gradients(module, obj, x, precision, 0.0, dead if n_dead else None, sparse)
        if mech.unit_norm_decoder:
            module.project_decoder_grad()
        opt.step()
        if mech.unit_norm_decoder:
            module.normalise_decoder()
    return step


def timed(step, n: int) -> float:
    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dead", type=int, default=400, help="dead units in the second setting")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    D, M, B = (784, 1000, 256) if not args.smoke else (16, 32, 8)
    if args.smoke:
        args.steps, args.rounds, args.dead = 2, 1, 8
    precision = resolve_precision("auto", torch.device("cpu"), warn=False, size=D * M)
    load_before = os.getloadavg()[0]
    settings = [(name, n, sparse, False) for n in (0, args.dead) for name in MODELS
                for sparse in ((True,) if name == "rae" else (True, False))
                if n == 0 or name in ("topk", "batchtopk")]
    settings += [(name, args.dead, True, True) for name in ("topk", "batchtopk")]
    steps = {s: stepper(s[0], D, M, B, s[1], precision, s[2], s[3]) for s in settings}
    rounds = [{s: timed(f, args.steps) for s, f in steps.items()} for _ in range(args.rounds)]
    out = {}
    for s in settings:
        ratios = [r[s] / r[("rae", 0, True, False)] for r in rounds]
        key = f"{s[0]}/dead{s[1]}" + ("" if s[2] else "/dense") + ("/silent" if s[3] else "")
        out[key] = {"step_ms": statistics.median(r[s] for r in rounds),
                    "ratio_to_rae": statistics.median(ratios), "ratios": ratios}
    print(json.dumps({"benchmark": "model_steps", "D": D, "M": M, "batch": B,
                      "precision": precision, "threads": args.threads, "cores": os.cpu_count(),
                      "torch": torch.__version__, "loadavg_1min_before": load_before,
                      "loadavg_1min": os.getloadavg()[0], "results": out}))


if __name__ == "__main__":
    main()
